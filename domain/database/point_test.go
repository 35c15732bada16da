package database

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
)

func TestCoercePoint(t *testing.T) {
	p := Attribute{Key: "at", Type: TypePoint}
	for _, tc := range []struct {
		in   any
		want []any
	}{
		{[]any{2.35, 48.85}, []any{2.35, 48.85}},
		{[]any{json.Number("-180"), json.Number("90")}, []any{-180.0, 90.0}},
		{map[string]any{"type": "Point", "coordinates": []any{1.0, -2.0}}, []any{1.0, -2.0}},
	} {
		got, err := Coerce(p, tc.in)
		if err != nil || len(got.([]any)) != 2 || got.([]any)[0] != tc.want[0] || got.([]any)[1] != tc.want[1] {
			t.Errorf("Coerce(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in  any
		msg string
	}{
		{[]any{181.0, 0.0}, "longitude must be between -180 and 180; got 181"},
		{[]any{0.0, -90.5}, "latitude must be between -90 and 90; got -90.5"},
		{[]any{0.0}, "2 numbers; got 1"},
		{[]any{"0", 0.0}, "longitude must be a number"},
		{"here", "[longitude, latitude] array"},
		{map[string]any{"type": "LineString"}, "GeoJSON Point"},
	} {
		if _, err := Coerce(p, tc.in); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Coerce(%v): %v, want %q", tc.in, err, tc.msg)
		}
	}
}

func TestPointSchemaRules(t *testing.T) {
	s := &Schema{}
	arr := Attribute{Key: "at", Type: TypePoint, Array: true}
	checkError(t, "point array", ValidateAttribute(s, &arr), domain.KindInvalid, "array", "cannot be an array")
	a := Attribute{Key: "at", Type: TypePoint, Default: []any{1.0, 2.0}}
	if err := ValidateAttribute(s, &a); err != nil {
		t.Fatal(err)
	}
	a.Status = StatusAvailable
	n := Attribute{Key: "n", Type: TypeInteger, Status: StatusAvailable}
	s.Attributes = []Attribute{a, n}
	geo := Index{Key: "by_at", Type: IndexKey, Attributes: []string{"at"}}
	if err := ValidateIndex(s, &geo); err != nil {
		t.Fatalf("geo index: %v", err)
	}
	for _, ix := range []Index{
		{Key: "u", Type: IndexUnique, Attributes: []string{"at"}},
		{Key: "two", Type: IndexKey, Attributes: []string{"n", "at"}},
	} {
		checkError(t, ix.Key, ValidateIndex(s, &ix), domain.KindInvalid, "attributes", "indexed alone")
	}
	desc := Index{Key: "desc", Type: IndexKey, Attributes: []string{"at"}, Desc: []bool{true}}
	checkError(t, "desc", ValidateIndex(s, &desc), domain.KindInvalid, "orders", "no order")
}
