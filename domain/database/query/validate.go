package query

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

// Validate checks q against the collection schema s and the limits lim, and
// normalizes it in place: Limit 0 becomes lim.DefaultLimit and every filter
// value is converted to the attribute's typed representation (see package
// database). Values may arrive as JSON or protobuf Struct decodes them
// (float64, string, bool, nil) or already typed (int64, int, time.Time).
//
// Every error is a *domain.Error of KindInvalid whose Field names the wrong
// part: limit, offset, cursorBefore, queries[i].method,
// queries[i].attribute, queries[i].values, queries[i].values[k],
// queries[i].queries, queries[i].queries[j]…, select[i], orders[i].attribute.
// Top-level filters are queries[i]; children of and/or are
// <parent>.queries[j]. The first error found is returned; q may then be
// partly normalized. Validating a valid, normalized query again changes
// nothing.
func Validate(q *Query, s *database.Schema, lim Limits) error {
	if q == nil {
		return domain.FieldError("", "no query")
	}
	if s == nil {
		s = &database.Schema{}
	}
	lim = lim.withDefaults()
	switch {
	case q.Limit < 0:
		return domain.FieldError("limit", "limit %d is negative", q.Limit)
	case q.Limit == 0:
		q.Limit = lim.DefaultLimit
	case q.Limit > lim.MaxLimit:
		return domain.FieldError("limit", "limit %d is above the maximum of %d", q.Limit, lim.MaxLimit)
	}
	if q.Offset < 0 {
		return domain.FieldError("offset", "offset %d is negative", q.Offset)
	}
	if q.Offset > lim.MaxOffset {
		return domain.FieldError("offset", "offset %d is above the maximum of %d; use a cursor to page further", q.Offset, lim.MaxOffset)
	}
	if q.CursorAfter != "" && q.CursorBefore != "" {
		return domain.FieldError("cursorBefore", "cursorAfter and cursorBefore cannot both be set")
	}
	v := validator{s: s, lim: lim}
	for i := range q.Filters {
		if err := v.filter(&q.Filters[i], fmt.Sprintf("queries[%d]", i), 1); err != nil {
			return err
		}
	}
	for i, key := range q.Select {
		if _, err := v.attribute(key, fmt.Sprintf("select[%d]", i)); err != nil {
			return err
		}
	}
	for i, o := range q.Orders {
		field := fmt.Sprintf("orders[%d].attribute", i)
		if o.Attribute == OrderRandom {
			continue
		}
		a, err := v.attribute(o.Attribute, field)
		if err != nil {
			return err
		}
		if a.Array {
			return domain.FieldError(field, "attribute %q is an array; arrays cannot be ordered by", a.Key)
		}
		if a.Type == database.TypePoint {
			return domain.FieldError(field, "attribute %q is a point; points cannot be ordered by", a.Key)
		}
	}
	return nil
}

type validator struct {
	s     *database.Schema
	lim   Limits
	count int // filters seen so far
}

// attribute returns the attribute named key if it exists and is available.
func (v *validator) attribute(key, field string) (database.Attribute, error) {
	if key == "" {
		return database.Attribute{}, domain.FieldError(field, "attribute is missing")
	}
	a, ok := v.s.Attribute(key)
	if !ok {
		return a, domain.FieldError(field, "attribute %q does not exist", key)
	}
	if a.Status != database.StatusAvailable {
		status := a.Status
		if status == "" {
			status = "unknown"
		}
		return a, domain.FieldError(field, "attribute %q is not available yet (status %s)", key, status)
	}
	return a, nil
}

func (v *validator) filter(f *Filter, path string, depth int) error {
	v.count++
	if v.count > v.lim.MaxFilters {
		return domain.FieldError(path, "more than %d filters in one query", v.lim.MaxFilters)
	}
	if depth > v.lim.MaxDepth {
		return domain.FieldError(path, "filters are nested more than %d levels deep", v.lim.MaxDepth)
	}
	switch f.Op {
	case OpAnd, OpOr:
		if f.Attribute != "" {
			return domain.FieldError(path+".attribute", "%s takes no attribute, only nested queries", f.Op)
		}
		if len(f.Values) > 0 {
			return domain.FieldError(path+".values", "%s takes no values, only nested queries", f.Op)
		}
		if len(f.Filters) == 0 {
			return domain.FieldError(path+".queries", "%s needs at least one nested query", f.Op)
		}
		for j := range f.Filters {
			if err := v.filter(&f.Filters[j], fmt.Sprintf("%s.queries[%d]", path, j), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if !knownOp(f.Op) {
		return domain.FieldError(path+".method", "unknown query method %q", string(f.Op))
	}
	if g, ok := desugar(*f); ok {
		if f.Attribute != "" && f.Attribute != g.Attribute {
			return domain.FieldError(path+".attribute", "%s compares %s; it takes no other attribute", f.Op, g.Attribute)
		}
		// Counted under the name the caller used, for the message.
		if err := v.countValues(f, path); err != nil {
			return err
		}
		*f = g
	}
	if f.Op == OpElemMatch {
		return v.elemMatch(f, path, depth)
	}
	if len(f.Filters) > 0 {
		return domain.FieldError(path+".queries", "%s takes no nested queries; only and/or and elemMatch do", f.Op)
	}
	attrField := path + ".attribute"
	a, err := v.attribute(f.Attribute, attrField)
	if err != nil {
		return err
	}
	if err := v.compatible(f.Op, a, attrField); err != nil {
		return err
	}
	if isGeo(f.Op) {
		return geoValues(f, path)
	}
	if err := v.countValues(f, path); err != nil {
		return err
	}
	elem := a
	if a.Array {
		elem.Array = false
	}
	for k, val := range f.Values {
		field := fmt.Sprintf("%s.values[%d]", path, k)
		var c any
		var err error
		switch {
		case f.Op == OpSearch || f.Op == OpNotSearch:
			c, err = searchValue(a, val, field)
		default:
			// Substring operands (contains on a string, startsWith…) are
			// strings, as every string-like type's values are.
			c, err = coerce(elem, a, val, field)
		}
		if err != nil {
			return err
		}
		f.Values[k] = c
	}
	if f.Op == OpRegex {
		re, err := compileRegex(f.Values[0].(string), path+".values[0]")
		if err != nil {
			return err
		}
		f.re = re
	}
	if (f.Op == OpBetween || f.Op == OpNotBetween) && Compare(f.Values[0], f.Values[1]) > 0 {
		return domain.FieldError(path+".values", "%s needs the lower bound first; %s is above %s",
			f.Op, describe(f.Values[0]), describe(f.Values[1]))
	}
	return nil
}

// elemMatch validates an elemMatch filter: its nested filters apply to one
// element of the array attribute, as to a scalar attribute of the same
// key and type.
func (v *validator) elemMatch(f *Filter, path string, depth int) error {
	attrField := path + ".attribute"
	a, err := v.attribute(f.Attribute, attrField)
	if err != nil {
		return err
	}
	if !a.Array {
		return domain.FieldError(attrField, "attribute %q is %s; elemMatch applies only to arrays", a.Key, typeName(a))
	}
	if len(f.Values) > 0 {
		return domain.FieldError(path+".values", "elemMatch takes no values, only nested queries")
	}
	if len(f.Filters) == 0 {
		return domain.FieldError(path+".queries", "elemMatch needs at least one nested query")
	}
	elem := a
	elem.Array = false
	sub := &validator{s: &database.Schema{Attributes: []database.Attribute{elem}, Indexes: v.s.Indexes}, lim: v.lim, count: v.count}
	for j := range f.Filters {
		c := &f.Filters[j]
		cp := fmt.Sprintf("%s.queries[%d]", path, j)
		if err := setElemAttribute(c, a.Key, cp); err != nil {
			return err
		}
		if err := sub.filter(c, cp, depth+1); err != nil {
			return err
		}
	}
	v.count = sub.count
	return nil
}

// setElemAttribute makes an elemMatch child (and its and/or children) name
// the array attribute key when it names none.
func setElemAttribute(f *Filter, key, path string) error {
	switch f.Op {
	case OpAnd, OpOr:
		for j := range f.Filters {
			if err := setElemAttribute(&f.Filters[j], key, fmt.Sprintf("%s.queries[%d]", path, j)); err != nil {
				return err
			}
		}
		return nil
	case OpElemMatch:
		return domain.FieldError(path+".method", "elemMatch cannot nest inside elemMatch: the elements are scalars")
	}
	if f.Attribute == "" {
		f.Attribute = key
	}
	if f.Attribute != key {
		return domain.FieldError(path+".attribute", "a filter inside elemMatch on %q tests the element itself; it names %q or nothing, not %q", key, key, f.Attribute)
	}
	return nil
}

func knownOp(op Op) bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

// count_ checks the number of values of a leaf filter.
func (v *validator) countValues(f *Filter, path string) error {
	n := len(f.Values)
	field := path + ".values"
	if n > v.lim.MaxValues {
		return domain.FieldError(field, "%s has %d values; at most %d are allowed", f.Op, n, v.lim.MaxValues)
	}
	switch f.Op {
	case OpIsNull, OpIsNotNull, OpExists, OpNotExists:
		if n != 0 {
			return domain.FieldError(field, "%s takes no values; got %d", f.Op, n)
		}
	case OpLessThan, OpLessThanEqual, OpGreaterThan, OpGreaterThanEqual, OpSearch, OpNotSearch, OpRegex,
		OpCreatedBefore, OpCreatedAfter, OpUpdatedBefore, OpUpdatedAfter:
		if n != 1 {
			return domain.FieldError(field, "%s takes exactly one value; got %d", f.Op, n)
		}
	case OpBetween, OpNotBetween, OpCreatedBetween, OpUpdatedBetween:
		if n != 2 {
			return domain.FieldError(field, "%s takes exactly two values (lower and upper bound); got %d", f.Op, n)
		}
	default:
		if n == 0 {
			return domain.FieldError(field, "%s needs at least one value", f.Op)
		}
	}
	return nil
}

func stringLike(t database.Type) bool {
	switch t {
	case database.TypeString, database.TypeEmail, database.TypeURL, database.TypeIP, database.TypeEnum, database.TypeRelationship:
		return true
	}
	return false
}

// compatible checks that op applies to attribute a.
func (v *validator) compatible(op Op, a database.Attribute, field string) error {
	if isGeo(op) != (a.Type == database.TypePoint) && op != OpIsNull && op != OpIsNotNull {
		if a.Type == database.TypePoint {
			return domain.FieldError(field, "attribute %q is a point; only distanceEqual, distanceNotEqual, distanceGreaterThan, distanceLessThan, intersects, notIntersects, isNull and isNotNull apply to points, not %s", a.Key, op)
		}
		return domain.FieldError(field, "attribute %q is %s; %s applies only to point attributes", a.Key, typeName(a), op)
	}
	if a.Array {
		switch op {
		case OpContains, OpNotContains, OpContainsAll, OpIsNull, OpIsNotNull:
			return nil
		}
		return domain.FieldError(field, "attribute %q is an array; only contains, containsAny, containsAll, notContains, isNull and isNotNull apply to arrays, not %s", a.Key, op)
	}
	switch op {
	case OpLessThan, OpLessThanEqual, OpGreaterThan, OpGreaterThanEqual, OpBetween, OpNotBetween:
		if a.Type == database.TypeBoolean {
			return domain.FieldError(field, "attribute %q is a boolean; %s does not apply to booleans", a.Key, op)
		}
		if !stringLike(a.Type) && a.Type != database.TypeInteger && a.Type != database.TypeFloat && a.Type != database.TypeDatetime {
			return domain.FieldError(field, "attribute %q has type %s, which %s does not apply to", a.Key, a.Type, op)
		}
	case OpStartsWith, OpNotStartsWith, OpEndsWith, OpNotEndsWith, OpContains, OpNotContains, OpContainsAll, OpRegex:
		if !stringLike(a.Type) {
			return domain.FieldError(field, "attribute %q is %s; %s applies only to strings (or, for contains, arrays)", a.Key, typeName(a), op)
		}
	case OpSearch, OpNotSearch:
		if !stringLike(a.Type) {
			return domain.FieldError(field, "attribute %q is %s; %s applies only to strings", a.Key, typeName(a), op)
		}
		if !v.hasFulltext(a.Key) {
			return domain.FieldError(field, "%s on %q needs a fulltext index on exactly that attribute; the collection has none", op, a.Key)
		}
	}
	return nil
}

// compileRegex checks a regex operand: short enough, and valid RE2.
func compileRegex(pattern, field string) (*regexp.Regexp, error) {
	if len(pattern) > MaxRegexBytes {
		return nil, domain.FieldError(field, "regex pattern is %d bytes; at most %d are allowed", len(pattern), MaxRegexBytes)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, domain.FieldError(field, "regex pattern %s is not valid RE2 syntax: %v", describe(pattern), err)
	}
	return re, nil
}

func (v *validator) hasFulltext(key string) bool {
	for _, ix := range v.s.Indexes {
		if ix.Type == database.IndexFulltext && len(ix.Attributes) == 1 && ix.Attributes[0] == key &&
			ix.Status != database.StatusFailed && ix.Status != database.StatusDeleting {
			return true
		}
	}
	return false
}

func searchValue(a database.Attribute, val any, field string) (any, error) {
	s, ok := val.(string)
	if !ok {
		return nil, domain.FieldError(field, "search on %q takes a string; %s is not", a.Key, describe(val))
	}
	if len(Tokens(s)) == 0 {
		return nil, domain.FieldError(field, "search string %q has no words to search for", s)
	}
	return s, nil
}

// typeName is "an integer", "an array of integers" and so on.
func typeName(a database.Attribute) string {
	names := map[database.Type][2]string{
		database.TypeString:       {"a string", "strings"},
		database.TypeInteger:      {"an integer", "integers"},
		database.TypeFloat:        {"a float", "floats"},
		database.TypeBoolean:      {"a boolean", "booleans"},
		database.TypeDatetime:     {"a datetime", "datetimes"},
		database.TypeEmail:        {"an email", "emails"},
		database.TypeURL:          {"a url", "urls"},
		database.TypeIP:           {"an ip", "ips"},
		database.TypeEnum:         {"an enum", "enums"},
		database.TypeRelationship: {"a relationship (document id)", "document ids"},
		database.TypePoint:        {"a point", "points"},
	}
	n, ok := names[a.Type]
	if !ok {
		n = [2]string{"of type " + string(a.Type), "values of type " + string(a.Type)}
	}
	if a.Array {
		return "an array of " + n[1]
	}
	return n[0]
}

// describe renders a value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 80 {
			return strconv.Quote(v[:80]) + "…"
		}
		return strconv.Quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	default:
		return fmt.Sprintf("a value of Go type %T", v)
	}
}

// coerce converts val to elem's typed representation; a is the attribute
// as declared (for messages: an array attribute "holds" its elements).
func coerce(elem, a database.Attribute, val any, field string) (any, error) {
	bad := func(extra string) error {
		verb := "is " + typeName(elem)
		if a.Array {
			verb = "holds " + typeName(database.Attribute{Type: elem.Type, Array: true})[len("an array of "):]
		}
		return domain.FieldError(field, "attribute %q %s; %s is not%s", a.Key, verb, describe(val), extra)
	}
	if val == nil {
		return nil, domain.FieldError(field, "null is not a value to compare with; use isNull or isNotNull")
	}
	switch elem.Type {
	case database.TypeInteger:
		switch v := val.(type) {
		case int64:
			return v, nil
		case int:
			return int64(v), nil
		case int32:
			return int64(v), nil
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) || v != math.Trunc(v) {
				return nil, bad("")
			}
			if v < -(1<<63) || v >= 1<<63 {
				return nil, bad(" (out of the 64-bit integer range)")
			}
			return int64(v), nil
		}
	case database.TypeFloat:
		var f float64
		switch v := val.(type) {
		case float64:
			f = v
		case float32:
			f = float64(v)
		case int64:
			f = float64(v)
		case int:
			f = float64(v)
		default:
			return nil, bad("")
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, bad(" (not a finite number)")
		}
		return f, nil
	case database.TypeDatetime:
		switch v := val.(type) {
		case time.Time:
			return v.UTC().Truncate(database.DatetimePrecision), nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, bad(" (expected an RFC 3339 time like 2026-01-02T15:04:05.000Z)")
			}
			return t.UTC().Truncate(database.DatetimePrecision), nil
		}
	case database.TypeBoolean:
		if v, ok := val.(bool); ok {
			return v, nil
		}
	default:
		if stringLike(elem.Type) {
			if v, ok := val.(string); ok {
				return v, nil
			}
		}
	}
	return nil, bad("")
}
