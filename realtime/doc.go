// Package realtime fans a project's events out to subscribers: one ordered
// consumer per project with subscribers on this node (not one per client),
// a bounded queue per subscriber, lossless resume from a stream sequence
// (catch-up on the subscriber's own goroutine, then live events with no
// duplicates), and Appwrite's channel names. Live events go to each
// subscriber's queue or, for RunDirect subscribers (WebSockets), straight
// to their writers from the fan-out, which is split over the cores. What a subscriber may read is
// decided by its Filter, which the API layer builds (permissions need read
// models).
package realtime
