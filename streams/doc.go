// Package streams is Cairn's JetStream layer: it starts an embedded
// nats-server, provisions the system stream and one stream (plus a lazily
// created object store) per project, names every stored subject, appends
// messages with an optimistic-concurrency check and deduplication, and reads
// them back in order (point reads, bounded listings, live batched
// subscriptions for projectors).
//
// It deals in subjects, bytes and headers only. It must never import
// Badger, Connect, net/http or anything under proto/: the event envelope is
// encoded and decoded elsewhere, and read models live in projections. It
// never decides business rules; it only refuses writes whose expected
// sequence is stale.
package streams
