// Package projections is the read side of a Cairn node: it consumes the
// system stream and every project's stream in order and applies their events
// to read models in Badger (the project registry, API keys, the idempotency
// index, and — as capabilities arrive — users, documents, files, sites…),
// and it serves every read from there. A read never touches a stream.
//
// It never writes events, decides business rules or answers callers; it
// only applies what the stream already holds. Every event carries the full
// state of its resource after the change, so applying one is a put (or a
// delete) of that state, and a read model can be dropped and rebuilt from
// its stream at any time, ending byte for byte where incremental
// application ended (DESIGN.md §5).
//
// Runtime. Per stream one projector: an ordered consumer from the
// checkpoint's next sequence, applying whatever has arrived in batches, each
// batch in one Badger transaction together with the stream's checkpoint, so
// a crash never applies an event twice nor skips one. A sequence gap, an
// undecodable message or an event type this build does not know stops that
// projector loudly (the read model stays at its last consistent point and
// Ready reports false) instead of skipping: a projector must apply every
// event ever written. Before consuming, a projector checks that its
// checkpoint belongs to the stream (same creation time, the event at the
// checkpoint's sequence has the recorded envelope id, the stream is not
// behind it); a read model that is ahead of or inconsistent with its stream
// is dropped and rebuilt from the start. A rebuild, and a project projector
// that starts from an empty read model far behind its stream, apply
// documents without their index entries and write those once at the end
// (bulk.go), with a marker by which an interrupted one is resumed.
//
// Idle projects cost (almost) nothing: a project's projector is active (a
// goroutine and a consumer) only while its stream has something new, and
// parks after Options.IdleAfter without; a notification subscription on
// every project subject, WaitApplied and a periodic sweep of every stream's
// last sequence wake it again (see park.go). At start, one paginated listing
// of the streams tells which projects are behind; only those are activated,
// and a caught-up project's checkpoint is verified (the event at its
// sequence has the recorded id) without opening a consumer.
//
// The system projector is always active. It registers and unregisters the
// project projectors as it applies ProjectCreated and ProjectDeleted. Applying ProjectDeleted also drops the
// project's read models and deletes its stream and object store (idempotent),
// so whichever node applies the delete first cleans up after a writer that
// crashed between its append and its own cleanup.
//
// Durability. Badger should be opened with SyncWrites=false: read models
// are derived data, rebuilt from the stream whenever they are lost or found
// inconsistent, so fsyncing them buys nothing. A power loss can at worst
// roll a read model back to an earlier checkpoint, from which the projector
// resumes.
//
// Badger's DropPrefix blocks all writes while it runs; this package
// serialises its own commits with its drops, so a DB shared with other
// writers should expect badger.ErrBlockedWrites during a project deletion or
// rebuild.
package projections
