package projections

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	"github.com/cairn-dev/cairn/projections/indexkey"
)

// A key index on a point attribute is a geo index: its entry holds the
// point's cell, a geohash-like int64 of geoBits bits per axis (longitude
// and latitude bits interleaved, longitude first), so that every cell of
// a coarser level is one contiguous range of keys. A distance or polygon
// filter scans the few ranges that cover its bounding box and Match tests
// each candidate exactly. 26 bits per axis is cells of about 0.6 m × 0.3 m
// at the equator.
const (
	geoBits = 26
	// geoMaxCells bounds the cells a filter's bounding box is covered by:
	// fewer, coarser cells scan more keys, more cells cost more seeks.
	geoMaxCells = 32
	// geoMargin widens bounding boxes (degrees, about 1 cm) against
	// rounding in the haversine and box arithmetic.
	geoMargin = 1e-7
)

// geoRange is the cells [lo, hi) of a scan.
type geoRange struct{ lo, hi int64 }

// geoKey returns the index value of a point: its cell.
func geoKey(v any) (int64, bool) {
	p, ok := v.([]any)
	if !ok || len(p) != 2 {
		return 0, false
	}
	lon, ok1 := p[0].(float64)
	lat, ok2 := p[1].(float64)
	if !ok1 || !ok2 {
		return 0, false
	}
	return interleave(axisCell(lon, 180), axisCell(lat, 90)), true
}

// axisCell is the cell (of 2^geoBits) a coordinate in [-limit, limit]
// falls in; it is monotonic, so a box's corners bound its points' cells.
func axisCell(c, limit float64) uint32 {
	const n = 1 << geoBits
	x := math.Floor((c + limit) / (2 * limit) * n)
	return uint32(max(0, min(n-1, x)))
}

func interleave(x, y uint32) int64 {
	var code int64
	for i := geoBits - 1; i >= 0; i-- {
		code = code<<2 | int64(x>>i&1)<<1 | int64(y>>i&1)
	}
	return code
}

// geoBox is a bounding box in degrees, lon0 ≤ lon1, lat0 ≤ lat1.
type geoBox struct{ lon0, lon1, lat0, lat1 float64 }

// geoBoxes returns boxes covering every point a geo filter may match, and
// false for filters an index cannot narrow (distanceGreaterThan,
// distanceNotEqual, notIntersects match far away).
func geoBoxes(f query.Filter) ([]geoBox, bool) {
	switch f.Op {
	case query.OpDistanceLessThan, query.OpDistanceEqual:
		lon, lat, r, ok := query.Circle(f)
		if !ok {
			return nil, false
		}
		return circleBoxes(lon, lat, r), true
	case query.OpIntersects:
		rings, ok := query.Rings(f)
		if !ok {
			return nil, false
		}
		b := geoBox{math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)}
		for _, ring := range rings {
			for _, p := range ring {
				b.lon0, b.lon1 = min(b.lon0, p[0]), max(b.lon1, p[0])
				b.lat0, b.lat1 = min(b.lat0, p[1]), max(b.lat1, p[1])
			}
		}
		return []geoBox{widen(b)}, true
	}
	return nil, false
}

func widen(b geoBox) geoBox {
	return geoBox{max(-180, b.lon0-geoMargin), min(180, b.lon1+geoMargin), max(-90, b.lat0-geoMargin), min(90, b.lat1+geoMargin)}
}

// circleBoxes bounds the points within r meters of (lon, lat) on the
// sphere: latitude ± the angular radius, and longitude ± asin(sin δ /
// cos lat) unless the cap reaches a pole; a box crossing the antimeridian
// is split in two.
func circleBoxes(lon, lat, r float64) []geoBox {
	const deg = 180 / math.Pi
	delta := r / query.EarthRadius // radians
	world := []geoBox{{-180, 180, -90, 90}}
	if delta >= math.Pi/2 {
		return world
	}
	lat0, lat1 := lat-delta*deg, lat+delta*deg
	if lat0 <= -90 || lat1 >= 90 {
		return []geoBox{widen(geoBox{-180, 180, lat0, lat1})}
	}
	s := math.Sin(delta) / math.Cos(lat/deg)
	if s >= 1 {
		return []geoBox{widen(geoBox{-180, 180, lat0, lat1})}
	}
	dlon := math.Asin(s) * deg
	lon0, lon1 := lon-dlon, lon+dlon
	switch {
	case lon0 < -180:
		return []geoBox{widen(geoBox{lon0 + 360, 180, lat0, lat1}), widen(geoBox{-180, lon1, lat0, lat1})}
	case lon1 > 180:
		return []geoBox{widen(geoBox{lon0, 180, lat0, lat1}), widen(geoBox{-180, lon1 - 360, lat0, lat1})}
	}
	return []geoBox{widen(geoBox{lon0, lon1, lat0, lat1})}
}

// geoCover returns the merged cell ranges covering boxes: per box, the
// finest level whose cells over it number at most geoMaxCells.
func geoCover(boxes []geoBox) []geoRange {
	var out []geoRange
	for _, b := range boxes {
		x0, x1 := axisCell(b.lon0, 180), axisCell(b.lon1, 180)
		y0, y1 := axisCell(b.lat0, 90), axisCell(b.lat1, 90)
		k := geoBits
		for ; k > 0; k-- {
			s := uint(geoBits - k)
			if int64(x1>>s-x0>>s+1)*int64(y1>>s-y0>>s+1) <= geoMaxCells {
				break
			}
		}
		s := uint(geoBits - k)
		shift := 2 * s
		for x := x0 >> s; x <= x1>>s; x++ {
			for y := y0 >> s; y <= y1>>s; y++ {
				c := interleave(x, y) // the level-k code, in the low 2k bits
				out = append(out, geoRange{c << shift, (c + 1) << shift})
			}
		}
	}
	slices.SortFunc(out, func(a, b geoRange) int { return cmp.Compare(a.lo, b.lo) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r.lo <= merged[n-1].hi {
			merged[n-1].hi = max(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// geoPlan returns a plan answering a top-level distanceLessThan,
// distanceEqual or intersects filter from a geo index on its attribute.
func geoPlan(schema *database.Schema, q *query.Query) (plan, bool) {
	for _, f := range q.Filters {
		boxes, ok := geoBoxes(f)
		if !ok {
			continue
		}
		for _, ix := range schema.Indexes {
			if ix.Type != database.IndexKey || ix.Status != database.StatusAvailable || len(ix.Attributes) != 1 || ix.Attributes[0] != f.Attribute {
				continue
			}
			if a, ok := schema.Attribute(f.Attribute); !ok || a.Type != database.TypePoint {
				continue
			}
			return plan{ix: ix, geo: geoCover(boxes), used: []string{string(f.Op) + "(" + f.Attribute + ")"}}, true
		}
	}
	return plan{}, false
}

// scanGeo is scan for a geo plan: the entries of each cell range, in
// cell order.
func (r *runner) scanGeo(fn func(entry) (bool, error)) error {
	prefix := indexPrefix(r.project, r.c.GetUid(), r.pl.ix.UID)
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for _, g := range r.pl.geo {
		from, err := indexkey.Append(bytes.Clone(prefix), g.lo, false)
		if err != nil {
			return err
		}
		to, err := indexkey.Append(bytes.Clone(prefix), g.hi, false)
		if err != nil {
			return err
		}
		for it.Seek(from); it.Valid(); it.Next() {
			k := it.Item().Key()
			if bytes.Compare(k, to) >= 0 {
				break
			}
			r.res.Explain.KeysScanned++
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			e := entry{values: bytes.Clone(k[:len(k)-8]), seq: binary.BigEndian.Uint64(k[len(k)-8:]), id: string(v)}
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// describeGeo is the plan's note on its cells.
func describeGeo(pl plan) string {
	if pl.geo == nil {
		return ""
	}
	return fmt.Sprintf(" (%d geo cell ranges)", len(pl.geo))
}

// narrowedByKey reports whether an index answers an equality filter of q
// on its leading attribute: that plan is preferred to a geo one.
func narrowedByKey(schema *database.Schema, q *query.Query) bool {
	for _, ix := range append(slices.Clone(schema.Indexes), implicitIndexes...) {
		if ix.Type == database.IndexFulltext || ix.Status != database.StatusAvailable {
			continue
		}
		if _, ok := equality(q.Filters, ix.Attributes[0]); ok {
			return true
		}
	}
	return false
}
