package api

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

var listJSONStrings = []string{"", "a", "document number 12", `quote " and \ backslash`, "tab\tnew\nline\r\b\f", "\x00\x01\x1f\x7f", "é ü 漢字 🙂",
	"\u2028\u2029", "<script>&amp;</script>", "/slash/", "{", "}", "[,]"}

var listJSONNumbers = []float64{0, math.Copysign(0, -1), 1, -1, 42, 1e6, 123456789, 9007199254740991, -9007199254740991, 0.1, 2.5, -3.75,
	1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 1.7976931348623157e308, 5e-324, 123.456e15}

func randomValue(r *rand.Rand, depth int) *structpb.Value {
	switch k := r.IntN(7); {
	case k == 0:
		return structpb.NewNullValue()
	case k == 1:
		return structpb.NewBoolValue(r.IntN(2) == 0)
	case k == 2:
		return structpb.NewNumberValue(listJSONNumbers[r.IntN(len(listJSONNumbers))])
	case k == 3 && depth < 3:
		return structpb.NewStructValue(randomStruct(r, depth+1))
	case k == 4 && depth < 3:
		l := &structpb.ListValue{}
		for range r.IntN(4) {
			l.Values = append(l.Values, randomValue(r, depth+1))
		}
		return structpb.NewListValue(l)
	}
	return structpb.NewStringValue(listJSONStrings[r.IntN(len(listJSONStrings))])
}

func randomStruct(r *rand.Rand, depth int) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for range r.IntN(6) {
		s.Fields[listJSONStrings[r.IntN(len(listJSONStrings))]+fmt.Sprint(r.IntN(3))] = randomValue(r, depth)
	}
	return s
}

func randomTimestamp(r *rand.Rand) *timestamppb.Timestamp {
	if r.IntN(5) == 0 {
		return nil
	}
	nanos := []int32{0, 1, 1000, 1_000_000, 500_000_000, 123_456_789, 999_999_999, 120_000_000}[r.IntN(8)]
	secs := []int64{0, 1, -1, 1_700_000_000, -62135596800, 253402300799}[r.IntN(6)]
	return &timestamppb.Timestamp{Seconds: secs, Nanos: nanos}
}

func randomList(r *rand.Rand) *cairnv1.ListDocumentsResponse {
	m := &cairnv1.ListDocumentsResponse{TotalCapped: r.IntN(3) == 0}
	if r.IntN(2) == 0 {
		t := []int64{0, 1, 25, 5000, -1, math.MaxInt64}[r.IntN(6)]
		m.Total = &t
	}
	for range r.IntN(5) {
		d := &cairnv1.Document{CreatedAt: randomTimestamp(r), UpdatedAt: randomTimestamp(r)}
		d.Id, d.ProjectId = listJSONStrings[r.IntN(len(listJSONStrings))], listJSONStrings[r.IntN(len(listJSONStrings))]
		d.DatabaseId, d.CollectionId = listJSONStrings[r.IntN(len(listJSONStrings))], listJSONStrings[r.IntN(len(listJSONStrings))]
		if r.IntN(4) > 0 {
			d.Data = randomStruct(r, 0)
		}
		for range r.IntN(3) {
			d.Permissions = append(d.Permissions, listJSONStrings[r.IntN(len(listJSONStrings))])
		}
		d.Sequence = []uint64{0, 1, 12345, math.MaxUint64}[r.IntN(4)]
		d.Version = []uint64{0, 7, math.MaxUint64}[r.IntN(3)]
		m.Documents = append(m.Documents, d)
	}
	return m
}

// TestListJSONAgreesWithProtojson: what appendListJSON writes decodes
// (with protojson) to the message it was given, and is the same JSON
// value as protojson's own encoding; what it does not write, it says so.
func TestListJSONAgreesWithProtojson(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 3))
	for i := range 3000 {
		m := randomList(r)
		got, ok := appendListJSON(nil, m)
		if !ok {
			t.Fatalf("message %d: not written: %v", i, m)
		}
		back := &cairnv1.ListDocumentsResponse{}
		if err := protojson.Unmarshal(got, back); err != nil {
			t.Fatalf("message %d: %s: %v", i, got, err)
		}
		if !proto.Equal(back, m) {
			t.Fatalf("message %d: %s decodes to %v, want %v", i, got, back, m)
		}
		want, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var gv, wv any
		if err := json.Unmarshal(got, &gv); err != nil {
			t.Fatalf("message %d: %s: %v", i, got, err)
		}
		if err := json.Unmarshal(want, &wv); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gv, wv) {
			t.Fatalf("message %d:\n got  %s\n want %s", i, got, want)
		}
	}
	for name, m := range map[string]*cairnv1.ListDocumentsResponse{
		"explain":       {Explain: &cairnv1.Explain{Index: "x"}},
		"invalid UTF-8": {Documents: []*cairnv1.Document{{Id: "a\xffb"}}},
		"NaN":           {Documents: []*cairnv1.Document{{Data: &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(math.NaN())}}}}},
		"no kind":       {Documents: []*cairnv1.Document{{Data: &structpb.Struct{Fields: map[string]*structpb.Value{"x": {}}}}}},
		"time":          {Documents: []*cairnv1.Document{{CreatedAt: timestamppb.New(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}}},
	} {
		if b, ok := appendListJSON(nil, m); ok {
			t.Errorf("%s: written as %s", name, b)
		}
	}
}

// BenchmarkListJSON encodes a page of 25 documents {title, n, tag} with
// protojson and with appendListJSON.
func BenchmarkListJSON(b *testing.B) {
	m := &cairnv1.ListDocumentsResponse{}
	for i := range 25 {
		data, err := structpb.NewStruct(map[string]any{"title": fmt.Sprintf("document number %d", i), "n": i * 7919, "tag": "t3"})
		if err != nil {
			b.Fatal(err)
		}
		now := timestamppb.New(time.Unix(1_700_000_000, 123_000_000))
		m.Documents = append(m.Documents, &cairnv1.Document{Id: fmt.Sprintf("d%d", i), ProjectId: "bench", DatabaseId: "main", CollectionId: "posts",
			Data: data, Permissions: []string{`read("any")`}, CreatedAt: now, UpdatedAt: now, Sequence: uint64(100 + i), Version: uint64(100 + i)})
	}
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := protojson.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := appendListJSON(make([]byte, 0, 512*25+64), m); !ok {
				b.Fatal("not written")
			}
		}
	})
}
