package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	"github.com/cairn-dev/cairn/domain/permission"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// Relationships between collections (docs/databases.md#relationships).
// The domain decides; this file gathers what it needs from the read
// models and turns every document a write touches through a relationship
// (a two-way partner's back-reference, a cascaded delete) into a change
// of the same atomic batch.
//
// Permissions: referencing a document needs read access to it (else it
// is "not found", naming the attribute). Keeping the other side of a
// two-way relationship equal is bookkeeping the writer needs no update
// permission for, as in Appwrite. A cascade deletes only documents the
// caller may delete: one it may not refuses the whole delete, naming the
// relationship, rather than skipping it silently.

// createRelationship creates relationship attribute a on collection id
// and, when two-way, its partner on the related collection, in one batch.
func (h *databasesHandler) createRelationship(ctx context.Context, project, dbID, id string, a database.Attribute) (*eventsv1.Collection, error) {
	db, c, err := h.loadCollection(project, dbID, id)
	if err != nil {
		return nil, err
	}
	var related *eventsv1.Collection
	if rid := a.Relation.Collection; rid != "" && domain.ValidResourceID(rid) {
		if _, rc, err := h.loadCollection(project, dbID, rid); err == nil {
			related = rc
		}
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	cmd := database.CreateAttribute{Attribute: a, Now: h.log.Now()}
	self := related != nil && related.GetUid() == c.GetUid()
	var fresh *eventsv1.Collection
	changes := []eventlog.Change{{Agg: eventlog.CollectionAggregate(project, dbID, id), Decide: func(last *eventsv1.Envelope, _ uint64) ([]*eventsv1.Envelope, error) {
		s := liveCollection(db, last)
		rel := related
		if self {
			rel = s
		}
		fresh = s
		own, _, err := database.DecideRelationship(s, rel, cmd)
		return own, err
	}}}
	if related != nil && !self && a.Relation.TwoWay {
		changes = append(changes, eventlog.Change{Agg: eventlog.CollectionAggregate(project, dbID, related.GetId()), Decide: func(last *eventsv1.Envelope, _ uint64) ([]*eventsv1.Envelope, error) {
			r := liveCollection(db, last)
			if r.GetVersion() != related.GetVersion() {
				return nil, domain.Errorf(domain.KindConflict, "collection %q changed while the relationship was created; retry", related.GetId())
			}
			_, partner, err := database.DecideRelationship(fresh, r, cmd)
			return partner, err
		}})
	}
	res, err := h.log.WriteAll(ctx, meta, changes)
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return h.collectionAfterWrite(project, dbID, id)
}

// liveCollection is the collection state last holds, nil unless it is a
// live collection of db.
func liveCollection(db *eventsv1.Database, last *eventsv1.Envelope) *eventsv1.Collection {
	s := database.EvolveCollection(nil, last)
	if !database.LiveCollection(db, s) {
		return nil
	}
	return s
}

// deleteRelationship deletes relationship attribute key of collection id
// and its two-way partner in one batch; ok is false when key is no
// relationship attribute (an ordinary delete follows).
func (h *databasesHandler) deleteRelationship(ctx context.Context, project, dbID, id, key string) (bool, error) {
	db, c, err := h.loadCollection(project, dbID, id)
	if err != nil {
		return false, err
	}
	a, ok := database.RelationOf(c, key)
	if !ok {
		return false, nil
	}
	var related *eventsv1.Collection
	if a.Relation.TwoWay && a.Relation.Collection != id {
		if _, rc, err := h.loadCollection(project, dbID, a.Relation.Collection); err == nil {
			related = rc
		}
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return true, err
	}
	cmd := database.DeleteAttribute{Key: key, Now: h.log.Now()}
	var fresh *eventsv1.Collection
	changes := []eventlog.Change{{Agg: eventlog.CollectionAggregate(project, dbID, id), Decide: func(last *eventsv1.Envelope, _ uint64) ([]*eventsv1.Envelope, error) {
		fresh = liveCollection(db, last)
		own, _, err := database.DeleteRelationship(fresh, nil, cmd)
		return own, err
	}}}
	if related != nil {
		changes = append(changes, eventlog.Change{Agg: eventlog.CollectionAggregate(project, dbID, related.GetId()), Decide: func(last *eventsv1.Envelope, _ uint64) ([]*eventsv1.Envelope, error) {
			_, partner, err := database.DeleteRelationship(fresh, liveCollection(db, last), cmd)
			return partner, err
		}})
	}
	res, err := h.log.WriteAll(ctx, meta, changes)
	if err != nil {
		return true, err
	}
	setSeq(ctx, res.Seq)
	return true, nil
}

// relPlan is what a write of documents of one collection does through
// its relationships: changes to other documents, and a guard each written
// document's decision runs (its relationships must be as planned).
type relPlan struct {
	changes []eventlog.Change
	kinds   []relKind // what each change is, for a transaction to combine plans
	guards  []func(cur *eventsv1.Document) error
}

// relKind says what one change of a plan does to a related document.
type relKind struct {
	kind  relKindOf
	cl, r *coll // the writing collection, the caller's view of the related one
	ref   database.DocRef
	via   string          // relCheck: the attribute relating it
	links []database.Link // relLink
}

type relKindOf int

const (
	relCascade relKindOf = iota // deleted by a cascade
	relCheck                    // must exist and be readable
	relLink                     // its side of two-way relationships updated
)

// relatedColl is collection id opened for the caller, nil when hidden
// from it; cache holds those opened for one request.
func (h *databasesHandler) relatedColl(ctx context.Context, cl *coll, id string, cache map[string]*coll) (*coll, error) {
	if id == cl.c.GetId() {
		return cl, nil
	}
	if r, ok := cache[id]; ok {
		return r, nil
	}
	r, err := h.open(ctx, cl.project, cl.c.GetDatabaseId(), id)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	cache[id] = r // nil when the caller cannot see it
	return r, nil
}

func isNotFound(err error) bool {
	de, ok := errors.AsType[*domain.Error](err)
	return errors.Is(err, errNotFound) || (ok && de.Kind == domain.KindNotFound)
}

// readable reports whether the caller may read d of r.
func (r *coll) readable(d *eventsv1.Document) bool {
	return r.server() || r.can(permission.Read, d)
}

// planRelations plans cmds on cl (nil when its schema has no
// relationships). Documents are read from the read model; every write's
// guard makes its decision fail with a conflict should they have changed
// before the batch is decided.
func (h *databasesHandler) planRelations(ctx context.Context, cl *coll, cmds []database.DocCommand) (*relPlan, error) {
	if len(cl.schema.Relationships()) == 0 {
		deletes := slices.ContainsFunc(cmds, func(c database.DocCommand) bool { return c.Action == database.DocDelete })
		if !deletes {
			return nil, nil
		}
		in, err := h.inbound(cl.project, cl.c.GetDatabaseId())
		if err != nil || len(in[cl.c.GetId()]) == 0 {
			return nil, err
		}
	}
	p := &relPlan{guards: make([]func(*eventsv1.Document) error, len(cmds))}
	colls := map[string]*coll{}
	written, deleting := map[database.DocRef]bool{}, map[database.DocRef]bool{}
	for _, cmd := range cmds {
		written[database.DocRef{Collection: cl.c.GetId(), ID: cmd.ID}] = true
		deleting[database.DocRef{Collection: cl.c.GetId(), ID: cmd.ID}] = cmd.Action == database.DocDelete
	}
	links := map[database.DocRef][]database.Link{}
	var linkOrder []database.DocRef
	addLinks := func(ls []database.Link) {
		for _, l := range ls {
			if _, ok := links[l.Target]; !ok {
				linkOrder = append(linkOrder, l.Target)
			}
			links[l.Target] = append(links[l.Target], l)
		}
	}
	targets := map[database.DocRef]string{}
	deleted := map[database.DocRef]*coll{}
	var deleteOrder []database.DocRef
	exclusive := map[string]string{} // attribute/target → document, within the batch
	for i, cmd := range cmds {
		cur, err := h.reads.Document(cl.project, cl.c, cmd.ID)
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
		version := cur.GetVersion()
		p.guards[i] = func(fresh *eventsv1.Document) error {
			if fresh.GetVersion() != version {
				return domain.Errorf(domain.KindConflict, "document %q changed while its relationships were being updated; retry", cmd.ID)
			}
			return nil
		}
		var before map[string]any
		if cur != nil {
			if before, err = cl.schema.DecodeData(cur.GetDataJson(), cur.GetSchemaVersion()); err != nil {
				return nil, err
			}
		}
		if cmd.Action == database.DocDelete {
			if cur == nil {
				continue // DecideDocument says not found
			}
			if err := h.planDelete(ctx, cl, cmd.ID, before, colls, deleted, &deleteOrder, addLinks); err != nil {
				return nil, err
			}
			continue
		}
		after := map[string]any{}
		for _, a := range cl.schema.Relationships() {
			raw, set := cmd.Data[a.Key]
			switch {
			case set:
				v, err := database.Coerce(a, raw)
				if err != nil {
					return nil, domain.FieldError("data."+a.Key, "attribute %q: %s", a.Key, err.Error())
				}
				after[a.Key] = v
			case cmd.Action == database.DocUpsert && cur != nil, cur == nil:
				after[a.Key] = nil // a create or replace: absent is empty
			default:
				after[a.Key] = before[a.Key]
			}
		}
		for ref, via := range database.Targets(cl.schema, before, after) {
			targets[ref] = via
			if a, _ := cl.schema.Attribute(via); !a.Relation.TwoWay && a.Relation.Type.Exclusive() {
				k := via + "/" + ref.ID
				if other, ok := exclusive[k]; ok && other != cmd.ID {
					return nil, domain.FieldError("data."+via, "documents %q and %q both relate %q through %q; a %s relationship relates it once", other, cmd.ID, ref.ID, via, a.Relation.Type)
				}
				exclusive[k] = cmd.ID
				if err := h.checkExclusive(cl, a, ref.ID, cmd.ID); err != nil {
					return nil, err
				}
			}
		}
		addLinks(database.Links(cl.schema, cmd.ID, before, after))
	}
	if len(deleted) > database.MaxCascade {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "the delete would cascade to %d related documents; at most %d are deleted in one call", len(deleted), database.MaxCascade)
	}
	for _, ref := range deleteOrder {
		r := deleted[ref]
		cmd := database.DocCommand{Action: database.DocDelete, ID: ref.ID, Now: h.log.Now()}
		ch := h.change(r, cmd, nil)
		decide := ch.Decide
		ch.Decide = func(last *eventsv1.Envelope, lastSeq uint64) ([]*eventsv1.Envelope, error) {
			evs, err := decide(last, lastSeq)
			if err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("cascade to %q of collection %q: %w", ref.ID, ref.Collection, err)
			}
			return evs, nil // already gone is fine
		}
		p.changes = append(p.changes, ch)
		p.kinds = append(p.kinds, relKind{kind: relCascade, cl: cl, r: r, ref: ref})
	}
	for ref, via := range targets {
		if _, ok := links[ref]; ok || written[ref] {
			continue // the link (or the write itself) checks it
		}
		r, err := h.relatedColl(ctx, cl, ref.Collection, colls)
		if err != nil {
			return nil, err
		}
		if deleted[ref] != nil {
			return nil, domain.FieldError("data."+via, "document %q of collection %q is deleted in this call", ref.ID, ref.Collection)
		}
		p.changes = append(p.changes, h.targetCheck(cl, r, ref, via))
		p.kinds = append(p.kinds, relKind{kind: relCheck, cl: cl, r: r, ref: ref, via: via})
	}
	for _, ref := range linkOrder {
		if deleted[ref] != nil || deleting[ref] {
			continue // gone with its links
		}
		ls := links[ref]
		if written[ref] {
			return nil, domain.FieldError("data."+ls[0].Via, "document %q is written in this call and related by another of its documents; write them in separate calls", ref.ID)
		}
		r, err := h.relatedColl(ctx, cl, ref.Collection, colls)
		if err != nil {
			return nil, err
		}
		p.changes = append(p.changes, h.linkChange(cl, r, ref, ls))
		p.kinds = append(p.kinds, relKind{kind: relLink, cl: cl, r: r, ref: ref, links: ls})
	}
	return p, nil
}

// planDelete adds what deleting document id (data as read) of cl does,
// following cascades breadth-first up to MaxCascade documents.
func (h *databasesHandler) planDelete(ctx context.Context, cl *coll, id string, data map[string]any, colls map[string]*coll,
	deleted map[database.DocRef]*coll, order *[]database.DocRef, addLinks func([]database.Link)) error {
	type item struct {
		cl   *coll
		id   string
		data map[string]any
	}
	queue := []item{{cl, id, data}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		plan, err := database.PlanDelete(it.cl.schema, it.id, it.data)
		if err != nil {
			return err
		}
		addLinks(plan.Links)
		in, err := h.inboundLinks(cl.project, cl.c.GetDatabaseId(), it.cl.c.GetId(), it.id)
		if err != nil {
			return err
		}
		addLinks(in)
		for _, ref := range plan.Cascade {
			if deleted[ref] != nil || (ref.Collection == cl.c.GetId() && ref.ID == id) {
				continue
			}
			if len(deleted) >= database.MaxCascade {
				return domain.Errorf(domain.KindFailedPrecondition, "deleting %q would cascade to more than %d related documents; delete some of them first", id, database.MaxCascade)
			}
			r, err := h.relatedColl(ctx, cl, ref.Collection, colls)
			if err != nil {
				return err
			}
			if r == nil {
				return domain.Errorf(domain.KindPermissionDenied, "deleting %q cascades to collection %q, which the caller cannot see", id, ref.Collection)
			}
			d, err := h.reads.Document(cl.project, r.c, ref.ID)
			if errors.Is(err, errNotFound) {
				continue
			} else if err != nil {
				return err
			}
			rd, err := r.schema.DecodeData(d.GetDataJson(), d.GetSchemaVersion())
			if err != nil {
				return err
			}
			deleted[ref] = r
			*order = append(*order, ref)
			queue = append(queue, item{r, ref.ID, rd})
		}
	}
	return nil
}

// checkExclusive refuses relating target through a one-way oneToOne or
// oneToMany attribute when another document of the collection already
// does (the read model's view: one-way relationships keep nothing on the
// related side to decide this atomically).
func (h *databasesHandler) checkExclusive(cl *coll, a database.Attribute, target, self string) error {
	op := query.OpEqual
	if a.Array {
		op = query.OpContains
	}
	q := &query.Query{Filters: []query.Filter{{Op: op, Attribute: a.Key, Values: []any{target}}}, Limit: 2}
	res, err := h.reads.Query(cl.project, cl.c, q, projections.QueryOptions{MaxScan: h.cfg.MaxQueryScan})
	if err != nil {
		return err
	}
	for _, d := range res.Docs {
		if d.GetId() != self {
			return domain.FieldError("data."+a.Key, "document %q is already related through %q by document %q; a %s relationship relates it once", target, a.Key, d.GetId(), a.Relation.Type)
		}
	}
	return nil
}

// targetCheck is a change that writes nothing: it refuses referencing a
// document that does not exist or that the caller cannot read.
func (h *databasesHandler) targetCheck(cl, r *coll, ref database.DocRef, via string) eventlog.Change {
	return eventlog.Change{Agg: eventlog.DocumentAggregate(cl.project, cl.c.GetDatabaseId(), ref.Collection, ref.ID), Decide: func(last *eventsv1.Envelope, lastSeq uint64) ([]*eventsv1.Envelope, error) {
		if r == nil {
			return nil, missingRelated(ref, via)
		}
		cur := database.CurrentDocument(r.c, last, lastSeq)
		if cur == nil || !r.readable(cur) {
			return nil, missingRelated(ref, via)
		}
		return nil, nil
	}}
}

func missingRelated(ref database.DocRef, via string) error {
	return domain.FieldError("data."+via, "related document %q not found in collection %q", ref.ID, ref.Collection)
}

// linkChange updates the other side of relationships of document ref:
// ids added link back, removed ones unlink. It decides on the collection
// itself, not the caller's view of it: unlinking is bookkeeping done even
// where the caller cannot look; linking needs r, the caller's view, to
// read the document.
func (h *databasesHandler) linkChange(cl, r *coll, ref database.DocRef, ls []database.Link) eventlog.Change {
	return eventlog.Change{Agg: eventlog.DocumentAggregate(cl.project, cl.c.GetDatabaseId(), ref.Collection, ref.ID), Decide: func(last *eventsv1.Envelope, lastSeq uint64) ([]*eventsv1.Envelope, error) {
		linking := slices.ContainsFunc(ls, func(l database.Link) bool { return !l.Unlink })
		m, err := h.collMeta(cl.project, cl.c.GetDatabaseId(), ref.Collection)
		if err != nil && !isNotFound(err) {
			return nil, err
		}
		var cur *eventsv1.Document
		if m != nil {
			cur = database.CurrentDocument(m.c, last, lastSeq)
		}
		if linking && (cur == nil || r == nil || !r.readable(cur)) {
			return nil, missingRelated(ref, ls[0].Via)
		}
		if cur == nil {
			return nil, nil // unlinking a document gone: nothing to keep equal
		}
		data, err := m.schema.DecodeData(cur.GetDataJson(), cur.GetSchemaVersion())
		if err != nil {
			return nil, err
		}
		upd, err := database.ApplyLinks(m.schema, data, ls)
		if err != nil || upd == nil {
			return nil, err
		}
		return database.DecideDocument(m.c, m.schema, cur, database.DocCommand{Action: database.DocUpdate, ID: ref.ID, Data: upd, Change: "relationship", Now: h.log.Now()})
	}}
}

// inbound is a one-way relationship attribute of another collection.
type inbound struct {
	coll string
	attr database.Attribute
}

// inbound returns, per collection of database dbID, the relationship
// attributes relating to it. Cached until the next schema change.
func (h *databasesHandler) inbound(project, dbID string) (map[string][]inbound, error) {
	return cached(h.metas, metaKey{kind: 'r', project: project, id1: dbID}, func() (map[string][]inbound, error) {
		db, err := h.loadDatabase(project, dbID)
		if err != nil {
			return nil, err
		}
		out := map[string][]inbound{}
		const page = 100
		for cursor := ""; ; {
			cs, err := h.reads.ListCollections(project, dbID, cursor, page)
			if err != nil {
				return nil, err
			}
			for _, c := range cs {
				if !database.LiveCollection(db, c) {
					continue
				}
				for _, a := range c.GetAttributes() {
					if database.Type(a.GetType()) != database.TypeRelationship || c.GetId() == a.GetRelatedCollection() && a.GetTwoWay() {
						continue
					}
					attr, err := database.AttributeFromEvent(a)
					if err != nil {
						return nil, err
					}
					out[attr.Relation.Collection] = append(out[attr.Relation.Collection], inbound{c.GetId(), attr})
				}
			}
			if len(cs) < page {
				return out, nil
			}
			cursor = cs[len(cs)-1].GetId()
		}
	})
}

// inboundLinks returns the unlinks that deleting document id of
// collection coll makes on documents relating to it one-way, or refuses
// the delete when such a relationship restricts.
func (h *databasesHandler) inboundLinks(project, dbID, coll, id string) ([]database.Link, error) {
	in, err := h.inbound(project, dbID)
	if err != nil {
		return nil, err
	}
	var out []database.Link
	for _, ib := range in[coll] {
		if ib.attr.Relation.TwoWay {
			continue // its partner on coll unlinks it (PlanDelete)
		}
		m, err := h.collMeta(project, dbID, ib.coll)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, err
		}
		op := query.OpEqual
		if ib.attr.Array {
			op = query.OpContains
		}
		q := &query.Query{Filters: []query.Filter{{Op: op, Attribute: ib.attr.Key, Values: []any{id}}}, Limit: database.MaxCascade + 1}
		res, err := h.reads.Query(project, m.c, q, projections.QueryOptions{MaxScan: h.cfg.MaxQueryScan})
		if err != nil {
			return nil, err
		}
		if len(res.Docs) == 0 {
			continue
		}
		if ib.attr.Relation.OnDelete == database.OnDeleteRestrict {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "document %q is related from document %q of %q through %q (onDelete restrict); remove it from %q first",
				id, res.Docs[0].GetId(), ib.coll, ib.attr.Key, ib.attr.Key)
		}
		if len(res.Docs) > database.MaxCascade {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "document %q is related from more than %d documents of %q through %q; remove some first", id, database.MaxCascade, ib.coll, ib.attr.Key)
		}
		for _, d := range res.Docs {
			out = append(out, database.Link{Target: database.DocRef{Collection: ib.coll, ID: d.GetId()}, Key: ib.attr.Key, ID: id, Unlink: true, Via: ib.attr.Key})
		}
	}
	return out, nil
}

// splitSelect separates a select into the attributes of the collection
// (relationship attributes a path goes through included) and, per
// relationship attribute, the paths below it ("author.name" → author:
// [name]). "*" selects every attribute.
func splitSelect(s *database.Schema, sel []string) (plain []string, rel map[string][]string, err error) {
	for i, p := range sel {
		head, rest, nested := strings.Cut(p, ".")
		if !nested {
			if p == "*" {
				continue
			}
			plain = append(plain, p)
			continue
		}
		if strings.Count(p, ".") > database.MaxSelectDepth {
			return nil, nil, domain.FieldError(fmt.Sprintf("select[%d]", i), "%q loads related documents more than %d levels deep", p, database.MaxSelectDepth)
		}
		a, ok := s.Attribute(head)
		if !ok || a.Type != database.TypeRelationship {
			return nil, nil, domain.FieldError(fmt.Sprintf("select[%d]", i), "%q is not a relationship attribute of this collection", head)
		}
		if rel == nil {
			rel = map[string][]string{}
		}
		rel[head] = append(rel[head], rest)
		plain = append(plain, head)
	}
	if slices.Contains(sel, "*") {
		plain = nil
	}
	return plain, rel, nil
}

// maxSelectLoads bounds the related documents one read loads for a
// select (a list of 100 documents, each relating 100, three levels deep,
// would otherwise read a million).
const maxSelectLoads = 2000

// expandRelated replaces the ids of the relationship attributes rel names
// in out (a document of cl) by the related documents, loaded up to
// MaxSelectDepth deep. Related documents the caller cannot read are
// omitted; a document already on the path (a cycle) stays its id.
func (h *databasesHandler) expandRelated(ctx context.Context, cl *coll, out *cairnv1.Document, data map[string]any, rel map[string][]string, path []string, colls map[string]*coll, budget *int) error {
	if len(rel) == 0 {
		return nil
	}
	if data == nil {
		// The ids, as the output holds them.
		data = map[string]any{}
		for k, v := range out.GetData().GetFields() {
			data[k] = v.AsInterface()
		}
	}
	for key, sub := range rel {
		a, _ := cl.schema.Attribute(key)
		r, err := h.relatedColl(ctx, cl, a.Relation.Collection, colls)
		if err != nil {
			return err
		}
		var docs []any
		for _, id := range database.Related(data[key]) {
			if r == nil {
				break
			}
			if slices.Contains(path, a.Relation.Collection+"/"+id) {
				docs = append(docs, map[string]any{database.AttrID: id})
				continue
			}
			if *budget--; *budget < 0 {
				return domain.FieldError("select", "the select loads more than %d related documents in one call; select fewer or page with a smaller limit", maxSelectLoads)
			}
			d, err := h.reads.Document(cl.project, r.c, id)
			if errors.Is(err, errNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !r.readable(d) {
				continue
			}
			plain, deeper, err := splitSelect(r.schema, sub)
			if err != nil {
				return domain.FieldError("select", "below %q: %s", key, err.(*domain.Error).Message)
			}
			for _, k := range plain {
				if _, ok := r.schema.Attribute(k); !ok {
					return domain.FieldError("select", "below %q: unknown attribute %q of collection %q", key, k, r.c.GetId())
				}
			}
			rd, err := docOut(r, d, nil, plain)
			if err != nil {
				return err
			}
			if err := h.expandRelated(ctx, r, rd, nil, deeper, append(slices.Clip(path), a.Relation.Collection+"/"+id), colls, budget); err != nil {
				return err
			}
			m := rd.GetData().AsMap()
			m[database.AttrID] = rd.GetId()
			m["$collectionId"] = rd.GetCollectionId()
			m["$createdAt"] = rd.GetCreatedAt().AsTime().UTC().Format(database.DatetimeLayout)
			m["$updatedAt"] = rd.GetUpdatedAt().AsTime().UTC().Format(database.DatetimeLayout)
			docs = append(docs, m)
		}
		var v any
		switch {
		case a.Array:
			if docs == nil {
				docs = []any{}
			}
			v = docs
		case len(docs) > 0:
			v = docs[0]
		}
		val, err := structpb.NewValue(v)
		if err != nil {
			return fmt.Errorf("related %s: %w", key, err)
		}
		if out.Data == nil {
			out.Data = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		}
		out.Data.Fields[key] = val
	}
	return nil
}

// checkUnrelated refuses deleting collection id while another collection
// has a relationship to it: delete those attributes first (a two-way
// relationship's either side deletes both).
func (h *databasesHandler) checkUnrelated(project, dbID, id string) error {
	in, err := h.inbound(project, dbID)
	if err != nil {
		return err
	}
	for _, ib := range in[id] {
		if ib.coll != id {
			return domain.Errorf(domain.KindFailedPrecondition, "collection %q has a relationship to %q (attribute %q); delete that attribute first", ib.coll, id, ib.attr.Key)
		}
	}
	return nil
}
