package sites

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// lru is a cost-bounded least-recently-used map of immutable values, safe
// for concurrent use. The blob cache costs entries in bytes, the index cache
// in manifest entries.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	evicted func(V) // called (under the lock) for a value the cache drops; may be nil
	max     int64
	size    int64
	ll      list.List // of *lruEntry; front is the most recently used
	items   map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

func newLRU[K comparable, V any](max int64) *lru[K, V] {
	return &lru[K, V]{max: max, items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	if c.ll.Front() != el {
		c.ll.MoveToFront(el)
	}
	return el.Value.(*lruEntry[K, V]).val, true
}

// add stores val under key, evicting the least recently used entries to
// stay within the bound. A value costing more than the whole bound is not
// stored.
func (c *lru[K, V]) add(key K, val V, cost int64) {
	if cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[K, V])
		c.size += cost - e.cost
		if c.evicted != nil && any(e.val) != any(val) {
			c.evicted(e.val)
		}
		e.val, e.cost = val, cost
		c.ll.MoveToFront(el)
	} else {
		c.items[key] = c.ll.PushFront(&lruEntry[K, V]{key: key, val: val, cost: cost})
		c.size += cost
	}
	for c.size > c.max {
		el := c.ll.Back()
		e := el.Value.(*lruEntry[K, V])
		c.ll.Remove(el)
		delete(c.items, e.key)
		c.size -= e.cost
		if c.evicted != nil {
			c.evicted(e.val)
		}
	}
}

// stats reports the number of entries and their total cost.
func (c *lru[K, V]) stats() (n int, cost int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.size
}

// flight runs one load per key at a time: concurrent callers for the same
// key share its result (a stdlib-only singleflight).
type flight struct {
	mu sync.Mutex
	m  map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	val  *blob
	err  error
}

// loadTimeout bounds one shared load: it runs detached from the request
// that started it, so that request going away does not fail the others
// waiting for the same blob.
const loadTimeout = time.Minute

// do returns fn's result for key, running fn once for all concurrent
// callers. fn runs in its own goroutine with a context detached from any
// one caller's cancellation (keeping its values); each caller waits until
// the result is in or its own ctx is done.
func (g *flight) do(ctx context.Context, key string, fn func(context.Context) (*blob, error)) (*blob, error) {
	g.mu.Lock()
	c, ok := g.m[key]
	if !ok {
		if g.m == nil {
			g.m = make(map[string]*flightCall)
		}
		c = &flightCall{done: make(chan struct{})}
		g.m[key] = c
		go func() {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
			defer cancel()
			c.val, c.err = fn(lctx)
			g.mu.Lock()
			delete(g.m, key)
			g.mu.Unlock()
			close(c.done)
		}()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
