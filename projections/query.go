package projections

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	"github.com/cairn-dev/cairn/projections/indexkey"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Query limits.
const (
	// DefaultMaxScan is how many documents one query may examine (read and
	// test against its filters) before it fails asking for an index.
	DefaultMaxScan = 10_000
	// TotalCap is where counting a query's total stops.
	TotalCap = 5_000
)

// QueryOptions tune one query.
type QueryOptions struct {
	// Allow filters documents the caller may not read (document security);
	// nil allows all. Denied documents are never counted or returned, so
	// pages stay full and cursors stay correct.
	Allow func(*eventsv1.Document) bool
	// MaxScan bounds documents examined (DefaultMaxScan when 0).
	MaxScan int
	// Total counts every match, up to TotalCap.
	Total bool
	// Shared: the caller only reads the documents and fields it is
	// given, so they may be shared with other callers: a page kept in
	// the list cache then keeps them decoded (rankings.go).
	Shared bool
}

// Explain says how a query ran.
type Explain struct {
	Index           string
	IndexAttributes []string
	IndexFilters    []string
	KeysScanned     int64
	DocsExamined    int64
	DocsDenied      int64
	SortedInMemory  bool
	// RankingCached: the matches' order came from a cached ranking
	// (rankings.go), not from a scan.
	RankingCached bool
	// PageCached: the page's documents came from a cached page of a scan
	// in index order (rankings.go).
	PageCached bool
	Plan       string
}

// QueryResult is one page of a query.
type QueryResult struct {
	Docs []*eventsv1.Document
	// Fields are the documents' typed values (Fields()), same order.
	Fields      []map[string]any
	Total       int64
	TotalCapped bool
	Explain     Explain
}

// plan is the chosen way to answer a query.
type plan struct {
	ix      database.Index
	eq      []any      // values of the leading attributes
	lo, hi  *bound     // range on the next attribute
	ordered bool       // the scan yields the query's order
	reverse bool       // the index runs opposite to the order
	token   string     // fulltext: scan this token's entries
	geo     []geoRange // geo index: scan these cell ranges
	used    []string   // filters the index range answers
}

type bound struct {
	v         any
	inclusive bool
}

// choosePlan picks the index answering most of the query: the longest
// equality prefix, then a range on the next attribute, then whether it
// yields the requested order (a scan in order can stop after one page).
func choosePlan(schema *database.Schema, q *query.Query) plan {
	for _, f := range q.Filters {
		if f.Op != query.OpSearch {
			continue
		}
		for _, ix := range schema.Indexes {
			if ix.Type == database.IndexFulltext && ix.Status == database.StatusAvailable && ix.Attributes[0] == f.Attribute {
				toks := query.Tokens(f.Values[0].(string))
				if len(toks) > 0 {
					return plan{ix: ix, token: toks[0], used: []string{"search(" + f.Attribute + ")"}}
				}
			}
		}
	}
	if pl, ok := geoPlan(schema, q); ok && !narrowedByKey(schema, q) {
		return pl
	}
	candidates := make([]database.Index, 0, len(schema.Indexes)+len(implicitIndexes))
	for _, ix := range schema.Indexes {
		if ix.Type != database.IndexFulltext && ix.Status == database.StatusAvailable {
			candidates = append(candidates, ix)
		}
	}
	candidates = append(candidates, implicitIndexes...)
	best, bestScore := plan{ix: implicitIndexes[0]}, -1
	for _, ix := range candidates {
		pl := plan{ix: ix}
		for _, a := range ix.Attributes {
			v, ok := equality(q.Filters, a)
			if !ok {
				break
			}
			pl.eq = append(pl.eq, v)
			pl.used = append(pl.used, "equal("+a+")")
		}
		k := len(pl.eq)
		if k < len(ix.Attributes) {
			a := ix.Attributes[k]
			pl.lo, pl.hi = rangeOf(q.Filters, a)
			if pl.lo != nil || pl.hi != nil {
				pl.used = append(pl.used, "range("+a+")")
			}
		}
		pl.ordered, pl.reverse = inOrder(ix, k, q.Orders)
		score := 4*k + 1
		if pl.lo != nil || pl.hi != nil {
			score += 2
		}
		if pl.ordered {
			score++
		}
		if k == 0 && pl.lo == nil && pl.hi == nil && !pl.ordered {
			score = 0
		}
		if score > bestScore {
			best, bestScore = pl, score
		}
	}
	if bestScore <= 0 {
		best = plan{ix: implicitIndexes[0]}
		best.ordered, best.reverse = inOrder(best.ix, 0, q.Orders)
	}
	return best
}

// equality returns the value a top-level single-value equal filter on
// attribute a requires.
func equality(filters []query.Filter, a string) (any, bool) {
	for _, f := range filters {
		if f.Op == query.OpEqual && f.Attribute == a && len(f.Values) == 1 {
			return f.Values[0], true
		}
	}
	return nil, false
}

// rangeOf returns the bounds top-level comparisons (and literal prefixes of
// startsWith and regex) put on attribute a.
func rangeOf(filters []query.Filter, a string) (lo, hi *bound) {
	for _, f := range filters {
		if f.Attribute != a {
			continue
		}
		switch f.Op {
		case query.OpGreaterThan:
			lo = &bound{f.Values[0], false}
		case query.OpGreaterThanEqual:
			lo = &bound{f.Values[0], true}
		case query.OpLessThan:
			hi = &bound{f.Values[0], false}
		case query.OpLessThanEqual:
			hi = &bound{f.Values[0], true}
		case query.OpBetween:
			lo, hi = &bound{f.Values[0], true}, &bound{f.Values[1], true}
		case query.OpStartsWith, query.OpRegex:
			// A literal prefix is the range [prefix, the next prefix).
			if p, ok := query.LiteralPrefix(f); ok {
				lo, hi = &bound{p, true}, nil
				if end, ok := query.PrefixEnd(p); ok {
					hi = &bound{end, false}
				}
			}
		}
	}
	return lo, hi
}

// inOrder reports whether scanning ix after k equal attributes yields
// orders (ties by $sequence ascending, which the key suffix gives), and
// whether the scan runs backwards.
func inOrder(ix database.Index, k int, orders []query.Order) (ok, reverse bool) {
	rest := ix.Attributes[k:]
	desc := ix.Desc[k:]
	if n := len(orders); n > 0 && orders[n-1].Attribute == database.AttrSequence && !orders[n-1].Desc &&
		(len(rest) < n || rest[n-1] != database.AttrSequence) {
		orders = orders[:n-1] // the key suffix orders ties by $sequence ascending
	}
	if len(rest) > 0 && rest[len(rest)-1] == database.AttrSequence && len(orders) < len(rest) {
		rest, desc = rest[:len(rest)-1], desc[:len(desc)-1] // unique: ties never reach the suffix
	}
	if len(orders) != len(rest) {
		return false, false
	}
	for i, o := range orders {
		if o.Attribute != rest[i] {
			return false, false
		}
		r := o.Desc != desc[i]
		if i == 0 {
			reverse = r
		} else if r != reverse {
			return false, false
		}
	}
	return true, reverse
}

// entry is one index entry: the encoded values, the sequence suffix, the
// document it points to and what it carries of it.
type entry struct {
	values []byte
	seq    uint64
	id     string
	carry  carried
}

// Query answers a validated query on collection c. Every candidate the
// index yields is tested against all filters (the index narrows, Match
// decides), so the result equals query.Run over the whole collection.
func (p *Projections) Query(project string, c *eventsv1.Collection, q *query.Query, opt QueryOptions) (QueryResult, error) {
	schema, err := p.schemas.get(c)
	if err != nil {
		return QueryResult{}, err
	}
	if opt.MaxScan <= 0 {
		opt.MaxScan = DefaultMaxScan
	}
	pl := choosePlan(schema, q)
	res := QueryResult{}
	res.Explain.Index = pl.ix.Key
	res.Explain.IndexAttributes = pl.ix.Attributes
	res.Explain.IndexFilters = pl.used
	res.Explain.SortedInMemory = !pl.ordered
	// Read before the snapshot: a ranking built from it is kept under a
	// version no newer than its data (rankings.go).
	version := p.state(projectSpace(project).stream).docVersion(collKey(c.GetDatabaseId(), c.GetId()))
	err = p.db.View(func(txn *badger.Txn) error {
		r := &runner{p: p, txn: txn, project: project, c: c, schema: schema, q: q, opt: opt, pl: pl, res: &res, version: version}
		return r.run()
	})
	res.Explain.Plan = describePlan(pl, &res.Explain)
	return res, err
}

func describePlan(pl plan, e *Explain) string {
	how := "scan of index " + pl.ix.Key
	if len(pl.used) > 0 {
		how += " answering " + strings.Join(pl.used, ", ")
	}
	if pl.token != "" {
		how += fmt.Sprintf(" (token %q)", pl.token)
	}
	how += describeGeo(pl)
	order := "in index order"
	if !pl.ordered {
		order = "sorted in memory"
		if e.RankingCached {
			order += " (cached ranking)"
		}
	} else if pl.reverse {
		order = "in reverse index order"
	}
	if e.PageCached {
		order += " (cached page)"
	}
	return fmt.Sprintf("%s, %s; %d keys scanned, %d documents examined, %d denied", how, order, e.KeysScanned, e.DocsExamined, e.DocsDenied)
}

type runner struct {
	p       *Projections
	txn     *badger.Txn
	project string
	c       *eventsv1.Collection
	schema  *database.Schema
	q       *query.Query
	opt     QueryOptions
	pl      plan
	res     *QueryResult
	// cursorKey is the cursor document's entry in the plan's index: the
	// scan starts there instead of examining everything before it.
	cursorKey []byte
	// scratch holds a carried entry's members while loadCarried decodes.
	scratch map[string]any
	// orderNames are the order attributes loadCarried decodes for an
	// entry it need not test.
	orderNames []string
	// version is the collection's read model version before txn began.
	version readVersion
	// pageDocs: load is reading the page of a range that holds exactly
	// the query's matches, so each document it reads is on the page
	// (unless the caller may not read it): worth caching (readDoc).
	pageDocs bool
}

// errScanLimit is the failure of a query that examined too much.
func (r *runner) errScanLimit() error {
	var residual []string
	for _, f := range r.q.Filters {
		if f.Attribute != "" && !slices.Contains(r.pl.used, string(f.Op)+"("+f.Attribute+")") && !slices.Contains(residual, f.Attribute) {
			residual = append(residual, f.Attribute)
		}
	}
	for _, o := range r.q.Orders {
		if !slices.Contains(residual, o.Attribute) {
			residual = append(residual, o.Attribute)
		}
	}
	hint := "narrow the filters"
	if len(residual) > 0 {
		hint = "create an index on (" + strings.Join(residual, ", ") + ")"
	}
	what := "this query"
	if r.opt.Total {
		what += " (counting its total; total=false skips that)"
	}
	return domain.Errorf(domain.KindFailedPrecondition, "%s would examine more than %d documents of collection %q using index %q: %s",
		what, r.opt.MaxScan, r.c.GetId(), r.pl.ix.Key, hint)
}

// load reads the document an entry points to and tests it.
func (r *runner) load(e entry) (*eventsv1.Document, map[string]any, bool, error) {
	if r.res.Explain.DocsExamined >= int64(r.opt.MaxScan) {
		return nil, nil, false, r.errScanLimit()
	}
	r.res.Explain.DocsExamined++
	var d *eventsv1.Document
	if r.pageDocs {
		found, err := false, error(nil)
		if d, found, err = r.readDoc(e.id); err == nil && !found {
			err = fmt.Errorf("index %s points at document %s: %w", r.pl.ix.Key, e.id, badger.ErrKeyNotFound)
		}
		if err != nil {
			return nil, nil, false, err
		}
	} else {
		item, err := r.txn.Get(documentKey(r.project, r.c.GetUid(), e.id))
		if err != nil {
			return nil, nil, false, fmt.Errorf("index %s points at document %s: %w", r.pl.ix.Key, e.id, err)
		}
		d = &eventsv1.Document{}
		if err := item.Value(func(v []byte) error { return proto.Unmarshal(v, d) }); err != nil {
			return nil, nil, false, err
		}
	}
	f, err := Fields(r.schema, d)
	if err != nil {
		return nil, nil, false, err
	}
	if !query.Match(r.q.Filters, f) {
		return d, f, false, nil
	}
	if r.opt.Allow != nil && !r.opt.Allow(d) {
		r.res.Explain.DocsDenied++
		return d, f, false, nil
	}
	return d, f, true, nil
}

// scanRange returns the key range of the plan: the bytes every entry
// starts with, and the first and last keys (inclusive) to visit.
func (r *runner) scanRange() (prefix, from, to []byte, err error) {
	prefix = indexPrefix(r.project, r.c.GetUid(), r.pl.ix.UID)
	if r.pl.token != "" {
		prefix, err = indexkey.Append(prefix, r.pl.token, false)
		return prefix, prefix, indexkey.PrefixEnd(prefix), err
	}
	for i, v := range r.pl.eq {
		if prefix, err = indexkey.Append(prefix, v, r.pl.ix.Desc[i]); err != nil {
			return nil, nil, nil, err
		}
	}
	from, to = prefix, indexkey.PrefixEnd(prefix)
	k := len(r.pl.eq)
	if k < len(r.pl.ix.Attributes) {
		desc := r.pl.ix.Desc[k]
		lo, hi := r.pl.lo, r.pl.hi
		if desc {
			lo, hi = hi, lo // a descending column stores the high values first
		}
		if lo != nil {
			b, err := indexkey.Append(bytes.Clone(prefix), lo.v, desc)
			if err != nil {
				return nil, nil, nil, err
			}
			from = b
			if !lo.inclusive {
				from = indexkey.PrefixEnd(b)
			}
		}
		if hi != nil {
			b, err := indexkey.Append(bytes.Clone(prefix), hi.v, desc)
			if err != nil {
				return nil, nil, nil, err
			}
			to = b
			if hi.inclusive {
				to = indexkey.PrefixEnd(b)
			}
		}
	}
	return prefix, from, to, nil
}

// scan calls fn with the plan's entries in [from, to): forwards, or
// backwards with equal values kept in ascending sequence (group reversal),
// so ties come as Less orders them.
func (r *runner) scan(rawReverse, groupReverse bool, fn func(entry) (bool, error)) error {
	if r.pl.geo != nil {
		return r.scanGeo(fn) // a geo plan is never ordered: no reverse, no cursor key
	}
	prefix, from, to, err := r.scanRange()
	if err != nil {
		return err
	}
	// No prefetching: it starts a goroutine per entry, for values (document
	// ids) that are read inline anyway — a fifth of a page's CPU.
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: rawReverse})
	defer it.Close()
	var group []entry
	flush := func() (bool, error) {
		for i := len(group) - 1; i >= 0; i-- {
			if more, err := fn(group[i]); err != nil || !more {
				return false, err
			}
		}
		group = group[:0]
		return true, nil
	}
	if ck := r.cursorKey; ck != nil {
		values := ck[:len(ck)-8]
		switch {
		case !rawReverse && !groupReverse && bytes.Compare(ck, from) > 0:
			from = ck
		case !rawReverse && groupReverse && bytes.Compare(values, from) > 0:
			from = values
		case rawReverse && !groupReverse && (to == nil || bytes.Compare(ck, to) < 0):
			to = ck
		case rawReverse && groupReverse:
			if end := indexkey.PrefixEnd(values); to == nil || bytes.Compare(end, to) < 0 {
				to = end
			}
		}
	}
	start := from
	if rawReverse {
		start = to
	}
	for it.Seek(start); it.Valid(); it.Next() {
		k := it.Item().Key()
		if rawReverse && to != nil && bytes.Compare(k, to) >= 0 {
			continue
		}
		if !rawReverse && to != nil && bytes.Compare(k, to) >= 0 {
			break
		}
		if rawReverse && bytes.Compare(k, from) < 0 {
			break
		}
		r.res.Explain.KeysScanned++
		var v string
		if err := it.Item().Value(func(b []byte) error { v = string(b); return nil }); err != nil {
			return err
		}
		id, carry, ok := parseEntryValue(v)
		if !ok {
			return fmt.Errorf("index %s: malformed entry %q", r.pl.ix.Key, k)
		}
		e := entry{seq: binary.BigEndian.Uint64(k[len(k)-8:]), id: id, carry: carry}
		if groupReverse {
			e.values = bytes.Clone(k[:len(k)-8])
		}
		if !groupReverse {
			if more, err := fn(e); err != nil || !more {
				return err
			}
			continue
		}
		if len(group) > 0 && !bytes.Equal(group[0].values, e.values) {
			if more, err := flush(); err != nil || !more {
				return err
			}
		}
		group = append(group, e)
		if len(group) > r.opt.MaxScan {
			return r.errScanLimit()
		}
	}
	_, err = flush()
	return err
}

func (r *runner) run() error {
	q := r.q
	var cursor map[string]any
	var cursorDoc *eventsv1.Document
	cursorID, before := q.CursorAfter, false
	if q.CursorBefore != "" {
		cursorID, before = q.CursorBefore, true
	}
	if cursorID != "" {
		d := &eventsv1.Document{}
		found, err := getIn(r.txn, documentKey(r.project, r.c.GetUid(), cursorID), d)
		if err != nil {
			return err
		}
		field := "cursorAfter"
		if before {
			field = "cursorBefore"
		}
		if !found {
			return domain.FieldError(field, "document %q for the cursor does not exist", cursorID)
		}
		if cursor, err = Fields(r.schema, d); err != nil {
			return err
		}
		cursorDoc = d
		// The cursor's index key marks its place only among the keys of the
		// equality prefix; a cursor outside it is placed by Less alone.
		if r.pl.ordered && r.pl.token == "" && sharesPrefix(r.pl, cursor) {
			ks, err := indexKeys(r.project, r.c.GetUid(), r.pl.ix, cursor, d.GetSequence())
			if err != nil {
				return err
			}
			r.cursorKey = ks[0]
		}
	}
	if !r.pl.ordered {
		if done, err := r.runRanked(cursor, before); done || err != nil {
			return err
		}
		return r.runSorted(cursor, before)
	}
	pageKey, err := r.pageKey(cursorID, before)
	if err != nil {
		return err
	}
	if pageKey != "" {
		if done, err := r.runPaged(pageKey); done || err != nil {
			return err
		}
	}
	less := query.Less(q.Orders)
	skip := q.Offset
	var out []*eventsv1.Document
	var outF []map[string]any
	count := int64(0)
	full := false
	byIndex := r.countsByIndex()
	exact := r.rangeIsExact()
	err = r.scan(r.pl.reverse != before, r.pl.reverse, func(e entry) (bool, error) {
		if cursorDoc != nil && !full {
			// Skip up to and including the cursor's place in this scan.
			if e.id == cursorDoc.GetId() {
				return true, nil
			}
		}
		r.pageDocs = exact && !full && (cursor == nil || r.cursorKey != nil) // not a count, nor a scan up to the cursor
		d, f, ok, err := r.load(e)
		if err != nil || !ok {
			return err == nil, err
		}
		if cursor != nil {
			c := less(f, cursor)
			if before {
				c = -c
			}
			if c <= 0 {
				return true, nil
			}
		}
		if full {
			count++
			if int64(q.Offset-skip)+int64(len(out))+count >= TotalCap {
				r.res.TotalCapped = true
				return false, nil
			}
			return true, nil
		}
		if skip > 0 {
			skip--
		} else {
			out, outF = append(out, d), append(outF, f)
		}
		if q.Limit > 0 && len(out) >= q.Limit {
			full = true
			// Go on counting, unless countAll counts the index entries.
			return r.opt.Total && cursor == nil && !byIndex, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if before {
		slices.Reverse(out)
		slices.Reverse(outF)
	}
	r.res.Docs, r.res.Fields = out, outF
	if pageKey != "" {
		r.keepPage(pageKey, out, outF)
	}
	if r.opt.Total {
		if cursor != nil || full && byIndex {
			// The total counts every match, not those after the cursor.
			return r.countAll()
		}
		r.res.Total = int64(q.Offset-skip) + int64(len(out)) + count
	}
	return nil
}

// sharesPrefix reports whether the document fields f hold the values of
// the plan's equality prefix.
func sharesPrefix(pl plan, f map[string]any) bool {
	for i, v := range pl.eq {
		if query.Compare(f[pl.ix.Attributes[i]], v) != 0 {
			return false
		}
	}
	return true
}

// countsByIndex reports whether the entries of the plan's index range are
// exactly the query's matches, one per document, so that counting them
// needs no document: every filter is an equality the range answers (no
// document security, no range, no fulltext), on a string, integer or
// boolean, whose encodings are equal exactly when Match finds the values
// equal (floats are not: -0 equals 0; times and nulls are left to Match).
func (r *runner) countsByIndex() bool {
	return r.opt.Allow == nil && r.rangeIsExact()
}

// rangeIsExact is countsByIndex whatever the caller may read.
func (r *runner) rangeIsExact() bool {
	pl := r.pl
	if pl.token != "" || pl.geo != nil || pl.lo != nil || pl.hi != nil || pl.ix.Type == database.IndexFulltext ||
		len(r.q.Filters) != len(pl.eq) {
		return false
	}
	seen := make([]bool, len(pl.eq))
	for _, f := range r.q.Filters {
		if f.Op != query.OpEqual || len(f.Values) != 1 {
			return false
		}
		i := slices.Index(pl.ix.Attributes[:len(pl.eq)], f.Attribute)
		if i < 0 || seen[i] {
			return false
		}
		seen[i] = true
		switch f.Values[0].(type) {
		case string, int64, bool:
		default:
			return false
		}
	}
	return true
}

// countKeys is countAll when countsByIndex: it counts the keys of the
// plan's range, reading neither entries' values nor documents.
func (r *runner) countKeys() error {
	prefix, from, to, err := r.scanRange()
	if err != nil {
		return err
	}
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var n int64
	for it.Seek(from); it.Valid(); it.Next() {
		if to != nil && bytes.Compare(it.Item().Key(), to) >= 0 {
			break
		}
		r.res.Explain.KeysScanned++
		if n++; n >= TotalCap {
			r.res.TotalCapped = true
			break
		}
	}
	r.res.Total = n
	return nil
}

// countAll counts every match of the filters, up to TotalCap.
func (r *runner) countAll() error {
	if r.countsByIndex() {
		return r.countKeys()
	}
	var n int64
	r.cursorKey = nil
	names := r.tested()
	keep := func(k string) bool { return slices.Contains(names, k) }
	var spare map[string]any
	err := r.scan(false, false, func(e entry) (bool, error) {
		var ok bool
		var err error
		if r.opt.Allow == nil && e.carry.covers(names) {
			spare, ok, err = r.loadCarried(e, keep, spare, false)
		} else {
			_, _, ok, err = r.load(e)
		}
		if err != nil {
			return false, err
		}
		if ok {
			n++
			if n >= TotalCap {
				r.res.TotalCapped = true
				return false, nil
			}
		}
		return true, nil
	})
	r.res.Total = n
	return err
}

// runSorted reads every match (bounded by MaxScan) and keeps only the
// page's candidates: the offset+limit first matches after the cursor in
// the query's order (for a before cursor, the offset+limit last before it),
// in a bounded heap, then sorts and pages those. The total still counts
// every match. Ties under Less (equal $sequence) keep the scan order, as
// a stable sort of every match would.
//
// Unless an order is random, a hit is ranked by its order values alone
// (rank), kept in a slice: no map per match, and when the index range
// holds exactly the matches, only the order members an entry carries are
// decoded.
func (r *runner) runSorted(cursor map[string]any, before bool) error {
	q := r.q
	less := query.Less(q.Orders)
	typed := !slices.ContainsFunc(q.Orders, func(o query.Order) bool { return o.Attribute == query.OrderRandom })
	var cursorRank []any
	var cursorSeq uint64
	if typed && cursor != nil {
		cursorRank = rankOf(q.Orders, cursor, nil)
		if s, ok := cursor[database.AttrSequence].(int64); ok {
			cursorSeq = uint64(s)
		}
	}
	// order is Less: by the order values, then by $sequence.
	order := func(a, b sortHit) int { return less(a.f, b.f) }
	if typed {
		order = func(a, b sortHit) int { return compareRank(q.Orders, a.rank, b.rank, a.seq, b.seq) }
	}
	// cmp is the total order of a stable sort of every match.
	cmp := func(a, b sortHit) int {
		if c := order(a, b); c != 0 {
			return c
		}
		return a.i - b.i
	}
	top := topK{k: -1, worse: func(a, b sortHit) bool { return cmp(a, b) > 0 }}
	if before {
		top.worse = func(a, b sortHit) bool { return cmp(a, b) < 0 }
	}
	if q.Limit > 0 {
		top.k = q.Offset + q.Limit
	}
	matches := 0
	var buf []byte           // the last document read, unless the heap kept it
	var spare map[string]any // the last carried fields, unless the heap kept them
	var spareRank []any      // the last rank, unless the heap kept it
	names := r.tested()
	// When the index range holds exactly the matches, an entry needs no
	// test: only its order attributes are decoded.
	exact := r.countsByIndex()
	carriedNames := names
	if exact {
		carriedNames = nil
		for _, o := range q.Orders {
			carriedNames = append(carriedNames, o.Attribute)
		}
		r.orderNames = carriedNames
	}
	keep := func(k string) bool { return slices.Contains(names, k) }
	keepCarried := func(k string) bool { return slices.Contains(carriedNames, k) }
	err := r.scan(false, false, func(e entry) (bool, error) {
		h := sortHit{seq: e.seq}
		ok := true
		var err error
		switch {
		case typed && exact && r.opt.Allow == nil && e.carry.covers(carriedNames):
			// Ranked straight from the carried order members.
			h.id = e.id
			if err = r.examine(); err == nil {
				h.rank, err = r.rankCarried(e, spareRank)
			}
		case r.opt.Allow == nil && e.carry.covers(carriedNames):
			// The entry carries all the query tests: the document is read
			// only if it makes the page, and the fields of one that does
			// not are decoded into the next one's.
			h.id = e.id
			h.f, ok, err = r.loadCarried(e, keepCarried, spare, exact)
			spare = nil
			if err == nil && !ok {
				spare = h.f
			}
		case r.opt.Allow == nil:
			// Nothing needs the whole document to test it: decode it, and
			// the attributes the filters and orders do not name, only if
			// it makes the page.
			h.raw, h.f, ok, err = r.loadHead(e, buf, keep)
			buf = h.raw
		default:
			h.d, h.f, ok, err = r.load(e)
		}
		if err != nil || !ok {
			return err == nil, err
		}
		matches++
		if typed && h.rank == nil {
			h.rank = rankOf(q.Orders, h.f, spareRank)
			if h.d == nil && h.id != "" {
				// The page reads its documents again: the fields are
				// not kept.
				spare, h.f = h.f, nil
			}
		}
		if cursor != nil {
			var c int
			if typed {
				c = compareRank(q.Orders, h.rank, cursorRank, h.seq, cursorSeq)
			} else {
				c = less(h.f, cursor)
			}
			if before && c >= 0 || !before && c <= 0 {
				if h.id != "" && h.f != nil {
					spare = h.f
				}
				spareRank = h.rank
				return true, nil
			}
		}
		h.i = matches
		switch {
		case top.add(h):
			buf, spareRank = nil, nil
		default:
			if h.id != "" && h.f != nil {
				spare = h.f
			}
			spareRank = h.rank
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if r.opt.Total {
		r.res.Total = int64(min(matches, TotalCap))
		r.res.TotalCapped = matches > TotalCap
	}
	hits := top.h
	slices.SortFunc(hits, cmp)
	// Page from the cursor's side: the start after it, the end before it.
	lo, hi := 0, len(hits)
	if before {
		hi = max(0, len(hits)-q.Offset)
		if q.Limit > 0 {
			lo = max(0, hi-q.Limit)
		}
	} else {
		lo = min(q.Offset, len(hits))
		if q.Limit > 0 {
			hi = min(hi, lo+q.Limit)
		}
	}
	for _, h := range hits[lo:hi] {
		if h.d == nil {
			if h.raw == nil {
				var found bool
				if h.d, found, err = r.readDoc(h.id); err != nil {
					return err
				}
				if !found {
					return fmt.Errorf("index %s points at document %s, which does not exist", r.pl.ix.Key, h.id)
				}
			} else {
				h.d = &eventsv1.Document{}
				if err := proto.Unmarshal(h.raw, h.d); err != nil {
					return err
				}
			}
			if h.f, err = Fields(r.schema, h.d); err != nil {
				return err
			}
		}
		r.res.Docs, r.res.Fields = append(r.res.Docs, h.d), append(r.res.Fields, h.f)
	}
	return nil
}

// rankOf returns the values of f the orders rank by, in into when it has
// room.
func rankOf(orders []query.Order, f map[string]any, into []any) []any {
	into = into[:0]
	for _, o := range orders {
		into = append(into, f[o.Attribute])
	}
	return into
}

// compareRank is query.Less of two documents whose order values are a
// and b and whose sequences are as and bs; no order may be random.
func compareRank(orders []query.Order, a, b []any, as, bs uint64) int {
	for i, o := range orders {
		c := query.Compare(a[i], b[i])
		if o.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(as, bs)
}

// rankCarried is rankOf for the document e points to, read from the
// order members e carries (which must cover them).
func (r *runner) rankCarried(e entry, into []any) ([]any, error) {
	into = into[:0]
	for _, o := range r.q.Orders {
		v, _, err := carriedValue(r.schema, e.id, e.seq, e.carry, o.Attribute)
		if err != nil {
			return nil, fmt.Errorf("index %s entry of document %s: %w", r.pl.ix.Key, e.id, err)
		}
		into = append(into, v)
	}
	return into, nil
}

// examine counts one more document examined, failing past MaxScan.
func (r *runner) examine() error {
	if r.res.Explain.DocsExamined >= int64(r.opt.MaxScan) {
		return r.errScanLimit()
	}
	r.res.Explain.DocsExamined++
	return nil
}

// tested returns the attributes the query's filters and orders name.
func (r *runner) tested() []string {
	var names []string
	var add func(fs []query.Filter)
	add = func(fs []query.Filter) {
		for _, f := range fs {
			if a := query.TestedAttribute(f); a != "" && !slices.Contains(names, a) {
				names = append(names, a)
			}
			add(f.Filters)
		}
	}
	add(r.q.Filters)
	for _, o := range r.q.Orders {
		if !slices.Contains(names, o.Attribute) {
			names = append(names, o.Attribute)
		}
	}
	return names
}

// loadHead is load for a query without Allow, reading only the document's
// docHead: it returns the document's encoding (in buf when it fits) and
// its fields, only those keep accepts and the system attributes.
func (r *runner) loadHead(e entry, buf []byte, keep func(string) bool) ([]byte, map[string]any, bool, error) {
	if r.res.Explain.DocsExamined >= int64(r.opt.MaxScan) {
		return nil, nil, false, r.errScanLimit()
	}
	r.res.Explain.DocsExamined++
	item, err := r.txn.Get(documentKey(r.project, r.c.GetUid(), e.id))
	if err != nil {
		return nil, nil, false, fmt.Errorf("index %s points at document %s: %w", r.pl.ix.Key, e.id, err)
	}
	raw, err := item.ValueCopy(buf[:0])
	if err != nil {
		return nil, nil, false, err
	}
	h, err := readHead(raw)
	if err != nil {
		return nil, nil, false, fmt.Errorf("document %s: %w", e.id, err)
	}
	f, err := fieldsOfOnly(r.schema, h, keep)
	if err != nil {
		return nil, nil, false, err
	}
	return raw, f, query.Match(r.q.Filters, f), nil
}

// loadCarried is load for a query without Allow whose tested attributes
// e carries: it reads no document.
// The fields are decoded into into (a new map when nil); matched skips
// the test (the index range answers every filter).
func (r *runner) loadCarried(e entry, keep func(string) bool, into map[string]any, matched bool) (map[string]any, bool, error) {
	if r.res.Explain.DocsExamined >= int64(r.opt.MaxScan) {
		return nil, false, r.errScanLimit()
	}
	r.res.Explain.DocsExamined++
	var f map[string]any
	var err error
	if matched {
		f, err = fieldsOfCarriedOnly(r.schema, e.id, e.seq, e.carry, r.orderNames, into)
	} else {
		if r.scratch == nil {
			r.scratch = map[string]any{}
		}
		f, err = fieldsOfCarried(r.schema, e.id, e.seq, e.carry, keep, into, r.scratch)
	}
	if err != nil {
		return nil, false, fmt.Errorf("index %s entry of document %s: %w", r.pl.ix.Key, e.id, err)
	}
	return f, matched || query.Match(r.q.Filters, f), nil
}

// sortHit is a match of runSorted: the document, or its encoding until
// it is decoded for the page, or only its id when its index entry carried
// what the query tests; i is its place in the scan.
type sortHit struct {
	d   *eventsv1.Document
	raw []byte
	id  string
	f   map[string]any
	// rank holds the order values when the order is typed (see
	// runSorted), and seq the document's sequence.
	rank []any
	seq  uint64
	i    int
}

// topK keeps the k best hits it is given (all of them when k < 0): a
// binary heap with the worst kept hit at its root.
type topK struct {
	k     int
	worse func(a, b sortHit) bool
	h     []sortHit
}

// add offers x and reports whether it is kept (for now).
func (t *topK) add(x sortHit) bool {
	if t.k < 0 || len(t.h) < t.k {
		t.h = append(t.h, x)
		if t.k >= 0 {
			t.up(len(t.h) - 1)
		}
		return true
	}
	if t.k == 0 || !t.worse(t.h[0], x) {
		return false
	}
	t.h[0] = x
	t.down(0)
	return true
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.worse(t.h[i], t.h[p]) {
			return
		}
		t.h[i], t.h[p] = t.h[p], t.h[i]
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.h)
	for {
		w := i
		if l := 2*i + 1; l < n && t.worse(t.h[l], t.h[w]) {
			w = l
		}
		if r := 2*i + 2; r < n && t.worse(t.h[r], t.h[w]) {
			w = r
		}
		if w == i {
			return
		}
		t.h[i], t.h[w] = t.h[w], t.h[i]
		i = w
	}
}
