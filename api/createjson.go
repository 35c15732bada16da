package api

import (
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The protobuf JSON of CreateDocument's request, read by hand as
// GetDocument's is (reqjson.go): protojson reads it by reflection, the
// document's data value by value, which was ~6 % of a create's CPU.
// Only the plainest form is read here — known fields, each once, ids as
// strings without escapes or non-ASCII bytes, data as an object whose
// keys are distinct, strings (and permissions) in valid UTF-8 with JSON's
// escapes but those of surrogates,
// numbers in strict JSON syntax that fit a float64, nested no deeper than
// maxHandDepth; anything else (null, an escape, an unknown or repeated
// field, a syntax error) is left to protojson, which then decides and
// words any error (FuzzCreateDocumentRequestJSON: whatever is read here,
// protojson reads the same). The data becomes the same structpb.Struct
// protojson makes, so the write path and its schema checks are unchanged.

// maxHandDepth bounds the nesting read by hand; deeper goes to protojson
// (whose own limit is far higher).
const maxHandDepth = 32

// decodeCreateDocumentJSON fills m from data; false when protojson must.
func decodeCreateDocumentJSON(data []byte, m *cairnv1.CreateDocumentRequest) bool {
	r := jsonReader{b: data}
	ok := r.object(func(key string) bool {
		switch key {
		case "projectId", "project_id":
			return r.setStr(&m.ProjectId)
		case "databaseId", "database_id":
			return r.setStr(&m.DatabaseId)
		case "collectionId", "collection_id":
			return r.setStr(&m.CollectionId)
		case "document":
			if m.Document != nil {
				return false
			}
			m.Document = &cairnv1.DocumentInput{}
			return r.documentInput(m.Document)
		}
		return false
	})
	if !ok {
		return false
	}
	r.space()
	return r.i == len(r.b)
}

// documentInput reads a DocumentInput object.
func (r *jsonReader) documentInput(d *cairnv1.DocumentInput) bool {
	var idSeen bool
	return r.object(func(key string) bool {
		switch key {
		case "documentId", "document_id":
			if idSeen {
				return false
			}
			idSeen = true
			v, ok := r.str()
			d.DocumentId = v
			return ok
		case "data":
			if d.Data != nil {
				return false
			}
			st, ok := r.structValue(0)
			d.Data = st
			return ok
		case "permissions":
			if d.Permissions != nil {
				return false
			}
			d.Permissions = &cairnv1.Permissions{}
			return r.permissions(d.Permissions)
		}
		return false
	})
}

func (r *jsonReader) permissions(p *cairnv1.Permissions) bool {
	var seen bool
	return r.object(func(key string) bool {
		if key != "values" || seen {
			return false
		}
		seen = true
		var ok bool
		p.Values, ok = r.texts()
		return ok
	})
}

// setStr reads a string into *dst, which must still be empty: a field
// named twice (or under both its names) is protojson's to refuse.
func (r *jsonReader) setStr(dst *string) bool {
	if *dst != "" {
		return false
	}
	v, ok := r.str()
	if !ok || v == "" {
		// An empty string is the unset value: a second mention could
		// not be told apart, so protojson reads it.
		return false
	}
	*dst = v
	return true
}

// object reads an object whose members field reads (after the key and
// the colon).
func (r *jsonReader) object(field func(key string) bool) bool {
	if !r.byte('{') {
		return false
	}
	if r.byte('}') {
		return true
	}
	for {
		key, ok := r.str()
		if !ok || !r.byte(':') || !field(key) {
			return false
		}
		if r.byte('}') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

// structValue reads a JSON object as a google.protobuf.Struct.
func (r *jsonReader) structValue(depth int) (*structpb.Struct, bool) {
	if depth > maxHandDepth || !r.byte('{') {
		return nil, false
	}
	st := &structpb.Struct{}
	if r.byte('}') {
		return st, true
	}
	st.Fields = make(map[string]*structpb.Value, 8)
	for {
		key, ok := r.text()
		if !ok || !r.byte(':') {
			return nil, false
		}
		if _, dup := st.Fields[key]; dup {
			return nil, false
		}
		v, ok := r.value(depth + 1)
		if !ok {
			return nil, false
		}
		st.Fields[key] = v
		if r.byte('}') {
			return st, true
		}
		if !r.byte(',') {
			return nil, false
		}
	}
}

// value reads one JSON value as a google.protobuf.Value.
func (r *jsonReader) value(depth int) (*structpb.Value, bool) {
	r.space()
	if r.i >= len(r.b) {
		return nil, false
	}
	switch c := r.b[r.i]; {
	case c == '"':
		s, ok := r.text()
		return &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: s}}, ok
	case c == '{':
		st, ok := r.structValue(depth)
		return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: st}}, ok
	case c == '[':
		l, ok := r.list(depth)
		return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: l}}, ok
	case c == 't':
		return structpb.NewBoolValue(true), r.word("true")
	case c == 'f':
		return structpb.NewBoolValue(false), r.word("false")
	case c == 'n':
		return structpb.NewNullValue(), r.word("null")
	case c == '-' || '0' <= c && c <= '9':
		f, ok := r.number()
		return &structpb.Value{Kind: &structpb.Value_NumberValue{NumberValue: f}}, ok
	}
	return nil, false
}

func (r *jsonReader) list(depth int) (*structpb.ListValue, bool) {
	if depth > maxHandDepth || !r.byte('[') {
		return nil, false
	}
	l := &structpb.ListValue{}
	if r.byte(']') {
		return l, true
	}
	for {
		v, ok := r.value(depth + 1)
		if !ok {
			return nil, false
		}
		l.Values = append(l.Values, v)
		if r.byte(']') {
			return l, true
		}
		if !r.byte(',') {
			return nil, false
		}
	}
}

// text reads a string: ASCII or valid UTF-8, without control characters,
// with JSON's escapes except \u escapes of surrogates (pairs included).
func (r *jsonReader) text() (string, bool) {
	if !r.byte('"') {
		return "", false
	}
	start, ascii := r.i, true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			b := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(b) {
				return "", false
			}
			return string(b), true
		case c == '\\':
			return r.escaped(start)
		case c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// escaped finishes text's string, which started at start, from its first
// backslash on.
func (r *jsonReader) escaped(start int) (string, bool) {
	out := append(make([]byte, 0, r.i-start+16), r.b[start:r.i]...)
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			r.i++
			continue
		}
		if r.i+1 >= len(r.b) {
			return "", false
		}
		e := r.b[r.i+1]
		r.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if r.i+4 > len(r.b) {
				return "", false
			}
			v, err := strconv.ParseUint(string(r.b[r.i:r.i+4]), 16, 32)
			if err != nil || r.b[r.i] == '+' || 0xd800 <= v && v < 0xe000 {
				return "", false
			}
			out = utf8.AppendRune(out, rune(v))
			r.i += 4
		default:
			return "", false
		}
	}
	return "", false
}

// number reads a number in JSON's grammar that a float64 holds (a larger
// one is protojson's to refuse).
func (r *jsonReader) number() (float64, bool) {
	start := r.i
	digits := func() int {
		n := 0
		for r.i < len(r.b) && '0' <= r.b[r.i] && r.b[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	switch {
	case r.i < len(r.b) && r.b[r.i] == '0':
		r.i++
	case digits() == 0:
		return 0, false
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if digits() == 0 {
			return 0, false
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	if !r.delimited() {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r.b[start:r.i]), 64)
	return f, err == nil
}

// texts reads an array of text strings.
func (r *jsonReader) texts() ([]string, bool) {
	var out []string
	ok := r.array(func() bool {
		s, ok := r.text()
		out = append(out, s)
		return ok
	})
	return out, ok
}
