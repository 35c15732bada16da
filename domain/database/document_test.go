package database

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
)

func docSchema() *Schema {
	return &Schema{Attributes: []Attribute{
		{Key: "name", Type: TypeString, Size: 20, Required: true, Status: StatusAvailable, CreatedSeq: 1},
		{Key: "age", Type: TypeInteger, IntMin: 0, IntMax: 150, Status: StatusAvailable, CreatedSeq: 2},
		{Key: "role", Type: TypeEnum, Elements: []string{"admin", "user"}, Default: "user", Status: StatusAvailable, CreatedSeq: 3},
		{Key: "tags", Type: TypeString, Size: 5, Array: true, Default: []any{"new"}, Status: StatusAvailable, CreatedSeq: 4},
		{Key: "born", Type: TypeDatetime, Status: StatusProcessing, CreatedSeq: 5},
		{Key: "gone", Type: TypeBoolean, Status: StatusDeleting, CreatedSeq: 6},
		{Key: "broken", Type: TypeBoolean, Status: StatusFailed, CreatedSeq: 7},
	}}
}

func TestNormalizeCreate(t *testing.T) {
	s := docSchema()
	tests := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"defaults fill absent",
			map[string]any{"name": "Ada"},
			map[string]any{"name": "Ada", "age": nil, "role": "user", "tags": []any{"new"}, "born": nil}},
		{"all given, typed",
			map[string]any{"name": "Ada", "age": 36.0, "role": "admin", "tags": []any{"x", "y"}, "born": "1815-12-10T00:00:00+01:00"},
			map[string]any{"name": "Ada", "age": int64(36), "role": "admin", "tags": []any{"x", "y"},
				"born": time.Date(1815, 12, 9, 23, 0, 0, 0, time.UTC)}},
		{"explicit null keeps null, not the default",
			map[string]any{"name": "Ada", "role": nil, "tags": nil},
			map[string]any{"name": "Ada", "age": nil, "role": nil, "tags": nil, "born": nil}},
		{"empty array",
			map[string]any{"name": "Ada", "tags": []any{}},
			map[string]any{"name": "Ada", "age": nil, "role": "user", "tags": []any{}, "born": nil}},
	}
	for _, tt := range tests {
		got, err := s.Normalize(tt.in, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, got, tt.want)
		}
	}
}

func TestNormalizeDefaultNotShared(t *testing.T) {
	s := docSchema()
	got, err := s.Normalize(map[string]any{"name": "Ada"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got["tags"].([]any)[0] = "changed"
	if s.Attributes[3].Default.([]any)[0] != "new" {
		t.Error("the document shares its array with the attribute's default")
	}
}

func TestNormalizeUpdate(t *testing.T) {
	s := docSchema()
	born := time.Date(1815, 12, 10, 0, 0, 0, 0, time.UTC)
	base := map[string]any{"name": "Ada", "age": int64(36), "role": "admin", "tags": []any{"x"}, "born": born}
	tests := []struct {
		name string
		in   map[string]any
		base map[string]any
		want map[string]any
	}{
		{"no changes", map[string]any{}, base,
			map[string]any{"name": "Ada", "age": int64(36), "role": "admin", "tags": []any{"x"}, "born": born}},
		{"one change", map[string]any{"age": 37.0}, base,
			map[string]any{"name": "Ada", "age": int64(37), "role": "admin", "tags": []any{"x"}, "born": born}},
		{"null clears", map[string]any{"role": nil, "born": nil}, base,
			map[string]any{"name": "Ada", "age": int64(36), "role": nil, "tags": []any{"x"}, "born": nil}},
		{"base without a newer attribute gets its default", map[string]any{"age": 1.0}, map[string]any{"name": "Ada"},
			map[string]any{"name": "Ada", "age": int64(1), "role": "user", "tags": []any{"new"}, "born": nil}},
		{"base values are not checked again", map[string]any{}, map[string]any{"name": strings.Repeat("x", 30)},
			map[string]any{"name": strings.Repeat("x", 30), "age": nil, "role": "user", "tags": []any{"new"}, "born": nil}},
	}
	for _, tt := range tests {
		got, err := s.Normalize(tt.in, tt.base)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, got, tt.want)
		}
	}
	if base["age"] != int64(36) {
		t.Error("Normalize changed base")
	}
}

func TestNormalizeRejects(t *testing.T) {
	s := docSchema()
	base := map[string]any{"name": "Ada", "age": int64(36)}
	tests := []struct {
		name  string
		in    map[string]any
		base  map[string]any
		field string
		msg   string
	}{
		{"required absent", map[string]any{"age": 3.0}, nil, "data.name", `attribute "name" is required`},
		{"required null", map[string]any{"name": nil}, nil, "data.name", `attribute "name" is required`},
		{"required cleared on update", map[string]any{"name": nil}, base, "data.name", `attribute "name" is required`},
		{"required missing from base", map[string]any{"age": 1.0}, map[string]any{}, "data.name", `attribute "name" is required`},
		{"bad value", map[string]any{"name": "Ada", "age": 151.0}, nil, "data.age", `attribute "age": must be an integer between 0 and 150; got 151`},
		{"bad value on update", map[string]any{"age": "x"}, base, "data.age", `attribute "age": must be an integer; got a string`},
		{"bad array element", map[string]any{"name": "Ada", "tags": []any{"ok", "toolong"}}, nil, "data.tags", `attribute "tags": element 1: must be a string of at most 5 characters; got 7`},
		{"processing attribute checked", map[string]any{"name": "Ada", "born": "yesterday"}, nil, "data.born", `attribute "born": must be an RFC 3339 datetime`},
		{"unknown key", map[string]any{"name": "Ada", "nick": "a"}, nil, "data.nick", `unknown attribute "nick"`},
		{"system key", map[string]any{"name": "Ada", "$id": "x"}, nil, "data.$id", `"$id" is a system field, not data`},
		{"system key on update", map[string]any{"$permissions": []any{}}, base, "data.$permissions", "is a system field, not data"},
		{"deleting attribute", map[string]any{"name": "Ada", "gone": true}, nil, "data.gone", `attribute "gone" is not available (status deleting)`},
		{"failed attribute", map[string]any{"name": "Ada", "broken": true}, nil, "data.broken", "status failed"},
		{"first in attribute order", map[string]any{"age": -1.0, "role": "boss"}, nil, "data.name", `attribute "name" is required`},
		{"first bad value in attribute order", map[string]any{"name": "Ada", "tags": "x", "age": -1.0, "role": "boss"}, nil, "data.age", `attribute "age"`},
		{"keys before values, sorted", map[string]any{"name": 1.0, "zz": 1, "aa": 1, "$b": 1}, nil, "data.$b", "system field"},
		{"unknown keys sorted", map[string]any{"name": 1.0, "zz": 1, "aa": 1}, nil, "data.aa", `unknown attribute "aa"`},
	}
	for _, tt := range tests {
		got, err := s.Normalize(tt.in, tt.base)
		if err == nil {
			t.Errorf("%s: got %v, want error", tt.name, got)
			continue
		}
		checkError(t, tt.name, err, domain.KindInvalid, tt.field, tt.msg)
	}
}

func TestNormalizeSize(t *testing.T) {
	s := &Schema{Attributes: []Attribute{
		{Key: "a", Type: TypeString, Size: MaxStringSize, Status: StatusAvailable},
		{Key: "b", Type: TypeString, Size: MaxStringSize, Status: StatusAvailable},
	}}
	half := strings.Repeat("x", MaxDocumentBytes/2)
	if _, err := s.Normalize(map[string]any{"a": half[:len(half)-100]}, nil); err != nil {
		t.Errorf("half a document: %v", err)
	}
	_, err := s.Normalize(map[string]any{"a": half, "b": half}, nil)
	checkError(t, "too big", err, domain.KindInvalid, "data", "a document holds at most 262144 bytes")
	// On an update the document's unchanged values count too.
	_, err = s.Normalize(map[string]any{"b": half}, map[string]any{"a": half})
	checkError(t, "too big after update", err, domain.KindInvalid, "data", "at most 262144 bytes")
}

func TestRead(t *testing.T) {
	s := &Schema{Attributes: []Attribute{
		{Key: "name", Type: TypeString, Size: 20, Status: StatusAvailable, CreatedSeq: 1},
		// score was deleted and created again, as a float, at sequence 10.
		{Key: "score", Type: TypeFloat, Default: 0.5, Status: StatusAvailable, CreatedSeq: 10},
		{Key: "tags", Type: TypeString, Size: 5, Array: true, Default: []any{"t"}, Status: StatusProcessing, CreatedSeq: 12},
		{Key: "note", Type: TypeString, Size: 5, Status: StatusAvailable, CreatedSeq: 13},
		{Key: "gone", Type: TypeBoolean, Status: StatusDeleting, CreatedSeq: 2},
	}}
	tests := []struct {
		name   string
		stored map[string]any
		seq    uint64
		want   map[string]any
	}{
		{"old document: recreated attribute reads as its default",
			map[string]any{"name": "Ada", "score": "high", "gone": true, "dropped": 1.0}, 5,
			map[string]any{"name": "Ada", "score": 0.5, "tags": []any{"t"}, "note": nil}},
		{"written at the attribute's creation",
			map[string]any{"name": "Ada", "score": 0.9}, 10,
			map[string]any{"name": "Ada", "score": 0.9, "tags": []any{"t"}, "note": nil}},
		{"new document keeps its values",
			map[string]any{"name": "Ada", "score": 0.9, "tags": []any{"a"}, "note": "n"}, 20,
			map[string]any{"name": "Ada", "score": 0.9, "tags": []any{"a"}, "note": "n"}},
		{"new document keeps stored nulls",
			map[string]any{"name": nil, "score": nil, "tags": nil}, 20,
			map[string]any{"name": nil, "score": nil, "tags": nil, "note": nil}},
		{"new document without a key reads the default",
			map[string]any{"name": "Ada"}, 20,
			map[string]any{"name": "Ada", "score": 0.5, "tags": []any{"t"}, "note": nil}},
		{"nil stored", nil, 20,
			map[string]any{"name": nil, "score": 0.5, "tags": []any{"t"}, "note": nil}},
	}
	for _, tt := range tests {
		got := s.Read(tt.stored, tt.seq)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, got, tt.want)
		}
	}
	got := s.Read(nil, 0)
	got["tags"].([]any)[0] = "changed"
	if s.Attributes[2].Default.([]any)[0] != "t" {
		t.Error("Read shares its array with the attribute's default")
	}
}

func TestReadThenNormalizeUpdate(t *testing.T) {
	s := &Schema{Attributes: []Attribute{
		{Key: "name", Type: TypeString, Size: 20, Status: StatusAvailable, CreatedSeq: 1},
		{Key: "score", Type: TypeInteger, Default: int64(1), Status: StatusAvailable, CreatedSeq: 10},
	}}
	// Stored before score was recreated as an integer: its old string value
	// must not survive a partial update of another attribute.
	base := s.Read(map[string]any{"name": "Ada", "score": "high"}, 5)
	got, err := s.Normalize(map[string]any{"name": "Grace"}, base)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "Grace", "score": int64(1)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestDocumentFields(t *testing.T) {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	updated := created.Add(time.Hour)
	d := Document{ID: "d1", Data: map[string]any{"name": "Ada"}, CreatedAt: created, UpdatedAt: updated, Sequence: 42, Version: 50}
	want := map[string]any{"name": "Ada", AttrID: "d1", AttrCreatedAt: created, AttrUpdatedAt: updated, AttrSequence: int64(42)}
	if got := d.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %#v, want %#v", got, want)
	}
	if len(d.Data) != 1 {
		t.Error("Fields changed Data")
	}
	d.Sequence = math.MaxUint64
	if got := d.Fields()[AttrSequence]; got != int64(math.MaxInt64) {
		t.Errorf("huge sequence = %v, want MaxInt64", got)
	}
	for key, v := range d.Fields() {
		if a, ok := SystemAttribute(key); ok {
			if _, err := Coerce(a, v); err != nil {
				t.Errorf("%s = %v does not fit its system attribute: %v", key, v, err)
			}
		}
	}
}

func TestEncodedSize(t *testing.T) {
	tm := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	data := map[string]any{
		"s":   "abc",
		"n":   int64(-12),
		"i":   7,
		"f":   1.5,
		"b":   true,
		"nil": nil,
		"t":   tm,
		"arr": []any{"a", int64(1)},
		"obj": map[string]any{"k": "v"},
		"odd": struct{}{},
	}
	for k, v := range data {
		single := map[string]any{k: v}
		enc, err := json.Marshal(ToJSON(single))
		if err != nil {
			t.Fatal(err)
		}
		got := EncodedSize(single)
		// The estimate counts a comma per member (one more than JSON has)
		// and true as long as false.
		if k != "odd" && got > len(enc)+3 {
			t.Errorf("EncodedSize(%s) = %d, JSON is %d bytes (%s)", k, got, len(enc), enc)
		}
		if got < len(enc) {
			t.Errorf("EncodedSize(%s) = %d under the JSON size %d", k, got, len(enc))
		}
	}
	if got := EncodedSize(nil); got != 2 {
		t.Errorf("EncodedSize(nil) = %d, want 2", got)
	}
}
