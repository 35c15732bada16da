// Package eventlog is where the domain meets storage: it encodes event
// envelopes, names the subject of every event type, and runs the one generic
// write path — load the aggregate's last event, decide (pure domain code),
// append with the aggregate's expected last sequence, retry on a conflict,
// and wait until the local projector has applied the result.
//
// It never reads read models other than through the ReadSide it is given,
// and never decides business rules itself.
package eventlog
