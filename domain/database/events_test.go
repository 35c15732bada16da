package database

import (
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
