package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Bulk index maintenance, for a rebuild (keyspace.bulk).
//
// Most of a document stream's replay was index upkeep: every update decoded
// the old and the new state's data to delete and write index entries that
// the next update of the document replaced again. A document's index
// entries depend only on its final stored state and its collection's
// final schema (a declared index is built over the documents there are
// when it is created, and every write keeps it so), so a rebuild applies
// the events without them (applyDocumentBulk) and then writes the entries
// of the documents that are left, once each (buildIndexesInBulk).
//
// Until then the read model is incomplete: every transaction of such a
// consume also writes the keyspace's ixPendingKey, which only
// buildIndexesInBulk removes. A crash or stop in between leaves the marker:
// the next live projector resumes the bulk run from the checkpoint (with a
// bulkState that reads what it lacks), and anything else that finds it
// (verify) takes the read model for inconsistent. The state does not
// advance before the indexes are there, so no WaitApplied caller reads a
// read model without them.

// applyDocumentBulk is applyDocument without the index entries: the stored
// state only. The data is still checked the way the index upkeep would
// have read it, so a document a live projector stops on stops a rebuild
// too. Whether the document exists, and its sequence, come from the
// bulkState rather than a read.
func (p *Projections) applyDocumentBulk(txn *badger.Txn, sp keyspace, ev event, key []byte, d bulkDoc) error {
	oldSeq, had, err := sp.bulk.lookup(txn, key)
	if err != nil {
		return err
	}
	if d.deleted {
		if !had {
			return nil
		}
		if err := addDocuments(txn, sp.project, ev, d.collUID, -1); err != nil {
			return err
		}
		sp.bulk.deleted(key)
		return txn.Delete(key)
	}
	if !had {
		if err := addDocuments(txn, sp.project, ev, d.collUID, 1); err != nil {
			return err
		}
	}
	if !jsonObject(d.data) {
		return fatal("%s seq %d: document %s: stored document data is not a JSON object", sp.stream, ev.msg.Seq, d.id)
	}
	seq := d.seq
	switch {
	case had:
		seq = oldSeq
	case seq == 0:
		seq = ev.msg.Seq
	}
	b, err := d.stored(seq, ev.msg.Seq)
	if err != nil {
		return fatal("encode document %s: %w", d.id, err)
	}
	sp.bulk.wrote(key, seq)
	return txn.Set(key, b)
}

// applyRawDocument is applyDocument of a bulk run's undecoded document.
func (p *Projections) applyRawDocument(txn *badger.Txn, sp keyspace, ev event) error {
	r := ev.doc
	ce, key, err := p.documentIn(txn, sp, ev, r.projectID, r.databaseID, r.collectionID, r.collectionUID, r.id)
	if err != nil || ce == nil {
		return err
	}
	return p.applyDocumentBulk(txn, sp, ev, key, bulkDoc{id: r.id, collUID: r.collectionUID, data: r.data, seq: r.seq, deleted: r.deleted, raw: r})
}

// bulkDoc is what applyDocumentBulk reads of a document event: a rawDoc
// or a decoded document.
type bulkDoc struct {
	id, collUID, data string
	seq               uint64 // the event's
	deleted           bool
	raw               *rawDoc
	d                 *eventsv1.Document // when raw is nil
}

func bulkDocOf(d *eventsv1.Document, deleted bool) bulkDoc {
	return bulkDoc{id: d.GetId(), collUID: d.GetCollectionUid(), data: d.GetDataJson(), seq: d.GetSequence(), deleted: deleted, d: d}
}

// stored is the document's stored state with seq and version.
func (d bulkDoc) stored(seq, version uint64) ([]byte, error) {
	if d.raw != nil {
		return d.raw.stored(seq, version), nil
	}
	// Set on the event's own message and put back after, rather than
	// cloned (a retried transaction applies the same event again).
	was, wasVersion := d.d.GetSequence(), d.d.GetVersion()
	defer func() { d.d.Sequence, d.d.Version = was, wasVersion }()
	d.d.Sequence, d.d.Version = seq, version
	return marshal(d.d)
}

// bulkState is what a bulk consume remembers of the documents it wrote:
// each one's sequence, so that applying the next event of a document needs
// no read. It starts with an empty read model, so while it holds every
// document written (up to bulkDocsMax) a document it lacks does not exist.
// Changes are staged per transaction and kept only once it committed.
// A bulk consume is one goroutine: no locking.
type bulkState struct {
	seqs    map[string]uint64 // document key → sequence, as committed
	max     int               // bulkDocsMax; tests lower it
	full    bool              // seqs stopped growing: what it lacks is read
	pending map[string]stagedDoc
}

// stagedDoc is a document change of the open transaction.
type stagedDoc struct {
	seq     uint64
	deleted bool
}

// bulkDocsMax bounds bulkState (about 100 bytes a document).
const bulkDocsMax = 1 << 18

func newBulkState() *bulkState {
	return &bulkState{seqs: map[string]uint64{}, max: bulkDocsMax, pending: map[string]stagedDoc{}}
}

// begin starts a transaction: what an abandoned one staged is forgotten.
func (b *bulkState) begin() { clear(b.pending) }

// committed keeps what the transaction staged.
func (b *bulkState) committed() {
	for k, d := range b.pending {
		switch _, ok := b.seqs[k]; {
		case d.deleted:
			delete(b.seqs, k)
		case ok || len(b.seqs) < b.max:
			b.seqs[k] = d.seq
		default:
			b.full = true
		}
	}
	clear(b.pending)
}

// lookup returns the sequence of the document stored at key, if any.
func (b *bulkState) lookup(txn *badger.Txn, key []byte) (uint64, bool, error) {
	if d, ok := b.pending[string(key)]; ok {
		return d.seq, !d.deleted, nil
	}
	if seq, ok := b.seqs[string(key)]; ok || !b.full {
		return seq, ok, nil
	}
	h, had, err := docHeadIn(txn, key)
	return h.seq, had, err
}

func (b *bulkState) wrote(key []byte, seq uint64) { b.pending[string(key)] = stagedDoc{seq: seq} }
func (b *bulkState) deleted(key []byte)           { b.pending[string(key)] = stagedDoc{deleted: true} }

// jsonObject reports whether database.Schema.DecodeData accepts data:
// empty, or a first JSON value that is an object (what follows it is not
// read there either).
func jsonObject(data string) bool {
	if data == "" || database.PlainObject(data) {
		return true
	}
	var v json.RawMessage
	if err := json.NewDecoder(strings.NewReader(data)).Decode(&v); err != nil {
		return false
	}
	return len(v) > 0 && v[0] == '{'
}

// buildIndexesInBulk writes the index entries of every document of sp's
// project, as applyDocument would have left them, then removes the
// keyspace's ixPendingKey. Only a bulk run may have written the read
// model's documents (from a drop or an empty one, maybe resumed).
func (p *Projections) buildIndexesInBulk(ctx context.Context, sp keyspace) (entries int, err error) {
	// A build interrupted after some of its commits left entries of
	// documents that may have changed since (a resumed catch-up).
	for done := false; !done; {
		if done, err = p.deleteSome([]byte(pp(sp.project)+partIndexes), 10_000); err != nil {
			return 0, fmt.Errorf("projections: build indexes of %s: %w", sp.stream, err)
		}
	}
	var colls []*eventsv1.Collection
	err = p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pp(sp.project) + partCollections), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			c := &eventsv1.Collection{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, c) }); err != nil {
				return fatal("decode collection %s: %w", it.Item().Key(), err)
			}
			colls = append(colls, c)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("projections: build indexes of %s: %w", sp.stream, err)
	}
	p.gate.RLock()
	defer p.gate.RUnlock()
	wb := p.db.NewWriteBatch()
	defer wb.Cancel()
	for _, c := range colls {
		n, err := p.buildCollectionIndexes(ctx, wb, sp, c)
		entries += n
		if err != nil {
			return entries, fmt.Errorf("projections: build indexes of %s collection %s/%s: %w", sp.stream, c.GetDatabaseId(), c.GetId(), err)
		}
	}
	if err := wb.Delete(sp.ixPendingKey()); err != nil {
		return entries, fmt.Errorf("projections: build indexes of %s: %w", sp.stream, err)
	}
	// One batch: the marker goes in the last of its commits, so it outlives
	// any entry a crash could lose.
	if err := wb.Flush(); err != nil {
		return entries, fmt.Errorf("projections: build indexes of %s: %w", sp.stream, err)
	}
	return entries, nil
}

// buildCollectionIndexes adds the index entries of c's documents to wb.
// Working them out (decoding each document's indexed members, encoding the
// keys and the carried values) was most of the build's own CPU, so it is
// spread over the cores in chunks of documents: one goroutine reads the
// documents, GOMAXPROCS work out entries, and this one adds them to wb in
// document order, so the first document that cannot be indexed stops the
// build, as it did when one goroutine did everything.
func (p *Projections) buildCollectionIndexes(ctx context.Context, wb *badger.WriteBatch, sp keyspace, c *eventsv1.Collection) (int, error) {
	schema, err := p.schemas.get(c)
	if err != nil {
		return 0, fatal("%w", err)
	}
	indexes := allIndexes(schema)
	keep := indexedAttributes(indexes)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *entryChunk)
	order := make(chan *entryChunk, 2*workers) // bounds the chunks in flight
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, scratch map[string]any // reused: one document at a time
			for ch := range work {
				ch.err = ch.entries(sp.project, c.GetUid(), schema, indexes, keep, &out, &scratch)
				close(ch.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		readErr <- p.readDocHeads(ctx, sp.project, c.GetUid(), func(heads []docHead) error {
			ch := &entryChunk{heads: heads, done: make(chan struct{})}
			for _, to := range []chan<- *entryChunk{order, work} {
				select {
				case to <- ch:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}()
	n := 0
	for ch := range order {
		if err == nil {
			<-ch.done
			err = ch.err
			for i := 0; err == nil && i < len(ch.keys); i++ {
				err = wb.Set(ch.keys[i], ch.vals[i])
			}
			n += len(ch.keys)
			if err != nil {
				cancel() // the reader stops; what it sent is drained
			}
		}
	}
	wg.Wait()
	if rerr := <-readErr; err == nil {
		err = rerr
	}
	return n, err
}

// indexedAttributes accepts the attributes indexes read.
func indexedAttributes(indexes []database.Index) func(string) bool {
	names := map[string]bool{}
	for _, ix := range indexes {
		for _, a := range ix.Attributes {
			names[a] = true
		}
	}
	return func(name string) bool { return names[name] }
}

// bulkIndexChunk is how many documents one entryChunk holds.
const bulkIndexChunk = 256

// readDocHeads calls fn with the heads of the collection's documents, in
// key order, bulkIndexChunk at a time; fn keeps the slice.
func (p *Projections) readDocHeads(ctx context.Context, project, collUID string, fn func([]docHead) error) error {
	return p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(documentsPrefix(project, collUID)), PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		heads := make([]docHead, 0, bulkIndexChunk)
		for it.Rewind(); it.Valid(); it.Next() {
			var h docHead
			if err := it.Item().Value(func(v []byte) (err error) {
				h, err = readHead(v) // copies what it keeps
				return err
			}); err != nil {
				return fatal("decode %s: %w", it.Item().Key(), err)
			}
			if heads = append(heads, h); len(heads) == bulkIndexChunk {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(heads); err != nil {
					return err
				}
				heads = make([]docHead, 0, bulkIndexChunk)
			}
		}
		if len(heads) == 0 {
			return nil
		}
		return fn(heads)
	})
}

// entryChunk is a chunk of documents and, once done is closed, their
// index entries or why they have none.
type entryChunk struct {
	heads      []docHead
	keys, vals [][]byte
	err        error
	done       chan struct{}
}

// entries works out the chunk's entries: applyDocument's, for the
// documents as stored. out and scratch are the caller's maps to reuse.
func (ch *entryChunk) entries(project, collUID string, schema *database.Schema, indexes []database.Index, keep func(string) bool, out, scratch *map[string]any) error {
	if *scratch == nil {
		*scratch = map[string]any{}
	}
	for _, h := range ch.heads {
		f, err := fieldsOfInto(schema, h, keep, *out, *scratch)
		if err != nil {
			return fatal("%w", err)
		}
		*out = f
		keys, err := allIndexKeys(project, collUID, indexes, f, h.seq)
		if err != nil {
			return fatal("%w", err)
		}
		v := entryValue(h)
		for _, k := range keys {
			ch.keys, ch.vals = append(ch.keys, k), append(ch.vals, v)
		}
	}
	ch.heads = nil
	return nil
}
