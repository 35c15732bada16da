// Package query is the pure query language of Cairn's document database:
// Appwrite's query set as structured Go values, a validator that checks a
// query against a collection schema and normalizes its values to the typed
// representation of package database, a brute-force reference evaluator
// (Match, Less, Run), and aggregations (Aggregate).
//
// The reference evaluator defines the semantics: a planner that answers
// queries from indexes must return what Run returns on the same documents.
//
// Nothing here performs I/O, reads clocks or panics on any input; it imports
// only the standard library and Cairn's domain packages.
package query

import (
	"regexp"

	"github.com/cairn-dev/cairn/domain/database"
)

// Op is a filter operator (Appwrite's query method name).
type Op string

// The operators. Comparisons, string operators and search take values;
// isNull/isNotNull none; and/or take child filters.
const (
	OpEqual            Op = "equal"
	OpNotEqual         Op = "notEqual"
	OpLessThan         Op = "lessThan"
	OpLessThanEqual    Op = "lessThanEqual"
	OpGreaterThan      Op = "greaterThan"
	OpGreaterThanEqual Op = "greaterThanEqual"
	OpBetween          Op = "between"
	OpNotBetween       Op = "notBetween"
	OpIsNull           Op = "isNull"
	OpIsNotNull        Op = "isNotNull"
	OpStartsWith       Op = "startsWith"
	OpNotStartsWith    Op = "notStartsWith"
	OpEndsWith         Op = "endsWith"
	OpNotEndsWith      Op = "notEndsWith"
	OpContains         Op = "contains"
	OpNotContains      Op = "notContains"
	OpSearch           Op = "search"
	OpNotSearch        Op = "notSearch"
	OpAnd              Op = "and"
	OpOr               Op = "or"

	// Added after the first set; each is also a proto enum value.

	// exists/notExists are isNotNull/isNull under Appwrite's names: an
	// absent key and a null value are the same here.
	OpExists    Op = "exists"
	OpNotExists Op = "notExists"
	// containsAny is contains; containsAll needs every value to be an
	// element of the array (a substring of the string).
	OpContainsAny Op = "containsAny"
	OpContainsAll Op = "containsAll"
	// regex matches a string attribute against an RE2 pattern (package
	// regexp, unanchored) of at most MaxRegexBytes bytes.
	OpRegex Op = "regex"
	// created…/updated… compare $createdAt/$updatedAt: lessThan,
	// greaterThan and between (inclusive). Validate rewrites them to those
	// operators so the planner serves them like any range.
	OpCreatedBefore  Op = "createdBefore"
	OpCreatedAfter   Op = "createdAfter"
	OpCreatedBetween Op = "createdBetween"
	OpUpdatedBefore  Op = "updatedBefore"
	OpUpdatedAfter   Op = "updatedAfter"
	OpUpdatedBetween Op = "updatedBetween"
	// elemMatch matches an array attribute when one element satisfies
	// every nested filter. Cairn's arrays hold scalars, so the nested
	// filters test the element itself: they name the array attribute (or
	// none) and apply as to a single value of its type, as in
	// elemMatch("scores", [greaterThan(80), lessThan(90)]).
	OpElemMatch Op = "elemMatch"
)

// MaxRegexBytes is the longest regex pattern: RE2 runs in linear time, but
// a huge pattern still costs memory and compile time for every query.
const MaxRegexBytes = 256

// Ops lists every operator, in the order above.
var Ops = []Op{
	OpEqual, OpNotEqual, OpLessThan, OpLessThanEqual, OpGreaterThan, OpGreaterThanEqual,
	OpBetween, OpNotBetween, OpIsNull, OpIsNotNull, OpStartsWith, OpNotStartsWith,
	OpEndsWith, OpNotEndsWith, OpContains, OpNotContains, OpSearch, OpNotSearch, OpAnd, OpOr,
	OpExists, OpNotExists, OpContainsAny, OpContainsAll, OpRegex,
	OpCreatedBefore, OpCreatedAfter, OpCreatedBetween, OpUpdatedBefore, OpUpdatedAfter, OpUpdatedBetween,
	OpDistanceEqual, OpDistanceNotEqual, OpDistanceGreaterThan, OpDistanceLessThan, OpIntersects, OpNotIntersects,
	OpElemMatch,
}

// desugar returns the filter that f stands for when f's operator is another
// one under a different name (exists, createdBefore…), and ok false
// otherwise. A created…/updated… filter may name its system attribute or
// none.
func desugar(f Filter) (Filter, bool) {
	// A switch, not a map: Match calls this for every filter of every
	// document it tests.
	switch f.Op {
	case OpExists:
		f.Op = OpIsNotNull
	case OpNotExists:
		f.Op = OpIsNull
	case OpContainsAny:
		f.Op = OpContains
	case OpCreatedBefore:
		f.Op, f.Attribute = OpLessThan, database.AttrCreatedAt
	case OpCreatedAfter:
		f.Op, f.Attribute = OpGreaterThan, database.AttrCreatedAt
	case OpCreatedBetween:
		f.Op, f.Attribute = OpBetween, database.AttrCreatedAt
	case OpUpdatedBefore:
		f.Op, f.Attribute = OpLessThan, database.AttrUpdatedAt
	case OpUpdatedAfter:
		f.Op, f.Attribute = OpGreaterThan, database.AttrUpdatedAt
	case OpUpdatedBetween:
		f.Op, f.Attribute = OpBetween, database.AttrUpdatedAt
	default:
		return f, false
	}
	return f, true
}

// TestedAttribute is the attribute f tests itself ("" for and/or): its
// own, or the system attribute an operator such as updatedBefore names.
func TestedAttribute(f Filter) string {
	g, _ := desugar(f)
	return g.Attribute
}

// Filter is one condition on a document.
//
// For and/or, Filters holds the children and Attribute and Values are
// empty; elemMatch has an Attribute and Filters. For every other operator, Attribute names the attribute and Values
// the operands; after Validate they are in the attribute's typed
// representation (for contains on an array attribute, the element's).
type Filter struct {
	Op        Op
	Attribute string
	Values    []any
	Filters   []Filter

	// re is a regex filter's compiled pattern, set by Validate so that
	// Match does not compile it once per document.
	re *regexp.Regexp
}

// Order sorts by one attribute, or by OrderRandom.
type Order struct {
	Attribute string
	Desc      bool
	// Seed picks the permutation of an OrderRandom order: the same seed
	// gives the same order, so pages and cursors stay consistent.
	Seed uint64
}

// OrderRandom is the order attribute of Appwrite's orderRandom: a shuffle
// that is a pure function of Order.Seed and each document's $id.
const OrderRandom = "$random"

// Query is a list request on a collection.
type Query struct {
	// Filters are AND-ed.
	Filters []Filter
	// Select names the attributes to return; empty means all.
	Select []string
	// Orders sort the result; ties (and an empty Orders) are broken by
	// $sequence ascending, which is insertion order.
	Orders []Order
	// Limit is the page size; Validate sets it to Limits.DefaultLimit
	// when 0.
	Limit  int
	Offset int
	// CursorAfter / CursorBefore are document ids: the page starts right
	// after (ends right before) that document in the query's order. At
	// most one is set.
	CursorAfter, CursorBefore string
}

// Limits bound what a query may ask for. A zero field means the
// DefaultLimits value.
type Limits struct {
	// DefaultLimit is the page size of a query that sets none.
	DefaultLimit int
	// MaxLimit is the largest page size.
	MaxLimit int
	// MaxOffset is the largest offset: deep pages cost a scan of every
	// skipped document, cursors do not.
	MaxOffset int
	// MaxValues is the most values one filter may carry (an IN list).
	MaxValues int
	// MaxFilters is the most filters in a query, counting every and/or and
	// every filter nested in them.
	MaxFilters int
	// MaxDepth is the deepest nesting: a top-level filter is at depth 1,
	// a child of a top-level and/or at depth 2, and so on.
	MaxDepth int
}

// DefaultLimits returns Appwrite-like limits: pages of 25 up to 100
// documents, offsets up to 5000, 100 values per filter, 100 filters in all,
// and and/or nested at most 3 levels deep (and(or(equal)) is depth 3).
func DefaultLimits() Limits {
	return Limits{DefaultLimit: 25, MaxLimit: 100, MaxOffset: 5000, MaxValues: 100, MaxFilters: 100, MaxDepth: 3}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.DefaultLimit <= 0 {
		l.DefaultLimit = d.DefaultLimit
	}
	if l.MaxLimit <= 0 {
		l.MaxLimit = d.MaxLimit
	}
	if l.MaxOffset <= 0 {
		l.MaxOffset = d.MaxOffset
	}
	if l.MaxValues <= 0 {
		l.MaxValues = d.MaxValues
	}
	if l.MaxFilters <= 0 {
		l.MaxFilters = d.MaxFilters
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}
