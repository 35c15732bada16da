package query

import (
	"math"
	"math/big"
	"slices"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

// Func is an aggregation function.
type Func string

// The aggregation functions.
const (
	FuncCount Func = "count"
	FuncSum   Func = "sum"
	FuncAvg   Func = "avg"
	FuncMin   Func = "min"
	FuncMax   Func = "max"
)

// Aggregation computes Func over the documents a query matches, in one
// group per distinct value of GroupBy (one group in all when GroupBy is
// empty).
type Aggregation struct {
	Func Func
	// Attribute is the aggregated attribute; empty for count, which counts
	// documents.
	Attribute string
	GroupBy   string
}

// Group is one result row of an aggregation.
type Group struct {
	// Key is the GroupBy value of the group's documents (nil for the group
	// of documents without one, and for the single group without GroupBy).
	Key any
	// Count is the number of documents in the group.
	Count int64
	// Value is the aggregate: for count, Count as an int64; for sum, an
	// int64 when every summed value is an int64 and the exact sum fits,
	// else a float64; for avg, a float64; for min and max, the typed value.
	// nil when the group has no non-null value to aggregate.
	Value any
}

// ValidateAggregation checks a against the schema: count takes no
// attribute; sum and avg need an integer or float attribute, min and max an
// integer, float or datetime one; GroupBy is empty or any non-array
// attribute. Attributes must be available. Errors are KindInvalid with
// Field func, attribute or groupBy.
func ValidateAggregation(a *Aggregation, s *database.Schema) error {
	if a == nil {
		return domain.FieldError("", "no aggregation")
	}
	if s == nil {
		s = &database.Schema{}
	}
	v := validator{s: s}
	switch a.Func {
	case FuncCount:
		if a.Attribute != "" {
			return domain.FieldError("attribute", "count takes no attribute; it counts documents")
		}
	case FuncSum, FuncAvg, FuncMin, FuncMax:
		attr, err := v.attribute(a.Attribute, "attribute")
		if err != nil {
			return err
		}
		ok := !attr.Array && (attr.Type == database.TypeInteger || attr.Type == database.TypeFloat ||
			attr.Type == database.TypeDatetime && (a.Func == FuncMin || a.Func == FuncMax))
		if !ok {
			want := "an integer or float attribute"
			if a.Func == FuncMin || a.Func == FuncMax {
				want = "an integer, float or datetime attribute"
			}
			return domain.FieldError("attribute", "%s needs %s; %q is %s", a.Func, want, attr.Key, typeName(attr))
		}
	default:
		return domain.FieldError("func", "unknown aggregation function %q; use count, sum, avg, min or max", string(a.Func))
	}
	if a.GroupBy != "" {
		attr, err := v.attribute(a.GroupBy, "groupBy")
		if err != nil {
			return err
		}
		if attr.Array {
			return domain.FieldError("groupBy", "attribute %q is an array; arrays cannot be grouped by", attr.Key)
		}
	}
	return nil
}

// Aggregate is the reference aggregation over docs (the documents a query
// matched): groups in Compare order of their keys. Without GroupBy there is
// exactly one group, even for no documents (SQL's SELECT COUNT(*)). Null
// values are skipped by sum, avg, min and max; count counts documents.
//
// sum and avg are exact (accumulated in arbitrary precision, rounded once),
// so the result does not depend on the order of the documents.
func Aggregate(a Aggregation, docs []map[string]any) []Group {
	var groups [][]map[string]any
	if a.GroupBy == "" {
		groups = [][]map[string]any{docs}
	} else {
		sorted := slices.Clone(docs)
		slices.SortStableFunc(sorted, func(x, y map[string]any) int { return Compare(x[a.GroupBy], y[a.GroupBy]) })
		for i := 0; i < len(sorted); {
			j := i + 1
			for j < len(sorted) && Compare(sorted[i][a.GroupBy], sorted[j][a.GroupBy]) == 0 {
				j++
			}
			groups = append(groups, sorted[i:j])
			i = j
		}
	}
	out := make([]Group, 0, len(groups))
	for _, g := range groups {
		r := Group{Count: int64(len(g))}
		if a.GroupBy != "" {
			r.Key = g[0][a.GroupBy]
		}
		r.Value = aggregate(a, g)
		out = append(out, r)
	}
	return out
}

func aggregate(a Aggregation, docs []map[string]any) any {
	if a.Func == FuncCount {
		return int64(len(docs))
	}
	var values []any
	for _, d := range docs {
		if v := d[a.Attribute]; v != nil {
			values = append(values, v)
		}
	}
	switch a.Func {
	case FuncMin, FuncMax:
		var best any
		for _, v := range values {
			if best == nil || a.Func == FuncMin && Compare(v, best) < 0 || a.Func == FuncMax && Compare(v, best) > 0 {
				best = v
			}
		}
		return best
	case FuncSum, FuncAvg:
		return sumAvg(a.Func, values)
	}
	return nil
}

// sumPrec holds any sum of float64s exactly (their bits span 2^-1074 to
// 2^1024) with room for 2^900 terms.
const sumPrec = 4096

func sumAvg(fn Func, values []any) any {
	exact := new(big.Float).SetPrec(sumPrec)
	var n int64
	ints := true
	var naive float64 // used only when an infinity or NaN makes exact sums meaningless
	special := false
	for _, v := range values {
		var f *big.Float
		switch v := v.(type) {
		case int64:
			f = new(big.Float).SetPrec(sumPrec).SetInt64(v)
			naive += float64(v)
		case float64:
			ints = false
			naive += v
			if math.IsNaN(v) || math.IsInf(v, 0) {
				special = true
				n++
				continue
			}
			f = new(big.Float).SetPrec(sumPrec).SetFloat64(v)
		default:
			continue // not a number: a schema never stores one here
		}
		n++
		exact.Add(exact, f)
	}
	if n == 0 && !special {
		return nil
	}
	if special {
		if fn == FuncAvg {
			return naive / float64(n)
		}
		return naive
	}
	if fn == FuncAvg {
		exact.Quo(exact, new(big.Float).SetPrec(sumPrec).SetInt64(n))
		f, _ := exact.Float64()
		return f
	}
	if ints {
		if i, acc := exact.Int64(); acc == big.Exact {
			return i
		}
	}
	f, _ := exact.Float64()
	return f
}
