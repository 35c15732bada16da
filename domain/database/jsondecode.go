package database

import (
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// fastJSON decodes the JSON value b into the tree encoding/json's Decoder
// with UseNumber gives (map[string]any, []any, string, json.Number, bool,
// nil). It reads every stored document, so it avoids encoding/json's
// two passes and reflection. It reports false for anything it does not
// handle exactly as encoding/json would — a syntax error, trailing data,
// invalid UTF-8, a lone surrogate escape, deep nesting — and decodeJSON
// then asks encoding/json, so results and errors never differ.
func fastJSON(b string) (any, bool) {
	d := jsonDecoder{b: b}
	v, ok := d.value(0, true)
	if !ok {
		return nil, false
	}
	d.space()
	return v, d.i == len(d.b)
}

// fastJSONOnly is fastJSON for an object whose members keep rejects are
// dropped: they are checked as fastJSON checks them but not built. It
// reports false where fastJSON would, and for a value that is not an
// object.
func fastJSONOnly(b string, keep func(string) bool) (map[string]any, bool) {
	return fastJSONInto(nil, b, keep)
}

// fastJSONInto is fastJSONOnly building the top-level object in top
// (cleared first) when it is not nil.
func fastJSONInto(top map[string]any, b string, keep func(string) bool) (map[string]any, bool) {
	d := jsonDecoder{b: b, keep: keep, top: top}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, false
	}
	v, ok := d.value(0, true)
	if !ok {
		return nil, false
	}
	d.space()
	return v.(map[string]any), d.i == len(d.b)
}

// PlainObject reports whether b is a JSON object and nothing more (space
// aside), read as fastJSON reads it but building nothing: then
// Schema.DecodeData accepts b as document data. False is no verdict (it
// hands encoding/json what it does not read exactly as encoding/json
// would); ask DecodeData.
func PlainObject(b string) bool {
	d := jsonDecoder{b: b}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return false
	}
	if _, ok := d.value(0, false); !ok {
		return false
	}
	d.space()
	return d.i == len(d.b)
}

type jsonDecoder struct {
	b string
	i int
	// keep, when set, selects the members of the top-level object built.
	keep func(string) bool
	// top, when set, is the map the top-level object is built in.
	top map[string]any
}

// maxFastDepth is the nesting fastJSON handles; deeper goes to encoding/json.
const maxFastDepth = 100

// next consumes what follows a member or an element: ',' (more follow)
// or end (done); anything else is malformed (ok false).
func (d *jsonDecoder) next(end byte) (done, ok bool) {
	d.space()
	if d.i >= len(d.b) {
		return false, false
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return false, true
	case end:
		d.i++
		return true, true
	}
	return false, false
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value reads a value, building it only when build is set (else it
// returns nil for it, having checked it all the same).
func (d *jsonDecoder) value(depth int, build bool) (any, bool) {
	d.space()
	if d.i >= len(d.b) || depth > maxFastDepth {
		return nil, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		var m map[string]any
		switch {
		case build && depth == 0 && d.top != nil:
			m = d.top
			clear(m)
		case build:
			m = map[string]any{}
		}
		d.space()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return m, true
		}
		for {
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != '"' {
				return nil, false
			}
			k, ok := d.str(build)
			if !ok {
				return nil, false
			}
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return nil, false
			}
			d.i++
			keep := build && (depth > 0 || d.keep == nil || d.keep(k))
			v, ok := d.value(depth+1, keep)
			if !ok {
				return nil, false
			}
			if keep {
				m[k] = v
			}
			if done, ok := d.next('}'); !ok {
				return nil, false
			} else if done {
				return m, true
			}
		}
	case c == '[':
		d.i++
		var a []any
		if build {
			a = []any{}
		}
		d.space()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return a, true
		}
		for {
			v, ok := d.value(depth+1, build)
			if !ok {
				return nil, false
			}
			if build {
				a = append(a, v)
			}
			if done, ok := d.next(']'); !ok {
				return nil, false
			} else if done {
				return a, true
			}
		}
	case c == '"':
		return d.str(build)
	case c == '-' || '0' <= c && c <= '9':
		return d.number(build)
	}
	for _, lit := range [...]struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if len(d.b)-d.i >= len(lit.s) && d.b[d.i:d.i+len(lit.s)] == lit.s {
			d.i += len(lit.s)
			return lit.v, true
		}
	}
	return nil, false
}

// str reads a string at d.i (its opening quote); "" unless build.
func (d *jsonDecoder) str(build bool) (string, bool) {
	d.i++
	start := d.i
	// The common case: no escape, all ASCII.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := ""
			if build {
				s = d.b[start:d.i]
			}
			d.i++
			return s, true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.i++
	}
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !build {
				return "", true
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(d.b[d.i:])
			if r == utf8.RuneError && n == 1 {
				return "", false // encoding/json substitutes U+FFFD
			}
			out = append(out, d.b[d.i:d.i+n]...)
			d.i += n
		case c != '\\':
			out = append(out, c)
			d.i++
		default:
			if d.i+1 >= len(d.b) {
				return "", false
			}
			e := d.b[d.i+1]
			d.i += 2
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
				r, ok := d.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					if d.i+1 >= len(d.b) || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
						return "", false
					}
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", false
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return "", false
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
		}
	}
	return "", false
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(d.b[d.i : d.i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}

// number reads a number as JSON's grammar has it, kept as its text
// (nil unless build).
func (d *jsonDecoder) number(build bool) (any, bool) {
	start := d.i
	digits := func() int {
		n := 0
		for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.b[d.i] == '-' {
		d.i++
	}
	if d.i < len(d.b) && d.b[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return nil, false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	if !build {
		return nil, true
	}
	return json.Number(d.b[start:d.i]), true
}
