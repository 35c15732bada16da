package query

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

func geoSchema() *database.Schema {
	return &database.Schema{Attributes: []database.Attribute{
		attr("at", database.TypePoint), attr("name", database.TypeString), arrayAttr("scores", database.TypeInteger),
	}}
}

func pt(lon, lat float64) []any { return []any{lon, lat} }

func TestDistance(t *testing.T) {
	// Paris (Notre-Dame) to London (Trafalgar Square): about 343.9 km.
	d := Distance(2.3499, 48.8530, -0.1281, 51.5080)
	if math.Abs(d-343_900) > 1_000 {
		t.Fatalf("Paris–London = %.0f m, want about 343,900", d)
	}
	if d := Distance(0, 0, 180, 0); math.Abs(d-math.Pi*EarthRadius) > 1e-6 {
		t.Fatalf("antipodes = %f, want half the circumference", d)
	}
}

func TestGeoMatch(t *testing.T) {
	square := []any{pt(0, 0), pt(10, 0), pt(10, 10), pt(0, 10), pt(0, 0)}
	hole := []any{pt(4, 4), pt(6, 4), pt(6, 6), pt(4, 6), pt(4, 4)}
	tests := []struct {
		f    Filter
		at   []any
		want bool
	}{
		{f(OpDistanceLessThan, "at", pt(0, 0), 112_000.0), pt(1, 0), true}, // one degree is about 111.2 km
		{f(OpDistanceLessThan, "at", pt(0, 0), 110_000.0), pt(1, 0), false},
		{f(OpDistanceGreaterThan, "at", pt(0, 0), 110_000.0), pt(1, 0), true},
		{f(OpDistanceLessThan, "at", []any{pt(0, 0), 1.01, false}), pt(0, 1), true}, // Appwrite's nested form, degrees
		{f(OpDistanceEqual, "at", pt(5, 5), 0.0), pt(5, 5), true},
		{f(OpDistanceNotEqual, "at", pt(5, 5), 0.0), pt(5, 5), false},
		{f(OpDistanceLessThan, "at", pt(179.9, 0), 30_000.0), pt(-179.9, 0), true}, // across the antimeridian
		{f(OpIntersects, "at", square...), pt(1, 1), true},
		{f(OpIntersects, "at", square...), pt(10, 5), true}, // on the boundary
		{f(OpIntersects, "at", square...), pt(11, 5), false},
		{f(OpIntersects, "at", []any{square, hole}), pt(5, 5), false}, // in the hole
		{f(OpIntersects, "at", []any{square, hole}), pt(2, 5), true},
		{f(OpNotIntersects, "at", []any{square}), pt(20, 20), true},
	}
	for i, tc := range tests {
		q := &Query{Filters: []Filter{tc.f}}
		if err := Validate(q, geoSchema(), Limits{}); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got := Match(q.Filters, map[string]any{"at": tc.at}); got != tc.want {
			t.Errorf("%d: %s at %v = %v, want %v", i, tc.f.Op, tc.at, got, tc.want)
		}
		if Match(q.Filters, map[string]any{"at": nil}) {
			t.Errorf("%d: matched a document without a point", i)
		}
		// Validating again changes nothing.
		again := &Query{Filters: []Filter{q.Filters[0]}}
		if err := Validate(again, geoSchema(), Limits{}); err != nil || Compare(again.Filters[0].Values, q.Filters[0].Values) != 0 {
			t.Errorf("%d: revalidation: %v, %v != %v", i, err, again.Filters[0].Values, q.Filters[0].Values)
		}
	}
}

func TestGeoRejects(t *testing.T) {
	big := make([]any, 0, MaxPolygonPoints+1)
	for i := range MaxPolygonPoints {
		big = append(big, pt(float64(i%100), float64(i/100)))
	}
	big = append(big, big[0])
	tests := []struct {
		f     Filter
		field string
		msg   string
	}{
		{f(OpDistanceLessThan, "at", pt(0, 91), 5.0), "queries[0].values[0]", "latitude must be between -90 and 90"},
		{f(OpDistanceLessThan, "at", pt(181, 0), 5.0), "queries[0].values[0]", "longitude"},
		{f(OpDistanceLessThan, "at", pt(0, 0), -1.0), "queries[0].values[1]", "at least 0"},
		{f(OpDistanceLessThan, "at", pt(0, 0)), "queries[0].values", "got 1 values"},
		{f(OpDistanceLessThan, "at", pt(0, 0), 1.0, "m"), "queries[0].values[2]", "meters"},
		{f(OpDistanceLessThan, "name", pt(0, 0), 1.0), "queries[0].attribute", "only to point attributes"},
		{f(OpEqual, "at", pt(0, 0)), "queries[0].attribute", "is a point"},
		{f(OpIntersects, "at", pt(0, 0), pt(1, 0), pt(0, 0)), "queries[0].values", "at least 4 points"},
		{f(OpIntersects, "at", pt(0, 0), pt(1, 0), pt(1, 1), pt(0, 1)), "queries[0].values", "closed"},
		{f(OpIntersects, "at", pt(0, 0), pt(1, 0), pt(1, 100), pt(0, 0)), "queries[0].values[2]", "latitude"},
		{f(OpIntersects, "at", big), "queries[0].values", "at most 1000 points"},
		{f(OpIntersects, "at", 3.0), "queries[0].values", "closed rings"},
	}
	for i, tc := range tests {
		err := Validate(&Query{Filters: []Filter{tc.f}}, geoSchema(), Limits{})
		var de *domain.Error
		if !errors.As(err, &de) || de.Field != tc.field || !strings.Contains(de.Message, tc.msg) {
			t.Errorf("%d: got %v (field %q), want field %q and %q", i, err, fieldOf(err), tc.field, tc.msg)
		}
	}
}

func fieldOf(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Field
	}
	return ""
}

func TestElemMatch(t *testing.T) {
	q := &Query{Filters: []Filter{{Op: OpElemMatch, Attribute: "scores", Filters: []Filter{f(OpGreaterThan, "", 80), f(OpLessThan, "scores", 90)}}}}
	if err := Validate(q, geoSchema(), Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scores []any
		want   bool
	}{
		{[]any{int64(70), int64(95)}, false}, // contains both sides, but no one element in (80, 90)
		{[]any{int64(70), int64(85)}, true},
		{nil, false},
	} {
		if got := Match(q.Filters, map[string]any{"scores": tc.scores}); got != tc.want {
			t.Errorf("elemMatch on %v = %v, want %v", tc.scores, got, tc.want)
		}
	}
	for _, tc := range []struct {
		f     Filter
		field string
	}{
		{Filter{Op: OpElemMatch, Attribute: "name", Filters: []Filter{f(OpEqual, "", "x")}}, "queries[0].attribute"},
		{Filter{Op: OpElemMatch, Attribute: "scores"}, "queries[0].queries"},
		{Filter{Op: OpElemMatch, Attribute: "scores", Filters: []Filter{f(OpEqual, "name", "x")}}, "queries[0].queries[0].attribute"},
		{Filter{Op: OpElemMatch, Attribute: "scores", Filters: []Filter{f(OpEqual, "", "x")}}, "queries[0].queries[0].values[0]"},
	} {
		err := Validate(&Query{Filters: []Filter{tc.f}}, geoSchema(), Limits{})
		if fieldOf(err) != tc.field {
			t.Errorf("%+v: got %v, want field %s", tc.f, err, tc.field)
		}
	}
}

func TestPrepare(t *testing.T) {
	fs := []Filter{
		f(OpRegex, "name", "^ab+"),
		f(OpDistanceLessThan, "at", pt(0, 0), 200_000.0),
		f(OpCreatedAfter, "", "2026-01-01T00:00:00Z"),
		{Op: OpElemMatch, Attribute: "scores", Filters: []Filter{f(OpGreaterThan, "", 1.0)}},
		f(OpContainsAll, "tags", "a", "b"),
		f(OpExists, "name"),
	}
	if err := Prepare(fs, "filters", Limits{}); err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"name": "abbc", "at": pt(1, 1), database.AttrCreatedAt: mustTime(t, "2026-02-01T00:00:00Z"),
		"scores": []any{int64(0), int64(2)}, "tags": []any{"a", "b", "c"}}
	if !Match(fs, doc) {
		t.Fatal("prepared filters do not match the document")
	}
	doc["tags"] = []any{"a"}
	if Match(fs, doc) {
		t.Fatal("containsAll matched a document missing a value")
	}
	for _, tc := range []struct {
		f     Filter
		field string
	}{
		{f(OpRegex, "name", "("), "filters[0].values[0]"},
		{f(OpSearch, "name", "x"), "filters[0].method"},
		{f(OpDistanceLessThan, "at", pt(0, 100), 1.0), "filters[0].values[0]"},
		{f(OpCreatedBefore, "", "yesterday"), "filters[0].values[0]"},
		{f(OpEqual, ""), "filters[0].attribute"},
	} {
		if err := Prepare([]Filter{tc.f}, "filters", Limits{}); fieldOf(err) != tc.field {
			t.Errorf("%+v: got %v, want field %s", tc.f, err, tc.field)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
