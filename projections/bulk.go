package projections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
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
		if err := sp.bulk.addDocuments(txn, sp.project, ev, d.collUID, -1); err != nil {
			return err
		}
		if sp.bulk.deleted(key) {
			return nil // the window's flush deletes it
		}
		return txn.Delete(key)
	}
	if !had {
		if err := sp.bulk.addDocuments(txn, sp.project, ev, d.collUID, 1); err != nil {
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
	if d.raw != nil && sp.bulk.wroteRaw(key, seq, ev.msg.Seq, d.raw, len(ev.msg.Data)) {
		return nil // the window's flush encodes and writes it, if it is the last
	}
	b, err := d.stored(seq, ev.msg.Seq)
	if err != nil {
		return fatal("encode document %s: %w", d.id, err)
	}
	if sp.bulk.wrote(key, seq, b) {
		return nil // the window's flush writes it
	}
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
//
// It also holds the window: the stored states of documents whose events
// were committed (with their counters and the checkpoint) but that are not
// written to Badger yet. A document stream updates the same documents
// again and again, and Badger's write path (a memtable insert, a log
// write, later a flush and compactions per version) was the largest part
// of a rebuild; the window writes each document once per flush, in its
// last state. See flushWindow for what a crash leaves and redoWindow for
// how a resumed run makes up for it.
type bulkState struct {
	seqs    map[string]uint64 // document key → sequence, as committed
	max     int               // bulkDocsMax; tests lower it
	full    bool              // seqs stopped growing: what it lacks is read
	pending map[string]stagedDoc

	dropped bool // the run began with the keyspace dropped: no index entry to delete

	windowed    bool // the open transaction stages its documents for the window
	window      map[string]stagedDoc
	windowBytes int
	windowMax   int // windowMaxBytes; tests lower it
	// flushed is the checkpoint up to which every document is in Badger;
	// txnFlushed what it becomes once the open transaction commits.
	flushed, txnFlushed uint64

	// The open windowed transaction's changes to the live documents of
	// collections and of days, written once at its end (writeCounts):
	// read and written for every create and delete they were a tenth of
	// a document event's own cost. Nothing in such a transaction reads
	// them (it holds document events only).
	collCounts []collCount
	dayCounts  []dayCount
}

// collCount and dayCount are a change to a collection's and to a day's
// live documents.
type (
	collCount struct {
		collUID string
		delta   int64
	}
	dayCount struct {
		day   int64 // dayOf
		ev    event // one of the day's, for dailyKey
		delta int64
	}
)

// stagedDoc is a document change: its sequence and stored state (val,
// or raw and version, staged for the window), or its deletion.
type stagedDoc struct {
	seq      uint64
	deleted  bool
	val      []byte // nil unless windowed
	raw      *rawDoc
	version  uint64
	held     int // bytes raw keeps alive: its event's and its data's
	windowed bool
}

// stored is the document's stored state (not deleted).
func (d stagedDoc) stored() []byte {
	if d.raw != nil {
		return d.raw.stored(d.seq, d.version)
	}
	return d.val
}

// size is about what the window holds for it.
func (d stagedDoc) size() int {
	if d.raw != nil {
		return d.held
	}
	return len(d.val)
}

// bulkDocsMax bounds bulkState (about 100 bytes a document).
const bulkDocsMax = 1 << 18

// windowMaxBytes bounds the window's stored states: past it the next
// transaction begins with a flush.
const windowMaxBytes = 32 << 20

func newBulkState() *bulkState {
	return &bulkState{seqs: map[string]uint64{}, max: bulkDocsMax, pending: map[string]stagedDoc{},
		window: map[string]stagedDoc{}, windowMax: windowMaxBytes}
}

// begin starts a transaction: what an abandoned one staged is forgotten.
// A windowed one stages its documents for the window.
func (b *bulkState) begin(windowed bool) {
	clear(b.pending)
	b.windowed = windowed
	b.txnFlushed = b.flushed
	b.collCounts, b.dayCounts = b.collCounts[:0], b.dayCounts[:0]
}

// addDocuments is addDocuments, kept for writeCounts in a windowed
// transaction.
func (b *bulkState) addDocuments(txn *badger.Txn, project string, ev event, collUID string, delta int64) error {
	if !b.windowed {
		return addDocuments(txn, project, ev, collUID, delta)
	}
	i := 0
	for i < len(b.collCounts) && b.collCounts[i].collUID != collUID {
		i++
	}
	if i == len(b.collCounts) {
		b.collCounts = append(b.collCounts, collCount{collUID: collUID})
	}
	b.collCounts[i].delta += delta
	day := dayOf(ev.msg.Time)
	i = 0
	for i < len(b.dayCounts) && b.dayCounts[i].day != day {
		i++
	}
	if i == len(b.dayCounts) {
		b.dayCounts = append(b.dayCounts, dayCount{day: day, ev: ev})
	}
	b.dayCounts[i].delta += delta
	return nil
}

// writeCounts writes what addDocuments kept. A counter is written even
// when its changes add up to nothing, as applying them one by one would
// have (the key then exists, holding 0).
func (b *bulkState) writeCounts(txn *badger.Txn, project string) error {
	for _, c := range b.collCounts {
		if err := setCounters(txn, docLiveKey(project, c.collUID), c.delta); err != nil {
			return err
		}
	}
	for _, c := range b.dayCounts {
		all := make([]int64, dailyCounters)
		all[dailyDocuments] = c.delta
		if err := setCounters(txn, dailyKey(project, c.ev.msg.Time), all...); err != nil {
			return err
		}
	}
	return nil
}

// committed keeps what the transaction staged. A windowed document's
// sequence goes to seqs when the window is flushed (lookup finds it in
// the window until then): once per flush rather than once per event.
func (b *bulkState) committed() {
	for k, d := range b.pending {
		if d.windowed {
			b.windowBytes += d.size() - b.window[k].size()
			b.window[k] = d
		} else {
			b.keep(k, d)
		}
	}
	clear(b.pending)
	b.flushed = b.txnFlushed
}

// keep records a written document's sequence, or its deletion, in seqs.
func (b *bulkState) keep(k string, d stagedDoc) {
	switch _, ok := b.seqs[k]; {
	case d.deleted:
		delete(b.seqs, k)
	case ok || len(b.seqs) < b.max:
		b.seqs[k] = d.seq
	default:
		b.full = true
	}
}

// lookup returns the sequence of the document stored at key, if any.
func (b *bulkState) lookup(txn *badger.Txn, key []byte) (uint64, bool, error) {
	if d, ok := b.pending[string(key)]; ok {
		return d.seq, !d.deleted, nil
	}
	if d, ok := b.window[string(key)]; ok {
		return d.seq, !d.deleted, nil
	}
	if seq, ok := b.seqs[string(key)]; ok || !b.full {
		return seq, ok, nil
	}
	h, had, err := docHeadIn(txn, key)
	return h.seq, had, err
}

// wrote stages a document's new state and reports whether the window
// takes it (else the caller writes it).
func (b *bulkState) wrote(key []byte, seq uint64, val []byte) bool {
	d := stagedDoc{seq: seq, windowed: b.windowed}
	if b.windowed {
		d.val = val
	}
	b.pending[string(key)] = d
	return b.windowed
}

// wroteRaw is wrote of a rawDoc's state with version, encoded only if
// the flush writes it (raw points into its event, of eventSize bytes); it
// reports false outside the window.
func (b *bulkState) wroteRaw(key []byte, seq, version uint64, raw *rawDoc, eventSize int) bool {
	if !b.windowed {
		return false
	}
	b.pending[string(key)] = stagedDoc{seq: seq, raw: raw, version: version, held: eventSize + len(raw.data), windowed: true}
	return true
}

// deleted stages a document's deletion and reports whether the window
// takes it (else the caller deletes it).
func (b *bulkState) deleted(key []byte) bool {
	b.pending[string(key)] = stagedDoc{deleted: true, windowed: b.windowed}
	return b.windowed
}

// isDocEvent reports whether ev is a document's create, update or delete:
// the events whose writes a bulk run's window may hold. Every other event
// is applied with the window flushed, since it may read documents.
func isDocEvent(ev event) bool {
	if ev.doc != nil {
		return true
	}
	switch ev.env.GetPayload().(type) {
	case *eventsv1.Envelope_DocumentCreated, *eventsv1.Envelope_DocumentUpdated, *eventsv1.Envelope_DocumentDeleted:
		return true
	}
	return false
}

// flushWindow writes the window's documents (in key order: sortedLoad)
// and then, once Badger has them, the keyspace's ixPendingKey with seq, the run's
// checkpoint: from then on every document of the events up to it is in
// Badger. Until then the marker holds an older sequence; a crash in
// between leaves the counters and the checkpoint of later events written
// and (some of) their documents not, which redoWindow makes up for.
func (p *Projections) flushWindow(sp keyspace, seq uint64) error {
	b := sp.bulk
	if len(b.window) == 0 {
		return nil
	}
	p.gate.RLock()
	defer p.gate.RUnlock()
	load, err := p.bulkWriter(sp)
	if err != nil {
		return err
	}
	for k, d := range b.window {
		if d.deleted {
			err = load.delete([]byte(k))
		} else {
			err = load.set([]byte(k), d.stored())
		}
		if err != nil {
			return fmt.Errorf("projections: write documents of %s up to %d: %w", sp.stream, seq, err)
		}
	}
	if err := load.finish(); err != nil {
		return fmt.Errorf("projections: write documents of %s up to %d: %w", sp.stream, seq, err)
	}
	// After the documents, so that it outlives any a crash could lose.
	if err := p.db.Update(func(txn *badger.Txn) error { return txn.Set(sp.ixPendingKey(), flushedMark(seq)) }); err != nil {
		return fmt.Errorf("projections: write documents of %s up to %d: %w", sp.stream, seq, err)
	}
	for k, d := range b.window {
		b.keep(k, d)
	}
	clear(b.window)
	b.windowBytes, b.flushed = 0, seq
	return nil
}

// flushedMark is ixPendingKey's value: the sequence up to which every
// document is written. An empty value (a build before the window) means
// all of them.
func flushedMark(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// readFlushedMark reads ixPendingKey's value; ok is false for an empty one.
func readFlushedMark(v []byte) (seq uint64, ok bool) {
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// errRedone ends redoWindow's read.
var errRedone = errors.New("redone")

// redoWindow makes up for a window a bulk run lost (a crash before
// flushWindow finished): it applies the document events after the marker's
// sequence up to the checkpoint ck again, keeping only their documents
// (their counters were committed with the checkpoint), and flushes them.
// Only document events can be there: any other event flushes the window
// before it is applied, and its transaction marks itself flushed.
func (p *Projections) redoWindow(ctx context.Context, sp keyspace, ck uint64) error {
	var mark []byte
	err := p.get(sp.ixPendingKey(), func(v []byte) error { mark = append([]byte(nil), v...); return nil })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("projections: read %s: %w", sp.ixPendingKey(), err)
	}
	from, ok := readFlushedMark(mark)
	if !ok || from >= ck {
		return nil
	}
	p.log.InfoContext(ctx, "resuming an interrupted bulk run: writing the documents it had not written", "stream", sp.stream, "from", from+1, "to", ck)
	b := sp.bulk
	next := from + 1
	err = p.store.SubscribeWith(ctx, sp.stream, streams.SubscribeOptions{StartSeq: next, MaxBatch: bulkBatch}, func(batch []streams.StoredMsg) error {
		for _, m := range batch {
			if m.Seq != next {
				return fatal("%s: expected sequence %d, got %d: %w", sp.stream, next, m.Seq, streams.ErrGap)
			}
			next++
			env, doc, err := decodeBulk(m.Data)
			if err != nil {
				return fatal("%s seq %d: decode envelope: %w", sp.stream, m.Seq, err)
			}
			ev := event{msg: m, env: env, doc: doc}
			if !isDocEvent(ev) {
				return fatal("%s seq %d: an event other than a document's after the bulk run's last written documents (%d)", sp.stream, m.Seq, from)
			}
			// A transaction that is never committed: the counters it
			// would change were committed with the checkpoint.
			txn := p.db.NewTransaction(true)
			p.colls.changed()
			b.begin(true)
			_, err = p.apply(ctx, txn, sp, ev)
			txn.Discard()
			if err != nil {
				return err
			}
			b.committed()
			if m.Seq >= ck {
				return errRedone
			}
		}
		return nil
	})
	if !errors.Is(err, errRedone) {
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("projections: write the documents of %s up to %d: %w", sp.stream, ck, err)
	}
	return p.flushWindow(sp, ck)
}

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
	// documents that may have changed since (a resumed catch-up). After a
	// drop there are none, and iterating the drop's tombstones to find
	// that cost a small project's rebuild more than its own writes.
	for done := sp.bulk != nil && sp.bulk.dropped; !done; {
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
	load, err := p.bulkWriter(sp)
	if err != nil {
		return 0, err
	}
	for _, c := range colls {
		n, err := p.buildCollectionIndexes(ctx, load, sp, c)
		entries += n
		if err != nil {
			return entries, fmt.Errorf("projections: build indexes of %s collection %s/%s: %w", sp.stream, c.GetDatabaseId(), c.GetId(), err)
		}
	}
	if err := load.finish(); err != nil {
		return entries, fmt.Errorf("projections: build indexes of %s: %w", sp.stream, err)
	}
	// After every entry is written, so that it outlives any a crash could
	// lose.
	if err := p.db.Update(func(txn *badger.Txn) error { return txn.Delete(sp.ixPendingKey()) }); err != nil {
		return entries, fmt.Errorf("projections: build indexes of %s: %w", sp.stream, err)
	}
	return entries, nil
}

// buildCollectionIndexes adds the index entries of c's documents to load.
// Working them out (decoding each document's indexed members, encoding the
// keys and the carried values) was most of the build's own CPU, so it is
// spread over the cores in chunks of documents: one goroutine reads the
// documents, GOMAXPROCS work out entries, and this one adds them to wb in
// document order, so the first document that cannot be indexed stops the
// build, as it did when one goroutine did everything.
func (p *Projections) buildCollectionIndexes(ctx context.Context, load bulkWriter, sp keyspace, c *eventsv1.Collection) (int, error) {
	schema, err := p.schemas.get(c)
	if err != nil {
		return 0, fatal("%w", err)
	}
	indexes := allIndexes(schema)
	keep := indexedAttributes(indexes)
	prefixes := make([][]byte, len(indexes))
	for i, ix := range indexes {
		prefixes[i] = indexPrefix(sp.project, c.GetUid(), ix.UID)
	}
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
				ch.err = ch.entries(schema, indexes, prefixes, keep, &out, &scratch)
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
				err = load.set(ch.keys[i], ch.vals[i])
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
// documents as stored. prefixes are indexes' indexPrefix; out and scratch
// are the caller's maps to reuse. The keys share one buffer: a key and a
// slice per index and document were most of the build's allocations.
func (ch *entryChunk) entries(schema *database.Schema, indexes []database.Index, prefixes [][]byte, keep func(string) bool, out, scratch *map[string]any) error {
	if *scratch == nil {
		*scratch = map[string]any{}
	}
	var buf []byte
	var ends []int
	for _, h := range ch.heads {
		f, err := fieldsOfInto(schema, h, keep, *out, *scratch)
		if err != nil {
			return fatal("%w", err)
		}
		*out = f
		had := len(ends)
		for i, ix := range indexes {
			if buf, ends, err = appendIndexKeys(buf, ends, prefixes[i], ix, f, h.seq); err != nil {
				return fatal("%w", err)
			}
		}
		v := entryValue(h)
		for range len(ends) - had {
			ch.vals = append(ch.vals, v)
		}
	}
	ch.keys = splitKeys(buf, 0, ends, make([][]byte, 0, len(ends)))
	ch.heads = nil
	return nil
}
