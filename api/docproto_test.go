package api

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestDocumentProtoMatchesMarshal: the hand-written binary of document
// answers is proto.Marshal's with Deterministic set, byte for byte.
func TestDocumentProtoMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 5))
	extremes := &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Id: "d",
		CreatedAt: &timestamppb.Timestamp{Seconds: -62135596800, Nanos: -1}, UpdatedAt: &timestamppb.Timestamp{},
		Data: &structpb.Struct{Fields: map[string]*structpb.Value{
			"nan": structpb.NewNumberValue(math.NaN()), "inf": structpb.NewNumberValue(math.Inf(-1)), "zero": structpb.NewNumberValue(0),
			"none": {}, "empty": structpb.NewStringValue(""), "false": structpb.NewBoolValue(false),
			"nilstruct": {Kind: &structpb.Value_StructValue{}}, "nillist": {Kind: &structpb.Value_ListValue{}}, "": structpb.NewNullValue()}}}}
	for i := range 3000 {
		msg := randomAnswer(rng, i%6)
		if i%12 == 3 {
			msg = extremes
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendAnswerProto([]byte("prefix"), msg)
		if !ok {
			t.Fatalf("appendAnswerProto refused %v", msg)
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("message %d:\n got %x\nwant %x", i, got[len("prefix"):], want)
		}
	}
}

// TestDocumentProtoLeavesErrorsToMarshal: what proto.Marshal refuses or
// decides its own way, the hand-written binary does not write.
func TestDocumentProtoLeavesErrorsToMarshal(t *testing.T) {
	withData := func(v *structpb.Value) *cairnv1.GetDocumentResponse {
		return &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Id: "d", Data: &structpb.Struct{Fields: map[string]*structpb.Value{"a": v}}}}
	}
	unknown := &cairnv1.Document{Id: "d"}
	unknown.ProtoReflect().SetUnknown([]byte{0x98, 0x06, 0x01}) // field 99, varint 1
	for name, msg := range map[string]proto.Message{
		"nil value":            withData(nil),
		"nil list element":     withData(structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{nil}})),
		"bad UTF-8 value":      withData(structpb.NewStringValue("a\xffb")),
		"bad UTF-8 key":        &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Data: &structpb.Struct{Fields: map[string]*structpb.Value{"\xff": structpb.NewNullValue()}}}},
		"bad UTF-8 id":         &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Id: "\xff"}},
		"bad UTF-8 permission": &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Permissions: []string{"read(\"any\")\xc3"}}},
		"unknown fields":       &cairnv1.GetDocumentResponse{Document: unknown},
		"explain":              &cairnv1.ListDocumentsResponse{Explain: &cairnv1.Explain{}},
		"nil list document":    &cairnv1.ListDocumentsResponse{Documents: []*cairnv1.Document{nil}},
		"other message":        &cairnv1.UpsertDocumentResponse{Document: &cairnv1.Document{Id: "d"}},
	} {
		if got, ok := appendAnswerProto(nil, msg); ok {
			t.Errorf("%s: wrote %x, want it left to the codec", name, got)
		}
	}
}
