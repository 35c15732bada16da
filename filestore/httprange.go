package filestore

import (
	"cmp"
	"errors"
	"math"
	"strings"
)

// Range is the byte range [Start, End) of a representation.
type Range struct{ Start, End int64 }

// ErrUnsatisfiable: a valid Range header names no byte of the representation
// (HTTP 416).
var ErrUnsatisfiable = errors.New("filestore: range not satisfiable")

// ParseRange parses an HTTP Range header value (RFC 9110 §14.2) for a
// representation of size bytes: "bytes=a-b", "bytes=a-" or "bytes=-n".
//
// ok is false, meaning "serve the whole representation" (200), when header
// is empty, not in bytes, invalid (garbage, a > b) or names more than one
// range: RFC 9110 lets a server ignore a Range header, and multipart answers
// are not worth their cost here. A valid range that names no byte (start at
// or past size, a zero suffix, an empty representation) is ErrUnsatisfiable.
// End is clamped to size. Positions too large for an int64 are valid and
// read as "beyond any size", as the RFC's unbounded digits mean.
func ParseRange(header string, size int64) (r Range, ok bool, err error) {
	unit, set, found := strings.Cut(header, "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || size < 0 {
		return Range{}, false, nil
	}
	var spec string
	for elem := range strings.SplitSeq(set, ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue // the list syntax (RFC 9110 §5.6.1) allows empty elements
		}
		if spec != "" {
			return Range{}, false, nil // more than one range
		}
		spec = elem
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return Range{}, false, nil
	}
	if first == "" { // suffix-range: the last n bytes
		n, valid := digits(last)
		if !valid {
			return Range{}, false, nil
		}
		if n == 0 || size == 0 {
			return Range{}, false, ErrUnsatisfiable
		}
		return Range{Start: size - min(n, size), End: size}, true, nil
	}
	start, valid := digits(first)
	if !valid {
		return Range{}, false, nil
	}
	end := int64(math.MaxInt64)
	if last != "" {
		l, valid := digits(last)
		if !valid || cmpDigits(last, first) < 0 {
			return Range{}, false, nil
		}
		if l < math.MaxInt64 {
			end = l + 1
		}
	}
	if start >= size {
		return Range{}, false, ErrUnsatisfiable
	}
	return Range{Start: start, End: min(end, size)}, true, nil
}

// digits parses 1*DIGIT, saturating at math.MaxInt64.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
		} else {
			n = n*10 + d
		}
	}
	return n, true
}

// cmpDigits compares two decimal numbers exactly, however long.
func cmpDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}
