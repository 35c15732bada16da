package projections

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// collCache keeps, per collection key, the stored collection's bytes with
// what applying a document needs from it (decoded state, schema, indexes).
// Every document event reads its collection; decoding it each time was a
// large share of a replay. An entry is used only while the stored bytes
// are equal to its own, so it can never be stale, whatever wrote the key
// (a collection event, a drop, an uncommitted transaction).
//
// Within one transaction it skips even the read: gen changes with every
// transaction the projectors open (tryCommit) and every write of a
// collection key, so an entry checked at the current gen was checked in
// the caller's own transaction (a key is only read by its project's one
// projector) and nothing has written a collection since.
type collCache struct {
	gen atomic.Uint64
	mu  sync.Mutex
	m   map[string]*collEntry
}

// collEntry is one decoded collection, shared; only checked changes.
type collEntry struct {
	raw     []byte
	c       *eventsv1.Collection
	schema  *database.Schema
	indexes []database.Index // allIndexes(schema)
	checked uint64           // collCache.gen when last compared with the stored bytes
}

// changed marks a new transaction or a written collection key.
func (cc *collCache) changed() { cc.gen.Add(1) }

// collCacheMax bounds the cache; it is emptied when it grows past it.
const collCacheMax = 1024

// get returns the collection stored at key as txn sees it, or nil if there
// is none. A stored collection this build cannot read is fatal.
func (cc *collCache) get(txn *badger.Txn, schemas *schemaCache, key []byte) (*collEntry, error) {
	gen := cc.gen.Load()
	cc.mu.Lock()
	if e := cc.m[string(key)]; e != nil && e.checked == gen {
		cc.mu.Unlock()
		return e, nil
	}
	cc.mu.Unlock()
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e *collEntry
	err = item.Value(func(v []byte) error {
		cc.mu.Lock()
		cached := cc.m[string(key)]
		cc.mu.Unlock()
		if cached != nil && bytes.Equal(cached.raw, v) {
			cc.mu.Lock()
			cached.checked = gen
			cc.mu.Unlock()
			e = cached
			return nil
		}
		c := &eventsv1.Collection{}
		if err := proto.Unmarshal(v, c); err != nil {
			return fatal("decode %s: %w", key, err)
		}
		schema, err := schemas.get(c)
		if err != nil {
			return fatal("collection %s: %w", key, err)
		}
		e = &collEntry{raw: bytes.Clone(v), c: c, schema: schema, indexes: allIndexes(schema), checked: gen}
		cc.mu.Lock()
		if cc.m == nil || len(cc.m) >= collCacheMax {
			cc.m = map[string]*collEntry{}
		}
		cc.m[string(key)] = e
		cc.mu.Unlock()
		return nil
	})
	return e, err
}
