package api

import (
	"sync"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// metaCache keeps the records nearly every request reads and that rarely
// change — projects, API keys, opened collections — decoded in memory.
// An entry is good while the read models' MetaVersion is what it was
// before the entry was read, so a change (a revoked key, a disabled
// collection) is seen by every request that starts after the projector
// applied it, as a Badger read would. Entries are shared: nothing may
// modify what cached returns.
type metaCache struct {
	version func() uint64
	mu      sync.RWMutex
	m       map[metaKey]metaEntry
}

// metaCacheMax bounds the entries; past it the cache starts over.
const metaCacheMax = 8192

// metaKey names one record: kind ('p' project, 'k' key, 'c' opened
// collection) and its ids.
type metaKey struct {
	kind     byte
	project  string
	id1, id2 string
}

type metaEntry struct {
	version uint64
	v       any
}

func newMetaCache(version func() uint64) *metaCache {
	return &metaCache{version: version, m: map[metaKey]metaEntry{}}
}

// cached returns the record k names, from memory while it is good, else
// from load (whose errors are not kept).
func cached[T any](c *metaCache, k metaKey, load func() (T, error)) (T, error) {
	v := c.version() // before the read: a change after it invalidates the entry
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if ok && e.version == v {
		return e.v.(T), nil
	}
	t, err := load()
	if err != nil {
		return t, err
	}
	c.mu.Lock()
	if len(c.m) >= metaCacheMax {
		clear(c.m)
	}
	c.m[k] = metaEntry{version: v, v: t}
	c.mu.Unlock()
	return t, nil
}

// project returns a project from the read models, through the cache.
func (s *Server) project(id string) (*eventsv1.Project, error) {
	return cached(s.metas, metaKey{kind: 'p', project: id}, func() (*eventsv1.Project, error) { return s.reads.Project(id) })
}
