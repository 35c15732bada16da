package api

import (
	"sync"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// docCache keeps documents GetDocument read lately, so a hot document is
// not read from Badger and decoded again on every call (a View, the
// tables' lookups and an unmarshal: about an eighth of a get's server
// CPU). Each entry carries its project's applied sequence as it was
// before the read, and serves only while that sequence has not moved: any
// event the node applies to the project invalidates every entry of it at
// once, so a caller that saw its write applied (Cairn-Seq, Cairn-Min-Seq)
// never reads an older document from here. The projector moves the
// sequence only after its Badger commit, so an entry is never stamped
// newer than its data. What this does not give: in the instant between a
// batch's commit and the sequence moving, a get that read the new document
// from Badger may be followed by one served the old one from here (no
// write's answer has been sent yet then, so no read-your-writes is
// broken). Costs are bounded (docCacheBytes); entries are dropped in no
// particular order beyond it. Cached documents are shared: nothing may
// change them.
type docCache struct {
	mu   sync.Mutex
	max  int
	size int
	m    map[docKey]docEntry
}

type docKey struct{ project, collUID, id string }

type docEntry struct {
	d     *eventsv1.Document
	stamp uint64
	cost  int
}

// docCacheBytes bounds the cache: about 10,000 small documents, a few MiB
// of heap.
const docCacheBytes = 4 << 20

// docOverhead is what an entry costs beyond its data: key, message,
// strings and map slot.
const docOverhead = 320

func newDocCache(max int) *docCache {
	return &docCache{max: max, m: make(map[docKey]docEntry)}
}

// get returns the document cached under k at stamp, or nil.
func (c *docCache) get(k docKey, stamp uint64) *eventsv1.Document {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || e.stamp != stamp {
		return nil
	}
	return e.d
}

// put caches d, read after the project's applied sequence was stamp.
func (c *docCache) put(k docKey, d *eventsv1.Document, stamp uint64) {
	cost := docOverhead + len(k.project) + len(k.collUID) + len(k.id) + len(d.GetDataJson()) + 16*len(d.GetPermissions())
	for _, p := range d.GetPermissions() {
		cost += len(p)
	}
	if cost > c.max/64 {
		return // a large document would push out many small ones
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		c.size -= old.cost
	}
	for k2, e := range c.m { // evict arbitrary entries: cheap and bounded
		if c.size+cost <= c.max {
			break
		}
		delete(c.m, k2)
		c.size -= e.cost
	}
	c.m[k] = docEntry{d: d, stamp: stamp, cost: cost}
	c.size += cost
}

// cachedDocument is Reads.Document through the docCache.
func (h *databasesHandler) cachedDocument(project string, c *eventsv1.Collection, id string) (*eventsv1.Document, error) {
	// Stamped before the read: a commit between the two leaves the entry
	// stamped older than its data, which only makes it miss sooner.
	stamp := h.reads.AppliedSeq(streams.ProjectStream(project))
	k := docKey{project, c.GetUid(), id}
	if stamp != 0 {
		if d := h.docs.get(k, stamp); d != nil {
			return d, nil
		}
	}
	d, err := h.reads.Document(project, c, id)
	// Not kept when the sequence moved during the read: the entry could
	// never serve.
	if err == nil && stamp != 0 && h.reads.AppliedSeq(streams.ProjectStream(project)) == stamp {
		h.docs.put(k, d, stamp)
	}
	return d, err
}
