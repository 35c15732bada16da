package api

import (
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The protobuf JSON of document answers, written by hand: protojson
// walks a document's Struct by reflection, one Value message per
// attribute, and that was the largest single cost of GetDocument's
// answer. What is written here is what protojson writes (the same
// names, omissions and number, string and time formats), checked by
// TestDocumentJSONMatchesProtojson; anything these functions do not
// handle (a Value with no kind, NaN, invalid UTF-8, a time out of range,
// an Explain) makes them report false, and protojson answers instead,
// with its own result or error.

// appendDocumentAnswerJSON appends the JSON of a response holding one
// document (Get/Create/UpdateDocumentResponse: field 1 alone).
func appendDocumentAnswerJSON(b []byte, d *cairnv1.Document) ([]byte, bool) {
	b = append(b, '{')
	if d != nil {
		var ok bool
		b = append(b, `"document":`...)
		if b, ok = appendDocumentJSON(b, d); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendListDocumentsJSON appends the JSON of a ListDocumentsResponse.
func appendListDocumentsJSON(b []byte, res *cairnv1.ListDocumentsResponse) ([]byte, bool) {
	if res.GetExplain() != nil {
		return b, false
	}
	b = append(b, '{')
	first := true
	if docs := res.GetDocuments(); len(docs) > 0 {
		first = false
		b = append(b, `"documents":[`...)
		for i, d := range docs {
			if i > 0 {
				b = append(b, ',')
			}
			if d == nil {
				return b, false
			}
			var ok bool
			if b, ok = appendDocumentJSON(b, d); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	if res.Total != nil {
		b = comma(b, &first)
		b = append(b, `"total":"`...)
		b = strconv.AppendInt(b, *res.Total, 10)
		b = append(b, '"')
	}
	if res.GetTotalCapped() {
		b = comma(b, &first)
		b = append(b, `"totalCapped":true`...)
	}
	return append(b, '}'), true
}

func comma(b []byte, first *bool) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	return b
}

// appendDocumentJSON appends d as protojson does.
func appendDocumentJSON(b []byte, d *cairnv1.Document) ([]byte, bool) {
	b = append(b, '{')
	first := true
	ok := true
	str := func(name, v string) {
		if v == "" || !ok {
			return
		}
		b = comma(b, &first)
		b = append(b, name...)
		b, ok = appendJSONString(b, v)
	}
	str(`"id":`, d.GetId())
	str(`"projectId":`, d.GetProjectId())
	str(`"databaseId":`, d.GetDatabaseId())
	str(`"collectionId":`, d.GetCollectionId())
	if !ok {
		return b, false
	}
	if d.Data != nil {
		b = comma(b, &first)
		b = append(b, `"data":`...)
		if b, ok = appendStructJSON(b, d.Data); !ok {
			return b, false
		}
	}
	if ps := d.GetPermissions(); len(ps) > 0 {
		b = comma(b, &first)
		b = append(b, `"permissions":[`...)
		for i, p := range ps {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendJSONString(b, p); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	for _, t := range [...]struct {
		name string
		ts   *timestamppb.Timestamp
	}{{`"createdAt":`, d.CreatedAt}, {`"updatedAt":`, d.UpdatedAt}} {
		if t.ts == nil {
			continue
		}
		b = comma(b, &first)
		b = append(b, t.name...)
		if b, ok = appendTimestampJSON(b, t.ts); !ok {
			return b, false
		}
	}
	for _, u := range [...]struct {
		name string
		v    uint64
	}{{`"sequence":"`, d.GetSequence()}, {`"version":"`, d.GetVersion()}} {
		if u.v == 0 {
			continue
		}
		b = comma(b, &first)
		b = append(b, u.name...)
		b = strconv.AppendUint(b, u.v, 10)
		b = append(b, '"')
	}
	return append(b, '}'), true
}

// appendStructJSON appends a Struct as a JSON object, its keys sorted (as
// protojson's map order).
func appendStructJSON(b []byte, s *structpb.Struct) ([]byte, bool) {
	if len(s.GetFields()) == 0 {
		return append(b, "{}"...), true
	}
	var small [16]string
	keys := small[:0]
	for k := range s.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	var ok bool
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = appendJSONString(b, k); !ok {
			return b, false
		}
		b = append(b, ':')
		if b, ok = appendValueJSON(b, s.Fields[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendValueJSON(b []byte, v *structpb.Value) ([]byte, bool) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		return append(b, "null"...), true
	case *structpb.Value_NumberValue:
		return database.AppendJSONFloat(b, k.NumberValue)
	case *structpb.Value_StringValue:
		return appendJSONString(b, k.StringValue)
	case *structpb.Value_BoolValue:
		return strconv.AppendBool(b, k.BoolValue), true
	case *structpb.Value_StructValue:
		return appendStructJSON(b, k.StructValue)
	case *structpb.Value_ListValue:
		b = append(b, '[')
		var ok bool
		for i, e := range k.ListValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendValueJSON(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	// No kind (or a nil Value): protojson's error.
	return b, false
}

// appendJSONString writes s quoted as protojson does: only '"', '\\' and
// control characters escaped; invalid UTF-8 is protojson's error.
func appendJSONString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return b, false
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\')
		switch c {
		case '"', '\\':
			b = append(b, c)
		case '\b':
			b = append(b, 'b')
		case '\f':
			b = append(b, 'f')
		case '\n':
			b = append(b, 'n')
		case '\r':
			b = append(b, 'r')
		case '\t':
			b = append(b, 't')
		default:
			b = append(b, 'u')
			b = append(b, "0000"[1+(bits.Len32(uint32(c))-1)/4:]...)
			b = strconv.AppendUint(b, uint64(c), 16)
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

// Timestamp bounds protojson accepts: 0001-01-01 to 9999-12-31.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// appendTimestampJSON writes RFC 3339 in UTC with 0, 3, 6 or 9 fractional
// digits, as protojson does.
func appendTimestampJSON(b []byte, ts *timestamppb.Timestamp) ([]byte, bool) {
	secs, nanos := ts.GetSeconds(), ts.GetNanos()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos > 999_999_999 {
		return b, false
	}
	b = append(b, '"')
	b = time.Unix(secs, 0).UTC().AppendFormat(b, "2006-01-02T15:04:05")
	if nanos != 0 {
		var frac [10]byte
		f := strconv.AppendInt(frac[:0], int64(nanos)+1e9, 10) // "1" + 9 digits
		digits := f[1:]
		switch {
		case nanos%1_000_000 == 0:
			digits = digits[:3]
		case nanos%1_000 == 0:
			digits = digits[:6]
		}
		b = append(b, '.')
		b = append(b, digits...)
	}
	return append(b, `Z"`...), true
}

// documentFields are the fields of cairn.v1.Document appendDocumentJSON
// writes; documentJSONCurrent compares them with the compiled message, so
// a field added to Document turns the hand-written JSON off (protojson
// answers) until it is taught here (TestDocumentJSONKnowsEveryField).
var documentFields = []protoreflect.Name{"id", "project_id", "database_id", "collection_id", "data", "permissions",
	"created_at", "updated_at", "sequence", "version"}

var listDocumentsFields = []protoreflect.Name{"documents", "total", "explain", "total_capped"}

func fieldsAre(md protoreflect.MessageDescriptor, names []protoreflect.Name) bool {
	fs := md.Fields()
	if fs.Len() != len(names) {
		return false
	}
	for _, n := range names {
		if fs.ByName(n) == nil {
			return false
		}
	}
	return true
}

// documentJSONCurrent is whether the hand-written JSON knows every field
// of the messages it writes.
var documentJSONCurrent = fieldsAre((&cairnv1.Document{}).ProtoReflect().Descriptor(), documentFields) &&
	fieldsAre((&cairnv1.ListDocumentsResponse{}).ProtoReflect().Descriptor(), listDocumentsFields) &&
	fieldsAre((&cairnv1.GetDocumentResponse{}).ProtoReflect().Descriptor(), []protoreflect.Name{"document"}) &&
	fieldsAre((&cairnv1.CreateDocumentResponse{}).ProtoReflect().Descriptor(), []protoreflect.Name{"document"}) &&
	fieldsAre((&cairnv1.UpdateDocumentResponse{}).ProtoReflect().Descriptor(), []protoreflect.Name{"document"})

// appendAnswerJSON appends msg's JSON when it is a document answer this
// file writes by hand; false for any other message or a case protojson
// must decide.
func appendAnswerJSON(b []byte, msg any) ([]byte, bool) {
	if !documentJSONCurrent {
		return b, false
	}
	switch m := msg.(type) {
	case *cairnv1.GetDocumentResponse:
		return appendDocumentAnswerJSON(b, m.GetDocument())
	case *cairnv1.CreateDocumentResponse:
		return appendDocumentAnswerJSON(b, m.GetDocument())
	case *cairnv1.UpdateDocumentResponse:
		return appendDocumentAnswerJSON(b, m.GetDocument())
	case *cairnv1.ListDocumentsResponse:
		return appendListDocumentsJSON(b, m)
	}
	return b, false
}
