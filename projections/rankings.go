package projections

import (
	"container/list"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// DefaultRankingCacheBytes is Options.RankingCacheBytes' default: room for
// about thirty rankings of 2,000 matches (~135 KB each, measured by
// BenchmarkQuerySortedInMemory/ranked) with their pages' documents.
const DefaultRankingCacheBytes = 4 << 20

// rankings caches, per index range and order, every match of a query that
// no index orders, sorted: a repeated list over the same filter then reads
// only its page's documents instead of scanning and decoding every match.
// It also keeps the stored bytes of the documents such pages read, so a
// repeated page (sorted in memory or in index order) reads no document
// from Badger either, and the ids of a page a scan in index order
// answered (pageKey), so a repeated list in index order scans no index
// either. All share one bound, the least recently used going first.
//
// A ranking or page is keyed by the range's bytes, which begin with the
// project's key prefix, as a document by its key; none holds a
// permission: the caller's read filter is applied on every use of a
// ranking, and a page is kept and used only by callers without one. An
// entry is valid while the version of its collection's read model is the
// one read before the Badger snapshot it was read from; that version
// moves on after every commit that changes the collection's documents
// (and the project's, for every other change of its read model) and
// before waiters learn of it (state.advanceDocs, state.broadcastLocked),
// so a read after a write that returned never sees an entry older than
// the write.
//
// A range is ranked only when it misses twice at the same version: under
// a stream of writes, lists keep the cheaper top-k path.
type rankings struct {
	max  int64 // bytes; 0 caches nothing
	mu   sync.Mutex
	m    map[string]*list.Element // of *cached
	lru  list.List                // front = most recently used
	size int64
	seen map[string]readVersion // the version at a range's first miss
}

// cached is one entry: a ranking, a page's document ids, or a
// document's stored bytes.
type cached struct {
	key     string
	version readVersion
	size    int64
	rk      *ranking
	page    []string
	isPage  bool
	// A page kept for a caller with QueryOptions.Shared keeps its
	// documents decoded, with the schema that decoded their fields.
	docs   []*eventsv1.Document
	fields []map[string]any
	schema *database.Schema
	doc    []byte
}

// ranking is one range's matches in query order: hit i is ids[i], seqs[i]
// and the order values vals[i*k:(i+1)*k].
type ranking struct {
	k    int
	ids  []string
	seqs []uint64
	vals []any
}

func (rk *ranking) len() int { return len(rk.ids) }

// rankingSeenMax bounds rankings.seen; it is emptied when it grows past it.
const rankingSeenMax = 4096

func newRankings(max int64) *rankings {
	return &rankings{max: max, m: map[string]*list.Element{}, seen: map[string]readVersion{}}
}

func (c *rankings) on() bool { return c != nil && c.max > 0 }

// lookupLocked returns the entry of key at version, dropping one of
// another version.
func (c *rankings) lookupLocked(key string, version readVersion) *cached {
	el := c.m[key]
	if el == nil {
		return nil
	}
	e := el.Value.(*cached)
	if e.version != version {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return e
}

// get returns the ranking of key at version, or nil, and whether to build
// one (the second miss at the same version).
func (c *rankings) get(key string, version readVersion) (*ranking, bool) {
	if !c.on() {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookupLocked(key, version); e != nil {
		return e.rk, false
	}
	if v, ok := c.seen[key]; ok && v == version {
		return nil, true
	}
	if len(c.seen) >= rankingSeenMax {
		clear(c.seen)
	}
	c.seen[key] = version
	return nil, false
}

// getPage returns the page of key at version, or nil; it must not be
// changed.
func (c *rankings) getPage(key string, version readVersion) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookupLocked(key, version); e != nil && e.isPage {
		return e
	}
	return nil
}

// getDoc returns the stored bytes of the document at key at version, or
// nil; they must not be changed.
func (c *rankings) getDoc(key []byte, version readVersion) []byte {
	if !c.on() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookupLocked(string(key), version); e != nil && e.rk == nil && !e.isPage {
		return e.doc
	}
	return nil
}

// put keeps e, evicting the least recently used entries over the bound; a
// ranking larger than a quarter of the bound, or a document larger than
// a 64th, is not kept.
func (c *rankings) put(e *cached) {
	if e.rk != nil && e.size > c.max/4 || e.rk == nil && e.size > c.max/64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.m[e.key]; el != nil {
		c.removeLocked(el)
	}
	c.m[e.key] = c.lru.PushFront(e)
	c.size += e.size
	for c.size > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *rankings) removeLocked(el *list.Element) {
	e := el.Value.(*cached)
	c.lru.Remove(el)
	delete(c.m, e.key)
	c.size -= e.size
}

// Bytes returns the estimated size of the entries kept.
func (c *rankings) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// rankingKey names the plan's range ranked in the query's order, or ""
// when the query cannot use a ranking: the range must hold exactly the
// matches (every filter an equality it answers) and no order be random.
func (r *runner) rankingKey() (string, error) {
	if r.pl.ordered || !r.rangeIsExact() ||
		slices.ContainsFunc(r.q.Orders, func(o query.Order) bool { return o.Attribute == query.OrderRandom }) {
		return "", nil
	}
	prefix, from, to, err := r.scanRange()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Write(prefix)
	b.WriteByte(0)
	b.Write(from)
	b.WriteByte(0)
	b.Write(to)
	for _, o := range r.q.Orders {
		b.WriteByte(0)
		if o.Desc {
			b.WriteByte('-')
		}
		b.WriteString(o.Attribute)
	}
	return b.String(), nil
}

// maxPagedHits bounds offset + limit of a page kept by pageKey's queries.
const maxPagedHits = 1000

// pageKey names the page a query answered in index order asks for, or ""
// when its page is not kept: only a range holding exactly the matches,
// read without a read filter (nothing cached depends on who asks) and
// without a total, from its start or from a cursor placed by its index
// key, and a page of at most maxPagedHits.
func (r *runner) pageKey(cursorID string, before bool) (string, error) {
	q := r.q
	if !r.p.rankings.on() || !r.pl.ordered || r.opt.Allow != nil || r.opt.Total || q.Limit <= 0 || q.Offset < 0 ||
		q.Offset+q.Limit > min(maxPagedHits, r.opt.MaxScan) || cursorID != "" && r.cursorKey == nil || !r.rangeIsExact() {
		return "", nil
	}
	prefix, from, to, err := r.scanRange()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("page")
	for _, part := range [][]byte{prefix, from, to} {
		b.WriteByte(0)
		b.Write(part)
	}
	for _, o := range q.Orders {
		b.WriteByte(0)
		if o.Desc {
			b.WriteByte('-')
		}
		b.WriteString(o.Attribute)
	}
	fmt.Fprintf(&b, "\x00%d\x00%d\x00%t\x00%s", q.Offset, q.Limit, before, cursorID)
	return b.String(), nil
}

// runPaged answers the query from the page kept under key, reporting
// false when there is none, or one of its documents is gone (a page kept
// by a reader whose snapshot predates the version's last commit).
func (r *runner) runPaged(key string) (bool, error) {
	e := r.p.rankings.getPage(key, r.version)
	if e == nil {
		return false, nil
	}
	ids := e.page
	if r.opt.Shared && e.docs != nil && e.schema == r.schema {
		// Decoded for a caller that only reads them, as this one does.
		r.res.Docs, r.res.Fields = slices.Clone(e.docs), slices.Clone(e.fields)
		r.res.Explain.DocsExamined += int64(len(ids))
		r.res.Explain.PageCached = true
		return true, nil
	}
	var docs []*eventsv1.Document
	var fields []map[string]any
	for _, id := range ids {
		d, found, err := r.readDoc(id)
		if err != nil || !found {
			return false, err
		}
		f, err := Fields(r.schema, d)
		if err != nil {
			return false, err
		}
		docs, fields = append(docs, d), append(fields, f)
	}
	r.res.Docs, r.res.Fields = docs, fields
	r.res.Explain.DocsExamined += int64(len(ids))
	r.res.Explain.PageCached = true
	if r.opt.Shared {
		r.keepPage(key, docs, fields)
	}
	return true, nil
}

// keepPage keeps the ids of docs, the page a scan answered, under key,
// and docs and fields themselves when the caller shares them.
func (r *runner) keepPage(key string, docs []*eventsv1.Document, fields []map[string]any) {
	ids := make([]string, len(docs))
	size := int64(len(key)) + 100
	for i, d := range docs {
		ids[i] = d.GetId()
		size += int64(len(ids[i])) + 16
	}
	e := &cached{key: key, version: r.version, page: ids, isPage: true}
	if r.opt.Shared {
		e.docs, e.fields, e.schema = slices.Clone(docs), slices.Clone(fields), r.schema
		for _, d := range docs {
			// A rough bound of a decoded document with its fields.
			size += 4*int64(proto.Size(d)) + 512
		}
	}
	e.size = size
	r.p.rankings.put(e)
}

// runRanked answers the query from a cached ranking, ranking the range
// first when rankings asks to; it reports false when it did not answer (no
// ranking, or one the caller's read filter would need to read in full).
func (r *runner) runRanked(cursor map[string]any, before bool) (bool, error) {
	if !r.p.rankings.on() || r.opt.Allow != nil && r.opt.Total {
		return false, nil
	}
	key, err := r.rankingKey()
	if err != nil || key == "" {
		return false, err
	}
	rk, build := r.p.rankings.get(key, r.version)
	if rk == nil && !build {
		return false, nil
	}
	if rk == nil {
		var size int64
		if rk, size, err = r.rank(); err != nil {
			return false, err
		}
		r.p.rankings.put(&cached{key: key, version: r.version, size: size, rk: rk})
	} else if rk.len() > r.opt.MaxScan {
		// As the scan would: the limit holds whether or not it is cached.
		r.res.Explain.DocsExamined = int64(r.opt.MaxScan)
		return false, r.errScanLimit()
	}
	r.res.Explain.RankingCached = true
	return true, r.pageOf(rk, cursor, before)
}

// rank reads every entry of the range and sorts them in the query's
// order; size is the ranking's estimated bytes.
func (r *runner) rank() (rk *ranking, size int64, err error) {
	orders := r.q.Orders
	rk = &ranking{k: len(orders)}
	names := make([]string, len(orders))
	for i, o := range orders {
		names[i] = o.Attribute
	}
	var buf []byte
	keep := func(a string) bool { return slices.Contains(names, a) }
	err = r.scan(false, false, func(e entry) (bool, error) {
		if e.carry.covers(names) {
			if err := r.examine(); err != nil {
				return false, err
			}
			for _, n := range names {
				v, _, err := carriedValue(r.schema, e.id, e.seq, e.carry, n)
				if err != nil {
					return false, fmt.Errorf("index %s entry of document %s: %w", r.pl.ix.Key, e.id, err)
				}
				rk.vals = append(rk.vals, v)
			}
		} else {
			raw, f, _, err := r.loadHead(e, buf, keep)
			if err != nil {
				return false, err
			}
			buf = raw
			for _, n := range names {
				rk.vals = append(rk.vals, f[n])
			}
		}
		rk.ids = append(rk.ids, e.id)
		rk.seqs = append(rk.seqs, e.seq)
		return true, nil
	})
	if err != nil {
		return nil, 0, err
	}
	sort.Sort(byRank{rk, orders})
	size = int64(cap(rk.ids))*16 + int64(cap(rk.seqs))*8 + int64(cap(rk.vals))*16 + 200
	for _, id := range rk.ids {
		size += int64(len(id))
	}
	for _, v := range rk.vals {
		size += boxedSize(v)
	}
	return rk, size, nil
}

// boxedSize estimates the bytes an order value holds beyond its interface.
func boxedSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return 16 + int64(len(v))
	case time.Time:
		return 24
	case int64, float64:
		return 8
	}
	return 0
}

// byRank sorts a ranking's hits with compareRank.
type byRank struct {
	rk     *ranking
	orders []query.Order
}

func (s byRank) Len() int { return s.rk.len() }
func (s byRank) Less(i, j int) bool {
	k := s.rk.k
	return compareRank(s.orders, s.rk.vals[i*k:(i+1)*k], s.rk.vals[j*k:(j+1)*k], s.rk.seqs[i], s.rk.seqs[j]) < 0
}
func (s byRank) Swap(i, j int) {
	rk, k := s.rk, s.rk.k
	rk.ids[i], rk.ids[j] = rk.ids[j], rk.ids[i]
	rk.seqs[i], rk.seqs[j] = rk.seqs[j], rk.seqs[i]
	for x := range k {
		rk.vals[i*k+x], rk.vals[j*k+x] = rk.vals[j*k+x], rk.vals[i*k+x]
	}
}

// pageOf answers the query from rk: the hits after (before) the cursor,
// paged, each document read and, with a read filter, tested in order
// until the page is full.
func (r *runner) pageOf(rk *ranking, cursor map[string]any, before bool) error {
	q := r.q
	k := rk.k
	lo, hi := 0, rk.len()
	if cursor != nil {
		crank := rankOf(q.Orders, cursor, nil)
		var cseq uint64
		if s, ok := cursor[database.AttrSequence].(int64); ok {
			cseq = uint64(s)
		}
		// The first hit that does not come before the cursor.
		at := sort.Search(rk.len(), func(i int) bool {
			return compareRank(q.Orders, rk.vals[i*k:(i+1)*k], crank, rk.seqs[i], cseq) >= 0
		})
		if before {
			hi = at
		} else {
			lo = at
			if lo < rk.len() && compareRank(q.Orders, rk.vals[lo*k:(lo+1)*k], crank, rk.seqs[lo], cseq) == 0 {
				lo++
			}
		}
	}
	if r.opt.Total {
		r.res.Total = int64(min(rk.len(), TotalCap))
		r.res.TotalCapped = rk.len() > TotalCap
	}
	want := q.Limit
	if want <= 0 {
		want = -1
	}
	var picked []int
	step, i := 1, lo
	if before {
		step, i = -1, hi-1
	}
	skip := q.Offset
	for ; i >= lo && i < hi && want != 0; i += step {
		if r.opt.Allow == nil {
			if skip > 0 {
				skip--
				continue
			}
			picked = append(picked, i)
			want--
			continue
		}
		d, f, err := r.readHit(rk, i)
		if err != nil {
			return err
		}
		r.res.Explain.DocsExamined++
		if !r.opt.Allow(d) {
			r.res.Explain.DocsDenied++
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		r.res.Docs, r.res.Fields = append(r.res.Docs, d), append(r.res.Fields, f)
		want--
	}
	for _, i := range picked {
		d, f, err := r.readHit(rk, i)
		if err != nil {
			return err
		}
		r.res.Explain.DocsExamined++
		r.res.Docs, r.res.Fields = append(r.res.Docs, d), append(r.res.Fields, f)
	}
	if before {
		slices.Reverse(r.res.Docs)
		slices.Reverse(r.res.Fields)
	}
	return nil
}

// readHit reads the document of rk's hit i.
func (r *runner) readHit(rk *ranking, i int) (*eventsv1.Document, map[string]any, error) {
	d, found, err := r.readDoc(rk.ids[i])
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("index %s points at document %s, which does not exist", r.pl.ix.Key, rk.ids[i])
	}
	f, err := Fields(r.schema, d)
	return d, f, err
}

// readDoc reads the document id of the runner's collection, from the
// cache when it holds it at the runner's version (and into it when not);
// false when there is none.
func (r *runner) readDoc(id string) (*eventsv1.Document, bool, error) {
	key := documentKey(r.project, r.c.GetUid(), id)
	raw := r.p.rankings.getDoc(key, r.version)
	if raw == nil {
		item, err := r.txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read document %s: %w", id, err)
		}
		if !r.p.rankings.on() {
			d := &eventsv1.Document{}
			if err := item.Value(func(v []byte) error { return proto.Unmarshal(v, d) }); err != nil {
				return nil, false, fatal("decode %s: %w", key, err)
			}
			return d, true, nil
		}
		if raw, err = item.ValueCopy(nil); err != nil {
			return nil, false, fmt.Errorf("read document %s: %w", id, err)
		}
		r.p.rankings.put(&cached{key: string(key), version: r.version, size: int64(len(key)+len(raw)) + 100, doc: raw})
	}
	d := &eventsv1.Document{}
	if err := proto.Unmarshal(raw, d); err != nil {
		return nil, false, fatal("decode %s: %w", key, err)
	}
	return d, true, nil
}
