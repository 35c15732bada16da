package api

import (
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The protobuf JSON of ListDocuments' request, read by hand in its plain
// form, as decodeGetDocumentJSON reads GetDocument's: known fields, each
// once; strings as str reads them; enums by name; numbers as plain
// decimal integers; filter values strings, booleans, null or such
// integers. Anything else is left to protojson
// (FuzzListDocumentsRequestJSON: whatever is read here, protojson reads
// the same).

// decodeListDocumentsJSON fills m from data; false when protojson must.
func decodeListDocumentsJSON(data []byte, m *cairnv1.ListDocumentsRequest) bool {
	r := jsonReader{b: data}
	var seen [12]bool
	ok := r.object(func(key string) bool {
		i := listDocumentsField(key)
		if i < 0 || seen[i] {
			return false
		}
		seen[i] = true
		var ok bool
		switch i {
		case 0:
			m.ProjectId, ok = r.str()
		case 1:
			m.DatabaseId, ok = r.str()
		case 2:
			m.CollectionId, ok = r.str()
		case 3:
			m.Filters, ok = r.filters(0)
		case 4:
			m.Select, ok = r.strs()
		case 5:
			ok = r.array(func() bool {
				o, ok := r.order()
				m.Orders = append(m.Orders, o)
				return ok
			})
		case 6:
			var n uint64
			n, ok = r.uint(9)
			m.Limit = int32(n)
		case 7:
			var n uint64
			n, ok = r.uint(9)
			m.Offset = int32(n)
		case 8:
			m.CursorAfter, ok = r.str()
		case 9:
			m.CursorBefore, ok = r.str()
		case 10:
			var b bool
			b, ok = r.bool()
			m.Total = proto.Bool(b)
		case 11:
			m.Explain, ok = r.bool()
		}
		return ok
	})
	r.space()
	return ok && r.i == len(r.b)
}

// listDocumentsField is the field a JSON or proto name stands for, in
// field order; -1 for none.
func listDocumentsField(key string) int {
	switch key {
	case "projectId", "project_id":
		return 0
	case "databaseId", "database_id":
		return 1
	case "collectionId", "collection_id":
		return 2
	case "filters":
		return 3
	case "select":
		return 4
	case "orders":
		return 5
	case "limit":
		return 6
	case "offset":
		return 7
	case "cursorAfter", "cursor_after":
		return 8
	case "cursorBefore", "cursor_before":
		return 9
	case "total":
		return 10
	case "explain":
		return 11
	}
	return -1
}

// maxFilterDepth is the deepest nesting of filters read by hand.
const maxFilterDepth = 8

// filters reads an array of Filter objects.
func (r *jsonReader) filters(depth int) ([]*cairnv1.Filter, bool) {
	if depth > maxFilterDepth {
		return nil, false
	}
	out := []*cairnv1.Filter{}
	ok := r.array(func() bool {
		f := &cairnv1.Filter{}
		out = append(out, f)
		var seen [4]bool
		return r.object(func(key string) bool {
			i := -1
			switch key {
			case "op":
				i = 0
			case "attribute":
				i = 1
			case "values":
				i = 2
			case "filters":
				i = 3
			}
			if i < 0 || seen[i] {
				return false
			}
			seen[i] = true
			var ok bool
			switch i {
			case 0:
				var name string
				if name, ok = r.str(); ok {
					var n int32
					n, ok = cairnv1.Operator_value[name]
					f.Op = cairnv1.Operator(n)
				}
			case 1:
				f.Attribute, ok = r.str()
			case 2:
				ok = r.array(func() bool {
					v, ok := r.filterValue()
					f.Values = append(f.Values, v)
					return ok
				})
			case 3:
				f.Filters, ok = r.filters(depth + 1)
			}
			return ok
		})
	})
	return out, ok
}

// order reads an Order object.
func (r *jsonReader) order() (*cairnv1.Order, bool) {
	o := &cairnv1.Order{}
	var seen [3]bool
	ok := r.object(func(key string) bool {
		var ok bool
		switch key {
		case "attribute":
			if seen[0] {
				return false
			}
			seen[0] = true
			o.Attribute, ok = r.str()
		case "desc":
			if seen[1] {
				return false
			}
			seen[1] = true
			o.Desc, ok = r.bool()
		case "seed":
			if seen[2] {
				return false
			}
			seen[2] = true
			o.Seed, ok = r.uint(18)
		}
		return ok
	})
	return o, ok
}

// filterValue reads a filter value: a string, true, false, null or a plain
// integer small enough for a float64 to hold exactly.
func (r *jsonReader) filterValue() (*structpb.Value, bool) {
	r.space()
	if r.i >= len(r.b) {
		return nil, false
	}
	switch c := r.b[r.i]; {
	case c == '"':
		s, ok := r.str()
		return structpb.NewStringValue(s), ok
	case c == 't' || c == 'f':
		b, ok := r.bool()
		return structpb.NewBoolValue(b), ok
	case c == 'n':
		return structpb.NewNullValue(), r.word("null")
	case c == '-':
		r.i++
		if r.i == len(r.b) || r.b[r.i] < '0' || r.b[r.i] > '9' {
			return nil, false
		}
		n, ok := r.uint(15)
		return structpb.NewNumberValue(-float64(n)), ok
	default:
		n, ok := r.uint(15)
		return structpb.NewNumberValue(float64(n)), ok
	}
}

// array reads [item, ...], calling item to read each.
func (r *jsonReader) array(item func() bool) bool {
	if !r.byte('[') {
		return false
	}
	if r.byte(']') {
		return true
	}
	for {
		if !item() {
			return false
		}
		if r.byte(']') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

// word consumes the literal w after any white space.
func (r *jsonReader) word(w string) bool {
	r.space()
	if len(r.b)-r.i < len(w) || string(r.b[r.i:r.i+len(w)]) != w {
		return false
	}
	r.i += len(w)
	return r.delimited()
}

// delimited reports whether what was just read ends a JSON value (the
// next byte cannot continue it).
func (r *jsonReader) delimited() bool {
	if r.i == len(r.b) {
		return true
	}
	switch r.b[r.i] {
	case ' ', '\t', '\n', '\r', ',', ']', '}':
		return true
	}
	return false
}

func (r *jsonReader) bool() (bool, bool) {
	r.space()
	if r.word("true") {
		return true, true
	}
	return false, r.word("false")
}

// uint reads a plain decimal integer of at most digits digits, without
// leading zeros, sign, fraction or exponent.
func (r *jsonReader) uint(digits int) (uint64, bool) {
	r.space()
	start := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	n := r.i - start
	if n == 0 || n > digits || n > 1 && r.b[start] == '0' || !r.delimited() {
		return 0, false
	}
	v, err := strconv.ParseUint(string(r.b[start:r.i]), 10, 64)
	return v, err == nil
}
