package database

import (
	"reflect"
	"testing"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Data survives the stored JSON form exactly: integers beyond float64's
// exact range, datetimes, arrays; and a schema round-trips through events.
func TestDataAndSchemaRoundTrip(t *testing.T) {
	s := &Schema{Attributes: []Attribute{
		{Key: "n", Type: TypeInteger, IntMin: MinSafeInteger, IntMax: MaxSafeInteger, Status: StatusAvailable},
		{Key: "at", Type: TypeDatetime, Status: StatusAvailable},
		{Key: "tags", Type: TypeString, Size: 10, Array: true, Status: StatusAvailable},
		{Key: "f", Type: TypeFloat, FloatMin: -10, FloatMax: 10, Default: 1.5, Status: StatusAvailable, CreatedSeq: 5},
	}}
	at := time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC)
	data := map[string]any{"n": int64(MaxSafeInteger), "at": at, "tags": []any{"a", "b"}, "f": 2.5}
	js, err := EncodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DecodeData(js, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got["n"] != int64(MaxSafeInteger) || !got["at"].(time.Time).Equal(at) || got["f"] != 2.5 || len(got["tags"].([]any)) != 2 {
		t.Fatalf("round trip: %s → %#v", js, got)
	}
	// Written before f existed: f reads as its default.
	if got, _ := s.DecodeData(js, 4); got["f"] != 1.5 {
		t.Fatalf("old document reads f = %v, want the default", got["f"])
	}
	var c eventsv1.Collection
	for _, a := range s.Attributes {
		ea, err := AttributeEvent(a)
		if err != nil {
			t.Fatal(err)
		}
		c.Attributes = append(c.Attributes, ea)
	}
	c.Indexes = append(c.Indexes, IndexEvent(Index{Key: "by_n", Type: IndexKey, Attributes: []string{"n"}, Desc: []bool{true}, UID: "U1", Status: StatusAvailable}))
	back, err := SchemaOf(&c)
	if err != nil {
		t.Fatal(err)
	}
	if back.Attributes[3].Default != 1.5 || back.Attributes[3].CreatedSeq != 5 || !back.Indexes[0].Desc[0] || back.Indexes[0].UID != "U1" {
		t.Fatalf("schema round trip: %+v", back)
	}
	if _, err := s.DecodeData(`[1]`, 1); err == nil {
		t.Fatal("a stored non-object decoded")
	}
}

// TestDecodeMemberAgrees: DecodeMember of one member gives what
// DecodeDataOnly gives for that attribute of the whole data: stored
// values, values that do not coerce, nulls, absent members, members older
// than their attribute, unknown keys.
func TestDecodeMemberAgrees(t *testing.T) {
	s := &Schema{Attributes: []Attribute{
		{Key: "n", Type: TypeInteger, IntMin: -100, IntMax: 100, Status: StatusAvailable},
		{Key: "late", Type: TypeInteger, IntMin: -100, IntMax: 100, Default: int64(7), CreatedSeq: 5, Status: StatusAvailable},
		{Key: "s", Type: TypeString, Size: 10, Default: "d", Status: StatusAvailable},
		{Key: "gone", Type: TypeString, Size: 10, Status: StatusDeleting},
	}}
	members := map[string][]string{
		"n":    {`3`, `-4`, `1e1`, `2.5`, `"x"`, `null`, `1000`, ``, `-0`, `0`, `100`, `-100`, `101`, `-101`, `123456789012345678901`},
		"late": {`3`, `null`, ``},
		"s":    {`"abc"`, `"\u00e9"`, `"01234567890123"`, `true`, ``, `""`, `"é"`, `"éééééééééé"`, `"ééééééééééé"`, `"a\"b"`, `"0123456789"`, `3`},
		"gone": {`"x"`, ``},
		"none": {`1`, ``},
	}
	for key, raws := range members {
		for _, raw := range raws {
			for _, version := range []uint64{0, 5, 9} {
				data := "{}"
				if raw != "" {
					data = `{"` + key + `":` + raw + `}`
				}
				whole, err := s.DecodeDataOnly(data, version, nil)
				if err != nil {
					t.Fatal(err)
				}
				want, wok := whole[key]
				got, ok, err := s.DecodeMember(key, raw, version)
				if err != nil || ok != wok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s at version %d: %#v %v %v, want %#v %v", data, version, got, ok, err, want, wok)
				}
			}
		}
	}
}
