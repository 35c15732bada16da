package projections

import (
	"container/list"
	"sync"
)

// DefaultDocumentCacheBytes is Options.DocumentCacheBytes' default: about
// 20,000 documents of 250 bytes. A get by id from the cache skips Badger's
// memtable and table lookups: 46 → 42 µs of CPU per GetDocument over
// HTTP with 20,000 documents (tools/pbcompare, pinned).
const DefaultDocumentCacheBytes = 8 << 20

// docCache keeps the stored bytes of documents read by id (Document), per
// collection, tagged with the version of the collection's read model read
// before the Badger snapshot they came from (state.docVersion). That
// version moves on after every commit that changes the collection's
// documents, and the project's after any other change of its read model,
// before waiters learn of it: a read after a write that returned never
// finds bytes older than the write. Bytes of another version are dropped
// when looked up, and a commit drops its collections' documents (or its
// project's, for any other change) at once, so a collection being written
// holds no memory here. The least recently used go first past the bound.
//
// The cache is keyed by the collection's uid too: a collection deleted and
// made again under its id is another collection.
type docCache struct {
	max     int64 // bytes; 0 caches nothing
	mu      sync.Mutex
	size    int64
	streams map[string]map[string]*collDocs // stream → collKey → documents
	lru     list.List                       // of *docEntry, front = most recently used
}

// collDocs is one collection's cached documents at one version.
type collDocs struct {
	stream, coll, uid string
	version           readVersion
	docs              map[string]*list.Element // id → of *docEntry
}

type docEntry struct {
	in   *collDocs
	id   string
	raw  []byte
	size int64
}

// docEntryOverhead approximates an entry's bookkeeping (list element, map
// slot, strings' headers) beside its id and bytes.
const docEntryOverhead = 160

func newDocCache(max int64) *docCache {
	return &docCache{max: max, streams: map[string]map[string]*collDocs{}}
}

func (c *docCache) on() bool { return c != nil && c.max > 0 }

// get returns the stored bytes of document id of collection (collKey, uid)
// at version, or nil; they must not be changed.
func (c *docCache) get(stream, coll, uid, id string, version readVersion) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	cd := c.streams[stream][coll]
	if cd == nil {
		return nil
	}
	if cd.version != version || cd.uid != uid {
		c.dropLocked(cd)
		return nil
	}
	el := cd.docs[id]
	if el == nil {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*docEntry).raw
}

// put keeps raw as document id's bytes at version, unless the cache holds
// the collection at a newer version (the reader was overtaken by a write).
// A document larger than a 64th of the bound is not kept.
func (c *docCache) put(stream, coll, uid, id string, version readVersion, raw []byte) {
	size := int64(len(id)+len(raw)) + docEntryOverhead
	if size > c.max/64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	colls := c.streams[stream]
	cd := colls[coll]
	if cd != nil && (cd.version != version || cd.uid != uid) {
		if older(version, cd.version) {
			return
		}
		c.dropLocked(cd)
		cd = nil
	}
	if cd == nil {
		if colls == nil {
			colls = map[string]*collDocs{}
			c.streams[stream] = colls
		}
		cd = &collDocs{stream: stream, coll: coll, uid: uid, version: version, docs: map[string]*list.Element{}}
		colls[coll] = cd
	}
	if el := cd.docs[id]; el != nil {
		c.removeLocked(el)
	}
	cd.docs[id] = c.lru.PushFront(&docEntry{in: cd, id: id, raw: raw, size: size})
	c.size += size
	for c.size > c.max {
		c.removeLocked(c.lru.Back())
	}
}

// older reports whether a is a version before b (both components only
// move on; coll starts again at zero only when base moves on).
func older(a, b readVersion) bool {
	return a.base < b.base || a.base == b.base && a.coll < b.coll
}

// changed drops what a commit to stream changed: the documents of colls
// (collKey), or, when all is set, every document of the stream.
func (c *docCache) changed(stream string, colls []string, all bool) {
	if !c.on() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.streams[stream]
	if m == nil {
		return
	}
	if all {
		for _, cd := range m {
			c.dropLocked(cd)
		}
		return
	}
	for _, k := range colls {
		if cd := m[k]; cd != nil {
			c.dropLocked(cd)
		}
	}
}

// dropLocked forgets a collection's documents.
func (c *docCache) dropLocked(cd *collDocs) {
	for _, el := range cd.docs {
		c.lru.Remove(el)
		c.size -= el.Value.(*docEntry).size
	}
	clear(cd.docs)
	c.forgetLocked(cd)
}

func (c *docCache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*docEntry)
	c.size -= e.size
	delete(e.in.docs, e.id)
	if len(e.in.docs) == 0 {
		c.forgetLocked(e.in)
	}
}

// forgetLocked removes an emptied collection from its stream's map.
func (c *docCache) forgetLocked(cd *collDocs) {
	m := c.streams[cd.stream]
	if m[cd.coll] != cd {
		return
	}
	delete(m, cd.coll)
	if len(m) == 0 {
		delete(c.streams, cd.stream)
	}
}

// Bytes returns the estimated size of the documents kept.
func (c *docCache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
