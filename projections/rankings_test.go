package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// rankEnv is a running projector over a project with docCollection, whose
// documents the test writes through the event log.
type rankEnv struct {
	t       testing.TB
	e       *env
	p       *Projections
	project string
	c       *eventsv1.Collection
	last    uint64
}

// newRankEnv creates project's collection, with its index on (tag, n
// desc) when covering.
func newRankEnv(t testing.TB, e *env, p *Projections, project string, covering bool) *rankEnv {
	t.Helper()
	e.createProject(project)
	ps := streams.ProjectStream(project)
	c := docCollection(project)
	if !covering {
		c.Indexes = c.Indexes[:1] // by_tag alone
	}
	e.appendEnv(ps, streams.ProjectSubject(project, "databases", "main", "create"), "", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DatabaseCreated{
		DatabaseCreated: &eventsv1.DatabaseCreated{Database: &eventsv1.Database{Id: "main", ProjectId: project, Name: "Main", Enabled: true, Uid: c.DatabaseUid}}}})
	last := e.appendEnv(ps, streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "create"), "", &eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionCreated{
		CollectionCreated: &eventsv1.CollectionCreated{Collection: c}}})
	wait(t, p, ps, last)
	stored, err := p.Collection(project, "main", c.Id)
	if err != nil || stored == nil {
		t.Fatalf("collection: %v", err)
	}
	return &rankEnv{t: t, e: e, p: p, project: project, c: stored, last: last}
}

// put appends a document event (verb create, update or delete) and, like
// a write's answer, returns once it is applied.
func (re *rankEnv) put(verb, id string, data map[string]any) {
	re.t.Helper()
	wait(re.t, re.p, streams.ProjectStream(re.project), re.send(verb, id, data))
}

// send is put without waiting: it returns the event's sequence.
func (re *rankEnv) send(verb, id string, data map[string]any) uint64 {
	re.t.Helper()
	raw, _ := json.Marshal(data)
	at := timestamppb.New(time.Unix(1_800_000_000, 0))
	d := &eventsv1.Document{Id: id, ProjectId: re.project, DatabaseId: "main", CollectionId: re.c.Id, CollectionUid: re.c.Uid,
		DataJson: string(raw), CreatedAt: at, UpdatedAt: at, SchemaVersion: 1, Permissions: []string{`read("any")`}}
	ev := &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: d}}}
	switch verb {
	case "create":
		ev.Payload = &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}
	case "delete":
		ev.Payload = &eventsv1.Envelope_DocumentDeleted{DocumentDeleted: &eventsv1.DocumentDeleted{Document: d}}
	}
	ps := streams.ProjectStream(re.project)
	re.last = re.e.appendEnv(ps, streams.ProjectSubject(re.project, "databases", "main", "collections", re.c.Id, "documents", id, verb), "", ev)
	return re.last
}

// sibling creates another collection like re's in re's project (with the
// covering index), id and uid given.
func (re *rankEnv) sibling(id, uid string) *rankEnv {
	re.t.Helper()
	c := docCollection(re.project)
	c.Id, c.Uid = id, uid
	ps := streams.ProjectStream(re.project)
	last := re.e.appendEnv(ps, streams.ProjectSubject(re.project, "databases", "main", "collections", id, "create"), "", &eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionCreated{
		CollectionCreated: &eventsv1.CollectionCreated{Collection: c}}})
	wait(re.t, re.p, ps, last)
	stored, err := re.p.Collection(re.project, "main", id)
	if err != nil || stored == nil {
		re.t.Fatalf("collection %s: %v", id, err)
	}
	return &rankEnv{t: re.t, e: re.e, p: re.p, project: re.project, c: stored, last: last}
}

// all returns the fields of every stored document.
func (re *rankEnv) all() []map[string]any {
	re.t.Helper()
	kvs, err := re.p.Dump([]byte(documentsPrefix(re.project, re.c.Uid)))
	if err != nil {
		re.t.Fatal(err)
	}
	schema, err := re.p.Schema(re.c)
	if err != nil {
		re.t.Fatal(err)
	}
	var out []map[string]any
	for _, kv := range kvs {
		d := &eventsv1.Document{}
		if err := proto.Unmarshal(kv.Value, d); err != nil {
			re.t.Fatal(err)
		}
		f, err := Fields(schema, d)
		if err != nil {
			re.t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// uncached is Query without the cache of rankings.
func uncached(p *Projections, project string, c *eventsv1.Collection, q *query.Query, opt QueryOptions) (QueryResult, error) {
	kept := p.rankings
	p.rankings = nil
	defer func() { p.rankings = kept }()
	return p.Query(project, c, q, opt)
}

func pageIDs(docs []*eventsv1.Document) []string {
	var ids []string
	for _, d := range docs {
		ids = append(ids, d.GetId())
	}
	return ids
}

// TestRankingsAgreeWithReference interleaves writes (creates, updates that
// move a document within or out of its range, deletes) with random lists
// sorted in memory, each asked three times (a miss, a miss that ranks the
// range, a hit), and compares every answer with the same query without the
// cache and with query.Run over every stored document: pages, cursors both
// ways, offsets, totals, ties (n repeats, some missing), and a caller's
// read filter applied to a ranking built without one.
func TestRankingsAgreeWithReference(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	re := newRankEnv(t, e, p, "rank", true)
	r := rand.New(rand.NewPCG(19, 3))
	doc := func() map[string]any {
		d := map[string]any{"tag": fmt.Sprintf("t%d", r.IntN(4)), "title": fmt.Sprintf("title %d", r.IntN(50))}
		if r.IntN(8) > 0 {
			d["n"] = r.IntN(40) // ties
		}
		return d
	}
	var ids []string
	for i := range 160 {
		id := fmt.Sprintf("d%04d", i)
		re.put("create", id, doc())
		ids = append(ids, id)
	}
	// The read filter of a caller who may read only some documents.
	allow := func(d *eventsv1.Document) bool { return d.GetId()[len(d.GetId())-1]%3 != 0 }
	cachedAnswers, writes := 0, 0
	for qi := range 400 {
		switch r.IntN(4) {
		case 0:
			writes++
			id := ids[r.IntN(len(ids))]
			switch r.IntN(5) {
			case 0:
				re.put("delete", id, map[string]any{})
				ids = slices.DeleteFunc(ids, func(s string) bool { return s == id })
			case 1:
				id = fmt.Sprintf("n%04d", qi)
				re.put("create", id, doc())
				ids = append(ids, id)
			default:
				re.put("update", id, doc())
			}
		}
		q := &query.Query{Filters: []query.Filter{{Op: query.OpEqual, Attribute: "tag", Values: []any{fmt.Sprintf("t%d", r.IntN(4))}}},
			Limit: r.IntN(30)}
		if r.IntN(6) == 0 {
			// Not exact: the range holds more than the matches.
			q.Filters = append(q.Filters, query.Filter{Op: query.OpGreaterThan, Attribute: "n", Values: []any{int64(r.IntN(40))}})
		}
		q.Orders = []query.Order{{Attribute: pick1(r, "n", "title", database.AttrID, database.AttrCreatedAt, database.AttrSequence), Desc: r.IntN(2) == 0}}
		if r.IntN(3) == 0 {
			q.Orders = append(q.Orders, query.Order{Attribute: pick1(r, "n", "title", database.AttrSequence), Desc: r.IntN(2) == 0})
		}
		if r.IntN(3) == 0 {
			q.Offset = r.IntN(20)
		}
		switch r.IntN(4) {
		case 0:
			q.CursorAfter = ids[r.IntN(len(ids))]
		case 1:
			q.CursorBefore = ids[r.IntN(len(ids))]
		}
		opt := QueryOptions{Total: r.IntN(2) == 0}
		if r.IntN(4) == 0 {
			opt = QueryOptions{Allow: allow}
		}
		desc := fmt.Sprintf("query %d: %+v orders %+v limit %d offset %d after %q before %q total %v allow %v",
			qi, q.Filters, q.Orders, q.Limit, q.Offset, q.CursorAfter, q.CursorBefore, opt.Total, opt.Allow != nil)
		want, werr := uncached(p, re.project, re.c, q, opt)
		if werr == nil && opt.Allow == nil {
			checkReference(t, desc, re.all(), q, want.Docs)
		}
		for try := range 3 {
			got, err := p.Query(re.project, re.c, q, opt)
			if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
				t.Fatalf("%s, try %d: error %v, without the cache %v", desc, try, err, werr)
			}
			if err != nil {
				continue
			}
			if got.Explain.RankingCached {
				cachedAnswers++
			}
			if !slices.Equal(pageIDs(got.Docs), pageIDs(want.Docs)) || got.Total != want.Total || got.TotalCapped != want.TotalCapped ||
				!reflect.DeepEqual(got.Fields, want.Fields) {
				t.Fatalf("%s, try %d (cached ranking %v):\n got  %v total %d\n want %v total %d", desc, try, got.Explain.RankingCached,
					pageIDs(got.Docs), got.Total, pageIDs(want.Docs), want.Total)
			}
			if opt.Allow != nil {
				for _, d := range got.Docs {
					if !allow(d) {
						t.Fatalf("%s: document %s is not the caller's to read", desc, d.GetId())
					}
				}
			}
		}
	}
	if cachedAnswers < 300 || writes < 50 {
		t.Fatalf("%d answers came from a cached ranking, %d writes: the test does not exercise the cache", cachedAnswers, writes)
	}
	t.Logf("%d answers from cached rankings, %d writes, %d bytes cached", cachedAnswers, writes, p.rankings.Bytes())
}

func pick1(r *rand.Rand, from ...string) string { return from[r.IntN(len(from))] }

// TestRankingSeesWriteAtOnce: a list ranked and cached sees a write that
// returned (applied) on its very next call, whatever the write did to the
// ranking: a new first, a first moved down, a first deleted.
func TestRankingSeesWriteAtOnce(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	re := newRankEnv(t, e, p, "ryw", false)
	for i := range 50 {
		re.put("create", fmt.Sprintf("d%02d", i), map[string]any{"tag": "x", "n": i, "title": "t"})
	}
	q := &query.Query{Filters: []query.Filter{{Op: query.OpEqual, Attribute: "tag", Values: []any{"x"}}},
		Orders: []query.Order{{Attribute: "n", Desc: true}}, Limit: 3}
	first := func(wantCached bool) string {
		t.Helper()
		var res QueryResult
		var err error
		for range 3 { // a miss, a miss that ranks, a hit
			if res, err = p.Query(re.project, re.c, q, QueryOptions{Total: true}); err != nil {
				t.Fatal(err)
			}
		}
		if res.Explain.RankingCached != wantCached {
			t.Fatalf("ranking cached %v, want %v (%s)", res.Explain.RankingCached, wantCached, res.Explain.Plan)
		}
		return res.Docs[0].GetId()
	}
	if got := first(true); got != "d49" {
		t.Fatalf("first = %s, want d49", got)
	}
	steps := []struct {
		verb, id string
		data     map[string]any
		want     string
	}{
		{"create", "top", map[string]any{"tag": "x", "n": 100}, "top"},
		{"update", "top", map[string]any{"tag": "x", "n": -1}, "d49"},
		{"update", "d10", map[string]any{"tag": "x", "n": 1000}, "d10"},
		{"update", "d10", map[string]any{"tag": "y", "n": 1000}, "d49"},
		{"delete", "d49", map[string]any{}, "d48"},
	}
	for _, s := range steps {
		re.put(s.verb, s.id, s.data)
		// The very next call, no retry.
		res, err := p.Query(re.project, re.c, q, QueryOptions{Total: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Docs[0].GetId(); got != s.want {
			t.Fatalf("after %s %s: first = %s, want %s", s.verb, s.id, got, s.want)
		}
		if got := first(true); got != s.want {
			t.Fatalf("after %s %s, cached: first = %s, want %s", s.verb, s.id, got, s.want)
		}
	}
	// Only the page's document changes (its rank does not): the cached
	// page document is not served either.
	first(true)
	re.put("update", "d48", map[string]any{"tag": "x", "n": 48, "title": "retitled"})
	res, err := p.Query(re.project, re.c, q, QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Fields[0]["title"]; res.Docs[0].GetId() != "d48" || got != "retitled" {
		t.Fatalf("after retitling d48: first %s titled %v", res.Docs[0].GetId(), got)
	}
}

// twoProjects starts projections over projects "pa" and "pb", each with
// docCollection under the same id and uid.
func twoProjects(t *testing.T) (*Projections, *rankEnv, *rankEnv) {
	t.Helper()
	e := newEnv(t)
	p, _ := e.newProjections()
	a, b := newRankEnv(t, e, p, "pa", false), newRankEnv(t, e, p, "pb", false)
	if a.c.GetUid() != b.c.GetUid() {
		t.Fatalf("the collections' uids differ (%s, %s): the test needs them equal", a.c.GetUid(), b.c.GetUid())
	}
	return p, a, b
}

// TestRankingsPerProject: two projects whose collections have the same
// uid, ids and query each get their own documents from the cache, and a
// rebuild of one (a dropped and replayed read model) is seen.
func TestRankingsPerProject(t *testing.T) {
	p, a, b := twoProjects(t)
	for i := range 30 {
		a.put("create", fmt.Sprintf("d%02d", i), map[string]any{"tag": "x", "n": i, "title": "from a"})
		b.put("create", fmt.Sprintf("d%02d", i), map[string]any{"tag": "x", "n": -i, "title": "from b"})
	}
	q := &query.Query{Filters: []query.Filter{{Op: query.OpEqual, Attribute: "tag", Values: []any{"x"}}},
		Orders: []query.Order{{Attribute: "n", Desc: true}}, Limit: 5}
	page := func(re *rankEnv) (string, QueryResult) {
		t.Helper()
		res, err := p.Query(re.project, re.c, q, QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var titles []string
		for i, d := range res.Docs {
			if d.GetProjectId() != re.project {
				t.Fatalf("project %s got a document of project %s", re.project, d.GetProjectId())
			}
			titles = append(titles, fmt.Sprintf("%s:%v", d.GetId(), res.Fields[i]["title"]))
		}
		return strings.Join(titles, " "), res
	}
	for range 3 {
		pa, ra := page(a)
		pb, rb := page(b)
		if pa != "d29:from a d28:from a d27:from a d26:from a d25:from a" || pb != "d00:from b d01:from b d02:from b d03:from b d04:from b" {
			t.Fatalf("a: %s (cached %v)\nb: %s (cached %v)", pa, ra.Explain.RankingCached, pb, rb.Explain.RankingCached)
		}
	}
	if _, ra := page(a); !ra.Explain.RankingCached {
		t.Fatalf("a's page did not come from a ranking: %s", ra.Explain.Plan)
	}
	// A write to b leaves a's ranking in place and changes b's answer.
	b.put("update", "d29", map[string]any{"tag": "x", "n": 500, "title": "moved"})
	if pb, _ := page(b); !strings.HasPrefix(pb, "d29:moved ") {
		t.Fatalf("b after its write: %s", pb)
	}
	if pa, _ := page(a); !strings.HasPrefix(pa, "d29:from a ") {
		t.Fatalf("a after b's write: %s", pa)
	}
	if _, err := p.Rebuild(context.Background(), b.project); err != nil {
		t.Fatal(err)
	}
	if pb, _ := page(b); !strings.HasPrefix(pb, "d29:moved ") {
		t.Fatalf("b after its rebuild: %s", pb)
	}
}

// TestListCacheAgreesAcrossCollections: lists of two collections of one
// project — in index order (a cached page) and sorted in memory (a cached
// ranking) — interleaved with writes to either, writes to both at once (a
// transaction's or a cascade's events, committed together when the
// projector takes them in one batch), an update of a collection and the
// deletion and re-creation of one, each list asked three times and
// compared with the same query without the cache and with query.Run. A
// write to one collection must keep the other's cached answers (counted)
// and never leave its own stale.
func TestListCacheAgreesAcrossCollections(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	a := newRankEnv(t, e, p, "mix", true)
	b := a.sibling("items2", "01COLLUIDB")
	colls := []*rankEnv{a, b}
	r := rand.New(rand.NewPCG(19, 5))
	doc := func() map[string]any {
		return map[string]any{"tag": fmt.Sprintf("t%d", r.IntN(3)), "title": fmt.Sprintf("title %d", r.IntN(50)), "n": r.IntN(60)}
	}
	ids := make([][]string, 2)
	for ci, re := range colls {
		for i := range 90 {
			id := fmt.Sprintf("d%04d", i)
			re.put("create", id, doc())
			ids[ci] = append(ids[ci], id)
		}
	}
	// write sends one random document event to collection ci.
	write := func(ci, round int) uint64 {
		re := colls[ci]
		if len(ids[ci]) == 0 || r.IntN(5) == 0 {
			id := fmt.Sprintf("n%04d", round)
			ids[ci] = append(ids[ci], id)
			return re.send("create", id, doc())
		}
		id := ids[ci][r.IntN(len(ids[ci]))]
		if r.IntN(6) == 0 {
			ids[ci] = slices.DeleteFunc(ids[ci], func(s string) bool { return s == id })
			return re.send("delete", id, map[string]any{})
		}
		return re.send("update", id, doc())
	}
	ps := streams.ProjectStream(a.project)
	pageHits, rankHits, kept, writes, recreated, attributes := 0, 0, 0, 0, 0, 0
	var last [2]*query.Query
	for round := range 500 {
		written := -1 // the collection a write changed, 2 for both
		switch x := r.IntN(12); {
		case x < 4:
			written = r.IntN(2)
			wait(t, p, ps, write(written, round))
		case x == 4:
			// Both at once: the events are appended back to back and
			// waited for together.
			written = 2
			write(0, round)
			wait(t, p, ps, write(1, round))
		case x == 5 && r.IntN(4) == 0:
			// An update of b's collection (no document event).
			written = 2
			c := proto.Clone(b.c).(*eventsv1.Collection)
			c.Name = fmt.Sprintf("Items %d", round)
			wait(t, p, ps, e.appendEnv(ps, streams.ProjectSubject(a.project, "databases", "main", "collections", c.Id, "update"), "",
				&eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionUpdated{CollectionUpdated: &eventsv1.CollectionUpdated{Collection: c}}}))
		case x == 7 && r.IntN(3) == 0:
			// An attribute added to a: every document's fields gain its
			// default, from the same stored bytes.
			written, attributes = 2, attributes+1
			c := proto.Clone(a.c).(*eventsv1.Collection)
			c.Version++
			c.Attributes = append(c.Attributes, &eventsv1.Attribute{Key: fmt.Sprintf("extra%d", round), Type: string(database.TypeString), Size: 16,
				DefaultJson: fmt.Sprintf("%q", fmt.Sprint("default ", round)), Status: string(database.StatusAvailable), CreatedVersion: c.Version})
			wait(t, p, ps, e.appendEnv(ps, streams.ProjectSubject(a.project, "databases", "main", "collections", c.Id, "attributes", "create"), "",
				&eventsv1.Envelope{Payload: &eventsv1.Envelope_AttributeCreated{AttributeCreated: &eventsv1.AttributeCreated{Collection: c}}}))
			stored, err := p.Collection(a.project, "main", a.c.Id)
			if err != nil || len(stored.GetAttributes()) != len(c.Attributes) {
				t.Fatalf("collection after its new attribute: %v, %v", stored, err)
			}
			a.c = stored
		case x == 6 && r.IntN(8) == 0:
			// b deleted with its documents and created again, empty.
			written, recreated = 2, recreated+1
			wait(t, p, ps, e.appendEnv(ps, streams.ProjectSubject(a.project, "databases", "main", "collections", b.c.Id, "delete"), "",
				&eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionDeleted{CollectionDeleted: &eventsv1.CollectionDeleted{Collection: b.c}}}))
			b = a.sibling("items2", fmt.Sprintf("01COLLUIDB%d", round))
			colls[1], ids[1], last[1] = b, nil, nil
		}
		if written >= 0 {
			writes++
		}
		ci := r.IntN(2)
		re := colls[ci]
		q := &query.Query{Filters: []query.Filter{{Op: query.OpEqual, Attribute: "tag", Values: []any{fmt.Sprintf("t%d", r.IntN(3))}}},
			Orders: []query.Order{{Attribute: "n", Desc: true}}, Limit: 1 + r.IntN(25)}
		if r.IntN(4) == 0 {
			q.Orders = []query.Order{{Attribute: pick1(r, "title", database.AttrID), Desc: r.IntN(2) == 0}}
		}
		if r.IntN(4) == 0 {
			q.Offset = r.IntN(10)
		}
		if len(ids[ci]) > 0 && r.IntN(4) == 0 {
			if r.IntN(2) == 0 {
				q.CursorAfter = ids[ci][r.IntN(len(ids[ci]))]
			} else {
				q.CursorBefore = ids[ci][r.IntN(len(ids[ci]))]
			}
		}
		// Half the time the collection's last list again (its cursor may
		// since have been deleted: then both fail alike).
		if last[ci] != nil && r.IntN(2) == 0 {
			q = last[ci]
		}
		last[ci] = q
		desc := fmt.Sprintf("round %d, collection %s: %+v orders %+v limit %d offset %d after %q before %q",
			round, re.c.Id, q.Filters, q.Orders, q.Limit, q.Offset, q.CursorAfter, q.CursorBefore)
		// Shared: a caller that only reads what it gets (pages keep
		// their documents decoded for it).
		opt := QueryOptions{Shared: r.IntN(2) == 0}
		desc += fmt.Sprintf(" shared %v", opt.Shared)
		want, werr := uncached(p, re.project, re.c, q, QueryOptions{})
		if werr == nil {
			checkReference(t, desc, re.all(), q, want.Docs)
		}
		for try := range 3 {
			got, err := p.Query(re.project, re.c, q, opt)
			if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
				t.Fatalf("%s, try %d: error %v, without the cache %v", desc, try, err, werr)
			}
			if err != nil {
				continue
			}
			cached := got.Explain.PageCached || got.Explain.RankingCached
			if got.Explain.PageCached {
				pageHits++
			}
			if got.Explain.RankingCached {
				rankHits++
			}
			if try == 0 && cached && written == 1-ci {
				kept++ // served from what was cached before the other collection's write
			}
			if !slices.Equal(pageIDs(got.Docs), pageIDs(want.Docs)) || !reflect.DeepEqual(got.Fields, want.Fields) {
				t.Fatalf("%s, try %d (%s):\n got  %v\n want %v", desc, try, got.Explain.Plan, pageIDs(got.Docs), pageIDs(want.Docs))
			}
		}
	}
	if pageHits < 300 || rankHits < 50 || kept < 20 || writes < 150 || recreated == 0 || attributes == 0 {
		t.Fatalf("%d cached pages, %d cached rankings, %d kept across the other collection's write, %d writes, %d re-creations, %d new attributes: the test does not exercise the cache",
			pageHits, rankHits, kept, writes, recreated, attributes)
	}
	t.Logf("%d answers from cached pages, %d from cached rankings (%d first calls kept across the other collection's write), %d writes, %d re-creations, %d new attributes",
		pageHits, rankHits, kept, writes, recreated, attributes)
}

// TestDocCollections: a commit of document events (and transaction
// bookkeeping) moves on the versions of exactly their collections, in
// any number; anything else moves on every collection's, and another
// collection's version stays.
func TestDocCollections(t *testing.T) {
	doc := func(coll string) *eventsv1.Document {
		return &eventsv1.Document{Id: "d", DatabaseId: "main", CollectionId: coll}
	}
	ev := func(pl any) event {
		env := &eventsv1.Envelope{}
		switch pl := pl.(type) {
		case *eventsv1.DocumentCreated:
			env.Payload = &eventsv1.Envelope_DocumentCreated{DocumentCreated: pl}
		case *eventsv1.DocumentUpdated:
			env.Payload = &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: pl}
		case *eventsv1.DocumentDeleted:
			env.Payload = &eventsv1.Envelope_DocumentDeleted{DocumentDeleted: pl}
		case *eventsv1.TransactionCommitted:
			env.Payload = &eventsv1.Envelope_TransactionCommitted{TransactionCommitted: pl}
		case *eventsv1.CollectionUpdated:
			env.Payload = &eventsv1.Envelope_CollectionUpdated{CollectionUpdated: pl}
		}
		return event{env: env}
	}
	for _, c := range []struct {
		name  string
		evs   []event
		want  []string
		wantK bool
	}{
		{"one collection", []event{ev(&eventsv1.DocumentCreated{Document: doc("a")}), ev(&eventsv1.DocumentUpdated{Document: doc("a")})}, []string{"main/a"}, true},
		{"a transaction's writes to three", []event{ev(&eventsv1.DocumentUpdated{Document: doc("a")}), ev(&eventsv1.DocumentDeleted{Document: doc("b")}),
			ev(&eventsv1.DocumentCreated{Document: doc("c")}), ev(&eventsv1.TransactionCommitted{})}, []string{"main/a", "main/b", "main/c"}, true},
		{"a collection's update", []event{ev(&eventsv1.DocumentCreated{Document: doc("a")}), ev(&eventsv1.CollectionUpdated{})}, nil, false},
		{"an undecoded payload", []event{{}}, nil, false},
		// The live projector leaves a document event's document undecoded
		// (rawDoc) where it can: its envelope then has no payload.
		{"raw documents", []event{{env: &eventsv1.Envelope{}, doc: &rawDoc{databaseID: "main", collectionID: "a"}},
			{env: &eventsv1.Envelope{}, doc: &rawDoc{databaseID: "main", collectionID: "b"}}, ev(&eventsv1.DocumentDeleted{Document: doc("a")})}, []string{"main/a", "main/b"}, true},
	} {
		got, ok := docCollections(c.evs)
		if ok != c.wantK || ok && !slices.Equal(got, c.want) {
			t.Errorf("%s: %v %v, want %v %v", c.name, got, ok, c.want, c.wantK)
		}
	}
	s := newState()
	a0, b0 := s.docVersion("main/a"), s.docVersion("main/b")
	s.advanceDocs(1, []string{"main/a"})
	if a1, b1 := s.docVersion("main/a"), s.docVersion("main/b"); a1 == a0 || b1 != b0 {
		t.Fatalf("after a write to a: a %v → %v, b %v → %v", a0, a1, b0, b1)
	}
	b1 := s.docVersion("main/b")
	s.advance(2)
	if b2 := s.docVersion("main/b"); b2 == b1 {
		t.Fatalf("after another change b's version stayed %v", b2)
	}
}

// checkReference fails t unless docs are the page the reference query
// runner gives for q over all (the collection's documents).
func checkReference(t *testing.T, desc string, all []map[string]any, q *query.Query, docs []*eventsv1.Document) {
	t.Helper()
	ref, err := query.Run(&query.Query{Filters: q.Filters, Orders: q.Orders, Limit: q.Limit, Offset: q.Offset,
		CursorAfter: q.CursorAfter, CursorBefore: q.CursorBefore}, all)
	if err != nil {
		t.Fatalf("%s: reference: %v", desc, err)
	}
	var refIDs []string
	for _, f := range ref {
		refIDs = append(refIDs, f[database.AttrID].(string))
	}
	if got := pageIDs(docs); !slices.Equal(got, refIDs) {
		t.Fatalf("%s: without the cache\n got  %v\n want %v", desc, got, refIDs)
	}
}
