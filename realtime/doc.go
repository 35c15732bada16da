// Package realtime fans a project's events out to subscribers: one ordered
// consumer per project with subscribers on this node (not one per client),
// a bounded queue per subscriber, lossless resume from a stream sequence
// (catch-up on the subscriber's own goroutine, then live events with no
// duplicates), and Appwrite's channel names. What a subscriber may read is
// decided by its Filter, which the API layer builds (permissions need read
// models).
package realtime
