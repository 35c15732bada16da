package api

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// appendListJSON appends m as protojson writes it (field names in
// lowerCamelCase, field-number order, unset fields left out, 64-bit
// integers quoted, timestamps in RFC 3339) without protojson's reflection:
// a page of 25 documents spent about a third of a covered list's CPU in
// protojson. ok is false for what it does not write (an explain, unknown
// fields, invalid UTF-8, a non-finite number, a timestamp out of range):
// the caller then uses protojson, which also reports the errors.
func appendListJSON(b []byte, m *cairnv1.ListDocumentsResponse) ([]byte, bool) {
	if m.GetExplain() != nil || len(m.ProtoReflect().GetUnknown()) > 0 {
		return b, false
	}
	b = append(b, '{')
	ok := true
	if len(m.GetDocuments()) > 0 {
		b = append(b, `"documents":[`...)
		for i, d := range m.GetDocuments() {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendDocumentJSON(b, d); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	if m.Total != nil {
		b = appendField(b, "total")
		b = append(b, '"')
		b = strconv.AppendInt(b, m.GetTotal(), 10)
		b = append(b, '"')
	}
	if m.GetTotalCapped() {
		b = appendField(b, "totalCapped")
		b = append(b, "true"...)
	}
	return append(b, '}'), true
}

// appendField appends a member's name, after a comma unless it is the
// object's first.
func appendField(b []byte, name string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendDocumentJSON(b []byte, d *cairnv1.Document) ([]byte, bool) {
	if len(d.ProtoReflect().GetUnknown()) > 0 {
		return b, false
	}
	ok := true
	b = append(b, '{')
	for _, f := range [...]struct{ name, v string }{{"id", d.GetId()}, {"projectId", d.GetProjectId()}, {"databaseId", d.GetDatabaseId()}, {"collectionId", d.GetCollectionId()}} {
		if f.v != "" {
			b = appendField(b, f.name)
			if b, ok = appendJSONString(b, f.v); !ok {
				return b, false
			}
		}
	}
	if d.GetData() != nil {
		b = appendField(b, "data")
		if b, ok = appendStructJSON(b, d.GetData(), 0); !ok {
			return b, false
		}
	}
	if len(d.GetPermissions()) > 0 {
		b = appendField(b, "permissions")
		b = append(b, '[')
		for i, p := range d.GetPermissions() {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendJSONString(b, p); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	for _, f := range [...]struct {
		name string
		t    *timestamppb.Timestamp
	}{{"createdAt", d.GetCreatedAt()}, {"updatedAt", d.GetUpdatedAt()}} {
		if f.t != nil {
			b = appendField(b, f.name)
			if b, ok = appendTimestampJSON(b, f.t); !ok {
				return b, false
			}
		}
	}
	for _, f := range [...]struct {
		name string
		v    uint64
	}{{"sequence", d.GetSequence()}, {"version", d.GetVersion()}} {
		if f.v != 0 {
			b = appendField(b, f.name)
			b = append(b, '"')
			b = strconv.AppendUint(b, f.v, 10)
			b = append(b, '"')
		}
	}
	return append(b, '}'), true
}

// maxJSONDepth bounds the nesting appendStructJSON writes; deeper data
// goes to protojson.
const maxJSONDepth = 64

func appendStructJSON(b []byte, s *structpb.Struct, depth int) ([]byte, bool) {
	if depth > maxJSONDepth || len(s.ProtoReflect().GetUnknown()) > 0 {
		return b, false
	}
	// Sorted, so a response's bytes do not depend on map order.
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ok := true
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = appendJSONString(b, k); !ok {
			return b, false
		}
		b = append(b, ':')
		if b, ok = appendValueJSON(b, s.GetFields()[k], depth+1); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendValueJSON(b []byte, v *structpb.Value, depth int) ([]byte, bool) {
	if depth > maxJSONDepth || len(v.ProtoReflect().GetUnknown()) > 0 {
		return b, false
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		return append(b, "null"...), true
	case *structpb.Value_BoolValue:
		return strconv.AppendBool(b, k.BoolValue), true
	case *structpb.Value_NumberValue:
		return appendNumberJSON(b, k.NumberValue)
	case *structpb.Value_StringValue:
		return appendJSONString(b, k.StringValue)
	case *structpb.Value_StructValue:
		if k.StructValue == nil {
			return append(b, "{}"...), true
		}
		return appendStructJSON(b, k.StructValue, depth)
	case *structpb.Value_ListValue:
		if len(k.ListValue.ProtoReflect().GetUnknown()) > 0 {
			return b, false
		}
		ok := true
		b = append(b, '[')
		for i, e := range k.ListValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendValueJSON(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false // a Value with no kind: protojson refuses it
}

// appendNumberJSON is protojson's (and encoding/json's) float64 format.
func appendNumberJSON(b []byte, n float64) ([]byte, bool) {
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(n); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, n, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if l := len(b); l >= 4 && b[l-4] == 'e' && b[l-3] == '-' && b[l-2] == '0' {
			b[l-2] = b[l-1]
			b = b[:l-1]
		}
	}
	return b, true
}

// Timestamps protojson accepts: 0001-01-01 to 9999-12-31.
const minTimestampSeconds, maxTimestampSeconds = -62135596800, 253402300799

// appendTimestampJSON is protojson's Timestamp: UTC, "Z", with 0, 3, 6
// or 9 fractional digits.
func appendTimestampJSON(b []byte, t *timestamppb.Timestamp) ([]byte, bool) {
	secs, nanos := t.GetSeconds(), t.GetNanos()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos >= 1e9 || len(t.ProtoReflect().GetUnknown()) > 0 {
		return b, false
	}
	b = append(b, '"')
	b = time.Unix(secs, 0).UTC().AppendFormat(b, "2006-01-02T15:04:05")
	if nanos != 0 {
		digits := 9
		for digits > 3 && nanos%1000 == 0 {
			nanos /= 1000
			digits -= 3
		}
		b = append(b, '.')
		s := strconv.AppendInt(nil, int64(nanos), 10)
		for range digits - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return append(b, 'Z', '"'), true
}

// appendJSONString is protojson's string: '"', '\\', control characters
// and DEL escaped, nothing else; ok is false for invalid UTF-8.
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
		if c >= ' ' && c != '"' && c != '\\' && c != 0x7f {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}
