package query

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

func TestValidateAggregation(t *testing.T) {
	ok := []Aggregation{
		{Func: FuncCount},
		{Func: FuncCount, GroupBy: "color"},
		{Func: FuncSum, Attribute: "age"},
		{Func: FuncAvg, Attribute: "score", GroupBy: "active"},
		{Func: FuncMin, Attribute: "born"},
		{Func: FuncMax, Attribute: "$sequence", GroupBy: "$id"},
	}
	for _, a := range ok {
		if err := ValidateAggregation(&a, testSchema()); err != nil {
			t.Errorf("%+v: %v", a, err)
		}
	}
	bad := []struct {
		a          Aggregation
		field, msg string
	}{
		{Aggregation{Func: "median", Attribute: "age"}, "func", `unknown aggregation function "median"`},
		{Aggregation{Func: FuncCount, Attribute: "age"}, "attribute", "count takes no attribute"},
		{Aggregation{Func: FuncSum}, "attribute", "missing"},
		{Aggregation{Func: FuncSum, Attribute: "nope"}, "attribute", `"nope" does not exist`},
		{Aggregation{Func: FuncSum, Attribute: "name"}, "attribute", `sum needs an integer or float attribute; "name" is a string`},
		{Aggregation{Func: FuncAvg, Attribute: "born"}, "attribute", `"born" is a datetime`},
		{Aggregation{Func: FuncSum, Attribute: "nums"}, "attribute", "is an array of integers"},
		{Aggregation{Func: FuncMin, Attribute: "active"}, "attribute", "min needs an integer, float or datetime attribute"},
		{Aggregation{Func: FuncMax, Attribute: "broken"}, "attribute", "not available"},
		{Aggregation{Func: FuncCount, GroupBy: "tags"}, "groupBy", "arrays cannot be grouped by"},
		{Aggregation{Func: FuncCount, GroupBy: "pending"}, "groupBy", "not available"},
		{Aggregation{Func: FuncCount, GroupBy: "zip"}, "groupBy", "does not exist"},
	}
	for _, tt := range bad {
		err := ValidateAggregation(&tt.a, testSchema())
		de, isDomain := err.(*domain.Error)
		if !isDomain || de.Kind != domain.KindInvalid || de.Field != tt.field || !strings.Contains(de.Message, tt.msg) {
			t.Errorf("%+v: %v, want field %s saying %q", tt.a, err, tt.field, tt.msg)
		}
	}
	if err := ValidateAggregation(nil, &database.Schema{}); domain.KindOf(err) != domain.KindInvalid {
		t.Errorf("nil: %v", err)
	}
}

func TestAggregate(t *testing.T) {
	docs := []map[string]any{
		{"k": "b", "n": int64(5), "x": 0.1, "t": t1},
		{"k": "a", "n": int64(1), "x": nil, "t": t2},
		{"k": nil, "n": nil, "x": 0.2},
		{"k": "b", "n": int64(-2), "x": 0.3, "t": t0},
		{"k": "a", "n": nil},
	}
	tests := []struct {
		a    Aggregation
		want []Group
	}{
		{Aggregation{Func: FuncCount}, []Group{{Key: nil, Count: 5, Value: int64(5)}}},
		{Aggregation{Func: FuncCount, GroupBy: "k"}, []Group{
			{Key: nil, Count: 1, Value: int64(1)}, {Key: "a", Count: 2, Value: int64(2)}, {Key: "b", Count: 2, Value: int64(2)}}},
		{Aggregation{Func: FuncSum, Attribute: "n"}, []Group{{Count: 5, Value: int64(4)}}},
		{Aggregation{Func: FuncSum, Attribute: "n", GroupBy: "k"}, []Group{
			{Key: nil, Count: 1, Value: nil}, {Key: "a", Count: 2, Value: int64(1)}, {Key: "b", Count: 2, Value: int64(3)}}},
		{Aggregation{Func: FuncSum, Attribute: "x"}, []Group{{Count: 5, Value: 0.6}}}, // exact: 0.1+0.2+0.3 rounded once
		{Aggregation{Func: FuncAvg, Attribute: "n"}, []Group{{Count: 5, Value: 4.0 / 3}}},
		{Aggregation{Func: FuncAvg, Attribute: "x", GroupBy: "k"}, []Group{
			{Key: nil, Count: 1, Value: 0.2}, {Key: "a", Count: 2, Value: nil}, {Key: "b", Count: 2, Value: 0.2}}},
		{Aggregation{Func: FuncMin, Attribute: "n"}, []Group{{Count: 5, Value: int64(-2)}}},
		{Aggregation{Func: FuncMax, Attribute: "t", GroupBy: "k"}, []Group{
			{Key: nil, Count: 1, Value: nil}, {Key: "a", Count: 2, Value: t2}, {Key: "b", Count: 2, Value: t1}}},
		{Aggregation{Func: FuncMin, Attribute: "t"}, []Group{{Count: 5, Value: t0}}},
	}
	for _, tt := range tests {
		got := Aggregate(tt.a, docs)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%+v:\n got %#v\nwant %#v", tt.a, got, tt.want)
		}
		// The result does not depend on document order.
		rev := slices.Clone(docs)
		slices.Reverse(rev)
		if again := Aggregate(tt.a, rev); !reflect.DeepEqual(again, got) {
			t.Errorf("%+v reversed: %#v", tt.a, again)
		}
	}
	// No documents: one group without GroupBy, none with it.
	if got := Aggregate(Aggregation{Func: FuncSum, Attribute: "n"}, nil); !reflect.DeepEqual(got, []Group{{}}) {
		t.Errorf("empty sum: %#v", got)
	}
	if got := Aggregate(Aggregation{Func: FuncCount, GroupBy: "k"}, nil); len(got) != 0 {
		t.Errorf("empty grouped count: %#v", got)
	}
	// An integer sum that overflows int64 becomes a float64.
	big := []map[string]any{{"n": int64(math.MaxInt64)}, {"n": int64(math.MaxInt64)}}
	if got := Aggregate(Aggregation{Func: FuncSum, Attribute: "n"}, big)[0].Value; got != 2*float64(math.MaxInt64) {
		t.Errorf("overflowing sum: %#v", got)
	}
	// Mixed integers and floats sum as a float64; infinities do not panic.
	mixed := []map[string]any{{"n": int64(1)}, {"n": 0.5}, {"n": "junk"}}
	if got := Aggregate(Aggregation{Func: FuncSum, Attribute: "n"}, mixed)[0].Value; got != 1.5 {
		t.Errorf("mixed sum: %#v", got)
	}
	inf := []map[string]any{{"n": math.Inf(1)}, {"n": math.Inf(-1)}, {"n": 1.0}}
	if got := Aggregate(Aggregation{Func: FuncAvg, Attribute: "n"}, inf)[0].Value; !math.IsNaN(got.(float64)) {
		t.Errorf("inf avg: %#v", got)
	}
}
