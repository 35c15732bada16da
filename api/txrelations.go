package api

import (
	"context"
	"maps"
	"slices"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// txTarget is a document a transaction writes.
type txTarget struct {
	cl *coll
	id string
}

// txDoc is everything a commit does to one document: a batch decides
// each document once, so the transaction's own write, the changes its
// relationships make there and the check of a version read are folded
// into one decision.
type txDoc struct {
	ref   database.DocRef
	agg   eventlog.Aggregate
	write *txWrite
	// cascade is the change deleting the document through a cascade.
	cascade *eventlog.Change
	checks  []relKind
	links   []database.Link
	linkCl  *coll // the writer's collection (for its project and database)
	linkR   *coll // the caller's view of the document's collection
	read    *txRead
}

type txWrite struct {
	cl      *coll
	cmd     database.DocCommand
	read    bool
	version uint64
	guard   func(*eventsv1.Document) error
}

type txRead struct {
	id      string
	version uint64
	cl      *coll
}

// txDocumentChanges turns a transaction's operations into the changes of
// its commit. Writes are grouped by collection and each group's
// relationships planned as one bulk write of that collection plans them
// (links kept on both sides, cascades, checks of related documents). A
// change a relationship makes to a document the transaction also writes
// is folded into that write's decision: a new order and its new items
// commit together, the order's side of the two-way relationship holding
// the items. Refused, naming the document: a cascade deleting a document
// the transaction writes, a link to a document it deletes or increments.
func (h *databasesHandler) txDocumentChanges(ctx context.Context, project string, ops []*eventsv1.TransactionOperation) ([]eventlog.Change, []txTarget, error) {
	colls := map[string]*coll{}
	// The version each read saw, and which documents are written.
	reads, writes := map[string]uint64{}, map[string]bool{}
	for _, op := range ops {
		k := op.GetDatabaseId() + "/" + op.GetCollectionId() + "/" + op.GetDocumentId()
		if op.GetAction() == "read" {
			reads[k] = op.GetVersion()
		} else {
			writes[k] = true
		}
	}
	docs := map[string]*txDoc{} // by aggregate filter
	var order []string
	doc := func(cl *coll, ref database.DocRef) *txDoc {
		agg := eventlog.DocumentAggregate(project, cl.c.GetDatabaseId(), ref.Collection, ref.ID)
		d, ok := docs[agg.Filter]
		if !ok {
			d = &txDoc{ref: ref, agg: agg}
			docs[agg.Filter] = d
			order = append(order, agg.Filter)
		}
		return d
	}
	var (
		groups = map[*coll][]*txWrite{}
		gorder []*coll
	)
	for _, op := range ops {
		ck := op.GetDatabaseId() + "/" + op.GetCollectionId()
		cl, ok := colls[ck]
		if !ok {
			var err error
			if cl, err = h.open(ctx, project, op.GetDatabaseId(), op.GetCollectionId()); err != nil {
				return nil, nil, err
			}
			colls[ck] = cl
		}
		docKey := ck + "/" + op.GetDocumentId()
		ref := database.DocRef{Collection: op.GetCollectionId(), ID: op.GetDocumentId()}
		if op.GetAction() == "read" {
			if !writes[docKey] {
				doc(cl, ref).read = &txRead{id: op.GetDocumentId(), version: op.GetVersion(), cl: cl}
			}
			continue
		}
		cmd, err := h.opCommand(cl, op)
		if err != nil {
			return nil, nil, err
		}
		version, read := reads[docKey]
		w := &txWrite{cl: cl, cmd: cmd, read: read, version: version}
		doc(cl, ref).write = w
		if _, ok := groups[cl]; !ok {
			gorder = append(gorder, cl)
		}
		groups[cl] = append(groups[cl], w)
	}
	var written []txTarget
	for _, cl := range gorder {
		ws := groups[cl]
		cmds := make([]database.DocCommand, len(ws))
		for i, w := range ws {
			cmds[i] = w.cmd
			written = append(written, txTarget{cl, w.cmd.ID})
		}
		rel, err := h.planRelations(ctx, cl, cmds)
		if err != nil || rel == nil {
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		for i, w := range ws {
			w.guard = rel.guards[i]
		}
		for i, k := range rel.kinds {
			d := doc(k.cl, k.ref)
			switch k.kind {
			case relCascade:
				if d.cascade == nil {
					ch := rel.changes[i]
					d.cascade = &ch
				}
			case relCheck:
				d.checks = append(d.checks, k)
			case relLink:
				d.links = append(d.links, k.links...)
				d.linkCl = k.cl
				if d.linkR == nil {
					d.linkR = k.r
				}
			}
		}
	}
	changes := make([]eventlog.Change, 0, len(order))
	for _, f := range order {
		ch, ok, err := h.txDocChange(docs[f])
		if err != nil {
			return nil, nil, err
		}
		if ok {
			changes = append(changes, ch)
		}
	}
	return changes, written, nil
}

// txDocChange is the one change a commit makes to document d; ok is false
// when it makes none.
func (h *databasesHandler) txDocChange(d *txDoc) (eventlog.Change, bool, error) {
	linking := slices.IndexFunc(d.links, func(l database.Link) bool { return !l.Unlink })
	var ch eventlog.Change
	switch w := d.write; {
	case w != nil && d.cascade != nil && w.cmd.Action != database.DocDelete:
		return ch, false, domain.Errorf(domain.KindFailedPrecondition, "document %q of collection %q is written by this transaction and deleted by a cascade of another of its deletes; commit them in separate transactions", d.ref.ID, d.ref.Collection)
	case w != nil && w.cmd.Action == database.DocIncrement && (linking >= 0 || len(d.checks) > 0):
		return ch, false, domain.Errorf(domain.KindFailedPrecondition, "document %q of collection %q is incremented by this transaction and related by another of its documents; commit them in separate transactions", d.ref.ID, d.ref.Collection)
	case w != nil:
		ch = h.txWriteChange(d, w)
	case d.cascade != nil && linking >= 0:
		return ch, false, domain.FieldError("data."+d.links[linking].Via, "document %q of collection %q is deleted by a cascade in this transaction", d.ref.ID, d.ref.Collection)
	case d.cascade != nil && len(d.checks) > 0:
		return ch, false, domain.FieldError("data."+d.checks[0].via, "document %q of collection %q is deleted by a cascade in this transaction", d.ref.ID, d.ref.Collection)
	case d.cascade != nil:
		ch = *d.cascade // unlinking a document deleted anyway changes nothing
	case len(d.links) > 0:
		ch = h.linkChange(d.linkCl, d.linkR, d.ref, d.links)
	case len(d.checks) > 0 || d.read != nil:
		ch = eventlog.Change{Agg: d.agg, Decide: func(*eventsv1.Envelope, uint64) ([]*eventsv1.Envelope, error) { return nil, nil }}
	default:
		return ch, false, nil
	}
	decide := ch.Decide
	checks, read := d.checks, d.read
	if d.write != nil {
		checks = nil // checked on the write's result
	}
	if len(checks) > 0 || read != nil {
		ch.Decide = func(last *eventsv1.Envelope, lastSeq uint64) ([]*eventsv1.Envelope, error) {
			if read != nil && database.CurrentDocument(read.cl.c, last, lastSeq).GetVersion() != read.version {
				return nil, domain.Errorf(domain.KindConflict, "document %q changed since the transaction read it", read.id)
			}
			for _, k := range checks {
				if _, err := h.targetCheck(k.cl, k.r, k.ref, k.via).Decide(last, lastSeq); err != nil {
					return nil, err
				}
			}
			return decide(last, lastSeq)
		}
	}
	return ch, true, nil
}

// txWriteChange is the transaction's own write of d, deciding the changes
// relationships make there on the document it writes: checks that it
// exists and is readable, and links, merged into the write's data (the
// write decided again with them).
func (h *databasesHandler) txWriteChange(d *txDoc, w *txWrite) eventlog.Change {
	guard := func(cur *eventsv1.Document) error {
		if w.read && cur.GetVersion() != w.version {
			return domain.Errorf(domain.KindConflict, "document %q changed since the transaction read it", w.cmd.ID)
		}
		if w.guard != nil {
			return w.guard(cur)
		}
		return nil
	}
	base := h.change(w.cl, w.cmd, guard)
	if len(d.checks) == 0 && len(d.links) == 0 {
		return base
	}
	ch := base
	ch.Decide = func(last *eventsv1.Envelope, lastSeq uint64) ([]*eventsv1.Envelope, error) {
		evs, err := base.Decide(last, lastSeq)
		if err != nil {
			return evs, err
		}
		doc := decidedDocument(evs)
		for _, k := range d.checks {
			if doc == nil || k.r == nil || !k.r.readable(doc) {
				return nil, missingRelated(d.ref, k.via)
			}
		}
		if len(d.links) == 0 || doc == nil {
			if i := slices.IndexFunc(d.links, func(l database.Link) bool { return !l.Unlink }); i >= 0 {
				return nil, missingRelated(d.ref, d.links[i].Via) // linking to a document the transaction deletes
			}
			return evs, nil
		}
		if i := slices.IndexFunc(d.links, func(l database.Link) bool { return !l.Unlink }); i >= 0 && (d.linkR == nil || !d.linkR.readable(doc)) {
			return nil, missingRelated(d.ref, d.links[i].Via)
		}
		data, err := w.cl.schema.DecodeData(doc.GetDataJson(), doc.GetSchemaVersion())
		if err != nil {
			return nil, err
		}
		upd, err := database.ApplyLinks(w.cl.schema, data, d.links)
		if err != nil || upd == nil {
			if err != nil {
				return nil, err
			}
			return evs, nil
		}
		cmd := w.cmd
		cmd.Data = maps.Clone(cmd.Data)
		if cmd.Data == nil {
			cmd.Data = map[string]any{}
		}
		maps.Copy(cmd.Data, upd)
		return h.change(w.cl, cmd, guard).Decide(last, lastSeq)
	}
	return ch
}

// decidedDocument is the document a write's events leave, nil when they
// delete it.
func decidedDocument(evs []*eventsv1.Envelope) *eventsv1.Document {
	for _, ev := range slices.Backward(evs) {
		switch p := ev.GetPayload().(type) {
		case *eventsv1.Envelope_DocumentCreated:
			return p.DocumentCreated.GetDocument()
		case *eventsv1.Envelope_DocumentUpdated:
			return p.DocumentUpdated.GetDocument()
		case *eventsv1.Envelope_DocumentDeleted:
			return nil
		}
	}
	return nil
}
