package projections

import (
	"bytes"
	"errors"
	"sync"

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
type collCache struct {
	mu sync.Mutex
	m  map[string]*collEntry
}

// collEntry is one decoded collection; it is shared and never modified.
type collEntry struct {
	raw     []byte
	c       *eventsv1.Collection
	schema  *database.Schema
	indexes []database.Index // allIndexes(schema)
}

// collCacheMax bounds the cache; it is emptied when it grows past it.
const collCacheMax = 1024

// get returns the collection stored at key as txn sees it, or nil if there
// is none. A stored collection this build cannot read is fatal.
func (cc *collCache) get(txn *badger.Txn, schemas *schemaCache, key []byte) (*collEntry, error) {
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
		e = &collEntry{raw: bytes.Clone(v), c: c, schema: schema, indexes: allIndexes(schema)}
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
