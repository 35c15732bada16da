package projections

import (
	"slices"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// MetaVersion changes whenever a project, an API key, a database or a
// collection may have changed in the read models: after the commit of any
// event that may change one (before waiters learn it was applied) and
// after every drop of a read model. A cache of those records is valid
// while it is unchanged, provided it read MetaVersion before the record.
func (p *Projections) MetaVersion() uint64 { return p.metaVersion.Load() }

// noteCommitted moves MetaVersion on if any of evs, just committed, may
// have changed a project, key, database or collection.
func (p *Projections) noteCommitted(evs []event) {
	for _, ev := range evs {
		if ev.doc == nil && !keepsMeta(ev.env) { // an undecoded document event keeps it
			p.metaVersion.Add(1)
			return
		}
	}
}

// keepsMeta reports whether applying env leaves every project, key,
// database and collection as it was. It lists the frequent events that
// are known to; any other, and any event type added later, counts as a
// change, so a cache can only be flushed too often, never kept stale.
func keepsMeta(env *eventsv1.Envelope) bool {
	switch env.GetPayload().(type) {
	case *eventsv1.Envelope_DocumentCreated, *eventsv1.Envelope_DocumentUpdated, *eventsv1.Envelope_DocumentDeleted,
		*eventsv1.Envelope_TransactionCreated, *eventsv1.Envelope_TransactionStaged, *eventsv1.Envelope_TransactionCommitted,
		*eventsv1.Envelope_TransactionRolledBack,
		*eventsv1.Envelope_UserCreated, *eventsv1.Envelope_UserUpdated, *eventsv1.Envelope_UserDeleted,
		*eventsv1.Envelope_SessionCreated, *eventsv1.Envelope_SessionUpdated, *eventsv1.Envelope_SessionsDeleted,
		*eventsv1.Envelope_TokenCreated, *eventsv1.Envelope_TokenConsumed,
		*eventsv1.Envelope_ClaimTaken, *eventsv1.Envelope_ClaimReleased,
		*eventsv1.Envelope_FileCreated, *eventsv1.Envelope_FileUpdated, *eventsv1.Envelope_FileDeleted,
		*eventsv1.Envelope_FileTokenCreated, *eventsv1.Envelope_FileTokenDeleted,
		*eventsv1.Envelope_UploadProgressed, *eventsv1.Envelope_UploadAbandoned,
		*eventsv1.Envelope_ExecutionCreated, *eventsv1.Envelope_ExecutionUpdated, *eventsv1.Envelope_ExecutionsExpired,
		*eventsv1.Envelope_WebhookDelivered:
		return true
	}
	return false
}

// docCollections returns the collections (collKey) whose documents evs
// change, and false when evs may change anything else a query reads
// (a collection, an index, a project). Transaction events only record
// staged operations: a commit's writes are document events of their own.
func docCollections(evs []event) ([]string, bool) {
	var out []string
	for _, ev := range evs {
		if r := ev.doc; r != nil {
			// Left undecoded (rawDoc): the envelope has no payload.
			if k := collKey(r.databaseID, r.collectionID); !slices.Contains(out, k) {
				out = append(out, k)
			}
			continue
		}
		var d *eventsv1.Document
		switch pl := ev.env.GetPayload().(type) {
		case *eventsv1.Envelope_DocumentCreated:
			d = pl.DocumentCreated.GetDocument()
		case *eventsv1.Envelope_DocumentUpdated:
			d = pl.DocumentUpdated.GetDocument()
		case *eventsv1.Envelope_DocumentDeleted:
			d = pl.DocumentDeleted.GetDocument()
		case *eventsv1.Envelope_TransactionCreated, *eventsv1.Envelope_TransactionStaged, *eventsv1.Envelope_TransactionCommitted,
			*eventsv1.Envelope_TransactionRolledBack:
			continue
		default:
			return nil, false
		}
		if k := collKey(d.GetDatabaseId(), d.GetCollectionId()); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, true
}
