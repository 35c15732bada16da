package sites

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// MaxRanges is the most byte ranges one request may ask for. A longer list
// is ignored and the whole file served (RFC 9110 lets a server ignore
// Range): 10,000 ranges of one byte each made a multipart answer 140 times
// the file's size.
const MaxRanges = 16

// normalizeRange rewrites r's Range header for http.ServeContent: more
// than MaxRanges ranges are dropped (200); the ranges are clamped to size,
// sorted and merged where they overlap or touch, and those naming no byte
// (a zero suffix "-0", a start past the end) are left out. When none is
// left the header asks for a range past the end, which ServeContent
// answers 416 with a valid "Content-Range: bytes */size" (it answered
// "bytes=-0" with a 206 and an invalid Content-Range). Syntax errors are
// left to ServeContent.
func normalizeRange(r *http.Request, size int64) *http.Request {
	vals := r.Header.Values("Range")
	if len(vals) != 1 {
		return r
	}
	unit, set, ok := strings.Cut(vals[0], "=")
	if !ok || strings.TrimSpace(unit) != "bytes" {
		return r
	}
	type span struct{ start, end int64 } // [start, end)
	var spans []span
	n := 0
	for elem := range strings.SplitSeq(set, ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		if n++; n > MaxRanges {
			return withRange(r, "")
		}
		first, last, ok := strings.Cut(elem, "-")
		if !ok {
			return r
		}
		if first == "" { // the last n bytes
			k, err := strconv.ParseInt(last, 10, 64)
			if err != nil || k < 0 {
				return r
			}
			if k > 0 && size > 0 {
				spans = append(spans, span{size - min(k, size), size})
			}
			continue
		}
		start, err := strconv.ParseInt(first, 10, 64)
		if err != nil || start < 0 {
			return r
		}
		end := int64(math.MaxInt64)
		if last != "" {
			l, err := strconv.ParseInt(last, 10, 64)
			if err != nil || l < start {
				return r
			}
			if l < math.MaxInt64 {
				end = l + 1
			}
		}
		if start < size {
			spans = append(spans, span{start, min(end, size)})
		}
	}
	if n == 0 {
		return r
	}
	if len(spans) == 0 {
		return withRange(r, "bytes="+strconv.FormatInt(size, 10)+"-")
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	merged := spans[:1]
	for _, s := range spans[1:] {
		if last := &merged[len(merged)-1]; s.start <= last.end {
			last.end = max(last.end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, s := range merged {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s.start, 10) + "-" + strconv.FormatInt(s.end-1, 10))
	}
	return withRange(r, b.String())
}

// withRange is a shallow copy of r with its Range header replaced ("" drops it).
func withRange(r *http.Request, v string) *http.Request {
	out := *r
	out.Header = r.Header.Clone()
	if v == "" {
		out.Header.Del("Range")
	} else {
		out.Header.Set("Range", v)
	}
	return &out
}
