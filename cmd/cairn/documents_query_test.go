package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// qaSchema is the "items" collection of TestQueriesAgreeWithReference as
// the domain sees it.
var qaSchema = &database.Schema{
	Attributes: []database.Attribute{
		{Key: "name", Type: database.TypeString, Required: true, Size: 32, Status: database.StatusAvailable},
		{Key: "n", Type: database.TypeInteger, IntMin: -1000, IntMax: 1000, Status: database.StatusAvailable},
		{Key: "f", Type: database.TypeFloat, Status: database.StatusAvailable},
		{Key: "ok", Type: database.TypeBoolean, Status: database.StatusAvailable},
		{Key: "at", Type: database.TypeDatetime, Status: database.StatusAvailable},
		{Key: "tag", Type: database.TypeEnum, Elements: qaTags, Status: database.StatusAvailable},
		{Key: "tags", Type: database.TypeString, Array: true, Size: 16, Status: database.StatusAvailable},
		{Key: "parent", Type: database.TypeRelationship, Relation: database.Relation{Collection: "items", Type: database.ManyToOne}, Status: database.StatusAvailable},
		// pos has a geo index, spot none (scanned).
		{Key: "pos", Type: database.TypePoint, Status: database.StatusAvailable},
		{Key: "spot", Type: database.TypePoint, Status: database.StatusAvailable},
	},
	Indexes: []database.Index{
		{Key: "by_n", Type: database.IndexKey, Attributes: []string{"n"}, Desc: []bool{false}, Status: database.StatusAvailable},
		{Key: "by_tag_n", Type: database.IndexKey, Attributes: []string{"tag", "n"}, Desc: []bool{false, true}, Status: database.StatusAvailable},
		{Key: "by_name", Type: database.IndexUnique, Attributes: []string{"name"}, Desc: []bool{false}, Status: database.StatusAvailable},
		{Key: "by_at", Type: database.IndexKey, Attributes: []string{"at"}, Desc: []bool{false}, Status: database.StatusAvailable},
		{Key: "by_parent", Type: database.IndexKey, Attributes: []string{"parent"}, Desc: []bool{false}, Status: database.StatusAvailable},
		{Key: "text", Type: database.IndexFulltext, Attributes: []string{"name"}, Desc: []bool{false}, Status: database.StatusAvailable},
		{Key: "by_pos", Type: database.IndexKey, Attributes: []string{"pos"}, Desc: []bool{false}, Status: database.StatusAvailable},
	},
}

var (
	qaTags  = []string{"red", "green", "blue", "gold"}
	qaWords = []string{"amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris", "juniper",
		"kelp", "larch", "maple", "north", "oak", "pine", "quartz", "river", "stone", "tide"}
	qaBase = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
)

// qaToProto builds the API's schema from qaSchema.
func qaToProto() ([]*cairnv1.Attribute, []*cairnv1.Index) {
	types := map[database.Type]cairnv1.AttributeType{
		database.TypeString: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, database.TypeInteger: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER,
		database.TypeFloat: cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT, database.TypeBoolean: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN,
		database.TypeDatetime: cairnv1.AttributeType_ATTRIBUTE_TYPE_DATETIME, database.TypeEnum: cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM,
		database.TypeRelationship: cairnv1.AttributeType_ATTRIBUTE_TYPE_RELATIONSHIP,
		database.TypePoint:        cairnv1.AttributeType_ATTRIBUTE_TYPE_POINT,
	}
	ixTypes := map[database.IndexType]cairnv1.IndexType{
		database.IndexKey: cairnv1.IndexType_INDEX_TYPE_KEY, database.IndexUnique: cairnv1.IndexType_INDEX_TYPE_UNIQUE,
		database.IndexFulltext: cairnv1.IndexType_INDEX_TYPE_FULLTEXT,
	}
	var as []*cairnv1.Attribute
	for _, a := range qaSchema.Attributes {
		pa := &cairnv1.Attribute{Key: a.Key, Type: types[a.Type], Required: a.Required, Array: a.Array, Size: int64(a.Size), Elements: a.Elements}
		if a.Type == database.TypeInteger {
			pa.IntMin, pa.IntMax = i64(a.IntMin), i64(a.IntMax)
		}
		pa.RelatedCollection, pa.RelationType = a.Relation.Collection, string(a.Relation.Type)
		as = append(as, pa)
	}
	var ixs []*cairnv1.Index
	for _, ix := range qaSchema.Indexes {
		ixs = append(ixs, &cairnv1.Index{Key: ix.Key, Type: ixTypes[ix.Type], Attributes: ix.Attributes, Desc: ix.Desc})
	}
	return as, ixs
}

// qaOperators maps the API's operators as api.filtersIn does.
var qaOperators = map[cairnv1.Operator]query.Op{
	cairnv1.Operator_OPERATOR_EQUAL: query.OpEqual, cairnv1.Operator_OPERATOR_NOT_EQUAL: query.OpNotEqual,
	cairnv1.Operator_OPERATOR_LESS_THAN: query.OpLessThan, cairnv1.Operator_OPERATOR_LESS_THAN_EQUAL: query.OpLessThanEqual,
	cairnv1.Operator_OPERATOR_GREATER_THAN: query.OpGreaterThan, cairnv1.Operator_OPERATOR_GREATER_THAN_EQUAL: query.OpGreaterThanEqual,
	cairnv1.Operator_OPERATOR_BETWEEN: query.OpBetween, cairnv1.Operator_OPERATOR_NOT_BETWEEN: query.OpNotBetween,
	cairnv1.Operator_OPERATOR_IS_NULL: query.OpIsNull, cairnv1.Operator_OPERATOR_IS_NOT_NULL: query.OpIsNotNull,
	cairnv1.Operator_OPERATOR_STARTS_WITH: query.OpStartsWith, cairnv1.Operator_OPERATOR_NOT_STARTS_WITH: query.OpNotStartsWith,
	cairnv1.Operator_OPERATOR_ENDS_WITH: query.OpEndsWith, cairnv1.Operator_OPERATOR_NOT_ENDS_WITH: query.OpNotEndsWith,
	cairnv1.Operator_OPERATOR_CONTAINS: query.OpContains, cairnv1.Operator_OPERATOR_NOT_CONTAINS: query.OpNotContains,
	cairnv1.Operator_OPERATOR_SEARCH: query.OpSearch, cairnv1.Operator_OPERATOR_NOT_SEARCH: query.OpNotSearch,
	cairnv1.Operator_OPERATOR_AND: query.OpAnd, cairnv1.Operator_OPERATOR_OR: query.OpOr, cairnv1.Operator_OPERATOR_EXISTS: query.OpExists, cairnv1.Operator_OPERATOR_NOT_EXISTS: query.OpNotExists,
	cairnv1.Operator_OPERATOR_CONTAINS_ANY: query.OpContainsAny, cairnv1.Operator_OPERATOR_CONTAINS_ALL: query.OpContainsAll,
	cairnv1.Operator_OPERATOR_REGEX:          query.OpRegex,
	cairnv1.Operator_OPERATOR_CREATED_BEFORE: query.OpCreatedBefore, cairnv1.Operator_OPERATOR_CREATED_AFTER: query.OpCreatedAfter,
	cairnv1.Operator_OPERATOR_CREATED_BETWEEN: query.OpCreatedBetween,
	cairnv1.Operator_OPERATOR_UPDATED_BEFORE:  query.OpUpdatedBefore, cairnv1.Operator_OPERATOR_UPDATED_AFTER: query.OpUpdatedAfter,
	cairnv1.Operator_OPERATOR_UPDATED_BETWEEN: query.OpUpdatedBetween,
	cairnv1.Operator_OPERATOR_DISTANCE_EQUAL:  query.OpDistanceEqual, cairnv1.Operator_OPERATOR_DISTANCE_NOT_EQUAL: query.OpDistanceNotEqual,
	cairnv1.Operator_OPERATOR_DISTANCE_GREATER_THAN: query.OpDistanceGreaterThan, cairnv1.Operator_OPERATOR_DISTANCE_LESS_THAN: query.OpDistanceLessThan,
	cairnv1.Operator_OPERATOR_INTERSECTS: query.OpIntersects, cairnv1.Operator_OPERATOR_NOT_INTERSECTS: query.OpNotIntersects,
	cairnv1.Operator_OPERATOR_ELEM_MATCH: query.OpElemMatch,
}

func qaFiltersIn(fs []*cairnv1.Filter) []query.Filter {
	out := make([]query.Filter, len(fs))
	for i, f := range fs {
		out[i] = query.Filter{Op: qaOperators[f.GetOp()], Attribute: f.GetAttribute(), Filters: qaFiltersIn(f.GetFilters())}
		for _, v := range f.GetValues() {
			out[i].Values = append(out[i].Values, v.AsInterface())
		}
	}
	return out
}

func qaFilterString(f *cairnv1.Filter) string {
	op := string(qaOperators[f.GetOp()])
	if len(f.GetFilters()) > 0 {
		var parts []string
		for _, c := range f.GetFilters() {
			parts = append(parts, qaFilterString(c))
		}
		return op + "(" + strings.Join(parts, ", ") + ")"
	}
	var vs []string
	for _, v := range f.GetValues() {
		b, _ := v.MarshalJSON()
		vs = append(vs, string(b))
	}
	return fmt.Sprintf("%s(%s, [%s])", op, f.GetAttribute(), strings.Join(vs, ","))
}

// qaGen makes random documents and queries.
type qaGen struct {
	r    *rand.Rand
	docs []map[string]any // typed, as the domain holds them
}

func (g *qaGen) word() string { return qaWords[g.r.IntN(len(qaWords))] }

func (g *qaGen) null() bool { return g.r.IntN(8) == 0 }

func (g *qaGen) datetime() time.Time {
	return qaBase.Add(time.Duration(g.r.IntN(2000))*time.Hour + time.Duration(g.r.IntN(1000))*time.Millisecond)
}

func (g *qaGen) document(name string) map[string]any {
	d := map[string]any{"name": name}
	if !g.null() {
		d["n"] = g.r.IntN(201) - 100
		if g.r.IntN(20) == 0 {
			d["n"] = []int{-1000, 1000, 0}[g.r.IntN(3)]
		}
	}
	if !g.null() {
		d["f"] = float64(g.r.IntN(2001)-1000) / 100
	}
	if !g.null() {
		d["ok"] = g.r.IntN(2) == 0
	}
	if !g.null() {
		d["at"] = g.datetime().Format(time.RFC3339Nano)
	}
	if !g.null() {
		d["tag"] = qaTags[g.r.IntN(len(qaTags))]
	}
	if !g.null() {
		var tags []any
		for range g.r.IntN(4) {
			tags = append(tags, g.word())
		}
		if tags == nil {
			tags = []any{}
		}
		d["tags"] = tags
	}
	for _, key := range []string{"pos", "spot"} {
		if !g.null() {
			d[key] = g.point()
		}
	}
	return d
}

// point is mostly in a cluster over Europe, sometimes anywhere, near a
// pole or on the antimeridian.
func (g *qaGen) point() []any {
	switch g.r.IntN(10) {
	case 0:
		return []any{float64(g.r.IntN(36001)-18000) / 100, float64(g.r.IntN(18001)-9000) / 100}
	case 1:
		return []any{pick(g.r, []float64{-180, 180, 179.99, -179.99}), float64(g.r.IntN(2001)-1000) / 100}
	case 2:
		return []any{float64(g.r.IntN(36001)-18000) / 100, pick(g.r, []float64{90, -90, 89.9, -89.95})}
	}
	return []any{float64(g.r.IntN(2001)-1000) / 100, 40 + float64(g.r.IntN(2001))/100}
}

// existing returns the value of key of a random document (possibly nil).
func (g *qaGen) existing(key string) any {
	return g.docs[g.r.IntN(len(g.docs))][key]
}

// value returns a raw (JSON-like) operand for attribute key.
func (g *qaGen) value(key string) any {
	if g.r.IntN(3) > 0 {
		if v := g.existing(key); v != nil {
			if arr, ok := v.([]any); ok {
				if len(arr) == 0 {
					return g.word()
				}
				v = arr[g.r.IntN(len(arr))]
			}
			return rawOf(v)
		}
	}
	switch key {
	case "name":
		return g.word() + " " + g.word()
	case "n":
		return float64(g.r.IntN(221) - 110)
	case "f":
		return float64(g.r.IntN(2201)-1100) / 100
	case "ok":
		return g.r.IntN(2) == 0
	case "at", "$createdAt", "$updatedAt":
		return g.datetime().Format(time.RFC3339Nano)
	case "tag":
		return qaTags[g.r.IntN(len(qaTags))]
	case "tags":
		return g.word()
	case "$sequence":
		return float64(g.r.IntN(2000))
	case "$id", "parent":
		return fmt.Sprintf("d%03d", g.r.IntN(320))
	}
	return nil
}

// rawOf turns a typed value into what a client would send.
func rawOf(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

func (g *qaGen) values(key string, n int) []*structpb.Value {
	var out []*structpb.Value
	for range n {
		out = append(out, val(g.value(key)))
	}
	return out
}

var (
	qaScalar   = []string{"name", "n", "f", "ok", "at", "tag", "$id", "$sequence", "$createdAt", "parent"}
	qaOrdered  = []string{"name", "n", "f", "at", "tag", "$id", "$sequence", "$createdAt"}
	qaStringly = []string{"name", "tag", "$id"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g *qaGen) filter(depth int) *cairnv1.Filter {
	op := func(o cairnv1.Operator, attr string, vs []*structpb.Value) *cairnv1.Filter {
		return &cairnv1.Filter{Op: o, Attribute: attr, Values: vs}
	}
	switch k := g.r.IntN(28); {
	case k >= 20:
		return g.laterFilter(k - 20)
	case k < 2 && depth < 3:
		o := cairnv1.Operator_OPERATOR_OR
		if k == 1 {
			o = cairnv1.Operator_OPERATOR_AND
		}
		f := &cairnv1.Filter{Op: o}
		for range 1 + g.r.IntN(3) {
			f.Filters = append(f.Filters, g.filter(depth+1))
		}
		return f
	case k < 5:
		a := pick(g.r, qaScalar)
		return op(cairnv1.Operator_OPERATOR_EQUAL, a, g.values(a, 1+g.r.IntN(3)))
	case k < 6:
		a := pick(g.r, qaScalar)
		return op(cairnv1.Operator_OPERATOR_NOT_EQUAL, a, g.values(a, 1+g.r.IntN(2)))
	case k < 10:
		a := pick(g.r, qaOrdered)
		o := pick(g.r, []cairnv1.Operator{cairnv1.Operator_OPERATOR_LESS_THAN, cairnv1.Operator_OPERATOR_LESS_THAN_EQUAL,
			cairnv1.Operator_OPERATOR_GREATER_THAN, cairnv1.Operator_OPERATOR_GREATER_THAN_EQUAL})
		return op(o, a, g.values(a, 1))
	case k < 12:
		a := pick(g.r, qaOrdered)
		x, y := g.value(a), g.value(a)
		if query.Compare(qaTyped(a, x), qaTyped(a, y)) > 0 {
			x, y = y, x
		}
		o := cairnv1.Operator_OPERATOR_BETWEEN
		if g.r.IntN(3) == 0 {
			o = cairnv1.Operator_OPERATOR_NOT_BETWEEN
		}
		return op(o, a, []*structpb.Value{val(x), val(y)})
	case k < 13:
		a := pick(g.r, []string{"n", "f", "ok", "at", "tag", "tags", "pos"})
		o := cairnv1.Operator_OPERATOR_IS_NULL
		if g.r.IntN(2) == 0 {
			o = cairnv1.Operator_OPERATOR_IS_NOT_NULL
		}
		return op(o, a, nil)
	case k < 15:
		a := pick(g.r, qaStringly)
		s, _ := g.value(a).(string)
		starts := g.r.IntN(2) == 0
		if cut := 1 + g.r.IntN(max(1, len(s))); cut < len(s) {
			if starts {
				s = s[:cut]
			} else {
				s = s[len(s)-cut:]
			}
		}
		o := []cairnv1.Operator{cairnv1.Operator_OPERATOR_ENDS_WITH, cairnv1.Operator_OPERATOR_NOT_ENDS_WITH,
			cairnv1.Operator_OPERATOR_STARTS_WITH, cairnv1.Operator_OPERATOR_NOT_STARTS_WITH}[g.r.IntN(2)+2*b2i(starts)]
		return op(o, a, []*structpb.Value{val(s)})
	case k < 17:
		o := cairnv1.Operator_OPERATOR_CONTAINS
		if g.r.IntN(4) == 0 {
			o = cairnv1.Operator_OPERATOR_NOT_CONTAINS
		}
		if g.r.IntN(2) == 0 {
			return op(o, "tags", g.values("tags", 1+g.r.IntN(2)))
		}
		w := g.word()
		return op(o, "name", []*structpb.Value{val(w[:1+g.r.IntN(len(w))])})
	default:
		o := cairnv1.Operator_OPERATOR_SEARCH
		if g.r.IntN(4) == 0 {
			o = cairnv1.Operator_OPERATOR_NOT_SEARCH
		}
		s := g.word()
		if g.r.IntN(3) == 0 {
			s += " " + g.word()
		}
		return op(o, "name", []*structpb.Value{val(s)})
	}
}

// laterFilter makes one of the operators added with Appwrite 1.8's names:
// exists, containsAny/All, regex, created…/updated….
func (g *qaGen) laterFilter(k int) *cairnv1.Filter {
	f := &cairnv1.Filter{}
	switch k {
	case 0:
		f.Op = pick(g.r, []cairnv1.Operator{cairnv1.Operator_OPERATOR_EXISTS, cairnv1.Operator_OPERATOR_NOT_EXISTS})
		f.Attribute = pick(g.r, []string{"n", "f", "ok", "at", "tag", "tags"})
	case 1:
		f.Op = pick(g.r, []cairnv1.Operator{cairnv1.Operator_OPERATOR_CONTAINS_ANY, cairnv1.Operator_OPERATOR_CONTAINS_ALL})
		f.Attribute = "tags"
		f.Values = g.values("tags", 1+g.r.IntN(3))
		if g.r.IntN(3) == 0 {
			f.Attribute = "name"
			f.Values = []*structpb.Value{val(g.word()[:2]), val(g.word()[:1])}
		}
	case 2:
		f.Op = cairnv1.Operator_OPERATOR_REGEX
		f.Attribute = pick(g.r, qaStringly)
		w := g.word()
		pattern := pick(g.r, []string{"^" + w[:1+g.r.IntN(3)], w[1:3] + "$", "(?i)^" + strings.ToUpper(w[:2]), w[:1] + ".*" + g.word()[:1],
			"^(" + w[:2] + "|" + g.word()[:2] + ")", `^d0[0-4]\d$`, "t[12]"})
		f.Values = []*structpb.Value{val(pattern)}
	case 4:
		return g.distanceFilter()
	case 5:
		return g.polygonFilter()
	case 6:
		// elemMatch on the string array: one element meeting every
		// nested condition, the nested filters naming tags or nothing.
		f.Op, f.Attribute = cairnv1.Operator_OPERATOR_ELEM_MATCH, "tags"
		for range 1 + g.r.IntN(2) {
			c := &cairnv1.Filter{Attribute: pick(g.r, []string{"", "tags"})}
			w := g.word()
			switch g.r.IntN(4) {
			case 0:
				c.Op, c.Values = cairnv1.Operator_OPERATOR_STARTS_WITH, []*structpb.Value{val(w[:1])}
			case 1:
				c.Op, c.Values = cairnv1.Operator_OPERATOR_NOT_EQUAL, []*structpb.Value{val(w)}
			case 2:
				c.Op, c.Values = cairnv1.Operator_OPERATOR_GREATER_THAN, []*structpb.Value{val(w)}
			default:
				c.Op, c.Values = cairnv1.Operator_OPERATOR_REGEX, []*structpb.Value{val("e.$")}
			}
			f.Filters = append(f.Filters, c)
		}
	default:
		at := database.AttrCreatedAt
		ops := []cairnv1.Operator{cairnv1.Operator_OPERATOR_CREATED_BEFORE, cairnv1.Operator_OPERATOR_CREATED_AFTER, cairnv1.Operator_OPERATOR_CREATED_BETWEEN}
		if g.r.IntN(2) == 0 {
			at = database.AttrUpdatedAt
			ops = []cairnv1.Operator{cairnv1.Operator_OPERATOR_UPDATED_BEFORE, cairnv1.Operator_OPERATOR_UPDATED_AFTER, cairnv1.Operator_OPERATOR_UPDATED_BETWEEN}
		}
		// Times of real documents, so that the bounds cut the collection.
		x, y := pick(g.r, g.docs)[at].(time.Time), pick(g.r, g.docs)[at].(time.Time)
		if x.After(y) {
			x, y = y, x
		}
		f.Op = pick(g.r, ops)
		f.Values = []*structpb.Value{val(x.Format(time.RFC3339Nano))}
		if f.Op == ops[2] {
			f.Values = append(f.Values, val(y.Format(time.RFC3339Nano)))
		}
		if g.r.IntN(2) == 0 {
			f.Attribute = at
		}
	}
	return f
}

// distanceFilter is a distance operator on pos (geo index) or spot (none),
// around a document's point or anywhere; distanceEqual mostly uses the
// exact distance to another document's point, so that it matches.
func (g *qaGen) distanceFilter() *cairnv1.Filter {
	f := &cairnv1.Filter{Attribute: pick(g.r, []string{"pos", "pos", "spot"})}
	f.Op = pick(g.r, []cairnv1.Operator{cairnv1.Operator_OPERATOR_DISTANCE_LESS_THAN, cairnv1.Operator_OPERATOR_DISTANCE_LESS_THAN,
		cairnv1.Operator_OPERATOR_DISTANCE_GREATER_THAN, cairnv1.Operator_OPERATOR_DISTANCE_EQUAL, cairnv1.Operator_OPERATOR_DISTANCE_NOT_EQUAL})
	centre := g.point()
	if p, ok := pick(g.r, g.docs)[f.Attribute].([]any); ok && g.r.IntN(3) > 0 {
		centre = p
	}
	d := pick(g.r, []float64{1_000, 50_000, 300_000, 1_500_000, 8_000_000})
	if other, ok := pick(g.r, g.docs)[f.Attribute].([]any); ok && (f.Op == cairnv1.Operator_OPERATOR_DISTANCE_EQUAL || g.r.IntN(4) == 0) {
		d = query.Distance(centre[0].(float64), centre[1].(float64), other[0].(float64), other[1].(float64))
	}
	vs := []any{centre, d}
	switch g.r.IntN(6) {
	case 0:
		vs = []any{centre, float64(1 + g.r.IntN(20)), false} // degrees
	case 1:
		vs = append(vs, true)
	case 2:
		vs = []any{vs} // Appwrite's nested form
	}
	for _, v := range vs {
		f.Values = append(f.Values, val(v))
	}
	return f
}

// polygonFilter is intersects/notIntersects with a ring around a point,
// sometimes with a hole, sometimes (invalid) left open.
func (g *qaGen) polygonFilter() *cairnv1.Filter {
	f := &cairnv1.Filter{Attribute: pick(g.r, []string{"pos", "pos", "spot"}), Op: cairnv1.Operator_OPERATOR_INTERSECTS}
	if g.r.IntN(4) == 0 {
		f.Op = cairnv1.Operator_OPERATOR_NOT_INTERSECTS
	}
	c := g.point()
	ring := func(r float64, n int) []any {
		var pts []any
		for i := range n {
			a := 2 * math.Pi * float64(i) / float64(n)
			lon := min(180, max(-180, c[0].(float64)+r*1.6*math.Cos(a)))
			lat := min(90, max(-90, c[1].(float64)+r*math.Sin(a)))
			pts = append(pts, []any{lon, lat})
		}
		if g.r.IntN(30) > 0 {
			pts = append(pts, pts[0])
		}
		return pts
	}
	r := float64(1 + g.r.IntN(12))
	outer := ring(r, 3+g.r.IntN(5))
	switch g.r.IntN(3) {
	case 0:
		for _, p := range outer {
			f.Values = append(f.Values, val(p))
		}
	case 1:
		f.Values = []*structpb.Value{val([]any{outer, ring(r/3, 4)})}
	default:
		f.Values = []*structpb.Value{val([]any{outer})}
	}
	return f
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// qaTyped coerces a raw operand as Validate would.
func qaTyped(key string, raw any) any {
	a, ok := qaSchema.Attribute(key)
	if !ok {
		return raw
	}
	v, err := database.Coerce(a, raw)
	if err != nil {
		return raw
	}
	return v
}

// docFields converts an API document to the domain's typed fields.
func docFields(t *testing.T, d *cairnv1.Document) map[string]any {
	t.Helper()
	out := map[string]any{
		database.AttrID:        d.GetId(),
		database.AttrCreatedAt: d.GetCreatedAt().AsTime().UTC().Truncate(time.Millisecond),
		database.AttrUpdatedAt: d.GetUpdatedAt().AsTime().UTC().Truncate(time.Millisecond),
		database.AttrSequence:  int64(d.GetSequence()),
	}
	for k, raw := range d.GetData().AsMap() {
		a, ok := qaSchema.Attribute(k)
		if !ok {
			t.Fatalf("document %s has unknown attribute %q", d.GetId(), k)
		}
		v, err := database.Coerce(a, raw)
		if err != nil {
			t.Fatalf("document %s attribute %s: %v", d.GetId(), k, err)
		}
		out[k] = v
	}
	return out
}

func TestQueriesAgreeWithReference(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p, db, coll = "qa", "main", "items"
	secret := newProjectWithKey(t, in, p, "databases.write", "collections.write", "collections.read", "documents.read", "documents.write")
	k, _ := as(ctx, secret)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Name: "Items"}); err != nil {
		t.Fatal(err)
	}
	attrs, ixs := qaToProto()
	for _, a := range attrs {
		if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Attribute: a}); err != nil {
			t.Fatalf("attribute %s: %v", a.GetKey(), err)
		}
	}
	for _, ix := range ixs {
		if _, err := dbs.CreateIndex(k, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Index: ix}); err != nil {
			t.Fatalf("index %s: %v", ix.GetKey(), err)
		}
	}
	waitIndexes(t, dbs, k, p, db, coll)

	// Documents: unique two-word names, random values with nulls.
	seed := uint64(7)
	if v := os.Getenv("CAIRN_QA_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("CAIRN_QA_SEED: %v", err)
		}
	}
	g := &qaGen{r: rand.New(rand.NewPCG(seed, 11))}
	var names []string
	for i, a := range qaWords {
		for j, b := range qaWords {
			if i != j {
				names = append(names, a+" "+b)
			}
		}
	}
	g.r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	const nDocs = 300
	for start := 0; start < nDocs; start += 100 {
		req := &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll}
		for i := start; i < start+100; i++ {
			doc := g.document(names[i])
			if i > 0 && g.r.IntN(4) > 0 {
				doc["parent"] = fmt.Sprintf("d%03d", g.r.IntN(i)) // an earlier document (related ids are checked)
			}
			data, err := structpb.NewStruct(doc)
			if err != nil {
				t.Fatal(err)
			}
			req.Documents = append(req.Documents, &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("d%03d", i), Data: data})
		}
		if _, err := dbs.CreateDocuments(k, req); err != nil {
			t.Fatalf("create documents: %v", err)
		}
	}
	cursor := ""
	for {
		res, err := dbs.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Limit: 100, CursorAfter: cursor, Total: boolp(false)})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.GetDocuments() {
			g.docs = append(g.docs, docFields(t, d))
		}
		if len(res.GetDocuments()) < 100 {
			break
		}
		cursor = res.GetDocuments()[len(res.GetDocuments())-1].GetId()
	}
	if len(g.docs) != nDocs {
		t.Fatalf("listed %d documents, want %d", len(g.docs), nDocs)
	}

	var prevIDs []string
	const nQueries = 300
	invalid, empty, failed, cachedRankings := 0, 0, 0, 0
	plans := map[string]int{}
	for qi := range nQueries {
		req := &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Limit: int32(1 + g.r.IntN(50)),
			Explain: true, Total: boolp(true)}
		for range g.r.IntN(4) {
			req.Filters = append(req.Filters, g.filter(1))
		}
		for range g.r.IntN(3) {
			o := &cairnv1.Order{Attribute: pick(g.r, []string{"n", "f", "at", "tag", "name", "$createdAt", "$sequence", query.OrderRandom}), Desc: g.r.IntN(2) == 0}
			if o.Attribute == query.OrderRandom {
				o.Seed = 1 + g.r.Uint64N(1000) // seeded: the reference must see the same shuffle
			}
			req.Orders = append(req.Orders, o)
		}
		if g.r.IntN(4) == 0 {
			req.Offset = int32(g.r.IntN(40))
		}
		if len(prevIDs) > 0 {
			switch g.r.IntN(5) {
			case 0:
				req.CursorAfter = pick(g.r, prevIDs)
			case 1:
				req.CursorBefore = pick(g.r, prevIDs)
			}
		}
		q := &query.Query{Filters: qaFiltersIn(req.GetFilters()), Limit: int(req.GetLimit()), Offset: int(req.GetOffset()),
			CursorAfter: req.GetCursorAfter(), CursorBefore: req.GetCursorBefore()}
		for _, o := range req.GetOrders() {
			q.Orders = append(q.Orders, query.Order{Attribute: o.GetAttribute(), Desc: o.GetDesc(), Seed: o.GetSeed()})
		}
		var fs, ords []string
		for _, f := range req.GetFilters() {
			fs = append(fs, qaFilterString(f))
		}
		for _, o := range req.GetOrders() {
			ords = append(ords, fmt.Sprintf("%s desc=%v", o.GetAttribute(), o.GetDesc()))
		}
		desc := fmt.Sprintf("query %d: filters [%s] orders [%s] limit %d offset %d after %q before %q",
			qi, strings.Join(fs, "; "), strings.Join(ords, ", "), req.GetLimit(), req.GetOffset(), req.GetCursorAfter(), req.GetCursorBefore())

		res, err := dbs.ListDocuments(k, req)
		if verr := query.Validate(q, qaSchema, query.DefaultLimits()); verr != nil {
			invalid++
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("%s: the reference rejects it (%v) but the API answered %v", desc, verr, err)
				failed++
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", desc, err)
			failed++
			continue
		}
		// The reference total: every match, ignoring cursor and paging.
		all, err := query.Run(&query.Query{Filters: q.Filters}, g.docs)
		if err != nil {
			t.Fatal(err)
		}
		wantTotal := int64(min(len(all), 5000))
		want, err := query.Run(q, g.docs)
		if err != nil {
			t.Fatalf("%s: reference: %v", desc, err)
		}
		var wantIDs, gotIDs []string
		for _, d := range want {
			wantIDs = append(wantIDs, d[database.AttrID].(string))
		}
		for _, d := range res.GetDocuments() {
			gotIDs = append(gotIDs, d.GetId())
		}
		plans[res.GetExplain().GetIndex()]++
		if len(wantIDs) == 0 {
			empty++
		}
		if !slices.Equal(gotIDs, wantIDs) || res.GetTotal() != wantTotal || res.Total == nil {
			failed++
			e := res.GetExplain()
			t.Errorf("%s\n  plan %q index %q attrs %v index filters %v keys %d docs %d sorted in memory %v\n  total got %d want %d\n  got  %v\n  want %v",
				desc, e.GetPlan(), e.GetIndex(), e.GetIndexAttributes(), e.GetIndexFilters(), e.GetKeysScanned(), e.GetDocumentsExamined(),
				e.GetSortedInMemory(), res.GetTotal(), wantTotal, gotIDs, wantIDs)
		}
		// Asked twice more, the third answer from a cached ranking when the
		// query can use one: the same page and total.
		for again := range 2 {
			res2, err := dbs.ListDocuments(k, req)
			if err != nil {
				t.Fatalf("%s, asked again: %v", desc, err)
			}
			var ids2 []string
			for _, d := range res2.GetDocuments() {
				ids2 = append(ids2, d.GetId())
			}
			if !slices.Equal(ids2, gotIDs) || res2.GetTotal() != res.GetTotal() {
				failed++
				t.Errorf("%s, asked again (%d, plan %q): got %v total %d, first %v total %d", desc, again+1, res2.GetExplain().GetPlan(),
					ids2, res2.GetTotal(), gotIDs, res.GetTotal())
			}
			if strings.Contains(res2.GetExplain().GetPlan(), "(cached ranking)") {
				cachedRankings++
			}
		}
		if len(gotIDs) > 0 {
			prevIDs = gotIDs
		}
	}
	t.Logf("%d queries: %d invalid (rejected by both), %d with an empty page, %d failed, %d answers again from a cached ranking; indexes used %v",
		nQueries, invalid, empty, failed, cachedRankings, plans)
	if cachedRankings == 0 {
		t.Errorf("no query asked again was answered from a cached ranking")
	}
	if invalid > nQueries/4 {
		t.Errorf("%d of %d queries were invalid; the generator is too sloppy", invalid, nQueries)
	}
}

// waitIndexes waits until every index of the collection is available.
func waitIndexes(t testing.TB, dbs interface {
	ListIndexes(context.Context, *cairnv1.ListIndexesRequest) (*cairnv1.ListIndexesResponse, error)
}, k context.Context, p, db, coll string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		li, err := dbs.ListIndexes(k, &cairnv1.ListIndexesRequest{ProjectId: p, DatabaseId: db, CollectionId: coll})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(li.GetIndexes(), func(ix *cairnv1.Index) bool { return ix.GetStatus() != "available" }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("indexes not available: %v", li.GetIndexes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestListCacheReadsItsWrites: through the API, a list answered from the
// list cache (a ranking, and its page's documents) sees a write the moment
// the write has answered — a new first, a changed page document, a delete
// — and two projects with the same database, collection and document ids
// each list only their own documents.
func TestListCacheReadsItsWrites(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	dbs := in.databases()
	const db, coll = "main", "items"
	keys := map[string]context.Context{}
	for _, p := range []string{"lca", "lcb"} {
		secret := newProjectWithKey(t, in, p, "databases.write", "collections.write", "collections.read", "documents.read", "documents.write")
		k, _ := as(ctx, secret)
		keys[p] = k
		if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: "Main"}); err != nil {
			t.Fatal(err)
		}
		if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Name: "Items"}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []*cairnv1.Attribute{
			{Key: "tag", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 32},
			{Key: "n", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER},
			{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64},
		} {
			if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Attribute: a}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := dbs.CreateIndex(k, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: db, CollectionId: coll,
			Index: &cairnv1.Index{Key: "by_tag", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"tag"}}}); err != nil {
			t.Fatal(err)
		}
		waitIndexes(t, dbs, k, p, db, coll)
		req := &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll}
		for i := range 40 {
			n := i
			if p == "lcb" {
				n = -i
			}
			data, _ := structpb.NewStruct(map[string]any{"tag": "x", "n": n, "title": p})
			req.Documents = append(req.Documents, &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("d%02d", i), Data: data})
		}
		if _, err := dbs.CreateDocuments(k, req); err != nil {
			t.Fatal(err)
		}
	}
	list := func(p string) (string, string) {
		t.Helper()
		res, err := dbs.ListDocuments(keys[p], &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Limit: 3, Explain: true,
			Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_EQUAL, Attribute: "tag", Values: []*structpb.Value{structpb.NewStringValue("x")}}},
			Orders:  []*cairnv1.Order{{Attribute: "n", Desc: true}}})
		if err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, d := range res.GetDocuments() {
			if d.GetProjectId() != p {
				t.Fatalf("project %s listed a document of project %s", p, d.GetProjectId())
			}
			page = append(page, d.GetId()+":"+d.GetData().GetFields()["title"].GetStringValue())
		}
		return strings.Join(page, " "), res.GetExplain().GetPlan()
	}
	warm := func(p, want string) {
		t.Helper()
		var got, plan string
		for range 3 { // a miss, a miss that ranks, a cached answer
			got, plan = list(p)
		}
		if got != want || !strings.Contains(plan, "(cached ranking)") {
			t.Fatalf("%s: %s (%s), want %s from a cached ranking", p, got, plan, want)
		}
	}
	warm("lca", "d39:lca d38:lca d37:lca")
	warm("lcb", "d00:lcb d01:lcb d02:lcb")
	set := func(p, id string, n int, title string) {
		t.Helper()
		data, _ := structpb.NewStruct(map[string]any{"n": n, "title": title})
		if _, err := dbs.UpdateDocument(keys[p], &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, DocumentId: id, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		what, want string
		do         func()
	}{
		{"a new first", "d05:moved d39:lca d38:lca", func() { set("lca", "d05", 100, "moved") }},
		{"a page document retitled", "d05:retitled d39:lca d38:lca", func() { set("lca", "d05", 100, "retitled") }},
		{"the first deleted", "d39:lca d38:lca d37:lca", func() {
			if _, err := dbs.DeleteDocument(keys["lca"], &cairnv1.DeleteDocumentRequest{ProjectId: "lca", DatabaseId: db, CollectionId: coll, DocumentId: "d05"}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		step.do()
		if got, plan := list("lca"); got != step.want { // the very next list
			t.Fatalf("after %s: %s (%s), want %s", step.what, got, plan, step.want)
		}
		warm("lca", step.want)
		// The other project's cached list is its own, untouched.
		if got, _ := list("lcb"); got != "d00:lcb d01:lcb d02:lcb" {
			t.Fatalf("lcb after lca's write (%s): %s", step.what, got)
		}
	}
}

// TestListCacheAcrossCollections: through the API, a list in index order
// answered from the list cache (a kept page) keeps it across a write to
// another collection of the project, and sees at once the writes that
// reach its own collection from elsewhere: a cascade from a deleted
// document of the other collection, and a transaction writing both.
func TestListCacheAcrossCollections(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "lcx"
	secret := newProjectWithKey(t, in, p, "databases.write", "collections.write", "collections.read", "documents.read", "documents.write")
	k, _ := as(ctx, secret)
	dbs := in.databases()
	r := relDB{t: t, ctx: k, dbs: dbs, p: p}
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	r.coll("pets", nil, false, str("tag"), &cairnv1.Attribute{Key: "n", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER})
	r.coll("owners", nil, false, str("name"))
	r.ok(second(r.attr("owners", rel("pets", "pets", "oneToMany", "owner", "cascade"))))
	if _, err := dbs.CreateIndex(k, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "pets",
		Index: &cairnv1.Index{Key: "tag_n", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"tag", "n"}, Desc: []bool{false, true}}}); err != nil {
		t.Fatal(err)
	}
	waitIndexes(t, dbs, k, p, "main", "pets")
	for i := range 20 {
		r.ok(r.create("pets", fmt.Sprintf("p%02d", i), map[string]any{"tag": "x", "n": i}))
	}
	r.ok(r.create("owners", "o1", map[string]any{"name": "one", "pets": []any{"p15", "p16", "p17", "p18", "p19"}}))
	r.ok(r.create("owners", "o2", map[string]any{"name": "two"}))
	var lastDocs []*cairnv1.Document
	list := func() (string, string) {
		t.Helper()
		res, err := dbs.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "pets", Limit: 3, Explain: true, Total: proto.Bool(false),
			Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_EQUAL, Attribute: "tag", Values: []*structpb.Value{structpb.NewStringValue("x")}}},
			Orders:  []*cairnv1.Order{{Attribute: "n", Desc: true}}})
		if err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, d := range res.GetDocuments() {
			page = append(page, fmt.Sprintf("%s:%v", d.GetId(), d.GetData().GetFields()["n"].GetNumberValue()))
		}
		lastDocs = res.GetDocuments()
		return strings.Join(page, " "), res.GetExplain().GetPlan()
	}
	warm := func(want string) {
		t.Helper()
		var got, plan string
		var answers [][]*cairnv1.Document
		for range 3 { // a miss that keeps the page, cached answers
			got, plan = list()
			answers = append(answers, lastDocs)
		}
		if got != want || !strings.Contains(plan, "(cached page)") {
			t.Fatalf("%s (%s), want %s from a cached page", got, plan, want)
		}
		// The cached answers are the documents the miss answered, whole.
		for _, a := range answers[1:] {
			if !slices.EqualFunc(a, answers[0], func(x, y *cairnv1.Document) bool { return proto.Equal(x, y) }) {
				t.Fatalf("a cached answer differs from the miss's:\n%v\n%v", a, answers[0])
			}
		}
	}
	warm("p19:19 p18:18 p17:17")
	// A write to owners alone: pets' page is still the cached one.
	r.ok(r.update("owners", "o2", map[string]any{"name": "renamed"}))
	if got, plan := list(); got != "p19:19 p18:18 p17:17" || !strings.Contains(plan, "(cached page)") {
		t.Fatalf("after a write to owners: %s (%s), want the cached page", got, plan)
	}
	// Deleting o1 cascades to its pets: the very next list is without them.
	r.ok(r.del("owners", "o1"))
	if got, plan := list(); got != "p14:14 p13:13 p12:12" {
		t.Fatalf("after the cascade: %s (%s)", got, plan)
	}
	warm("p14:14 p13:13 p12:12")
	// A transaction writing owners and pets.
	tx, err := dbs.CreateTransaction(k, &cairnv1.CreateTransactionRequest{ProjectId: p})
	if err != nil {
		t.Fatal(err)
	}
	id := tx.GetTransaction().GetId()
	if _, err := dbs.StageOperations(k, &cairnv1.StageOperationsRequest{ProjectId: p, TransactionId: id, Operations: []*cairnv1.Operation{
		{DatabaseId: "main", CollectionId: "owners", Action: &cairnv1.Operation_Update{Update: &cairnv1.OperationUpdate{DocumentId: "o2", Data: data(t, map[string]any{"name": "again"})}}},
		{DatabaseId: "main", CollectionId: "pets", Action: &cairnv1.Operation_Update{Update: &cairnv1.OperationUpdate{DocumentId: "p02", Data: data(t, map[string]any{"n": 100})}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := list(); got != "p14:14 p13:13 p12:12" {
		t.Fatalf("a staged write is listed before the commit: %s", got)
	}
	if _, err := dbs.CommitTransaction(k, &cairnv1.CommitTransactionRequest{ProjectId: p, TransactionId: id}); err != nil {
		t.Fatal(err)
	}
	if got, plan := list(); got != "p02:100 p14:14 p13:13" {
		t.Fatalf("after the transaction: %s (%s)", got, plan)
	}
}
