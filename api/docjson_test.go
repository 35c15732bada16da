package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestDocumentJSONKnowsEveryField fails when a field is added to a
// message docjson.go writes by hand: teach appendDocumentJSON (or
// appendListDocumentsJSON) the field and add it to documentFields.
// Until then the server answers with protojson (documentJSONCurrent).
func TestDocumentJSONKnowsEveryField(t *testing.T) {
	if !documentJSONCurrent {
		t.Fatal("cairn.v1.Document or a document answer has fields docjson.go does not write: teach it the new field")
	}
}

// TestDocumentJSONMatchesProtojson writes random documents both ways:
// the hand-written JSON must be protojson's, byte for byte once
// protojson's random whitespace is compacted away, and decode to the same
// message.
func TestDocumentJSONMatchesProtojson(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 1))
	for i := range 3000 {
		msg := randomAnswer(rng, i%5)
		want, err := protojson.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, want); err != nil {
			t.Fatal(err)
		}
		got, ok := appendAnswerJSON(nil, msg)
		if !ok {
			t.Fatalf("appendAnswerJSON refused %v", msg)
		}
		if !bytes.Equal(got, compact.Bytes()) {
			t.Fatalf("message %d:\n got %s\nwant %s", i, got, compact.Bytes())
		}
		back := msg.ProtoReflect().New().Interface()
		if err := protojson.Unmarshal(got, back); err != nil || !proto.Equal(back, msg) {
			t.Fatalf("message %d decodes to %v (%v), want %v", i, back, err, msg)
		}
	}
}

// TestDocumentJSONLeavesErrorsToProtojson: what protojson refuses, the
// hand-written JSON does not write (protojson then answers its error),
// and messages it does not know are left to protojson.
func TestDocumentJSONLeavesErrorsToProtojson(t *testing.T) {
	withData := func(v *structpb.Value) *cairnv1.GetDocumentResponse {
		return &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Id: "d", Data: &structpb.Struct{Fields: map[string]*structpb.Value{"a": v}}}}
	}
	for name, msg := range map[string]proto.Message{
		"NaN":             withData(structpb.NewNumberValue(math.NaN())),
		"infinity":        withData(structpb.NewNumberValue(math.Inf(-1))),
		"no kind":         withData(&structpb.Value{}),
		"nil value":       withData(nil),
		"bad UTF-8 value": withData(structpb.NewStringValue("a\xffb")),
		"bad UTF-8 key": &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{
			Data: &structpb.Struct{Fields: map[string]*structpb.Value{"\xff": structpb.NewNullValue()}}}},
		"bad UTF-8 permission": &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Permissions: []string{"read(\"any\")\xc3"}}},
		"year 10000":           &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{CreatedAt: &timestamppb.Timestamp{Seconds: maxTimestampSeconds + 1}}},
		"negative nanos":       &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{UpdatedAt: &timestamppb.Timestamp{Nanos: -1}}},
		"explain":              &cairnv1.ListDocumentsResponse{Explain: &cairnv1.Explain{}},
		"nil list element":     &cairnv1.ListDocumentsResponse{Documents: []*cairnv1.Document{nil}},
		"other message":        &cairnv1.UpsertDocumentResponse{Document: &cairnv1.Document{Id: "d"}},
	} {
		if got, ok := appendAnswerJSON(nil, msg); ok {
			t.Errorf("%s: wrote %s, want it left to protojson", name, got)
		}
		if _, isDoc := msg.(*cairnv1.GetDocumentResponse); isDoc {
			if _, err := protojson.Marshal(msg); err == nil && name != "nil value" {
				t.Errorf("%s: protojson accepts it: the case is not one protojson refuses", name)
			}
		}
	}
}

func randomDocument(rng *rand.Rand) *cairnv1.Document {
	d := &cairnv1.Document{}
	if rng.IntN(8) > 0 {
		d.Id, d.ProjectId, d.DatabaseId, d.CollectionId = randomString(rng), "proj", randomString(rng), "items"
	}
	if rng.IntN(6) > 0 {
		d.Data = randomStruct(rng, 0)
	}
	for range rng.IntN(3) {
		d.Permissions = append(d.Permissions, `read("`+randomString(rng)+`")`)
	}
	if rng.IntN(5) > 0 {
		d.CreatedAt = randomTime(rng)
		d.UpdatedAt = randomTime(rng)
	}
	if rng.IntN(4) > 0 {
		d.Sequence, d.Version = rng.Uint64N(1<<20), rng.Uint64()
	}
	return d
}

func randomTime(rng *rand.Rand) *timestamppb.Timestamp {
	ts := &timestamppb.Timestamp{Seconds: rng.Int64N(maxTimestampSeconds-minTimestampSeconds) + minTimestampSeconds}
	switch rng.IntN(5) {
	case 0:
	case 1:
		ts.Nanos = rng.Int32N(1000) * 1_000_000
	case 2:
		ts.Nanos = rng.Int32N(1_000_000) * 1000
	default:
		ts.Nanos = rng.Int32N(1_000_000_000)
	}
	if rng.IntN(10) == 0 {
		ts.Seconds = []int64{minTimestampSeconds, maxTimestampSeconds, 0, -1}[rng.IntN(4)]
	}
	return ts
}

func randomStruct(rng *rand.Rand, depth int) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for range rng.IntN(20) {
		s.Fields[randomString(rng)] = randomValue(rng, depth)
	}
	return s
}

func randomValue(rng *rand.Rand, depth int) *structpb.Value {
	n := 6
	if depth < 3 {
		n = 8
	}
	switch rng.IntN(n) {
	case 0:
		return structpb.NewNullValue()
	case 1:
		return structpb.NewBoolValue(rng.IntN(2) == 0)
	case 2, 3:
		return structpb.NewNumberValue(randomNumber(rng))
	case 4, 5:
		return structpb.NewStringValue(randomString(rng))
	case 6:
		if rng.IntN(8) == 0 {
			return &structpb.Value{Kind: &structpb.Value_StructValue{}}
		}
		return structpb.NewStructValue(randomStruct(rng, depth+1))
	default:
		if rng.IntN(8) == 0 {
			return &structpb.Value{Kind: &structpb.Value_ListValue{}}
		}
		l := &structpb.ListValue{}
		for range rng.IntN(5) {
			l.Values = append(l.Values, randomValue(rng, depth+1))
		}
		return structpb.NewListValue(l)
	}
}

func randomNumber(rng *rand.Rand) float64 {
	switch rng.IntN(8) {
	case 0:
		return float64(rng.IntN(2000) - 1000)
	case 1:
		return rng.Float64()
	case 2:
		return math.Copysign(0, -1)
	case 3:
		return []float64{1e21, 9.99e20, 1e-6, 9.9e-7, 1e-7, 1.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53, 1<<53 + 2}[rng.IntN(10)]
	case 4:
		return -math.Float64frombits(rng.Uint64()&^(0x7ff<<52) | uint64(rng.IntN(0x7fe))<<52)
	default:
		return math.Float64frombits(rng.Uint64()&^(0x7ff<<52) | uint64(rng.IntN(0x7fe))<<52)
	}
}

func randomString(rng *rand.Rand) string {
	const pieces = "abcXYZ019 _-\"\\/\b\f\n\r\t\x00\x01\x1f\x7fé€😀<>&\u2028"
	runes := []rune(pieces)
	var b strings.Builder
	for range rng.IntN(12) {
		if rng.IntN(3) == 0 {
			b.WriteRune(runes[rng.IntN(len(runes))])
		} else {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
	}
	return b.String()
}

// BenchmarkListJSON encodes a page of 25 documents {title, n, tag} with
// protojson and with appendAnswerJSON.
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
			if _, ok := appendAnswerJSON(make([]byte, 0, 512*25+64), m); !ok {
				b.Fatal("not written")
			}
		}
	})
}

// randomAnswer is a random document answer of kind 0 (get), 1 (create),
// 2 (update), 3 (an empty get) or 4 and above (a list of up to three).
func randomAnswer(rng *rand.Rand, kind int) proto.Message {
	switch kind {
	case 0:
		return &cairnv1.GetDocumentResponse{Document: randomDocument(rng)}
	case 1:
		return &cairnv1.CreateDocumentResponse{Document: randomDocument(rng)}
	case 2:
		return &cairnv1.UpdateDocumentResponse{Document: randomDocument(rng)}
	case 3:
		return &cairnv1.GetDocumentResponse{}
	}
	l := &cairnv1.ListDocumentsResponse{TotalCapped: rng.IntN(3) == 0}
	for range rng.IntN(4) {
		l.Documents = append(l.Documents, randomDocument(rng))
	}
	if rng.IntN(2) == 0 {
		l.Total = proto.Int64(rng.Int64N(10000) - 10)
	}
	return l
}
