package query

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

var (
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b any
		want int
	}{
		{nil, nil, 0},
		{nil, "", -1},
		{int64(0), nil, 1},
		{"a", "b", -1},
		{"b", "a", 1},
		{"a", "a", 0},
		{"Z", "a", -1},      // bytewise
		{"é", "z", 1},       // code point order
		{"\uffff", "😀", -1}, // UTF-8 order is code point order
		{int64(-3), int64(2), -1},
		{int64(math.MaxInt64), int64(math.MinInt64), 1},
		{1.5, 2.5, -1},
		{int64(2), 1.5, 1},
		{1.5, int64(2), -1},
		{int64(2), 2.0, 0},
		{int64(math.MaxInt64), 9223372036854775807.0, -1}, // the float is 2^63
		{int64(1<<53 + 1), float64(1 << 53), 1},           // exact, not rounded to float
		{int64(-1), -1.5, 1},
		{int64(-2), -1.5, -1},
		{math.NaN(), -math.MaxFloat64, -1},
		{math.NaN(), math.NaN(), 0},
		{int64(math.MinInt64), math.NaN(), 1},
		{int64(math.MinInt64), -1e19, 1},
		{int64(3), 3.5, -1},
		{3, int64(3), 0}, // int, as tests and callers may write
		{int64(3), 3.0, 0},
		{false, true, -1},
		{true, true, 0},
		{t0, t1, -1},
		{t1, t0, 1},
		{t0, t0.In(time.FixedZone("x", 3600)), 0},
		{[]any{"a"}, []any{"a", "b"}, -1},
		{[]any{"b"}, []any{"a", "b"}, 1},
		// Mixed kinds order by kind.
		{true, int64(0), -1},
		{int64(5), "5", -1},
		{"x", t0, -1},
		{t0, []any{}, -1},
		{[]any{}, struct{}{}, -1},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%#v, %#v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Compare(tt.b, tt.a); got != -tt.want {
			t.Errorf("Compare(%#v, %#v) = %d, want %d (antisymmetry)", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	doc := map[string]any{
		"$id": "d1", "$sequence": int64(7), "$createdAt": t1, "$updatedAt": t2,
		"name": "Alice Smith", "age": int64(30), "score": 2.5, "active": true, "born": t1,
		"tags": []any{"red", "blue"}, "nums": []any{int64(1), int64(2)}, "empty": []any{},
		"bio": "The quick brown Fox, jumps!",
	}
	tests := []struct {
		f    Filter
		want bool
	}{
		{f(OpEqual, "name", "Alice Smith"), true},
		{f(OpEqual, "name", "alice smith"), false},
		{f(OpEqual, "age", int64(1), int64(30)), true}, // IN
		{f(OpEqual, "age", int64(1), int64(2)), false},
		{f(OpEqual, "active", true), true},
		{f(OpEqual, "born", t1), true},
		{f(OpEqual, "missing", "x"), false},
		{f(OpNotEqual, "age", int64(1)), true},
		{f(OpNotEqual, "age", int64(1), int64(30)), false}, // NOT IN
		{f(OpNotEqual, "missing", "x"), false},             // nil: false
		{f(OpLessThan, "age", int64(31)), true},
		{f(OpLessThan, "age", int64(30)), false},
		{f(OpLessThan, "missing", int64(30)), false},
		{f(OpLessThanEqual, "age", int64(30)), true},
		{f(OpLessThanEqual, "age", int64(29)), false},
		{f(OpGreaterThan, "score", 2.0), true},
		{f(OpGreaterThan, "score", 2.5), false},
		{f(OpGreaterThanEqual, "score", 2.5), true},
		{f(OpGreaterThanEqual, "score", 2.6), false},
		{f(OpGreaterThanEqual, "missing", 2.6), false},
		{f(OpGreaterThan, "born", t0), true},
		{f(OpLessThan, "name", "B"), true},
		{f(OpBetween, "age", int64(30), int64(30)), true}, // inclusive
		{f(OpBetween, "age", int64(20), int64(29)), false},
		{f(OpBetween, "born", t0, t2), true},
		{f(OpBetween, "missing", t0, t2), false},
		{f(OpNotBetween, "age", int64(31), int64(40)), true},
		{f(OpNotBetween, "age", int64(20), int64(29)), true},
		{f(OpNotBetween, "age", int64(30), int64(40)), false},
		{f(OpNotBetween, "missing", int64(30), int64(40)), false},
		{f(OpIsNull, "missing"), true},
		{f(OpIsNull, "age"), false},
		{f(OpIsNull, "empty"), false}, // an empty array is not null
		{f(OpIsNotNull, "age"), true},
		{f(OpIsNotNull, "missing"), false},
		{f(OpStartsWith, "name", "Al"), true},
		{f(OpStartsWith, "name", "x", "Alice"), true},
		{f(OpStartsWith, "name", "al"), false},
		{f(OpStartsWith, "name", ""), true},
		{f(OpStartsWith, "missing", ""), false},
		{f(OpNotStartsWith, "name", "Bo"), true},
		{f(OpNotStartsWith, "name", "Bo", "Al"), false},
		{f(OpNotStartsWith, "missing", "Bo"), false},
		{f(OpEndsWith, "name", "Smith"), true},
		{f(OpEndsWith, "name", "smith"), false},
		{f(OpEndsWith, "missing", "h"), false},
		{f(OpNotEndsWith, "name", "Jones"), true},
		{f(OpNotEndsWith, "name", "th"), false},
		{f(OpNotEndsWith, "missing", "th"), false},
		{f(OpContains, "name", "ce S"), true},
		{f(OpContains, "name", "CE S"), false}, // case-sensitive
		{f(OpContains, "name", "zz", "Smi"), true},
		{f(OpContains, "tags", "blue"), true},
		{f(OpContains, "tags", "bl"), false}, // element equality, not substring
		{f(OpContains, "tags", "green", "red"), true},
		{f(OpContains, "nums", int64(2)), true},
		{f(OpContains, "nums", int64(3)), false},
		{f(OpContains, "empty", "x"), false},
		{f(OpContains, "missing", "x"), false},
		{f(OpNotContains, "name", "Bob"), true},
		{f(OpNotContains, "name", "Ali"), false},
		{f(OpNotContains, "tags", "green"), true},
		{f(OpNotContains, "tags", "green", "red"), false},
		{f(OpNotContains, "empty", "x"), true},
		{f(OpNotContains, "missing", "x"), false},
		{f(OpExists, "age"), true},
		{f(OpExists, "missing"), false},
		{f(OpNotExists, "missing"), true},
		{f(OpNotExists, "empty"), false},
		{f(OpContainsAny, "tags", "green", "red"), true},
		{f(OpContainsAny, "tags", "green"), false},
		{f(OpContainsAll, "tags", "red", "blue"), true},
		{f(OpContainsAll, "tags", "red", "green"), false},
		{f(OpContainsAll, "nums", int64(2)), true},
		{f(OpContainsAll, "name", "Ali", "Smith"), true},
		{f(OpContainsAll, "name", "Ali", "Jones"), false},
		{f(OpContainsAll, "empty", "x"), false},
		{f(OpContainsAll, "missing", "x"), false},
		{f(OpRegex, "name", `^A\w+ S`), true},
		{f(OpRegex, "name", "smith"), false}, // case-sensitive unless (?i)
		{f(OpRegex, "name", "(?i)smith"), true},
		{f(OpRegex, "name", "("), false},     // invalid, unvalidated: matches nothing
		{f(OpRegex, "age", "3"), false},      // not a string
		{f(OpRegex, "missing", ".*"), false}, // nil
		{f(OpCreatedBefore, "", t2), true},
		{f(OpCreatedBefore, "", t1), false},
		{f(OpCreatedAfter, "", t0), true},
		{f(OpCreatedBetween, "", t1, t1), true},
		{f(OpUpdatedAfter, "", t1), true},
		{f(OpUpdatedBefore, "", t2), false},
		{f(OpUpdatedBetween, "", t2, t2), true},
		{f(OpSearch, "bio", "fox"), true},
		{f(OpSearch, "bio", "JUMPS quick"), true},
		{f(OpSearch, "bio", "fox cat"), false}, // every token
		{f(OpSearch, "bio", "fo"), false},      // whole tokens
		{f(OpSearch, "missing", "fox"), false},
		{f(OpNotSearch, "bio", "cat"), true},
		{f(OpNotSearch, "bio", "fox"), false},
		{f(OpNotSearch, "missing", "cat"), false},
		{and(f(OpEqual, "age", int64(30)), f(OpEqual, "active", true)), true},
		{and(f(OpEqual, "age", int64(30)), f(OpEqual, "active", false)), false},
		{or(f(OpEqual, "age", int64(1)), f(OpEqual, "active", true)), true},
		{or(f(OpEqual, "age", int64(1)), f(OpIsNotNull, "missing")), false},
		{or(), false},
		{and(), true},
		{and(or(f(OpIsNull, "missing")), f(OpContains, "tags", "red")), true},
		// Malformed filters match nothing and do not panic.
		{f(OpLessThan, "age"), false},
		{f(OpBetween, "age", int64(1)), false},
		{f(OpEqual, "age"), false},
		{f(OpNotEqual, "age"), false},
		{f(OpNotContains, "tags"), false},
		{f(OpNotStartsWith, "name"), false},
		{f(OpStartsWith, "age", "3"), false},
		{f(OpSearch, "bio", 1.0), false},
		{f(OpNotSearch, "age", "x"), false},
		{f("bogus", "age", int64(30)), false},
	}
	for _, tt := range tests {
		if got := Match([]Filter{tt.f}, doc); got != tt.want {
			t.Errorf("Match(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	if !Match(nil, doc) {
		t.Error("no filters match every document")
	}
	if Match([]Filter{f(OpIsNotNull, "age"), f(OpIsNull, "age")}, doc) {
		t.Error("top-level filters are AND-ed")
	}
}

func TestTokens(t *testing.T) {
	long := strings.Repeat("a", 70)
	longUnicode := strings.Repeat("a", 63) + "é" // 65 bytes: é straddles byte 64
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" ,.!? ", nil},
		{"Hello, World!", []string{"hello", "world"}},
		{"the cat the CAT", []string{"the", "cat"}},
		{"e-mail a.b@c.io", []string{"e", "mail", "a", "b", "c", "io"}},
		{"Grüße aus Köln 2026", []string{"grüße", "aus", "köln", "2026"}},
		{"東京 タワー", []string{"東京", "タワー"}},
		{"x_y", []string{"x", "y"}},
		{"٣٤ abc١", []string{"٣٤", "abc١"}}, // unicode digits
		{"bad\xffbyte", []string{"bad", "byte"}},
		{long + " " + long + "b", []string{strings.Repeat("a", 64)}}, // cut, then deduplicated
		{longUnicode, []string{strings.Repeat("a", 63)}},
	}
	for _, tt := range tests {
		got := Tokens(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Tokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func docs3() []map[string]any {
	return []map[string]any{
		{"$id": "a", "$sequence": int64(1), "name": "bob", "age": int64(30)},
		{"$id": "b", "$sequence": int64(2), "name": "alice", "age": nil},
		{"$id": "c", "$sequence": int64(3), "name": "carol", "age": int64(30)},
		{"$id": "d", "$sequence": int64(4), "name": "alice", "age": int64(20)},
	}
}

func ids(docs []map[string]any) string {
	var s []string
	for _, d := range docs {
		s = append(s, d["$id"].(string))
	}
	return strings.Join(s, ",")
}

func TestLess(t *testing.T) {
	tests := []struct {
		orders []Order
		want   string
	}{
		{nil, "a,b,c,d"},
		{[]Order{{Attribute: "age"}}, "b,d,a,c"},                                  // nil first, ties by sequence
		{[]Order{{Attribute: "age", Desc: true}}, "a,c,d,b"},                      // nil last, ties still ascending
		{[]Order{{Attribute: "name"}, {Attribute: "age", Desc: true}}, "d,b,a,c"}, // second key breaks ties
		{[]Order{{Attribute: "age", Desc: true}, {Attribute: "name", Desc: true}}, "c,a,d,b"},
		{[]Order{{Attribute: "$id", Desc: true}}, "d,c,b,a"},
	}
	for _, tt := range tests {
		d := docs3()
		slices.Reverse(d)
		slices.SortFunc(d, Less(tt.orders))
		if got := ids(d); got != tt.want {
			t.Errorf("orders %+v: %s, want %s", tt.orders, got, tt.want)
		}
	}
}

func TestRun(t *testing.T) {
	byAge := []Order{{Attribute: "age"}}
	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"all", Query{}, "a,b,c,d"},
		{"filter and order", Query{Filters: []Filter{f(OpIsNotNull, "age")}, Orders: byAge}, "d,a,c"},
		{"offset and limit", Query{Orders: byAge, Offset: 1, Limit: 2}, "d,a"},
		{"offset past the end", Query{Offset: 9}, ""},
		{"after", Query{Orders: byAge, CursorAfter: "d"}, "a,c"},
		{"after a tie", Query{Orders: byAge, CursorAfter: "a"}, "c"},
		{"after with limit", Query{Orders: byAge, CursorAfter: "b", Limit: 2}, "d,a"},
		{"after a document the filter excludes", Query{Filters: []Filter{f(OpIsNotNull, "age")}, Orders: byAge, CursorAfter: "b"}, "d,a,c"},
		{"before", Query{Orders: byAge, CursorBefore: "c"}, "b,d,a"},
		{"before with limit keeps order", Query{Orders: byAge, CursorBefore: "c", Limit: 2}, "d,a"},
		{"before with offset", Query{Orders: byAge, CursorBefore: "c", Offset: 1, Limit: 1}, "d"},
		{"before the first", Query{Orders: byAge, CursorBefore: "b"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Run(&tt.q, docs3())
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != tt.want {
				t.Errorf("got %s, want %s", ids(got), tt.want)
			}
		})
	}
	_, err := Run(&Query{CursorBefore: "zz"}, docs3())
	if domain.KindOf(err) != domain.KindInvalid {
		t.Errorf("unknown cursor: %v", err)
	}
}

// TestOrderRandom: one seed is one permutation (so pages agree), different
// seeds give different ones, and every document appears once.
func TestOrderRandom(t *testing.T) {
	var docs []map[string]any
	for i := range 50 {
		docs = append(docs, map[string]any{"$id": fmt.Sprintf("d%02d", i), "$sequence": int64(i)})
	}
	order := func(seed uint64) string {
		q := &Query{Orders: []Order{{Attribute: OrderRandom, Seed: seed}}}
		if err := Validate(q, &database.Schema{}, DefaultLimits()); err != nil {
			t.Fatal(err)
		}
		q.Limit = 0
		out, err := Run(q, docs)
		if err != nil || len(out) != len(docs) {
			t.Fatalf("Run: %d documents, %v", len(out), err)
		}
		return ids(out)
	}
	a, b, c := order(1), order(1), order(2)
	if a != b {
		t.Errorf("seed 1 gave two orders:\n%s\n%s", a, b)
	}
	if a == c || a == ids(docs) {
		t.Errorf("seed 1 and 2 (or insertion order) agree: %s", a)
	}
	// A page and the next one through a cursor are the shuffle's halves.
	q := &Query{Orders: []Order{{Attribute: OrderRandom, Seed: 1}}, Limit: 25}
	first, _ := Run(q, docs)
	q.CursorAfter = first[24]["$id"].(string)
	second, _ := Run(q, docs)
	if got := ids(first) + "," + ids(second); got != a {
		t.Errorf("two pages %s, want %s", got, a)
	}
}
