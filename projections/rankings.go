package projections

import (
	"container/list"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// DefaultRankingCacheBytes is Options.RankingCacheBytes' default: room for
// about thirty rankings of 2,000 matches (~120 KB each).
const DefaultRankingCacheBytes = 4 << 20

// rankings caches, per index range and order, every match of a query that
// no index orders, sorted: a repeated list over the same filter then reads
// only its page's documents instead of scanning and decoding every match.
//
// A ranking is keyed by the range's bytes, which begin with the project's
// key prefix, and holds no document and no permission: the caller's read
// filter is applied to it on every use. It is valid while the version of
// its project's read model is the one read before the Badger snapshot it
// was built from; the version moves on after every commit and before
// waiters learn of it (state.broadcastLocked), so a read after a write
// that returned never sees a ranking older than the write.
//
// A range is ranked only when it misses twice at the same version: under
// a stream of writes, lists keep the cheaper top-k path.
type rankings struct {
	max  int64 // bytes; 0 caches nothing
	mu   sync.Mutex
	m    map[string]*list.Element // of *ranking
	lru  list.List                // front = most recently used
	size int64
	seen map[string]uint64 // the version at a range's first miss
}

// ranking is one range's matches in query order: hit i is ids[i], seqs[i]
// and the order values vals[i*k:(i+1)*k].
type ranking struct {
	key     string
	version uint64
	k       int
	ids     []string
	seqs    []uint64
	vals    []any
	size    int64
}

func (rk *ranking) len() int { return len(rk.ids) }

// rankingSeenMax bounds rankings.seen; it is emptied when it grows past it.
const rankingSeenMax = 4096

func newRankings(max int64) *rankings {
	return &rankings{max: max, m: map[string]*list.Element{}, seen: map[string]uint64{}}
}

// get returns the ranking of key at version, or nil, and whether to build
// one (the second miss at the same version).
func (c *rankings) get(key string, version uint64) (*ranking, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.m[key]; el != nil {
		rk := el.Value.(*ranking)
		if rk.version == version {
			c.lru.MoveToFront(el)
			return rk, false
		}
		c.removeLocked(el)
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

// put keeps rk, evicting the least recently used rankings over the bound;
// one larger than a quarter of the bound is not kept.
func (c *rankings) put(rk *ranking) {
	if rk.size > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.m[rk.key]; el != nil {
		c.removeLocked(el)
	}
	c.m[rk.key] = c.lru.PushFront(rk)
	c.size += rk.size
	for c.size > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *rankings) removeLocked(el *list.Element) {
	rk := el.Value.(*ranking)
	c.lru.Remove(el)
	delete(c.m, rk.key)
	c.size -= rk.size
}

// Bytes returns the estimated size of the rankings kept.
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

// runRanked answers the query from a cached ranking, ranking the range
// first when rankings asks to; it reports false when it did not answer (no
// ranking, or one the caller's read filter would need to read in full).
func (r *runner) runRanked(cursor map[string]any, before bool) (bool, error) {
	if r.p.rankings == nil || r.p.rankings.max <= 0 || r.opt.Allow != nil && r.opt.Total {
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
		if rk, err = r.rank(key); err != nil {
			return false, err
		}
		r.p.rankings.put(rk)
	} else if rk.len() > r.opt.MaxScan {
		// As the scan would: the limit holds whether or not it is cached.
		r.res.Explain.DocsExamined = int64(r.opt.MaxScan)
		return false, r.errScanLimit()
	}
	r.res.Explain.RankingCached = true
	return true, r.pageOf(rk, cursor, before)
}

// rank reads every entry of the range and sorts them in the query's order.
func (r *runner) rank(key string) (*ranking, error) {
	orders := r.q.Orders
	rk := &ranking{key: key, version: r.version, k: len(orders)}
	names := make([]string, len(orders))
	for i, o := range orders {
		names[i] = o.Attribute
	}
	var buf []byte
	keep := func(a string) bool { return slices.Contains(names, a) }
	err := r.scan(false, false, func(e entry) (bool, error) {
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
		return nil, err
	}
	sort.Sort(byRank{rk, orders})
	rk.size = int64(cap(rk.ids))*16 + int64(cap(rk.seqs))*8 + int64(cap(rk.vals))*16 + 200
	for _, id := range rk.ids {
		rk.size += int64(len(id))
	}
	for _, v := range rk.vals {
		rk.size += boxedSize(v)
	}
	return rk, nil
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
	d := &eventsv1.Document{}
	found, err := getIn(r.txn, documentKey(r.project, r.c.GetUid(), rk.ids[i]), d)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("index %s points at document %s, which does not exist", r.pl.ix.Key, rk.ids[i])
	}
	f, err := Fields(r.schema, d)
	return d, f, err
}
