package api

import (
	"sync"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// docOuts keeps the answers docOut made of the documents of cached pages
// (projections' QueryOptions.Shared): every hit of a page returns the same
// decoded document objects, with the same fields, so each one's answer is
// made once. Keyed by the stored document's address, which the entry keeps
// alive, so no other document can take it while it is kept. Bounded, the
// oldest going first. Answers are shared between calls: nothing may change
// them (ListDocuments uses them only without select or related documents).
type docOuts struct {
	mu    sync.Mutex
	m     map[*eventsv1.Document]*cairnv1.Document
	order []*eventsv1.Document
	next  int
}

// docOutsSize is about forty pages of 25: a page cache's hot pages.
const docOutsSize = 1024

func newDocOuts() *docOuts {
	return &docOuts{m: make(map[*eventsv1.Document]*cairnv1.Document, docOutsSize), order: make([]*eventsv1.Document, docOutsSize)}
}

func (o *docOuts) get(d *eventsv1.Document) *cairnv1.Document {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[d]
}

func (o *docOuts) put(d *eventsv1.Document, out *cairnv1.Document) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.m[d]; ok {
		return
	}
	if old := o.order[o.next]; old != nil {
		delete(o.m, old)
	}
	o.order[o.next], o.m[d] = d, out
	o.next = (o.next + 1) % len(o.order)
}
