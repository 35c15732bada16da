package query

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

func attr(key string, t database.Type) database.Attribute {
	return database.Attribute{Key: key, Type: t, Status: database.StatusAvailable}
}

func arrayAttr(key string, t database.Type) database.Attribute {
	a := attr(key, t)
	a.Array = true
	return a
}

// testSchema has one attribute of every type, arrays, a fulltext index on
// bio, a failed one on title, and attributes that are not available.
func testSchema() *database.Schema {
	pending := attr("pending", database.TypeString)
	pending.Status = database.StatusProcessing
	failed := attr("broken", database.TypeInteger)
	failed.Status = database.StatusFailed
	return &database.Schema{
		Attributes: []database.Attribute{
			attr("name", database.TypeString),
			attr("age", database.TypeInteger),
			attr("score", database.TypeFloat),
			attr("active", database.TypeBoolean),
			attr("born", database.TypeDatetime),
			attr("mail", database.TypeEmail),
			attr("site", database.TypeURL),
			attr("addr", database.TypeIP),
			attr("color", database.TypeEnum),
			attr("bio", database.TypeString),
			attr("title", database.TypeString),
			attr("note", database.TypeString),
			arrayAttr("tags", database.TypeString),
			arrayAttr("nums", database.TypeInteger),
			arrayAttr("days", database.TypeDatetime),
			pending,
			failed,
		},
		Indexes: []database.Index{
			{Key: "ft_bio", Type: database.IndexFulltext, Attributes: []string{"bio"}, Status: database.StatusProcessing},
			{Key: "ft_title", Type: database.IndexFulltext, Attributes: []string{"title"}, Status: database.StatusFailed},
			{Key: "ft_pair", Type: database.IndexFulltext, Attributes: []string{"name", "mail"}, Status: database.StatusAvailable},
			{Key: "k_note", Type: database.IndexKey, Attributes: []string{"note"}, Status: database.StatusAvailable},
		},
	}
}

func f(op Op, attribute string, values ...any) Filter {
	return Filter{Op: op, Attribute: attribute, Values: values}
}

func and(fs ...Filter) Filter { return Filter{Op: OpAnd, Filters: fs} }
func or(fs ...Filter) Filter  { return Filter{Op: OpOr, Filters: fs} }

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		q    Query
	}{
		{"empty", Query{}},
		{"every comparison on integers", Query{Filters: []Filter{
			f(OpEqual, "age", 1.0, 2.0), f(OpNotEqual, "age", 3.0), f(OpLessThan, "age", 4.0),
			f(OpLessThanEqual, "age", 4.0), f(OpGreaterThan, "age", 4.0), f(OpGreaterThanEqual, "age", 4.0),
			f(OpBetween, "age", 1.0, 1.0), f(OpNotBetween, "age", -5.0, 5.0), f(OpIsNull, "age"), f(OpIsNotNull, "age"),
		}}},
		{"string operators on every string-like type", Query{Filters: []Filter{
			f(OpStartsWith, "name", "a", "b"), f(OpNotStartsWith, "mail", "x"), f(OpEndsWith, "site", ".com"),
			f(OpNotEndsWith, "addr", ".1"), f(OpContains, "color", "re"), f(OpNotContains, "name", "z"),
			f(OpLessThan, "name", "m"), f(OpBetween, "mail", "a", "b"),
		}}},
		{"search with a processing fulltext index", Query{Filters: []Filter{f(OpSearch, "bio", "hello world"), f(OpNotSearch, "bio", "x")}}},
		{"arrays", Query{Filters: []Filter{f(OpContains, "tags", "a", "b"), f(OpNotContains, "nums", 1.0), f(OpIsNull, "tags"), f(OpIsNotNull, "days")}}},
		{"nesting to the maximum depth", Query{Filters: []Filter{and(or(f(OpEqual, "age", 1.0), f(OpIsNull, "name")))}}},
		{"system attributes", Query{
			Filters: []Filter{f(OpEqual, "$id", "a"), f(OpGreaterThan, "$createdAt", "2026-01-01T00:00:00Z"), f(OpLessThan, "$sequence", 10.0)},
			Select:  []string{"$id", "name", "tags"},
			Orders:  []Order{{Attribute: "$updatedAt", Desc: true}, {Attribute: "name"}},
		}},
		{"limits at their maximum", Query{Limit: 100, Offset: 5000, CursorAfter: "x"}},
		{"booleans", Query{Filters: []Filter{f(OpEqual, "active", true), f(OpNotEqual, "active", false)}}},
		{"appwrite 1.8 operators", Query{Filters: []Filter{
			f(OpExists, "age"), f(OpNotExists, "tags"), f(OpContainsAny, "tags", "a"), f(OpContainsAll, "nums", 1.0, 2.0),
			f(OpContainsAll, "name", "a"), f(OpRegex, "mail", `^[a-z]+@`),
			f(OpCreatedBefore, "", "2026-01-01T00:00:00Z"), f(OpCreatedAfter, "$createdAt", "2026-01-01T00:00:00Z"),
			f(OpUpdatedBetween, "", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(&tt.q, testSchema(), DefaultLimits()); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateNormalizes(t *testing.T) {
	q := Query{Filters: []Filter{
		f(OpEqual, "age", 12.0, int64(13), 14),
		f(OpBetween, "score", 1.0, int64(2)),
		f(OpGreaterThan, "born", "2026-03-04T05:06:07.123456789+02:00"),
		f(OpLessThan, "$createdAt", "2026-03-04T05:06:07Z"),
		f(OpEqual, "born", time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("x", 3600))),
		f(OpContains, "nums", 3.0),
		f(OpContains, "days", "2026-01-01T00:00:00.5Z"),
		or(f(OpEqual, "color", "red")),
	}}
	if err := Validate(&q, testSchema(), DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	if q.Limit != 25 {
		t.Errorf("Limit = %d, want the default 25", q.Limit)
	}
	want := [][]any{
		{int64(12), int64(13), int64(14)},
		{1.0, 2.0},
		{time.Date(2026, 3, 4, 3, 6, 7, 123000000, time.UTC)},
		{time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)},
		{time.Date(2026, 1, 2, 2, 4, 5, 999000000, time.UTC)},
		{int64(3)},
		{time.Date(2026, 1, 1, 0, 0, 0, 500000000, time.UTC)},
	}
	for i, w := range want {
		got := q.Filters[i].Values
		if len(got) != len(w) {
			t.Fatalf("filter %d: values %v, want %v", i, got, w)
		}
		for k := range w {
			if got[k] != w[k] { // same dynamic type and value; times in UTC compare with ==
				t.Errorf("filter %d value %d: %#v, want %#v", i, k, got[k], w[k])
			}
		}
	}
	if got := q.Filters[7].Filters[0].Values[0]; got != "red" {
		t.Errorf("nested value %#v", got)
	}
	// Limits{} means the defaults.
	q2 := Query{}
	if err := Validate(&q2, testSchema(), Limits{}); err != nil || q2.Limit != 25 {
		t.Errorf("zero Limits: limit %d, err %v", q2.Limit, err)
	}
}

func TestValidateDesugars(t *testing.T) {
	q := Query{Filters: []Filter{
		f(OpExists, "age"), f(OpNotExists, "age"), f(OpContainsAny, "tags", "a"),
		f(OpCreatedBefore, "", "2026-01-01T00:00:00Z"), f(OpUpdatedBetween, "$updatedAt", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
	}}
	if err := Validate(&q, testSchema(), DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		op   Op
		attr string
	}{{OpIsNotNull, "age"}, {OpIsNull, "age"}, {OpContains, "tags"}, {OpLessThan, "$createdAt"}, {OpBetween, "$updatedAt"}}
	for i, w := range want {
		if got := q.Filters[i]; got.Op != w.op || got.Attribute != w.attr {
			t.Errorf("filter %d = %s(%s), want %s(%s)", i, got.Op, got.Attribute, w.op, w.attr)
		}
	}
	if v, ok := q.Filters[3].Values[0].(time.Time); !ok || !v.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("createdBefore value %#v, want a time", q.Filters[3].Values[0])
	}
}

func TestValidateRejects(t *testing.T) {
	deep := and(and(and(f(OpEqual, "age", 1.0))))
	many := make([]Filter, 101)
	for i := range many {
		many[i] = f(OpIsNull, "age")
	}
	manyValues := make([]any, 101)
	for i := range manyValues {
		manyValues[i] = "x"
	}
	tests := []struct {
		name  string
		q     Query
		field string
		msg   string // a substring of the message
	}{
		{"negative limit", Query{Limit: -1}, "limit", "negative"},
		{"limit above max", Query{Limit: 101}, "limit", "above the maximum of 100"},
		{"negative offset", Query{Offset: -1}, "offset", "negative"},
		{"offset above max", Query{Offset: 5001}, "offset", "above the maximum of 5000"},
		{"both cursors", Query{CursorAfter: "a", CursorBefore: "b"}, "cursorBefore", "cannot both"},
		{"unknown method", Query{Filters: []Filter{f(OpIsNull, "age"), f("like", "name", "x")}}, "queries[1].method", `unknown query method "like"`},
		{"empty method", Query{Filters: []Filter{f("", "name", "x")}}, "queries[0].method", "unknown"},
		{"unknown attribute", Query{Filters: []Filter{f(OpEqual, "nope", "x")}}, "queries[0].attribute", `"nope" does not exist`},
		{"missing attribute", Query{Filters: []Filter{f(OpEqual, "", "x")}}, "queries[0].attribute", "missing"},
		{"processing attribute", Query{Filters: []Filter{f(OpEqual, "pending", "x")}}, "queries[0].attribute", "not available yet (status processing)"},
		{"failed attribute", Query{Filters: []Filter{f(OpIsNull, "broken")}}, "queries[0].attribute", "status failed"},
		{"nested unknown attribute", Query{Filters: []Filter{f(OpIsNull, "age"), or(f(OpIsNull, "age"), and(f(OpEqual, "zip", 1.0)))}}, "queries[1].queries[1].queries[0].attribute", `"zip"`},
		{"equal without values", Query{Filters: []Filter{f(OpEqual, "age")}}, "queries[0].values", "equal needs at least one value"},
		{"startsWith without values", Query{Filters: []Filter{f(OpStartsWith, "name")}}, "queries[0].values", "at least one"},
		{"contains without values", Query{Filters: []Filter{f(OpContains, "tags")}}, "queries[0].values", "at least one"},
		{"lessThan with two", Query{Filters: []Filter{f(OpLessThan, "age", 1.0, 2.0)}}, "queries[0].values", "exactly one value; got 2"},
		{"greaterThanEqual with none", Query{Filters: []Filter{f(OpGreaterThanEqual, "age")}}, "queries[0].values", "exactly one value; got 0"},
		{"between with one", Query{Filters: []Filter{f(OpBetween, "age", 1.0)}}, "queries[0].values", "exactly two values"},
		{"notBetween with three", Query{Filters: []Filter{f(OpNotBetween, "age", 1.0, 2.0, 3.0)}}, "queries[0].values", "got 3"},
		{"between reversed", Query{Filters: []Filter{f(OpBetween, "age", 5.0, 1.0)}}, "queries[0].values", "lower bound first; 5 is above 1"},
		{"notBetween reversed times", Query{Filters: []Filter{f(OpNotBetween, "born", "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z")}}, "queries[0].values", "lower bound first"},
		{"isNull with a value", Query{Filters: []Filter{f(OpIsNull, "age", 1.0)}}, "queries[0].values", "isNull takes no values; got 1"},
		{"isNotNull with a value", Query{Filters: []Filter{f(OpIsNotNull, "age", nil)}}, "queries[0].values", "takes no values"},
		{"exists with a value", Query{Filters: []Filter{f(OpExists, "age", 1.0)}}, "queries[0].values", "exists takes no values"},
		{"createdBefore on another attribute", Query{Filters: []Filter{f(OpCreatedBefore, "born", "2026-01-01T00:00:00Z")}}, "queries[0].attribute", "createdBefore compares $createdAt"},
		{"updatedBetween with one", Query{Filters: []Filter{f(OpUpdatedBetween, "", "2026-01-01T00:00:00Z")}}, "queries[0].values", "updatedBetween takes exactly two values"},
		{"createdAfter not a time", Query{Filters: []Filter{f(OpCreatedAfter, "", "yesterday")}}, "queries[0].values[0]", "RFC 3339"},
		{"containsAll on an integer", Query{Filters: []Filter{f(OpContainsAll, "age", 1.0)}}, "queries[0].attribute", "containsAll applies only to strings"},
		{"containsAll without values", Query{Filters: []Filter{f(OpContainsAll, "tags")}}, "queries[0].values", "at least one"},
		{"regex on an array", Query{Filters: []Filter{f(OpRegex, "tags", "a")}}, "queries[0].attribute", "not regex"},
		{"regex on an integer", Query{Filters: []Filter{f(OpRegex, "age", "1")}}, "queries[0].attribute", "regex applies only to strings"},
		{"regex invalid", Query{Filters: []Filter{f(OpRegex, "name", "a(")}}, "queries[0].values[0]", "not valid RE2"},
		{"regex backreference", Query{Filters: []Filter{f(OpRegex, "name", `(a)\1`)}}, "queries[0].values[0]", "not valid RE2"},
		{"regex too long", Query{Filters: []Filter{f(OpRegex, "name", strings.Repeat("a", MaxRegexBytes+1))}}, "queries[0].values[0]", "at most 256"},
		{"regex with two", Query{Filters: []Filter{f(OpRegex, "name", "a", "b")}}, "queries[0].values", "exactly one value"},
		{"search with two", Query{Filters: []Filter{f(OpSearch, "bio", "a", "b")}}, "queries[0].values", "exactly one value"},
		{"search with a number", Query{Filters: []Filter{f(OpSearch, "bio", 1.0)}}, "queries[0].values[0]", "takes a string; 1 is not"},
		{"search with no words", Query{Filters: []Filter{f(OpNotSearch, "bio", " ,; ")}}, "queries[0].values[0]", "no words"},
		{"search without index", Query{Filters: []Filter{f(OpSearch, "name", "x")}}, "queries[0].attribute", "needs a fulltext index"},
		{"search with a key index", Query{Filters: []Filter{f(OpSearch, "note", "x")}}, "queries[0].attribute", "fulltext index"},
		{"search with a two-attribute index", Query{Filters: []Filter{f(OpSearch, "mail", "x")}}, "queries[0].attribute", "exactly that attribute"},
		{"search on array", Query{Filters: []Filter{f(OpSearch, "tags", "x")}}, "queries[0].attribute", "not search"},
		{"search with failed index", Query{Filters: []Filter{f(OpSearch, "title", "x")}}, "queries[0].attribute", "fulltext index"},
		{"search on integer", Query{Filters: []Filter{f(OpSearch, "age", "x")}}, "queries[0].attribute", `"age" is an integer; search applies only to strings`},
		{"too many values", Query{Filters: []Filter{f(OpEqual, "name", manyValues...)}}, "queries[0].values", "101 values; at most 100"},
		{"and without children", Query{Filters: []Filter{{Op: OpAnd}}}, "queries[0].queries", "and needs at least one nested query"},
		{"or with attribute", Query{Filters: []Filter{{Op: OpOr, Attribute: "age", Filters: []Filter{f(OpIsNull, "age")}}}}, "queries[0].attribute", "or takes no attribute"},
		{"or with values", Query{Filters: []Filter{{Op: OpOr, Values: []any{1.0}, Filters: []Filter{f(OpIsNull, "age")}}}}, "queries[0].values", "takes no values"},
		{"leaf with children", Query{Filters: []Filter{{Op: OpEqual, Attribute: "age", Values: []any{1.0}, Filters: []Filter{f(OpIsNull, "age")}}}}, "queries[0].queries", "equal takes no nested queries"},
		{"too deep", Query{Filters: []Filter{deep}}, "queries[0].queries[0].queries[0].queries[0]", "nested more than 3 levels"},
		{"too many filters", Query{Filters: many}, "queries[100]", "more than 100 filters"},
		{"too many nested filters", Query{Filters: []Filter{and(many[:99]...), f(OpIsNull, "age")}}, "queries[1]", "more than 100 filters"},
		{"integer given a fraction", Query{Filters: []Filter{f(OpEqual, "age", 1.0, 12.5)}}, "queries[0].values[1]", `attribute "age" is an integer; 12.5 is not`},
		{"integer given a string", Query{Filters: []Filter{f(OpEqual, "age", "12")}}, "queries[0].values[0]", `"12" is not`},
		{"integer out of range", Query{Filters: []Filter{f(OpEqual, "age", 1e19)}}, "queries[0].values[0]", "64-bit integer range"},
		{"integer NaN", Query{Filters: []Filter{f(OpEqual, "age", math.NaN())}}, "queries[0].values[0]", "is an integer; NaN is not"},
		{"float NaN", Query{Filters: []Filter{f(OpEqual, "score", math.NaN())}}, "queries[0].values[0]", "not a finite number"},
		{"float Inf", Query{Filters: []Filter{f(OpLessThan, "score", math.Inf(1))}}, "queries[0].values[0]", "+Inf is not"},
		{"float given a bool", Query{Filters: []Filter{f(OpEqual, "score", true)}}, "queries[0].values[0]", `"score" is a float; true is not`},
		{"datetime not RFC 3339", Query{Filters: []Filter{f(OpEqual, "born", "yesterday")}}, "queries[0].values[0]", `"yesterday" is not (expected an RFC 3339`},
		{"datetime given a number", Query{Filters: []Filter{f(OpEqual, "$createdAt", 1.0)}}, "queries[0].values[0]", "is a datetime; 1 is not"},
		{"string given a number", Query{Filters: []Filter{f(OpEqual, "mail", 1.0)}}, "queries[0].values[0]", `"mail" is an email; 1 is not`},
		{"boolean given a string", Query{Filters: []Filter{f(OpEqual, "active", "true")}}, "queries[0].values[0]", `is a boolean; "true" is not`},
		{"null value", Query{Filters: []Filter{f(OpEqual, "name", nil)}}, "queries[0].values[0]", "use isNull"},
		{"odd Go type", Query{Filters: []Filter{f(OpEqual, "name", []int{1})}}, "queries[0].values[0]", "Go type []int"},
		{"array element type", Query{Filters: []Filter{f(OpContains, "nums", "x")}}, "queries[0].values[0]", `"nums" holds integers; "x" is not`},
		{"contains on an enum given a number", Query{Filters: []Filter{f(OpContains, "color", 1.0)}}, "queries[0].values[0]", `"color" is an enum; 1 is not`},
		{"startsWith given a number", Query{Filters: []Filter{f(OpStartsWith, "name", 1.0)}}, "queries[0].values[0]", "is a string; 1 is not"},
		{"lessThan on boolean", Query{Filters: []Filter{f(OpLessThan, "active", true)}}, "queries[0].attribute", "is a boolean; lessThan does not apply"},
		{"between on boolean", Query{Filters: []Filter{f(OpBetween, "active", false, true)}}, "queries[0].attribute", "between does not apply to booleans"},
		{"startsWith on integer", Query{Filters: []Filter{f(OpStartsWith, "age", "1")}}, "queries[0].attribute", `"age" is an integer; startsWith applies only to strings`},
		{"endsWith on datetime", Query{Filters: []Filter{f(OpNotEndsWith, "born", "Z")}}, "queries[0].attribute", "is a datetime"},
		{"contains on integer", Query{Filters: []Filter{f(OpContains, "age", 1.0)}}, "queries[0].attribute", "or, for contains, arrays"},
		{"equal on array", Query{Filters: []Filter{f(OpEqual, "tags", "a")}}, "queries[0].attribute", `"tags" is an array; only contains, containsAny, containsAll, notContains, isNull and isNotNull apply to arrays, not equal`},
		{"lessThan on array", Query{Filters: []Filter{f(OpLessThan, "nums", 1.0)}}, "queries[0].attribute", "not lessThan"},
		{"select unknown", Query{Select: []string{"name", "nope"}}, "select[1]", `"nope" does not exist`},
		{"select processing", Query{Select: []string{"pending"}}, "select[0]", "not available"},
		{"order unknown", Query{Orders: []Order{{Attribute: "name"}, {Attribute: "nope"}}}, "orders[1].attribute", "does not exist"},
		{"order by array", Query{Orders: []Order{{Attribute: "tags"}}}, "orders[0].attribute", `"tags" is an array; arrays cannot be ordered by`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(&tt.q, testSchema(), DefaultLimits())
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Fatalf("Validate = %v, want a *domain.Error", err)
			}
			if de.Kind != domain.KindInvalid {
				t.Errorf("kind %v, want invalid", de.Kind)
			}
			if de.Field != tt.field {
				t.Errorf("field %q, want %q (message %q)", de.Field, tt.field, de.Message)
			}
			if !strings.Contains(de.Message, tt.msg) {
				t.Errorf("message %q does not say %q", de.Message, tt.msg)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil, testSchema(), DefaultLimits()); domain.KindOf(err) != domain.KindInvalid {
		t.Errorf("nil query: %v", err)
	}
	q := Query{Filters: []Filter{f(OpEqual, "$id", "x")}}
	if err := Validate(&q, nil, DefaultLimits()); err != nil {
		t.Errorf("nil schema still knows system attributes: %v", err)
	}
}
