package query

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

// Compare is the total order of typed values: -1, 0 or +1.
//
// Values of one type compare naturally: strings bytewise (code point order
// for valid UTF-8), int64 and float64 numerically (also with each other,
// exactly), false before true, times chronologically, arrays element by
// element. nil comes before everything. Values of different kinds (which
// a schema never mixes) order by kind: nil, bool, number, string, time,
// array, anything else; NaN orders before every other number.
func Compare(a, b any) int {
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case rankNil:
		return 0
	case rankBool:
		x, y := a.(bool), b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case rankNumber:
		return compareNumbers(a, b)
	case rankString:
		return strings.Compare(a.(string), b.(string))
	case rankTime:
		return a.(time.Time).Compare(b.(time.Time))
	case rankArray:
		x, y := a.([]any), b.([]any)
		for i := 0; i < len(x) && i < len(y); i++ {
			if c := Compare(x[i], y[i]); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(x), len(y))
	}
	return strings.Compare(fmt.Sprintf("%T %v", a, a), fmt.Sprintf("%T %v", b, b))
}

const (
	rankNil = iota
	rankBool
	rankNumber
	rankString
	rankTime
	rankArray
	rankOther
)

func rank(v any) int {
	switch v.(type) {
	case nil:
		return rankNil
	case bool:
		return rankBool
	case int64, float64, int:
		return rankNumber
	case string:
		return rankString
	case time.Time:
		return rankTime
	case []any:
		return rankArray
	}
	return rankOther
}

func compareNumbers(a, b any) int {
	if x, ok := a.(int); ok {
		a = int64(x)
	}
	if y, ok := b.(int); ok {
		b = int64(y)
	}
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmp.Compare(x, y)
		case float64:
			return compareIntFloat(x, y)
		}
	case float64:
		switch y := b.(type) {
		case int64:
			return -compareIntFloat(y, x)
		case float64:
			return cmp.Compare(x, y) // NaN first, as cmp.Compare orders it
		}
	}
	return 0
}

// compareIntFloat compares exactly, without rounding i to a float64.
func compareIntFloat(i int64, f float64) int {
	switch {
	case math.IsNaN(f):
		return 1
	case f >= 1<<63:
		return -1
	case f < -(1 << 63):
		return 1
	}
	t := math.Trunc(f)
	if c := cmp.Compare(i, int64(t)); c != 0 {
		return c
	}
	// Same integer part: the fraction decides.
	switch {
	case f > t:
		return -1
	case f < t:
		return 1
	}
	return 0
}

// Match reports whether doc satisfies every filter: the reference
// evaluator. doc maps attribute keys (system attributes included, as "$id"
// and so on) to typed values; an absent key is nil.
//
// Semantics are SQL's: every comparison with a nil document value is false,
// the negated ones (notEqual, notContains, notStartsWith, notEndsWith,
// notBetween, notSearch) included; only isNull matches nil. equal with
// several values is IN, notEqual NOT IN; startsWith/endsWith/contains with
// several values match when any value does, their negations when none
// does. between is inclusive; notBetween is < lo or > hi. contains on a
// string is a case-sensitive substring test, on an array true when some
// element equals some value; containsAny is contains, containsAll needs
// every value to hit. regex is an unanchored RE2 match on a string. exists
// and notExists are isNotNull and isNull; createdBefore/After/Between and
// updated… are lessThan/greaterThan/between on $createdAt/$updatedAt.
// distanceLessThan and the other distance operators compare the haversine
// distance (Distance) with the filter's meters; intersects is InPolygon,
// notIntersects its negation. elemMatch is true when some non-null element
// of the array matches all nested filters, each evaluated on a document
// holding only that element under the array's key.
// search is true when every token (Tokens) of
// the search string is among the tokens of the document's value.
//
// Match never panics; filters that Validate would reject match nothing.
func Match(filters []Filter, doc map[string]any) bool {
	for i := range filters {
		if !matchOne(&filters[i], doc) {
			return false
		}
	}
	return true
}

func matchOne(f *Filter, doc map[string]any) bool {
	if g, ok := desugar(*f); ok {
		return matchOne(&g, doc)
	}
	switch f.Op {
	case OpAnd:
		return Match(f.Filters, doc)
	case OpOr:
		for i := range f.Filters {
			if matchOne(&f.Filters[i], doc) {
				return true
			}
		}
		return false
	}
	v := doc[f.Attribute]
	switch f.Op {
	case OpIsNull:
		return v == nil
	case OpIsNotNull:
		return v != nil
	}
	if v == nil {
		return false
	}
	if isGeo(f.Op) {
		return matchGeo(f, v)
	}
	switch f.Op {
	case OpElemMatch:
		arr, _ := v.([]any)
		for _, e := range arr {
			if e != nil && len(f.Filters) > 0 && Match(f.Filters, map[string]any{f.Attribute: e}) {
				return true
			}
		}
		return false
	case OpEqual:
		return anyValue(f.Values, func(x any) bool { return Compare(v, x) == 0 })
	case OpNotEqual:
		return len(f.Values) > 0 && !anyValue(f.Values, func(x any) bool { return Compare(v, x) == 0 })
	case OpLessThan:
		return len(f.Values) == 1 && Compare(v, f.Values[0]) < 0
	case OpLessThanEqual:
		return len(f.Values) == 1 && Compare(v, f.Values[0]) <= 0
	case OpGreaterThan:
		return len(f.Values) == 1 && Compare(v, f.Values[0]) > 0
	case OpGreaterThanEqual:
		return len(f.Values) == 1 && Compare(v, f.Values[0]) >= 0
	case OpBetween:
		return len(f.Values) == 2 && Compare(v, f.Values[0]) >= 0 && Compare(v, f.Values[1]) <= 0
	case OpNotBetween:
		return len(f.Values) == 2 && (Compare(v, f.Values[0]) < 0 || Compare(v, f.Values[1]) > 0)
	case OpStartsWith, OpNotStartsWith, OpEndsWith, OpNotEndsWith:
		s, ok := v.(string)
		if !ok || len(f.Values) == 0 {
			return false
		}
		test := strings.HasPrefix
		if f.Op == OpEndsWith || f.Op == OpNotEndsWith {
			test = strings.HasSuffix
		}
		hit := anyValue(f.Values, func(x any) bool { p, ok := x.(string); return ok && test(s, p) })
		if f.Op == OpStartsWith || f.Op == OpEndsWith {
			return hit
		}
		return !hit
	case OpContains, OpNotContains:
		if len(f.Values) == 0 {
			return false
		}
		hit := contains(v, f.Values)
		if f.Op == OpContains {
			return hit
		}
		return !hit
	case OpContainsAll:
		return len(f.Values) > 0 && !slices.ContainsFunc(f.Values, func(x any) bool { return !contains(v, []any{x}) })
	case OpRegex:
		s, ok := v.(string)
		if !ok || len(f.Values) != 1 {
			return false
		}
		re := f.re
		if re == nil {
			p, ok := f.Values[0].(string)
			if !ok || len(p) > MaxRegexBytes {
				return false
			}
			var err error
			if re, err = regexp.Compile(p); err != nil {
				return false
			}
		}
		return re.MatchString(s)
	case OpSearch, OpNotSearch:
		s, ok := v.(string)
		if !ok || len(f.Values) != 1 {
			return false
		}
		q, ok := f.Values[0].(string)
		if !ok {
			return false
		}
		hit := search(s, q)
		if f.Op == OpSearch {
			return hit
		}
		return !hit
	}
	return false
}

func anyValue(values []any, pred func(any) bool) bool {
	return slices.ContainsFunc(values, pred)
}

func contains(v any, values []any) bool {
	switch v := v.(type) {
	case string:
		return anyValue(values, func(x any) bool { sub, ok := x.(string); return ok && strings.Contains(v, sub) })
	case []any:
		for _, e := range v {
			if e != nil && anyValue(values, func(x any) bool { return Compare(e, x) == 0 }) {
				return true
			}
		}
	}
	return false
}

func search(text, q string) bool {
	have := make(map[string]bool)
	for _, t := range Tokens(text) {
		have[t] = true
	}
	for _, t := range Tokens(q) {
		if !have[t] {
			return false
		}
	}
	return true
}

// MaxTokenBytes is the longest token Tokens returns.
const MaxTokenBytes = 64

// Tokens splits s into the words a fulltext index holds and a search
// looks up; the index builder must use it too. It lowercases s with
// strings.ToLower, splits it at every rune that is neither a Unicode letter
// nor a Unicode digit (invalid UTF-8 is such a rune), drops empty words,
// cuts each word to at most MaxTokenBytes bytes at a rune boundary, and
// returns the distinct words in order of first occurrence (after cutting).
func Tokens(s string) []string {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == utf8.RuneError || !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	out := words[:0]
	seen := make(map[string]bool, len(words))
	for _, w := range words {
		if len(w) > MaxTokenBytes {
			n := MaxTokenBytes
			for n > 0 && !utf8.RuneStart(w[n]) {
				n--
			}
			w = w[:n]
		}
		if w == "" || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// Less returns the comparator (negative, zero, positive, as slices.SortFunc
// wants) that orders documents by orders, nil first in ascending order and
// last in descending order, with ties broken by "$sequence" ascending. An
// OrderRandom order compares randomKey(Seed, $id).
func Less(orders []Order) func(a, b map[string]any) int {
	orders = slices.Clone(orders)
	return func(a, b map[string]any) int {
		for _, o := range orders {
			var c int
			if o.Attribute == OrderRandom {
				c = cmp.Compare(randomKey(o.Seed, a[database.AttrID]), randomKey(o.Seed, b[database.AttrID]))
			} else {
				c = Compare(a[o.Attribute], b[o.Attribute])
			}
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return Compare(a[database.AttrSequence], b[database.AttrSequence])
	}
}

// randomKey is a document's place in the seed's shuffle: FNV-1a of the
// seed and the $id, finished with a multiply-xorshift so that ids that
// differ in their last byte land far apart.
func randomKey(seed uint64, id any) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	s, _ := id.(string)
	h.Write([]byte(s))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

// Run answers a validated query on docs by brute force: the documents that
// Match its filters, sorted by Less(q.Orders), then the page the cursor,
// offset and limit select. A Limit of 0 means no limit.
//
// A cursor names a document of docs by $id (it need not match the
// filters); the page holds the matching documents after (before) it in the
// query's order. For CursorBefore, offset and limit count backwards from
// the cursor and the page keeps the query's order. An unknown cursor is a
// KindInvalid error. Select is not applied: documents are returned as is.
func Run(q *Query, docs []map[string]any) ([]map[string]any, error) {
	less := Less(q.Orders)
	var cursor map[string]any
	field, id := "", ""
	switch {
	case q.CursorAfter != "":
		field, id = "cursorAfter", q.CursorAfter
	case q.CursorBefore != "":
		field, id = "cursorBefore", q.CursorBefore
	}
	if id != "" {
		for _, d := range docs {
			if s, ok := d[database.AttrID].(string); ok && s == id {
				cursor = d
				break
			}
		}
		if cursor == nil {
			return nil, domain.FieldError(field, "document %q for the cursor does not exist", id)
		}
	}
	var out []map[string]any
	for _, d := range docs {
		if !Match(q.Filters, d) {
			continue
		}
		if cursor != nil {
			c := less(d, cursor)
			if field == "cursorAfter" && c <= 0 || field == "cursorBefore" && c >= 0 {
				continue
			}
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, less)
	if field == "cursorBefore" {
		slices.Reverse(out)
	}
	out = page(out, q.Offset, q.Limit)
	if field == "cursorBefore" {
		slices.Reverse(out)
	}
	return out, nil
}

func page(docs []map[string]any, offset, limit int) []map[string]any {
	if offset > 0 {
		if offset >= len(docs) {
			return nil
		}
		docs = docs[offset:]
	}
	if limit > 0 && limit < len(docs) {
		docs = docs[:limit]
	}
	return docs
}
