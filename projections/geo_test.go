package projections

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// geoFixture is a collection of docs points written straight into Badger
// as applyDocument writes them: at is a point over Europe, most of them,
// or anywhere; with a geo index on at when indexed.
func geoFixture(tb testing.TB, docs int, indexed bool, seed uint64) (*Projections, *eventsv1.Collection, []map[string]any) {
	tb.Helper()
	e := newEnv(tb)
	p := New(e.db, e.store, Options{Logger: e.log})
	tb.Cleanup(func() { p.Close() })
	c := &eventsv1.Collection{Id: "places", ProjectId: "bench", DatabaseId: "main", DatabaseUid: "dbuid", Uid: "colluid", Name: "Places", Enabled: true, Version: 1,
		Attributes: []*eventsv1.Attribute{
			{Key: "at", Type: string(database.TypePoint), Status: string(database.StatusAvailable)},
			{Key: "title", Type: string(database.TypeString), Size: 200, Status: string(database.StatusAvailable)},
		},
	}
	if indexed {
		c.Indexes = []*eventsv1.Index{{Key: "by_at", Type: string(database.IndexKey), Attributes: []string{"at"}, Desc: []bool{false}, Status: string(database.StatusAvailable), Uid: "ixat"}}
	}
	schema, err := p.schemas.get(c)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 5))
	t0 := time.Unix(1_700_000_000, 0)
	wb := e.db.NewWriteBatch()
	defer wb.Cancel()
	var all []map[string]any
	for i := range docs {
		at := []any{-10 + 40*r.Float64(), 35 + 25*r.Float64()}
		if r.IntN(10) == 0 {
			at = []any{-180 + 360*r.Float64(), -90 + 180*r.Float64()}
		}
		data, _ := json.Marshal(map[string]any{"at": at, "title": fmt.Sprintf("place number %d of the geo benchmark, with some padding", i)})
		d := &eventsv1.Document{Id: fmt.Sprintf("d%06d", i), ProjectId: "bench", DatabaseId: "main", CollectionId: "places", CollectionUid: c.Uid,
			DataJson: string(data), Permissions: []string{`read("any")`}, CreatedAt: timestamppb.New(t0.Add(time.Duration(i) * time.Second)),
			UpdatedAt: timestamppb.New(t0.Add(time.Duration(i) * time.Second)), Sequence: uint64(i + 1), SchemaVersion: 1, Version: uint64(i + 1)}
		f, err := Fields(schema, d)
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, f)
		for _, ix := range allIndexes(schema) {
			ks, err := indexKeys("bench", c.Uid, ix, f, d.GetSequence())
			if err != nil {
				tb.Fatal(err)
			}
			for _, k := range ks {
				if err := wb.Set(k, []byte(d.GetId())); err != nil {
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
	return p, c, all
}

func geoSchemaOf(tb testing.TB, p *Projections, c *eventsv1.Collection) *database.Schema {
	s, err := p.schemas.get(c)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestGeoIndexAgreesWithScan: distance and polygon queries answered from
// the geo index equal the reference evaluator over every document, and
// examine fewer documents than there are.
func TestGeoIndexAgreesWithScan(t *testing.T) {
	const n = 3000
	p, c, all := geoFixture(t, n, true, 1)
	schema := geoSchemaOf(t, p, c)
	r := rand.New(rand.NewPCG(2, 2))
	indexed := 0
	for i := range 120 {
		centre := []any{-180 + 360*r.Float64(), -90 + 180*r.Float64()}
		if i%2 == 0 {
			centre = all[r.IntN(n)]["at"].([]any)
		}
		var f query.Filter
		switch i % 4 {
		case 0, 1:
			f = query.Filter{Op: query.OpDistanceLessThan, Attribute: "at", Values: []any{centre, []float64{100, 20_000, 300_000, 3_000_000, 15_000_000}[r.IntN(5)]}}
		case 2:
			other := all[r.IntN(n)]["at"].([]any)
			d := query.Distance(centre[0].(float64), centre[1].(float64), other[0].(float64), other[1].(float64))
			f = query.Filter{Op: query.OpDistanceEqual, Attribute: "at", Values: []any{centre, d}}
		default:
			lon, lat, s := centre[0].(float64), centre[1].(float64), 0.5+10*r.Float64()
			clamp := func(v, l float64) float64 { return max(-l, min(l, v)) }
			f = query.Filter{Op: query.OpIntersects, Attribute: "at", Values: []any{
				[]any{clamp(lon-s, 180), clamp(lat-s, 90)}, []any{clamp(lon+s, 180), clamp(lat-s/2, 90)},
				[]any{clamp(lon, 180), clamp(lat+s, 90)}, []any{clamp(lon-s, 180), clamp(lat-s, 90)}}}
		}
		q := &query.Query{Filters: []query.Filter{f}, Limit: 100}
		if err := query.Validate(q, schema, query.DefaultLimits()); err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		got, err := p.Query("bench", c, q, QueryOptions{Total: true, MaxScan: n})
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		want, _ := query.Run(&query.Query{Filters: q.Filters}, all)
		if got.Total != int64(len(want)) {
			t.Fatalf("%s %v: total %d, reference %d (plan %s)", f.Op, f.Values, got.Total, len(want), got.Explain.Plan)
		}
		page, _ := query.Run(q, all)
		if len(page) != len(got.Docs) {
			t.Fatalf("%s: page of %d, reference %d", f.Op, len(got.Docs), len(page))
		}
		for j := range page {
			if page[j][database.AttrID] != got.Docs[j].GetId() {
				t.Fatalf("%s: page differs at %d", f.Op, j)
			}
		}
		if got.Explain.Index == "by_at" {
			indexed++
		}
	}
	if indexed != 120 {
		t.Fatalf("the geo index answered %d of 120 queries", indexed)
	}
	// A small circle examines a handful of documents, and Explain says how.
	q := &query.Query{Filters: []query.Filter{{Op: query.OpDistanceLessThan, Attribute: "at", Values: []any{[]any{2.35, 48.85}, 50_000.0}}}}
	if err := query.Validate(q, schema, query.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	res, err := p.Query("bench", c, q, QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Explain.DocsExamined > n/20 || res.Explain.Index != "by_at" || res.Explain.IndexFilters[0] != "distanceLessThan(at)" {
		t.Fatalf("explain %+v", res.Explain)
	}
	t.Logf("50 km around Paris: %s", res.Explain.Plan)
}

// TestGeoWithoutIndexScansWithinLimit: with no geo index a distance query
// scans, and fails asking for an index past MaxScan.
func TestGeoWithoutIndexScansWithinLimit(t *testing.T) {
	p, c, _ := geoFixture(t, 500, false, 3)
	q := &query.Query{Filters: []query.Filter{{Op: query.OpDistanceLessThan, Attribute: "at", Values: []any{[]any{2.35, 48.85}, 500_000.0}}}}
	if err := query.Validate(q, geoSchemaOf(t, p, c), query.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	if res, err := p.Query("bench", c, q, QueryOptions{Total: true}); err != nil || res.Explain.DocsExamined != 500 {
		t.Fatalf("scan: %v, %+v", err, res.Explain)
	}
	_, err := p.Query("bench", c, q, QueryOptions{MaxScan: 100, Total: true})
	if err == nil || !strings.Contains(err.Error(), "create an index on (at)") {
		t.Fatalf("over the limit: %v", err)
	}
}

// TestGeoCover: every point within a circle or box has its cell in the
// cover's ranges.
func TestGeoCover(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 2000 {
		lon, lat := -180+360*r.Float64(), -90+180*r.Float64()
		if r.IntN(4) == 0 {
			lat = []float64{89.9, -89.9, 0}[r.IntN(3)]
			lon = []float64{179.95, -179.95, 0}[r.IntN(3)]
		}
		m := []float64{10, 1000, 100_000, 2_000_000, 12_000_000}[r.IntN(5)]
		cover := geoCover(circleBoxes(lon, lat, m))
		if len(cover) > 2*geoMaxCells {
			t.Fatalf("%d ranges", len(cover))
		}
		for range 20 {
			// A point at a random bearing, inside the circle.
			plon, plat := lon+(r.Float64()-0.5)*m/50_000, lat+(r.Float64()-0.5)*m/100_000
			plon = max(-180, min(180, plon))
			plat = max(-90, min(90, plat))
			if query.Distance(lon, lat, plon, plat) >= m {
				continue
			}
			cell, _ := geoKey([]any{plon, plat})
			in := false
			for _, g := range cover {
				in = in || cell >= g.lo && cell < g.hi
			}
			if !in {
				t.Fatalf("point %v,%v within %v m of %v,%v is outside the cover", plon, plat, m, lon, lat)
			}
		}
	}
}

// BenchmarkGeoDistance: distanceLessThan (50 km around Paris, a page of
// 25) over 20,000 points, with the geo index and without (a scan of every
// document; MaxScan raised so that it may).
func BenchmarkGeoDistance(b *testing.B) {
	const n = 20_000
	for _, indexed := range []bool{true, false} {
		name := "scan"
		if indexed {
			name = "index"
		}
		b.Run(name, func(b *testing.B) {
			p, c, _ := geoFixture(b, n, indexed, 1)
			q := &query.Query{Filters: []query.Filter{{Op: query.OpDistanceLessThan, Attribute: "at", Values: []any{[]any{2.35, 48.85}, 50_000.0}}}, Limit: 25}
			if err := query.Validate(q, geoSchemaOf(b, p, c), query.DefaultLimits()); err != nil {
				b.Fatal(err)
			}
			var res QueryResult
			b.ResetTimer()
			defer reportCPU(b)()
			for b.Loop() {
				var err error
				if res, err = p.Query("bench", c, q, QueryOptions{MaxScan: n}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(res.Explain.DocsExamined), "docs/op")
			b.ReportMetric(float64(len(res.Docs)), "hits/op")
		})
	}
}
