package query

import (
	"fmt"
	"math"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

// Geo operators, on a point attribute (Appwrite's names). A distance
// filter's values are the centre, a [longitude, latitude] point, and a
// distance, in meters unless a third value false says degrees (of arc);
// Appwrite's nested form [[centre, distance, meters]] is accepted too.
// intersects/notIntersects take a polygon: one ring as the values (at most
// MaxValues points), or the values [polygon] where a polygon is a list of
// closed rings; the first ring is the outline, the others holes.
const (
	OpDistanceEqual       Op = "distanceEqual"
	OpDistanceNotEqual    Op = "distanceNotEqual"
	OpDistanceGreaterThan Op = "distanceGreaterThan"
	OpDistanceLessThan    Op = "distanceLessThan"
	OpIntersects          Op = "intersects"
	OpNotIntersects       Op = "notIntersects"
)

// EarthRadius is the sphere distances are measured on: the mean Earth
// radius (IUGG), in meters.
const EarthRadius = 6_371_008.8

// MaxPolygonPoints caps a polygon's points, over all its rings: every
// document a polygon filter examines is tested against each edge.
const MaxPolygonPoints = 1000

// Distance is the great-circle distance in meters between two points
// (longitude, latitude in degrees), by the haversine formula.
func Distance(lon1, lat1, lon2, lat2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * EarthRadius * math.Asin(math.Sqrt(min(1, a)))
}

func isGeoDistance(op Op) bool {
	switch op {
	case OpDistanceEqual, OpDistanceNotEqual, OpDistanceGreaterThan, OpDistanceLessThan:
		return true
	}
	return false
}

func isGeo(op Op) bool {
	return isGeoDistance(op) || op == OpIntersects || op == OpNotIntersects
}

// point returns a typed point's coordinates.
func point(v any) (lon, lat float64, ok bool) {
	p, ok := v.([]any)
	if !ok || len(p) != 2 {
		return 0, 0, false
	}
	lon, ok1 := p[0].(float64)
	lat, ok2 := p[1].(float64)
	return lon, lat, ok1 && ok2
}

// Circle returns a validated distance filter's centre and radius in meters.
func Circle(f Filter) (lon, lat, meters float64, ok bool) {
	if !isGeoDistance(f.Op) || len(f.Values) != 2 {
		return 0, 0, 0, false
	}
	lon, lat, ok = point(f.Values[0])
	meters, ok2 := f.Values[1].(float64)
	return lon, lat, meters, ok && ok2
}

// Rings returns a validated polygon filter's rings, each a closed list of
// [longitude, latitude] points.
func Rings(f Filter) ([][][2]float64, bool) {
	if f.Op != OpIntersects && f.Op != OpNotIntersects || len(f.Values) != 1 {
		return nil, false
	}
	poly, ok := f.Values[0].([]any)
	if !ok {
		return nil, false
	}
	out := make([][][2]float64, 0, len(poly))
	for _, r := range poly {
		ring, ok := r.([]any)
		if !ok {
			return nil, false
		}
		pts := make([][2]float64, 0, len(ring))
		for _, p := range ring {
			lon, lat, ok := point(p)
			if !ok {
				return nil, false
			}
			pts = append(pts, [2]float64{lon, lat})
		}
		out = append(out, pts)
	}
	return out, true
}

// matchGeo evaluates a geo filter on a document's value v (not nil).
func matchGeo(f *Filter, v any) bool {
	lon, lat, ok := point(v)
	if !ok {
		return false
	}
	if isGeoDistance(f.Op) {
		clon, clat, r, ok := Circle(*f)
		if !ok {
			return false
		}
		d := Distance(clon, clat, lon, lat)
		switch f.Op {
		case OpDistanceEqual:
			return d == r
		case OpDistanceNotEqual:
			return d != r
		case OpDistanceGreaterThan:
			return d > r
		}
		return d < r
	}
	rings, ok := Rings(*f)
	if !ok {
		return false
	}
	in := InPolygon(rings, lon, lat)
	if f.Op == OpIntersects {
		return in
	}
	return !in
}

// InPolygon reports whether the point lies in the polygon or on its
// boundary. Edges are straight lines in longitude/latitude (the plane of
// the coordinates, as a map draws them), and rings combine even-odd, so
// a ring inside the outline is a hole.
func InPolygon(rings [][][2]float64, lon, lat float64) bool {
	in := false
	for _, ring := range rings {
		for i := 1; i < len(ring); i++ {
			a, b := ring[i-1], ring[i]
			if onSegment(a, b, lon, lat) {
				return true
			}
			if (a[1] > lat) != (b[1] > lat) {
				x := a[0] + (lat-a[1])*(b[0]-a[0])/(b[1]-a[1])
				if lon < x {
					in = !in
				}
			}
		}
	}
	return in
}

func onSegment(a, b [2]float64, x, y float64) bool {
	if (b[0]-a[0])*(y-a[1])-(b[1]-a[1])*(x-a[0]) != 0 {
		return false
	}
	return x >= min(a[0], b[0]) && x <= max(a[0], b[0]) && y >= min(a[1], b[1]) && y <= max(a[1], b[1])
}

// geoValues checks and normalizes a geo filter's values: a distance filter
// to [centre, meters], a polygon filter to [rings].
func geoValues(f *Filter, path string) error {
	field := path + ".values"
	if isGeoDistance(f.Op) {
		vals := f.Values
		// Appwrite's form: one value [centre, distance, meters].
		if len(vals) == 1 {
			if inner, ok := vals[0].([]any); ok && len(inner) >= 2 {
				if _, nested := inner[0].([]any); nested {
					vals, field = inner, field+"[0]"
				}
			}
		}
		if len(vals) < 2 || len(vals) > 3 {
			return domain.FieldError(field, "%s takes a centre [longitude, latitude], a distance and optionally meters (true) or degrees (false); got %d values", f.Op, len(vals))
		}
		c, err := database.CoercePoint(vals[0])
		if err != nil {
			return domain.FieldError(field+"[0]", "the centre %s", err.Error())
		}
		d, ok := number(vals[1])
		if !ok || math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
			return domain.FieldError(field+"[1]", "the distance must be a finite number of at least 0; got %s", describe(vals[1]))
		}
		if len(vals) == 3 {
			m, ok := vals[2].(bool)
			if !ok {
				return domain.FieldError(field+"[2]", "meters must be true (meters) or false (degrees); got %s", describe(vals[2]))
			}
			if !m {
				d = d * math.Pi / 180 * EarthRadius
			}
		}
		f.Values = []any{c, d}
		return nil
	}
	rings, err := polygonValue(f.Values, field)
	if err != nil {
		return err
	}
	f.Values = []any{rings}
	return nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

// depth is how deep []any nest at the front of v: a number is 0, a point
// 1, a ring 2, a polygon 3.
func depth(v any) int {
	n := 0
	for {
		a, ok := v.([]any)
		if !ok || len(a) == 0 {
			if ok {
				n++
			}
			return n
		}
		n++
		v = a[0]
	}
}

// polygonValue reads a polygon from a filter's values: one ring (the
// values are points), several rings, or one polygon.
func polygonValue(vals []any, field string) ([]any, error) {
	var rings []any
	base := field
	switch depth(vals) {
	case 2: // the values are points: one ring
		rings = []any{vals}
	case 3: // the values are rings
		rings = vals
		base = ""
	case 4: // one polygon
		if len(vals) != 1 {
			return nil, domain.FieldError(field, "a polygon filter takes one polygon; got %d", len(vals))
		}
		rings = vals[0].([]any)
		field += "[0]"
		base = ""
	default:
		return nil, domain.FieldError(field, "a polygon is closed rings of [longitude, latitude] points, like [[0,0],[1,0],[1,1],[0,0]]")
	}
	total := 0
	out := make([]any, len(rings))
	for r, ringV := range rings {
		ring, ok := ringV.([]any)
		rf := fmt.Sprintf("%s[%d]", field, r)
		if base != "" {
			rf = base
		}
		if !ok {
			return nil, domain.FieldError(rf, "a ring is a list of [longitude, latitude] points; got %s", describe(ringV))
		}
		total += len(ring)
		if total > MaxPolygonPoints {
			return nil, domain.FieldError(field, "a polygon has at most %d points; this one has more", MaxPolygonPoints)
		}
		if len(ring) < 4 {
			return nil, domain.FieldError(rf, "a ring has at least 4 points (a triangle and its first point again); got %d", len(ring))
		}
		pts := make([]any, len(ring))
		for k, p := range ring {
			c, err := database.CoercePoint(p)
			if err != nil {
				pf := fmt.Sprintf("%s[%d]", rf, k)
				if base != "" {
					pf = fmt.Sprintf("%s[%d]", field, k)
				}
				return nil, domain.FieldError(pf, "point %s", err.Error())
			}
			pts[k] = c
		}
		if Compare(pts[0], pts[len(pts)-1]) != 0 {
			return nil, domain.FieldError(rf, "a ring must be closed: its last point must equal its first")
		}
		out[r] = pts
	}
	return out, nil
}
