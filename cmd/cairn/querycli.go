package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// whereOps are the words --where takes, each one of the API's operators,
// and the symbols for the comparisons.
var whereOps = map[string]cairnv1.Operator{
	"=": cairnv1.Operator_OPERATOR_EQUAL, "!=": cairnv1.Operator_OPERATOR_NOT_EQUAL,
	"<": cairnv1.Operator_OPERATOR_LESS_THAN, "<=": cairnv1.Operator_OPERATOR_LESS_THAN_EQUAL,
	">": cairnv1.Operator_OPERATOR_GREATER_THAN, ">=": cairnv1.Operator_OPERATOR_GREATER_THAN_EQUAL,
	"equal": cairnv1.Operator_OPERATOR_EQUAL, "not-equal": cairnv1.Operator_OPERATOR_NOT_EQUAL,
	"less-than": cairnv1.Operator_OPERATOR_LESS_THAN, "less-than-equal": cairnv1.Operator_OPERATOR_LESS_THAN_EQUAL,
	"greater-than": cairnv1.Operator_OPERATOR_GREATER_THAN, "greater-than-equal": cairnv1.Operator_OPERATOR_GREATER_THAN_EQUAL,
	"between": cairnv1.Operator_OPERATOR_BETWEEN, "not-between": cairnv1.Operator_OPERATOR_NOT_BETWEEN,
	"is-null": cairnv1.Operator_OPERATOR_IS_NULL, "is-not-null": cairnv1.Operator_OPERATOR_IS_NOT_NULL,
	"starts-with": cairnv1.Operator_OPERATOR_STARTS_WITH, "not-starts-with": cairnv1.Operator_OPERATOR_NOT_STARTS_WITH,
	"ends-with": cairnv1.Operator_OPERATOR_ENDS_WITH, "not-ends-with": cairnv1.Operator_OPERATOR_NOT_ENDS_WITH,
	"contains": cairnv1.Operator_OPERATOR_CONTAINS, "not-contains": cairnv1.Operator_OPERATOR_NOT_CONTAINS,
	"search": cairnv1.Operator_OPERATOR_SEARCH, "not-search": cairnv1.Operator_OPERATOR_NOT_SEARCH,
	"exists": cairnv1.Operator_OPERATOR_EXISTS, "not-exists": cairnv1.Operator_OPERATOR_NOT_EXISTS,
	"contains-any": cairnv1.Operator_OPERATOR_CONTAINS_ANY, "contains-all": cairnv1.Operator_OPERATOR_CONTAINS_ALL,
	"regex":          cairnv1.Operator_OPERATOR_REGEX,
	"created-before": cairnv1.Operator_OPERATOR_CREATED_BEFORE, "created-after": cairnv1.Operator_OPERATOR_CREATED_AFTER,
	"created-between": cairnv1.Operator_OPERATOR_CREATED_BETWEEN,
	"updated-before":  cairnv1.Operator_OPERATOR_UPDATED_BEFORE, "updated-after": cairnv1.Operator_OPERATOR_UPDATED_AFTER,
	"updated-between": cairnv1.Operator_OPERATOR_UPDATED_BETWEEN,
	"distance-equal":  cairnv1.Operator_OPERATOR_DISTANCE_EQUAL, "distance-not-equal": cairnv1.Operator_OPERATOR_DISTANCE_NOT_EQUAL,
	"distance-greater-than": cairnv1.Operator_OPERATOR_DISTANCE_GREATER_THAN, "distance-less-than": cairnv1.Operator_OPERATOR_DISTANCE_LESS_THAN,
	"intersects": cairnv1.Operator_OPERATOR_INTERSECTS, "not-intersects": cairnv1.Operator_OPERATOR_NOT_INTERSECTS,
	"elem-match": cairnv1.Operator_OPERATOR_ELEM_MATCH,
}

const whereHelp = `condition ATTR OP VALUE, repeatable (all must hold). OP: = != < <= > >=, equal, not-equal,
less-than[-equal], greater-than[-equal], between, not-between, is-null, is-not-null,
[not-]starts-with, [not-]ends-with, [not-]contains, [not-]search, [not-]exists,
contains-any, contains-all, regex, created-before/after/between and updated-… (ATTR $createdAt
or $updatedAt), distance-less-than/greater-than/equal/not-equal ([[LON,LAT],METERS]),
[not-]intersects (a closed ring [[LON,LAT],…]), elem-match 'OP VALUE; OP VALUE' (one array
element meets all). VALUE is JSON when it parses (false, 3, "x", [1,5] for between or any-of),
else text`

var (
	symbolWhere = regexp.MustCompile(`^\s*([A-Za-z0-9_$.]+)\s*(!=|<=|>=|=|<|>)\s*(.*)$`)
	wordWhere   = regexp.MustCompile(`^\s*([A-Za-z0-9_$.]+)\s+([a-z-]+)(?:\s+(.*))?$`)
)

// parseWhere turns "done = false" or "title starts-with Ship" into a
// filter of the API (the same operators as ListDocuments' filters).
func parseWhere(s string) (*cairnv1.Filter, error) {
	var attr, op, value string
	if m := symbolWhere.FindStringSubmatch(s); m != nil {
		attr, op, value = m[1], m[2], m[3]
	} else if m := wordWhere.FindStringSubmatch(s); m != nil {
		attr, op, value = m[1], m[2], m[3]
	} else {
		return nil, fmt.Errorf("--where %q: want ATTR OP VALUE, e.g. 'done = false' or 'title starts-with Ship'", s)
	}
	o, ok := whereOps[op]
	if !ok {
		return nil, fmt.Errorf("--where %q: unknown operator %q", s, op)
	}
	f := &cairnv1.Filter{Op: o, Attribute: attr}
	switch o {
	case cairnv1.Operator_OPERATOR_IS_NULL, cairnv1.Operator_OPERATOR_IS_NOT_NULL,
		cairnv1.Operator_OPERATOR_EXISTS, cairnv1.Operator_OPERATOR_NOT_EXISTS:
		if strings.TrimSpace(value) != "" {
			return nil, fmt.Errorf("--where %q: %s takes no value", s, op)
		}
		return f, nil
	case cairnv1.Operator_OPERATOR_ELEM_MATCH:
		// Each "OP VALUE" condition tests one element: "scores elem-match > 80; < 90".
		for _, cond := range strings.Split(value, ";") {
			c, err := parseWhere(attr + " " + strings.TrimSpace(cond))
			if err != nil {
				return nil, fmt.Errorf("--where %q: elem-match condition %q: %w", s, cond, err)
			}
			f.Filters = append(f.Filters, c)
		}
		return f, nil
	case cairnv1.Operator_OPERATOR_REGEX:
		// A pattern is text even when it parses as JSON ("[0-9]", "1").
		if value == "" {
			return nil, fmt.Errorf("--where %q: %s needs a value", s, op)
		}
		f.Values = []*structpb.Value{structpb.NewStringValue(value)}
		return f, nil
	}
	if strings.TrimSpace(value) == "" {
		return nil, fmt.Errorf("--where %q: %s needs a value", s, op)
	}
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		v = value // not JSON: the text itself
	}
	vals, isList := v.([]any)
	if !isList {
		vals = []any{v}
	}
	for _, x := range vals {
		pv, err := structpb.NewValue(x)
		if err != nil {
			return nil, fmt.Errorf("--where %q: %w", s, err)
		}
		f.Values = append(f.Values, pv)
	}
	return f, nil
}

// queryFlags are the flags of a list command that takes the query language.
type queryFlags struct {
	where   []string
	filters []string
	orders  []string
	limit   int
	offset  int
	after   string
}

func (q *queryFlags) flags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&q.where, "where", nil, whereHelp)
	fs.StringArrayVar(&q.filters, "filter", nil, `a filter as the API's JSON, repeatable, for and/or: '{"op":"OPERATOR_OR","filters":[…]}'`)
	fs.StringArrayVar(&q.orders, "order", nil, "sort by ATTR, or -ATTR for descending; repeatable")
	fs.IntVar(&q.limit, "limit", 0, "at most this many (0 = the server's default, 25)")
	fs.IntVar(&q.offset, "offset", 0, "skip this many")
	fs.StringVar(&q.after, "cursor-after", "", "start after this id (paging)")
}

func (q *queryFlags) build() ([]*cairnv1.Filter, []*cairnv1.Order, error) {
	var fs []*cairnv1.Filter
	for _, w := range q.where {
		f, err := parseWhere(w)
		if err != nil {
			return nil, nil, err
		}
		fs = append(fs, f)
	}
	for _, j := range q.filters {
		f := &cairnv1.Filter{}
		if err := protojson.Unmarshal([]byte(j), f); err != nil {
			return nil, nil, fmt.Errorf("--filter %s: %w", j, err)
		}
		fs = append(fs, f)
	}
	var orders []*cairnv1.Order
	for _, o := range q.orders {
		attr, desc := strings.CutPrefix(o, "-")
		orders = append(orders, &cairnv1.Order{Attribute: attr, Desc: desc})
	}
	return fs, orders, nil
}

// jsonArg reads a JSON object given inline, as @FILE, or - for stdin.
func (e *cliEnv) jsonArg(flag, s string) (*structpb.Struct, error) {
	b := []byte(s)
	switch {
	case s == "-":
		var err error
		if b, err = readAll(e.stdin); err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
	case strings.HasPrefix(s, "@"):
		var err error
		if b, err = os.ReadFile(s[1:]); err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("--%s: want a JSON object: %w", flag, err)
	}
	return st, nil
}
