package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// sortFixture is a collection of docs documents written straight into
// Badger (documents and index entries as applyDocument writes them): tag
// (indexed) takes tags values, n (not indexed) is random in [0, nRange),
// title pads each document to a realistic size.
func sortFixture(tb testing.TB, docs, tags, nRange int, seed uint64) (*Projections, *eventsv1.Collection) {
	tb.Helper()
	return sortFixtureWith(tb, docs, tags, nRange, seed, nil)
}

// sortFixtureWith is sortFixture with more indexes than the one on tag.
func sortFixtureWith(tb testing.TB, docs, tags, nRange int, seed uint64, more []*eventsv1.Index) (*Projections, *eventsv1.Collection) {
	tb.Helper()
	return sortFixtureValues(tb, docs, tags, nRange, seed, more, entryValue)
}

// bareEntryValue is the index entry value of read models written before
// entries carried members: the document id alone.
func bareEntryValue(h docHead) []byte { return []byte(h.id) }

// sortFixtureValues is sortFixtureWith writing index entry values with
// value.
func sortFixtureValues(tb testing.TB, docs, tags, nRange int, seed uint64, more []*eventsv1.Index, value func(docHead) []byte) (*Projections, *eventsv1.Collection) {
	tb.Helper()
	e := newEnv(tb)
	p := New(e.db, e.store, Options{Logger: e.log})
	tb.Cleanup(func() { p.Close() })
	c := &eventsv1.Collection{Id: "items", ProjectId: "bench", DatabaseId: "main", DatabaseUid: "dbuid", Uid: "colluid", Name: "Items", Enabled: true, Version: 1,
		Attributes: []*eventsv1.Attribute{
			{Key: "tag", Type: string(database.TypeString), Size: 32, Status: string(database.StatusAvailable)},
			{Key: "n", Type: string(database.TypeInteger), IntMin: -1 << 40, IntMax: 1 << 40, Status: string(database.StatusAvailable)},
			{Key: "title", Type: string(database.TypeString), Size: 200, Status: string(database.StatusAvailable)},
		},
		Indexes: append([]*eventsv1.Index{{Key: "by_tag", Type: string(database.IndexKey), Attributes: []string{"tag"}, Desc: []bool{false}, Status: string(database.StatusAvailable), Uid: "ixtag"}}, more...),
	}
	schema, err := p.schemas.get(c)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	t0 := time.Unix(1_700_000_000, 0)
	wb := e.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range docs {
		data, _ := json.Marshal(map[string]any{"tag": fmt.Sprintf("t%d", i%tags), "n": r.IntN(nRange),
			"title": fmt.Sprintf("document number %d of the sort benchmark, with some padding to look real", i)})
		d := &eventsv1.Document{Id: fmt.Sprintf("d%06d", i), ProjectId: "bench", DatabaseId: "main", CollectionId: "items", CollectionUid: c.Uid,
			DataJson: string(data), Permissions: []string{`read("any")`}, CreatedAt: timestamppb.New(t0.Add(time.Duration(i) * time.Second)),
			UpdatedAt: timestamppb.New(t0.Add(time.Duration(i) * time.Second)), Sequence: uint64(i + 1), SchemaVersion: 1, Version: uint64(i + 1)}
		f, err := Fields(schema, d)
		if err != nil {
			tb.Fatal(err)
		}
		for _, ix := range allIndexes(schema) {
			ks, err := indexKeys("bench", c.Uid, ix, f, d.GetSequence())
			if err != nil {
				tb.Fatal(err)
			}
			for _, k := range ks {
				if err := wb.Set(k, value(headOf(d))); err != nil {
					tb.Fatal(err)
				}
			}
		}
		b, err := marshal(d)
		if err != nil {
			tb.Fatal(err)
		}
		if err := wb.Set(documentKey("bench", c.Uid, d.GetId()), b); err != nil {
			tb.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		tb.Fatal(err)
	}
	return p, c
}

// querySortAll answers q as Query does, but for a plan not in the query's
// order always through runSortAll: the read-everything-then-sort path
// runSorted replaced, kept here as the reference and the benchmark's
// baseline.
func querySortAll(p *Projections, c *eventsv1.Collection, q *query.Query, opt QueryOptions) (QueryResult, error) {
	schema, err := p.schemas.get(c)
	if err != nil {
		return QueryResult{}, err
	}
	if opt.MaxScan <= 0 {
		opt.MaxScan = DefaultMaxScan
	}
	pl := choosePlan(schema, q)
	if pl.ordered {
		return QueryResult{}, fmt.Errorf("plan is ordered")
	}
	res := QueryResult{}
	err = p.db.View(func(txn *badger.Txn) error {
		r := &runner{p: p, txn: txn, project: "bench", c: c, schema: schema, q: q, opt: opt, pl: pl, res: &res}
		var cursor map[string]any
		id, before := q.CursorAfter, false
		if q.CursorBefore != "" {
			id, before = q.CursorBefore, true
		}
		if id != "" {
			d := &eventsv1.Document{}
			if _, err := getIn(txn, documentKey("bench", c.GetUid(), id), d); err != nil {
				return err
			}
			if cursor, err = Fields(schema, d); err != nil {
				return err
			}
		}
		return r.runSortAll(cursor, before)
	})
	return res, err
}

// runSortAll is runSorted before top-k: read every match, sort them all,
// then page.
func (r *runner) runSortAll(cursor map[string]any, before bool) error {
	q := r.q
	type hit struct {
		d *eventsv1.Document
		f map[string]any
	}
	var hits []hit
	err := r.scan(false, false, func(e entry) (bool, error) {
		d, f, ok, err := r.load(e)
		if err == nil && ok {
			hits = append(hits, hit{d, f})
		}
		return err == nil, err
	})
	if err != nil {
		return err
	}
	less := query.Less(q.Orders)
	slices.SortStableFunc(hits, func(a, b hit) int { return less(a.f, b.f) })
	if r.opt.Total {
		r.res.Total = int64(min(len(hits), TotalCap))
		r.res.TotalCapped = len(hits) > TotalCap
	}
	if cursor != nil {
		kept := hits[:0:0]
		for _, h := range hits {
			c := less(h.f, cursor)
			if before && c < 0 || !before && c > 0 {
				kept = append(kept, h)
			}
		}
		hits = kept
	}
	if before {
		slices.Reverse(hits)
	}
	if q.Offset > 0 {
		hits = hits[min(q.Offset, len(hits)):]
	}
	if q.Limit > 0 && len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	if before {
		slices.Reverse(hits)
	}
	for _, h := range hits {
		r.res.Docs, r.res.Fields = append(r.res.Docs, h.d), append(r.res.Fields, h.f)
	}
	return nil
}

// BenchmarkQuerySortedInMemory is a page whose order no index gives: 2,000
// of 20,000 documents match tag = t3 through the index on tag, sorted by n
// descending, limit 25. "all" is the former path (read and sort every
// match), "topk" is Query.
func BenchmarkQuerySortedInMemory(b *testing.B) {
	p, c := sortFixture(b, 20_000, 10, 1_000_000, 1)
	bare, _ := sortFixtureValues(b, 20_000, 10, 1_000_000, 1, nil, bareEntryValue)
	q := &query.Query{Filters: []query.Filter{{Op: query.OpEqual, Attribute: "tag", Values: []any{"t3"}}},
		Orders: []query.Order{{Attribute: "n", Desc: true}}, Limit: 25}
	opt := QueryOptions{Total: true}
	want, err := querySortAll(p, c, q, opt)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []*Projections{p, bare} {
		got, err := uncached(p, "bench", c, q, opt)
		if err != nil {
			b.Fatal(err)
		}
		if !got.Explain.SortedInMemory || got.Explain.DocsExamined != 2000 || got.Total != 2000 || len(got.Docs) != 25 || !sameIDs(got.Docs, want.Docs) ||
			!reflect.DeepEqual(got.Fields, want.Fields) {
			b.Fatalf("unexpected result: %+v, %d docs", got.Explain, len(got.Docs))
		}
	}
	// bare is topk over index entries that carry nothing (read models
	// written before carried members): every match's document is read.
	b.Run("bare", func(b *testing.B) {
		bare.rankings = nil // every call scans
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := bare.Query("bench", c, q, opt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := querySortAll(p, c, q, opt); err != nil {
				b.Fatal(err)
			}
		}
	})
	cache := p.rankings
	b.Run("topk", func(b *testing.B) {
		p.rankings = nil // every call scans
		defer func() { p.rankings = cache }()
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := p.Query("bench", c, q, opt); err != nil {
				b.Fatal(err)
			}
		}
	})
	// ranked: the range's matches ranked once (rankings.go), every call
	// reads only the page's documents.
	b.Run("ranked", func(b *testing.B) {
		for range 2 {
			if _, err := p.Query("bench", c, q, opt); err != nil {
				b.Fatal(err)
			}
		}
		got, err := p.Query("bench", c, q, opt)
		if err != nil || !got.Explain.RankingCached || !sameIDs(got.Docs, want.Docs) || got.Total != 2000 {
			b.Fatalf("unexpected result: %+v, %v", got.Explain, err)
		}
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := p.Query("bench", c, q, opt); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(p.rankings.Bytes()), "cache-bytes")
	})
}

// BenchmarkQueryCovered is the page of BenchmarkQuerySortedInMemory (tag
// = t3, 2,000 of 20,000 documents, by n descending, limit 25, with the
// total) with an index on (tag, n desc) that yields the order: the scan
// stops after the page, but counting the total examines every match.
// "no-total" asks for no total; "no-total-uncached" is that without the
// list cache (rankings.go), whose page documents "no-total" reads.
func BenchmarkQueryCovered(b *testing.B) {
	p, c := sortFixtureWith(b, 20_000, 10, 1_000_000, 1, []*eventsv1.Index{{Key: "by_tag_n", Type: string(database.IndexKey),
		Attributes: []string{"tag", "n"}, Desc: []bool{false, true}, Status: string(database.StatusAvailable), Uid: "ixtagn"}})
	q := &query.Query{Filters: []query.Filter{{Op: query.OpEqual, Attribute: "tag", Values: []any{"t3"}}},
		Orders: []query.Order{{Attribute: "n", Desc: true}}, Limit: 25}
	if _, err := querySortAll(p, c, q, QueryOptions{Total: true}); err == nil || !strings.Contains(err.Error(), "ordered") {
		b.Fatalf("the plan is not ordered: %v", err)
	}
	cache := p.rankings
	for _, run := range []struct {
		name         string
		total, cache bool
	}{{"total", true, true}, {"no-total", false, true}, {"no-total-uncached", false, false}} {
		total := run.total
		b.Run(run.name, func(b *testing.B) {
			// uncached: every call reads its page's documents from Badger.
			p.rankings = cache
			if !run.cache {
				p.rankings = nil
			}
			defer func() { p.rankings = cache }()
			got, err := p.Query("bench", c, q, QueryOptions{Total: total})
			if err != nil || got.Explain.SortedInMemory || len(got.Docs) != 25 || total && got.Total != 2000 {
				b.Fatalf("unexpected result: %+v, %d docs, %v", got.Explain, len(got.Docs), err)
			}
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := p.Query("bench", c, q, QueryOptions{Total: total}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU starts counting the process's CPU time; the function it
// returns reports it per op as cpu-ns/op, which the other load of a shared
// machine moves less than wall time.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64((cpu()-start).Nanoseconds())/float64(b.N), "cpu-ns/op") }
}

func sameIDs(a, b []*eventsv1.Document) bool {
	return slices.EqualFunc(a, b, func(x, y *eventsv1.Document) bool { return x.GetId() == y.GetId() })
}

// TestSortedTopKAgreesWithSortAll compares runSorted (bounded heap) with
// the read-all-then-sort path on random queries whose order no index gives:
// pages, cursors both ways, offsets, no limit, totals and the scan limit
// (a query asked again gets its answer from a cached ranking: the same
// page, documents examined aside).
func TestSortedTopKAgreesWithSortAll(t *testing.T) {
	p, c := sortFixture(t, 400, 3, 15, 2)
	r := rand.New(rand.NewPCG(5, 9))
	attrs := []string{"n", "title", "tag", database.AttrCreatedAt, database.AttrUpdatedAt, database.AttrID, query.OrderRandom}
	t0 := time.Unix(1_700_000_000, 0).UTC()
	for i := range 400 {
		q := &query.Query{Limit: r.IntN(30)}
		if r.IntN(3) > 0 {
			q.Filters = append(q.Filters, query.Filter{Op: query.OpEqual, Attribute: "tag", Values: []any{fmt.Sprintf("t%d", r.IntN(3))}})
		}
		if r.IntN(3) == 0 {
			q.Filters = append(q.Filters, query.Filter{Op: query.OpLessThan, Attribute: "n", Values: []any{int64(r.IntN(15))}})
		}
		// Filters on system attributes, one of which (updated…) index
		// entries do not carry.
		switch r.IntN(6) {
		case 0:
			q.Filters = append(q.Filters, query.Filter{Op: query.OpUpdatedAfter, Values: []any{t0.Add(time.Duration(r.IntN(400)) * time.Second)}})
		case 1:
			q.Filters = append(q.Filters, query.Filter{Op: query.OpCreatedBefore, Values: []any{t0.Add(time.Duration(r.IntN(400)) * time.Second)}})
		}
		q.Orders = append(q.Orders, query.Order{Attribute: "n", Desc: r.IntN(2) == 0})
		for range r.IntN(2) {
			q.Orders = append(q.Orders, query.Order{Attribute: attrs[r.IntN(len(attrs))], Desc: r.IntN(2) == 0, Seed: r.Uint64()})
		}
		if r.IntN(3) == 0 {
			q.Offset = r.IntN(40)
		}
		switch r.IntN(4) {
		case 0:
			q.CursorAfter = fmt.Sprintf("d%06d", r.IntN(400))
		case 1:
			q.CursorBefore = fmt.Sprintf("d%06d", r.IntN(400))
		}
		opt := QueryOptions{Total: r.IntN(2) == 0}
		if r.IntN(8) == 0 {
			opt.MaxScan = 100 + r.IntN(100)
		}
		if r.IntN(5) == 0 {
			opt.Allow = func(d *eventsv1.Document) bool { return d.GetSequence()%7 != 0 }
		}
		want, werr := querySortAll(p, c, q, opt)
		got, gerr := p.Query("bench", c, q, opt)
		desc := fmt.Sprintf("query %d %+v total=%v maxScan=%d allow=%v", i, *q, opt.Total, opt.MaxScan, opt.Allow != nil)
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
			t.Fatalf("%s: error %v, want %v", desc, gerr, werr)
		}
		if werr != nil {
			continue
		}
		if !got.Explain.SortedInMemory {
			t.Fatalf("%s: plan %s is ordered", desc, got.Explain.Plan)
		}
		if !sameIDs(got.Docs, want.Docs) || len(got.Fields) != len(got.Docs) || got.Total != want.Total || got.TotalCapped != want.TotalCapped ||
			!got.Explain.RankingCached && (got.Explain.DocsExamined != want.Explain.DocsExamined || got.Explain.DocsDenied != want.Explain.DocsDenied) {
			t.Fatalf("%s:\n got  %v total %d %+v\n want %v total %d %+v", desc, ids(got.Docs), got.Total, got.Explain, ids(want.Docs), want.Total, want.Explain)
		}
		for j := range got.Fields {
			if !reflect.DeepEqual(got.Fields[j], want.Fields[j]) || !proto.Equal(got.Docs[j], want.Docs[j]) {
				t.Fatalf("%s: document %d: %v %v, want %v %v", desc, j, got.Docs[j], got.Fields[j], want.Docs[j], want.Fields[j])
			}
		}
	}
}

func ids(ds []*eventsv1.Document) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.GetId()
	}
	return out
}

// TestReadHead checks readHead against proto.Unmarshal and Fields, and its
// field numbers against the descriptor.
func TestReadHead(t *testing.T) {
	fields := (&eventsv1.Document{}).ProtoReflect().Descriptor().Fields()
	for name, num := range map[protoreflect.Name]protowire.Number{"id": docFieldID, "data_json": docFieldData, "created_at": docFieldCreatedAt,
		"updated_at": docFieldUpdatedAt, "sequence": docFieldSequence, "schema_version": docFieldSchemaVersion} {
		if f := fields.ByName(name); f == nil || f.Number() != num {
			t.Fatalf("Document.%s is not field %d", name, num)
		}
	}
	schema := &database.Schema{Attributes: []database.Attribute{{Key: "n", Type: database.TypeInteger, IntMin: -100, IntMax: 100, Status: database.StatusAvailable}}}
	docs := []*eventsv1.Document{
		{},
		{Id: "a", DataJson: `{"n":3}`, Sequence: 7, SchemaVersion: 2, Permissions: []string{"x"}, CreatedAt: timestamppb.New(time.Unix(-5, 999_999_999)),
			UpdatedAt: &timestamppb.Timestamp{Seconds: 1 << 40, Nanos: 12}, Version: 9, ProjectId: "p", CollectionUid: "u"},
		{Id: "b", CreatedAt: &timestamppb.Timestamp{}, UpdatedAt: &timestamppb.Timestamp{Nanos: 5}},
	}
	for _, d := range docs {
		b, err := marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		// A second encoding appended merges as proto.Unmarshal merges.
		b2, _ := marshal(&eventsv1.Document{Sequence: 3, UpdatedAt: &timestamppb.Timestamp{Seconds: 4}})
		for _, enc := range [][]byte{b, append(bytes.Clone(b), b2...)} {
			h, err := readHead(enc)
			if err != nil {
				t.Fatal(err)
			}
			full := &eventsv1.Document{}
			if err := proto.Unmarshal(enc, full); err != nil {
				t.Fatal(err)
			}
			want, err := Fields(schema, full)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fieldsOf(schema, h)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || h.data != full.GetDataJson() || h.version != full.GetSchemaVersion() {
				t.Fatalf("readHead of %v: %+v %v, want %v", full, h, got, want)
			}
		}
	}
	if _, err := readHead([]byte{0x0a, 0x05, 'a'}); err == nil {
		t.Fatal("readHead of a truncated encoding did not fail")
	}
}

// TestCountByIndexAgrees compares pages and totals of ordered queries that
// count on the index alone (countsByIndex) with the same queries made to
// load every document (an Allow that allows all).
func TestCountByIndexAgrees(t *testing.T) {
	p, c := sortFixtureWith(t, 600, 4, 20, 3, []*eventsv1.Index{{Key: "by_tag_n", Type: string(database.IndexKey),
		Attributes: []string{"tag", "n"}, Desc: []bool{false, true}, Status: string(database.StatusAvailable), Uid: "ixtagn"}})
	r := rand.New(rand.NewPCG(8, 13))
	counted := 0
	for i := range 300 {
		q := &query.Query{Filters: []query.Filter{{Op: query.OpEqual, Attribute: "tag", Values: []any{fmt.Sprintf("t%d", r.IntN(5))}}},
			Orders: []query.Order{{Attribute: "n", Desc: r.IntN(2) == 0}}, Limit: r.IntN(40)}
		switch r.IntN(4) {
		case 0:
			q.Filters = append(q.Filters, query.Filter{Op: query.OpEqual, Attribute: "n", Values: []any{int64(r.IntN(20))}})
			q.Orders = nil
		case 1:
			q.Filters = append(q.Filters, query.Filter{Op: query.OpLessThan, Attribute: "n", Values: []any{int64(r.IntN(20))}})
		case 2:
			q.Filters = append(q.Filters, query.Filter{Op: query.OpEqual, Attribute: "tag", Values: []any{fmt.Sprintf("t%d", r.IntN(5))}})
		}
		if r.IntN(3) == 0 {
			q.Offset = r.IntN(50)
		}
		switch r.IntN(4) {
		case 0:
			q.CursorAfter = fmt.Sprintf("d%06d", r.IntN(600))
		case 1:
			q.CursorBefore = fmt.Sprintf("d%06d", r.IntN(600))
		}
		opt := QueryOptions{Total: true}
		got, gerr := p.Query("bench", c, q, opt)
		opt.Allow = func(*eventsv1.Document) bool { return true }
		want, werr := p.Query("bench", c, q, opt)
		desc := fmt.Sprintf("query %d %+v", i, *q)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: error %v, want %v", desc, gerr, werr)
		}
		if gerr != nil {
			continue
		}
		if got.Explain.SortedInMemory {
			t.Fatalf("%s: not ordered: %s", desc, got.Explain.Plan)
		}
		if got.Explain.DocsExamined < want.Explain.DocsExamined {
			counted++
		}
		if !sameIDs(got.Docs, want.Docs) || got.Total != want.Total || got.TotalCapped != want.TotalCapped {
			t.Fatalf("%s:\n got  %v total %d\n want %v total %d", desc, ids(got.Docs), got.Total, ids(want.Docs), want.Total)
		}
	}
	if counted < 50 {
		t.Fatalf("only %d of 300 queries counted on the index", counted)
	}
}

// BenchmarkQueryRegexScan is a filter no index serves, over 10,000
// documents (the default scan limit) of which one matches, so every
// document is examined: "contains" is the substring test (the baseline),
// "regex" the same test as an RE2 pattern compiled once by Validate, and
// "regex-uncompiled" a filter that skipped Validate, compiled per document;
// "regex-prefix" is ^t3$ on the indexed tag: the 1,000 documents of its
// literal prefix's index range, sorted for the page of 25.
func BenchmarkQueryRegexScan(b *testing.B) {
	p, c := sortFixture(b, 10_000, 10, 1_000_000, 1)
	schema, err := p.Schema(c)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		f        query.Filter
		validate bool
	}{
		{"contains", query.Filter{Op: query.OpContains, Attribute: "title", Values: []any{"number 9999 "}}, true},
		{"regex", query.Filter{Op: query.OpRegex, Attribute: "title", Values: []any{`number 9{4} `}}, true},
		{"regex-uncompiled", query.Filter{Op: query.OpRegex, Attribute: "title", Values: []any{`number 9{4} `}}, false},
		// ^t3 on the indexed tag: the range of its prefix, 1,000 documents.
		{"regex-prefix", query.Filter{Op: query.OpRegex, Attribute: "tag", Values: []any{`^t3$`}}, true},
	} {
		q := &query.Query{Filters: []query.Filter{tc.f}, Limit: 25}
		if tc.validate {
			if err := query.Validate(q, schema, query.DefaultLimits()); err != nil {
				b.Fatal(err)
			}
		}
		got, err := p.Query("bench", c, q, QueryOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if tc.name == "regex-prefix" {
			if got.Explain.DocsExamined != 1_000 || len(got.Docs) != 25 {
				b.Fatalf("%s: %d examined, want the 1,000 of the index range", tc.name, got.Explain.DocsExamined)
			}
		} else if len(got.Docs) != 1 || got.Explain.DocsExamined != 10_000 {
			b.Fatalf("%s: %d docs, %d examined", tc.name, len(got.Docs), got.Explain.DocsExamined)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Query("bench", c, q, QueryOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPrefixRange: startsWith and a ^-anchored regex on an indexed
// attribute read only the keys of their prefix; other patterns scan.
func TestPrefixRange(t *testing.T) {
	p, c := sortFixture(t, 1_000, 20, 1000, 1) // tags t0…t19: "t1" prefixes t1, t10…t19
	schema, err := p.Schema(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f        query.Filter
		docs     int
		examined int64
	}{
		{query.Filter{Op: query.OpStartsWith, Attribute: "tag", Values: []any{"t1"}}, 550, 550},
		{query.Filter{Op: query.OpRegex, Attribute: "tag", Values: []any{`^t1\d`}}, 500, 550},
		{query.Filter{Op: query.OpRegex, Attribute: "tag", Values: []any{`^t19$`}}, 50, 50},
		{query.Filter{Op: query.OpRegex, Attribute: "tag", Values: []any{`t19$`}}, 50, 1_000},
		{query.Filter{Op: query.OpRegex, Attribute: "tag", Values: []any{`(?i)^T19`}}, 50, 1_000},
	} {
		q := &query.Query{Filters: []query.Filter{tc.f}, Limit: 100}
		if err := query.Validate(q, schema, query.DefaultLimits()); err != nil {
			t.Fatal(err)
		}
		q.Limit = 0
		got, err := p.Query("bench", c, q, QueryOptions{Total: true})
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != int64(tc.docs) || got.Explain.DocsExamined != tc.examined {
			t.Errorf("%s %v: total %d, examined %d (plan %s); want %d and %d", tc.f.Op, tc.f.Values, got.Total,
				got.Explain.DocsExamined, got.Explain.Plan, tc.docs, tc.examined)
		}
	}
}
