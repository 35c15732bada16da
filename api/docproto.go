package api

import (
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The protobuf binary of document answers, written by hand as their JSON
// is (docjson.go): proto.Marshal sizes and walks a document's Struct by
// reflection, a map entry and a Value message per attribute, and was the
// binary answer's largest cost beside the read itself. What is written
// here is what proto.Marshal writes with Deterministic set (fields in
// number order, map keys sorted), checked byte for byte by
// TestDocumentProtoMatchesMarshal; what Marshal refuses (invalid UTF-8 in
// a string) or a case it decides differently (a nil map value, unknown
// fields) makes these functions report false, and the codec answers.

// appendAnswerProto appends msg's protobuf encoding when it is a document
// answer this file writes by hand; false for any other message or a case
// proto.Marshal must decide.
func appendAnswerProto(b []byte, msg any) ([]byte, bool) {
	if !documentJSONCurrent { // the same messages, the same fields
		return b, false
	}
	switch m := msg.(type) {
	case *cairnv1.GetDocumentResponse:
		return appendDocumentAnswerProto(b, m.GetDocument(), len(m.ProtoReflect().GetUnknown()) == 0)
	case *cairnv1.CreateDocumentResponse:
		return appendDocumentAnswerProto(b, m.GetDocument(), len(m.ProtoReflect().GetUnknown()) == 0)
	case *cairnv1.UpdateDocumentResponse:
		return appendDocumentAnswerProto(b, m.GetDocument(), len(m.ProtoReflect().GetUnknown()) == 0)
	case *cairnv1.ListDocumentsResponse:
		if m.GetExplain() != nil || len(m.ProtoReflect().GetUnknown()) > 0 {
			return b, false
		}
		for _, d := range m.GetDocuments() {
			n, ok := documentSize(d)
			if !ok {
				return b, false
			}
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(n))
			b = appendDocumentProto(b, d)
		}
		if m.Total != nil {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(*m.Total))
		}
		if m.GetTotalCapped() {
			b = protowire.AppendTag(b, 4, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
		return b, true
	}
	return b, false
}

// appendDocumentAnswerProto appends a response holding one document
// (field 1 alone).
func appendDocumentAnswerProto(b []byte, d *cairnv1.Document, plain bool) ([]byte, bool) {
	if !plain {
		return b, false
	}
	if d == nil {
		return b, true
	}
	n, ok := documentSize(d)
	if !ok {
		return b, false
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	return appendDocumentProto(b, d), true
}

// documentSize is d's encoded size; false when the codec must decide.
func documentSize(d *cairnv1.Document) (int, bool) {
	if d == nil || len(d.ProtoReflect().GetUnknown()) > 0 {
		return 0, false
	}
	n := 0
	for _, s := range []string{d.GetId(), d.GetProjectId(), d.GetDatabaseId(), d.GetCollectionId()} {
		if s != "" {
			if !utf8.ValidString(s) {
				return 0, false
			}
			n += 1 + protowire.SizeBytes(len(s))
		}
	}
	if d.Data != nil {
		s, ok := structSize(d.Data)
		if !ok {
			return 0, false
		}
		n += 1 + protowire.SizeBytes(s)
	}
	for _, p := range d.GetPermissions() {
		if !utf8.ValidString(p) {
			return 0, false
		}
		n += 1 + protowire.SizeBytes(len(p))
	}
	for _, ts := range []*timestamppb.Timestamp{d.CreatedAt, d.UpdatedAt} {
		if ts != nil {
			if len(ts.ProtoReflect().GetUnknown()) > 0 {
				return 0, false
			}
			n += 1 + protowire.SizeBytes(timestampSize(ts))
		}
	}
	if d.Sequence != 0 {
		n += 1 + protowire.SizeVarint(d.Sequence)
	}
	if d.Version != 0 {
		n += 1 + protowire.SizeVarint(d.Version)
	}
	return n, true
}

// appendDocumentProto appends d's fields; documentSize has checked it.
func appendDocumentProto(b []byte, d *cairnv1.Document) []byte {
	for i, s := range []string{d.GetId(), d.GetProjectId(), d.GetDatabaseId(), d.GetCollectionId()} {
		if s != "" {
			b = protowire.AppendTag(b, protowire.Number(i+1), protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	if d.Data != nil {
		s, _ := structSize(d.Data)
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(s))
		b = appendStructProto(b, d.Data)
	}
	for _, p := range d.GetPermissions() {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, p)
	}
	for i, ts := range []*timestamppb.Timestamp{d.CreatedAt, d.UpdatedAt} {
		if ts != nil {
			b = protowire.AppendTag(b, protowire.Number(7+i), protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(timestampSize(ts)))
			if ts.Seconds != 0 {
				b = protowire.AppendTag(b, 1, protowire.VarintType)
				b = protowire.AppendVarint(b, uint64(ts.Seconds))
			}
			if ts.Nanos != 0 {
				b = protowire.AppendTag(b, 2, protowire.VarintType)
				b = protowire.AppendVarint(b, uint64(int64(ts.Nanos)))
			}
		}
	}
	if d.Sequence != 0 {
		b = protowire.AppendTag(b, 9, protowire.VarintType)
		b = protowire.AppendVarint(b, d.Sequence)
	}
	if d.Version != 0 {
		b = protowire.AppendTag(b, 10, protowire.VarintType)
		b = protowire.AppendVarint(b, d.Version)
	}
	return b
}

func timestampSize(ts *timestamppb.Timestamp) int {
	n := 0
	if ts.Seconds != 0 {
		n += 1 + protowire.SizeVarint(uint64(ts.Seconds))
	}
	if ts.Nanos != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(ts.Nanos)))
	}
	return n
}

// structSize is s's encoded size: one map entry (key 1, value 2) per
// field.
func structSize(s *structpb.Struct) (int, bool) {
	if len(s.ProtoReflect().GetUnknown()) > 0 {
		return 0, false
	}
	n := 0
	for k, v := range s.GetFields() {
		if v == nil || !utf8.ValidString(k) {
			return 0, false
		}
		vs, ok := valueSize(v)
		if !ok {
			return 0, false
		}
		entry := 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(vs)
		n += 1 + protowire.SizeBytes(entry)
	}
	return n, true
}

// appendStructProto appends s's map entries, keys sorted (Deterministic).
func appendStructProto(b []byte, s *structpb.Struct) []byte {
	var small [16]string
	keys := small[:0]
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := s.Fields[k]
		vs, _ := valueSize(v)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(k))+1+protowire.SizeBytes(vs)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(vs))
		b = appendValueProto(b, v)
	}
	return b
}

// valueSize is v's encoded size: its one kind, written even when zero.
func valueSize(v *structpb.Value) (int, bool) {
	if len(v.ProtoReflect().GetUnknown()) > 0 {
		return 0, false
	}
	switch k := v.GetKind().(type) {
	case nil:
		return 0, true
	case *structpb.Value_NullValue:
		return 1 + protowire.SizeVarint(uint64(k.NullValue)), true
	case *structpb.Value_NumberValue:
		return 1 + 8, true
	case *structpb.Value_StringValue:
		if !utf8.ValidString(k.StringValue) {
			return 0, false
		}
		return 1 + protowire.SizeBytes(len(k.StringValue)), true
	case *structpb.Value_BoolValue:
		return 1 + 1, true
	case *structpb.Value_StructValue:
		n := 0
		if k.StructValue != nil {
			var ok bool
			if n, ok = structSize(k.StructValue); !ok {
				return 0, false
			}
		}
		return 1 + protowire.SizeBytes(n), true
	case *structpb.Value_ListValue:
		n := 0
		if l := k.ListValue; l != nil {
			if len(l.ProtoReflect().GetUnknown()) > 0 {
				return 0, false
			}
			for _, e := range l.GetValues() {
				if e == nil {
					return 0, false
				}
				es, ok := valueSize(e)
				if !ok {
					return 0, false
				}
				n += 1 + protowire.SizeBytes(es)
			}
		}
		return 1 + protowire.SizeBytes(n), true
	}
	return 0, false
}

// appendValueProto appends v's kind; valueSize has checked it.
func appendValueProto(b []byte, v *structpb.Value) []byte {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k.NullValue))
	case *structpb.Value_NumberValue:
		b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(k.NumberValue))
	case *structpb.Value_StringValue:
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, k.StringValue)
	case *structpb.Value_BoolValue:
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(k.BoolValue))
	case *structpb.Value_StructValue:
		n := 0
		if k.StructValue != nil {
			n, _ = structSize(k.StructValue)
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		if k.StructValue != nil {
			b = appendStructProto(b, k.StructValue)
		}
	case *structpb.Value_ListValue:
		n := 0
		if k.ListValue != nil {
			for _, e := range k.ListValue.GetValues() {
				es, _ := valueSize(e)
				n += 1 + protowire.SizeBytes(es)
			}
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		if k.ListValue != nil {
			for _, e := range k.ListValue.GetValues() {
				es, _ := valueSize(e)
				b = protowire.AppendTag(b, 1, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(es))
				b = appendValueProto(b, e)
			}
		}
	}
	return b
}
