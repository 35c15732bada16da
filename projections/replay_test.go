package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// TestDocumentReplayEqualsIncremental: a document stream applied live in
// small batches and the same stream rebuilt in large ones end byte for byte
// equal, and every index holds exactly the entries its stored documents
// call for (no entry lost or left over by the apply path's shortcuts).
func TestDocumentReplayEqualsIncremental(t *testing.T) {
	e := newEnv(t)
	p := New(e.db, e.store, Options{Logger: e.log, Batch: 7})
	t.Cleanup(func() { p.Close() })
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const project = "docs"
	e.createProject(project)
	docStream(t, e, project, 2002) // 500 documents, 2,000 events
	ps := streams.ProjectStream(project)
	c := docCollection(project)
	subject := func(doc, verb string) string {
		return streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "documents", doc, verb)
	}
	doc := func(id, data string) *eventsv1.Document {
		at := timestamppb.New(time.Unix(1_800_000_000, 0))
		return &eventsv1.Document{Id: id, ProjectId: project, DatabaseId: "main", CollectionId: c.Id, CollectionUid: c.Uid,
			DataJson: data, CreatedAt: at, UpdatedAt: at, SchemaVersion: 1}
	}
	put := func(d *eventsv1.Document, verb string) uint64 {
		ev := &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: d}}}
		switch verb {
		case "create":
			ev.Payload = &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}
		case "delete":
			ev.Payload = &eventsv1.Envelope_DocumentDeleted{DocumentDeleted: &eventsv1.DocumentDeleted{Document: d}}
		}
		return e.appendEnv(ps, subject(d.Id, verb), "", ev)
	}
	put(doc("doc0000003", `{"tag":"t1","n":1,"title":"x"}`), "delete")
	put(doc("ghost", `{"tag":"t1","n":1,"title":"x"}`), "delete")
	put(doc("doc0000004", `{"tag":"moved","n":-5,"title":"moved"}`), "update")
	put(doc("doc0000006", `{"tag":"t1","n":7}`), "update") // title gone
	// An index declared on loaded data is built over it.
	c2 := proto.Clone(c).(*eventsv1.Collection)
	c2.Version = 2
	c2.Indexes = append(c2.Indexes, &eventsv1.Index{Key: "by_title", Type: string(database.IndexKey), Attributes: []string{"title"}, Desc: []bool{false}, Uid: "01IXTITLE"})
	e.appendEnv(ps, streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "update"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_IndexCreated{IndexCreated: &eventsv1.IndexCreated{Collection: c2, Key: "by_title"}}})
	put(doc("late", `{"tag":"t2","n":3,"title":"late"}`), "create")
	put(doc("doc0000005", `{"tag":"t2","n":4,"title":"retitled"}`), "update")
	// Created and deleted within one of the rebuild's transactions: its
	// counts add up to nothing there, one by one live.
	put(doc("brief", `{"tag":"t2","n":5,"title":"brief"}`), "create")
	put(doc("brief", `{"tag":"t2","n":5,"title":"brief"}`), "delete")
	last := put(doc("doc0000007", `{"tag":"t2","n":4,"title":"retitled"}`), "delete")

	wait(t, p, ps, last)
	incremental, err := p.Snapshot(ps)
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Rebuild(context.Background(), project)
	if err != nil || uint64(n) != last {
		t.Fatalf("Rebuild = %d, %v; want %d events", n, err, last)
	}
	rebuilt, err := p.Snapshot(ps)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffKV(incremental, rebuilt); d != "" {
		t.Fatalf("rebuilt read model differs from the incremental one: %s", d)
	}
	// A new node catches up from nothing the way a rebuild does, then
	// follows live: the same read model again.
	db2, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	p2 := New(db2, e.store, Options{Logger: e.log})
	p2.bulkCatchUp = 1
	defer p2.Close()
	if err := p2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait(t, p2, ps, last)
	if caughtUp, _ := p2.Snapshot(ps); diffKV(incremental, caughtUp) != "" {
		t.Fatalf("a new node's read model differs from the incremental one: %s", diffKV(incremental, caughtUp))
	}
	live := put(doc("after", `{"tag":"t3","n":9,"title":"after"}`), "create")
	wait(t, p, ps, live)
	wait(t, p2, ps, live)
	a, _ := p.Snapshot(ps)
	b, _ := p2.Snapshot(ps)
	if d := diffKV(a, b); d != "" {
		t.Fatalf("after a live write the new node differs: %s", d)
	}
	rebuilt = b

	// Every index entry is one its stored document calls for, and each of
	// those is there.
	stored, err := p.Collection(project, "main", c.Id)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := p.Schema(stored)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	docs := 0
	for _, kv := range rebuilt {
		if !strings.HasPrefix(kv.Key, documentsPrefix(project, c.Uid)) {
			continue
		}
		docs++
		d := &eventsv1.Document{}
		if err := proto.Unmarshal(kv.Value, d); err != nil {
			t.Fatal(err)
		}
		f, err := Fields(schema, d)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := allIndexKeys(project, c.Uid, allIndexes(schema), f, d.GetSequence())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			want[string(k)] = string(entryValue(headOf(d)))
		}
	}
	got := map[string]string{}
	for _, kv := range rebuilt {
		if strings.HasPrefix(kv.Key, collectionIndexesPrefix(project, c.Uid)) {
			got[kv.Key] = string(kv.Value)
		}
	}
	if docs != 500 { // 500 - 2 deleted + late + after
		t.Errorf("%d documents, want 500", docs)
	}
	if len(want) != docs*7 || !reflect.DeepEqual(got, want) {
		t.Errorf("index entries: %d stored, %d called for by %d documents (7 indexes); equal: %v", len(got), len(want), docs, reflect.DeepEqual(got, want))
	}
}

// diffKV describes the first difference between two snapshots ("" if equal).
func diffKV(a, b []KV) string {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return "entry " + a[i].Key + " vs " + b[i].Key
		}
	}
	if len(a) != len(b) {
		return "lengths differ"
	}
	return ""
}

// TestInterruptedBulkRunResumes: a bulk run that stopped before building
// the indexes (a crash, a restart during a new node's catch-up) leaves its
// marker; the next start resumes it from its checkpoint, applying only
// what follows, and ends with the same read model.
func TestInterruptedBulkRunResumes(t *testing.T) {
	const project = "docs"
	e, p, good := liveDocs(t, project, 402)
	ps := streams.ProjectStream(project)

	// What a bulk run leaves when stopped at 300: documents and checkpoint,
	// no index entries (here some stale ones, as a build cut short
	// leaves), the marker.
	sp := projectSpace(project)
	c := docCollection(project)
	if _, err := p.deleteSome([]byte(collectionIndexesPrefix(project, c.Uid)), 1_000_000); err != nil {
		t.Fatal(err)
	}
	setRaw(t, e.db, append(indexPrefix(project, c.Uid, ixID), "stale"...), []byte("x"))
	msg, err := e.store.Get(context.Background(), ps, 300)
	if err != nil {
		t.Fatal(err)
	}
	env, err := decodeEnvelope(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.store.StreamInfo(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	setRaw(t, e.db, sp.checkpointKey(), checkpoint{Seq: 300, Created: info.Created, EventID: env.GetId()}.marshal())
	setRaw(t, e.db, sp.ixPendingKey(), nil)

	p, c2 := e.newProjections()
	got := caughtUp(t, p, ps, 402)
	// The setup rewinds the checkpoint under a read model of all 402
	// events: documents are rewritten idempotently, but the usage counters
	// (added per event, in the same transaction as the checkpoint in a real
	// run) would count 301..402 twice, so they are left out here.
	// TestProjectUsage compares them with a rebuild.
	if d := diffKV(withoutUsage(good), withoutUsage(got)); d != "" {
		t.Fatalf("after resuming an interrupted bulk run the read model differs: %s", d)
	}
	if seqs := c2.of(ps); len(seqs) != 102 || seqs[0] != 301 {
		t.Fatalf("resumed run applied %d events from %v, want 301..402", len(seqs), seqs[:min(len(seqs), 1)])
	}
}

// TestBulkStateBounded: past its bound, and across an abandoned
// transaction, bulkState answers what Badger holds.
func TestBulkStateBounded(t *testing.T) {
	e := newEnv(t)
	b := newBulkState()
	b.max = 1
	k1, k2, k3 := []byte("p/x/docs/u/d1"), []byte("p/x/docs/u/d2"), []byte("p/x/docs/u/d3")
	doc := func(seq uint64) []byte {
		v, err := marshal(&eventsv1.Document{Id: "d", Sequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	txnDo := func(commit bool, fn func(txn *badger.Txn)) {
		txn := e.db.NewTransaction(true)
		defer txn.Discard()
		b.begin(false)
		fn(txn)
		if commit {
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			b.committed()
		}
	}
	want := func(txn *badger.Txn, k []byte, seq uint64, had bool) {
		t.Helper()
		got, ok, err := b.lookup(txn, k)
		if err != nil || ok != had || (had && got != seq) {
			t.Errorf("lookup(%s) = %d, %v, %v; want %d, %v", k, got, ok, err, seq, had)
		}
	}
	txnDo(true, func(txn *badger.Txn) {
		for _, kv := range []struct {
			k   []byte
			seq uint64
		}{{k1, 5}, {k2, 6}} {
			b.wrote(kv.k, kv.seq, nil)
			if err := txn.Set(kv.k, doc(kv.seq)); err != nil {
				t.Fatal(err)
			}
		}
		want(txn, k1, 5, true) // staged
	})
	if !b.full || len(b.seqs) != 1 {
		t.Fatalf("after two documents with room for one: full %v, %d kept", b.full, len(b.seqs))
	}
	txnDo(true, func(txn *badger.Txn) {
		want(txn, k1, 5, true)
		want(txn, k2, 6, true)
		want(txn, k3, 0, false)
		b.deleted(k2)
		if err := txn.Delete(k2); err != nil {
			t.Fatal(err)
		}
		want(txn, k2, 0, false)
	})
	txnDo(false, func(txn *badger.Txn) { // abandoned: never committed
		b.wrote(k3, 9, nil)
		if err := txn.Set(k3, doc(9)); err != nil {
			t.Fatal(err)
		}
	})
	txnDo(false, func(txn *badger.Txn) {
		want(txn, k2, 0, false)
		want(txn, k3, 0, false)
		want(txn, k1, 5, true)
	})
}

// withoutUsage drops the usage counters from a snapshot.
func withoutUsage(kvs []KV) []KV {
	var out []KV
	for _, kv := range kvs {
		if !strings.Contains(kv.Key, "/"+partDaily) && !strings.Contains(kv.Key, "/"+partDocLive) {
			out = append(out, kv)
		}
	}
	return out
}

// TestBulkIndexBuildStops: the bulk index build, spread over goroutines,
// stops at a stored document it cannot index, naming it, and when its
// context ends; and otherwise writes exactly the entries the live
// projector wrote.
func TestBulkIndexBuildStops(t *testing.T) {
	const project = "docs"
	e, _, good := liveDocs(t, project, 2002) // 500 documents: two chunks and a bit
	ps := streams.ProjectStream(project)
	sp := projectSpace(project)
	c := docCollection(project)
	p := New(e.db, e.store, Options{Logger: e.log})
	defer p.Close()

	if _, err := p.buildIndexesInBulk(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Snapshot(ps); diffKV(good, got) != "" {
		t.Fatalf("the bulk build's entries differ from the live ones: %s", diffKV(good, got))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.buildIndexesInBulk(ctx, sp); !errors.Is(err, context.Canceled) {
		t.Fatalf("build with its context ended = %v, want context.Canceled", err)
	}

	key := documentKey(project, c.Uid, "doc0000400")
	bad, err := marshal(&eventsv1.Document{Id: "doc0000400", DataJson: `[1]`, Sequence: 9})
	if err != nil {
		t.Fatal(err)
	}
	setRaw(t, e.db, key, bad)
	_, err = p.buildIndexesInBulk(context.Background(), sp)
	if !isFatal(err) || !strings.Contains(err.Error(), "doc0000400") {
		t.Fatalf("build over a document it cannot decode = %v, want a fatal error naming it", err)
	}
}

// liveDocs writes project's stream of n document events (docStream),
// applies them live, and returns the environment, the closed projector
// and the read model it left: what a bulk run must reproduce.
func liveDocs(t *testing.T, project string, n int) (*env, *Projections, []KV) {
	t.Helper()
	return liveDocsIn(t, newEnv(t), project, n)
}

// liveDocsIn is liveDocs in e.
func liveDocsIn(t *testing.T, e *env, project string, n int) (*env, *Projections, []KV) {
	t.Helper()
	p, _ := e.newProjections()
	e.createProject(project)
	docStream(t, e, project, n)
	ps := streams.ProjectStream(project)
	wait(t, p, ps, uint64(n))
	good, err := p.Snapshot(ps)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	return e, p, good
}

// TestBulkRunLosesItsWindow: a bulk run killed with documents still in
// its window (committed with their counters and checkpoint, not written),
// some of them written by a flush cut short, is resumed by the next start:
// it writes those documents again from the stream, without counting them
// twice, and goes on. The read model, usage counters included, equals the
// live projector's.
func TestBulkRunLosesItsWindow(t *testing.T) {
	const project = "docs"
	e, _, good := liveDocs(t, project, 402)
	ps := streams.ProjectStream(project)
	ctx := context.Background()

	// The killed run: the first 100 events (the documents' creates) in
	// batches of 25, a flush whenever the window holds more than 4 KiB.
	msgs, created := streamMsgs(t, e, ps, 100)
	p := New(e.db, e.store, Options{Logger: e.log})
	sp := projectSpace(project)
	sp.bulk = newBulkState()
	sp.bulk.windowMax = 4 << 10
	if err := p.drop(sp); err != nil {
		t.Fatal(err)
	}
	r := &run{sp: sp, st: newState(), created: created}
	for i := 0; i < 100; i += 25 {
		if err := p.applyBatch(ctx, r, msgs[i:i+25]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.settle(r); err != nil {
		t.Fatal(err)
	}
	if len(sp.bulk.window) == 0 || sp.bulk.flushed == 0 || sp.bulk.flushed >= 100 {
		t.Fatalf("window of %d documents, flushed up to %d: the setup should leave a window after a flush", len(sp.bulk.window), sp.bulk.flushed)
	}
	// A flush cut short: half of the window written, the marker not moved.
	half := len(sp.bulk.window) / 2
	for k, d := range sp.bulk.window {
		if half--; half < 0 {
			break
		}
		setRaw(t, e.db, []byte(k), d.stored())
	}
	p.Close()
	var mark []byte
	if err := e.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(sp.ixPendingKey())
		if err != nil {
			return err
		}
		mark, err = it.ValueCopy(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if f, ok := readFlushedMark(mark); !ok || f != sp.bulk.flushed {
		t.Fatalf("marker says %d (%v), want %d", f, ok, sp.bulk.flushed)
	}

	p, c := e.newProjections()
	got := caughtUp(t, p, ps, 402)
	if d := diffKV(good, got); d != "" {
		t.Fatalf("after resuming a bulk run that lost its window the read model differs: %s", d)
	}
	if seqs := c.of(ps); len(seqs) != 302 || seqs[0] != 101 {
		t.Fatalf("resumed run applied %d events from %v, want 101..402", len(seqs), seqs[:min(len(seqs), 1)])
	}
}

// TestBulkRunStopsAtABadDocument: a rebuild stops at the first document
// it cannot store, naming it, with every document before it written (the
// window flushed) and its checkpoint just before it.
func TestBulkRunStopsAtABadDocument(t *testing.T) {
	const project = "docs"
	e, _, good := liveDocs(t, project, 402)
	ps := streams.ProjectStream(project)
	ctx := context.Background()
	c := docCollection(project)
	at := timestamppb.New(time.Unix(1_700_000_000, 0))
	bad := &eventsv1.Envelope{Id: "01DOCBENCHBAD", OccurredAt: at, Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{
		Document: &eventsv1.Document{Id: "doc0000001", ProjectId: project, DatabaseId: "main", CollectionId: c.Id, CollectionUid: c.Uid,
			DataJson: "[1]", CreatedAt: at, UpdatedAt: at, SchemaVersion: 1}}}}
	data, err := proto.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(ctx, streams.Append{Stream: ps, Msgs: []streams.Msg{{
		Subject: streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "documents", "doc0000001", "update"), Data: data, MsgID: bad.Id}}}); err != nil {
		t.Fatal(err)
	}

	p := New(e.db, e.store, Options{Logger: e.log})
	defer p.Close()
	n, err := p.Rebuild(ctx, project)
	if err == nil || !strings.Contains(err.Error(), "doc0000001") || !strings.Contains(err.Error(), "seq 403") {
		t.Fatalf("Rebuild = %d, %v; want it to stop at doc0000001, seq 403", n, err)
	}
	sp := projectSpace(project)
	if ck, err := p.loadCheckpoint(sp); err != nil || ck.Seq != 402 {
		t.Fatalf("checkpoint %d (%v), want 402", ck.Seq, err)
	}
	got, err := p.Snapshot(ps)
	if err != nil {
		t.Fatal(err)
	}
	docs := func(kvs []KV) []KV {
		var out []KV
		for _, kv := range kvs {
			if strings.HasPrefix(kv.Key, documentsPrefix(project, c.Uid)) {
				out = append(out, kv)
			}
		}
		return out
	}
	if want := docs(good); len(want) != 100 {
		t.Fatalf("the live read model holds %d documents, want 100", len(want))
	} else if d := diffKV(want, docs(got)); d != "" {
		t.Fatalf("the documents before the bad one differ: %s", d)
	}
}

// TestBulkRunCrashesInItsSortedLoads: a bulk run killed halfway through
// the sorted load of its index entries (some runs in Badger's log, the
// rest not; the marker left) leaves a read model the next start finishes:
// Badger reopened from a copy of its files taken at that moment (its log
// replayed, as after a kill) and resumed, the read model equals the live
// projector's, and still does after a clean reopen (the loaded entries
// flushed from the memtable at their version).
func TestBulkRunCrashesInItsSortedLoads(t *testing.T) {
	const project = "docs"
	// Small log files: the test copies them.
	e, _, good := liveDocsIn(t, newEnvWith(t, &env{vlogFile: 1 << 20}), project, 402)
	ps := streams.ProjectStream(project)
	ctx := context.Background()

	msgs, created := streamMsgs(t, e, ps, 402)
	p := New(e.db, e.store, Options{Logger: e.log})
	sp := projectSpace(project)
	sp.bulk = newBulkState()
	bulkApply(t, p, sp, msgs, created, 100)
	// The index load cut short: runs of ~2 KiB sent as the build goes,
	// what it still held at the end never sent, the marker not deleted.
	c := &eventsv1.Collection{}
	if err := p.get(collectionKey(project, "main", "items"), func(v []byte) error { return proto.Unmarshal(v, c) }); err != nil {
		t.Fatal(err)
	}
	load, err := p.newSortedLoad(sp)
	if err != nil {
		t.Fatal(err)
	}
	load.runMax = 2 << 10
	n, err := p.buildCollectionIndexes(ctx, load, sp, c)
	if err != nil || n == 0 || len(load.ents) == 0 {
		t.Fatalf("built %d entries (%v), %d unsent: the setup should leave some unsent", n, err, len(load.ents))
	}
	if err := load.loader.Finish(); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "badger")
	copyDir(t, filepath.Join(e.dir, "badger"), crashed)
	p.Close()
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.dir, "badger")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(crashed, filepath.Join(e.dir, "badger")); err != nil {
		t.Fatal(err)
	}
	e.openBadger()

	for round := range 2 {
		p, _ := e.newProjections()
		got := caughtUp(t, p, ps, 402)
		if d := diffKV(good, got); d != "" {
			t.Fatalf("round %d: after a bulk run killed in its index load the read model differs: %s", round, d)
		}
		p.Close()
		e.reopenBadger()
	}
}

// copyDir copies the files of dir (no subdirectories) to a new directory
// to: of an open Badger, what a kill at that moment leaves on disk. Runs
// of zeros are skipped (Badger's log files are large and mostly holes).
func copyDir(t *testing.T, dir, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	buf, zero := make([]byte, 1<<20), make([]byte, 1<<20)
	for _, de := range entries {
		if err := copySparse(filepath.Join(dir, de.Name()), filepath.Join(to, de.Name()), buf, zero); err != nil {
			t.Fatal(err)
		}
	}
}

func copySparse(from, to string, buf, zero []byte) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	var off int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				out.Close()
				return err
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Truncate(off); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestBulkRunWithSmallBounds: a bulk run whose window is flushed every few
// documents and whose bulkState keeps the sequences of only 50 of the 100
// documents (the rest read back from Badger) builds the live projector's
// read model.
func TestBulkRunWithSmallBounds(t *testing.T) {
	const project = "docs"
	e, _, good := liveDocs(t, project, 402)
	ps := streams.ProjectStream(project)
	ctx := context.Background()
	msgs, created := streamMsgs(t, e, ps, 402)
	p := New(e.db, e.store, Options{Logger: e.log})
	defer p.Close()
	sp := projectSpace(project)
	sp.bulk = newBulkState()
	sp.bulk.max, sp.bulk.windowMax = 50, 4<<10
	bulkApply(t, p, sp, msgs, created, 25)
	if !sp.bulk.full || len(sp.bulk.seqs) != 50 {
		t.Fatalf("bulkState full %v with %d sequences: the setup should fill it", sp.bulk.full, len(sp.bulk.seqs))
	}
	if _, err := p.buildIndexesInBulk(ctx, sp); err != nil {
		t.Fatal(err)
	}
	got, err := p.Snapshot(ps)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffKV(good, got); d != "" {
		t.Fatalf("the bulk run's read model differs from the live projector's: %s", d)
	}
}

// TestLiveCountsEqualOneByOne: the live projector keeps a transaction's
// live-document counts and writes them once (docCounts); applied in
// transactions of up to 64 events, with a collection's deletion (which
// reads its count as it stands) among the documents, the read model is
// the one of transactions of one event each, and a rebuild's.
func TestLiveCountsEqualOneByOne(t *testing.T) {
	e := newEnv(t)
	const project = "counts"
	e.createProject(project)
	docStream(t, e, project, 62) // 15 documents: creates, updates, deletes
	c := docCollection(project)
	ps := streams.ProjectStream(project)
	last := e.appendEnv(ps, streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "delete"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionDeleted{CollectionDeleted: &eventsv1.CollectionDeleted{Collection: c}}})
	snap := func(batch int) []KV {
		db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		p := New(db, e.store, Options{Logger: e.log, Batch: batch})
		p.bulkCatchUp = 1 << 40 // live from the start, in transactions of up to batch events
		t.Cleanup(func() { p.Close() })
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		wait(t, p, ps, last)
		kv, err := p.Snapshot(ps)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	one, many := snap(1), snap(64)
	if d := diffKV(one, many); d != "" {
		t.Fatalf("transactions of 64 events differ from one event each: %s", d)
	}
	daily := 0
	for _, kv := range many {
		if strings.HasPrefix(kv.Key, dailyPrefix(project)) {
			daily++
			if got := int64(binary.BigEndian.Uint64(kv.Value[8*dailyDocuments:])); got != 0 {
				t.Errorf("%s: %d live documents after the collection's deletion, want 0", kv.Key, got)
			}
		}
		if strings.HasPrefix(kv.Key, pp(project)+partDocLive) {
			t.Errorf("%s left after the collection's deletion", kv.Key)
		}
	}
	if daily == 0 {
		t.Fatal("no daily counters")
	}
}

// TestIdempotentDocumentReplayEqualsIncremental: a document event sent
// with an idempotency key is indexed by its key live and in a rebuild,
// where its document is applied undecoded (rawDoc) in both.
func TestIdempotentDocumentReplayEqualsIncremental(t *testing.T) {
	e := newEnv(t)
	p := New(e.db, e.store, Options{Logger: e.log})
	t.Cleanup(func() { p.Close() })
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const project = "idem"
	e.createProject(project)
	docStream(t, e, project, 6)
	c := docCollection(project)
	ps := streams.ProjectStream(project)
	at := timestamppb.New(time.Unix(1_800_000_000, 0))
	d := &eventsv1.Document{Id: "keyed", ProjectId: project, DatabaseId: "main", CollectionId: c.Id, CollectionUid: c.Uid,
		DataJson: `{"tag":"t1","n":1,"title":"keyed"}`, CreatedAt: at, UpdatedAt: at, SchemaVersion: 1}
	last := e.appendEnv(ps, streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "documents", d.Id, "create"),
		idemMsgIDPrefix+"0123456789abcdef", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}})
	wait(t, p, ps, last)
	if seq, ok, err := p.IdempotentSeq(ps, idemMsgIDPrefix+"0123456789abcdef"); err != nil || !ok || seq != last {
		t.Fatalf("IdempotentSeq = %d, %v, %v; want %d", seq, ok, err, last)
	}
	incremental, err := p.Snapshot(ps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Rebuild(context.Background(), project); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := p.Snapshot(ps)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffKV(incremental, rebuilt); d != "" {
		t.Fatalf("rebuilt read model differs from the incremental one: %s", d)
	}
}

// streamMsgs reads the first n messages of stream, and when the stream
// was created (what a run's checkpoints record).
func streamMsgs(t *testing.T, e *env, stream string, n int) ([]streams.StoredMsg, time.Time) {
	t.Helper()
	ctx := context.Background()
	var msgs []streams.StoredMsg
	stop := errors.New("done")
	if err := e.store.Subscribe(ctx, stream, 1, 100, func(batch []streams.StoredMsg) error {
		msgs = append(msgs, batch...)
		if len(msgs) >= n {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) {
		t.Fatal(err)
	}
	info, err := e.store.StreamInfo(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	return msgs[:n], info.Created
}

// bulkApply drops sp's read model and applies msgs to it as a bulk run
// (sp.bulk set) in batches of batch, settled, its window flushed.
func bulkApply(t *testing.T, p *Projections, sp keyspace, msgs []streams.StoredMsg, created time.Time, batch int) {
	t.Helper()
	if err := p.drop(sp); err != nil {
		t.Fatal(err)
	}
	sp.bulk.dropped = true
	r := &run{sp: sp, st: newState(), created: created}
	for i := 0; i < len(msgs); i += batch {
		if err := p.applyBatch(context.Background(), r, msgs[i:min(i+batch, len(msgs))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.settle(r); err != nil {
		t.Fatal(err)
	}
	if err := p.flushWindow(sp, r.ck.Seq); err != nil {
		t.Fatal(err)
	}
}

// caughtUp waits until p has applied n events of stream and is ready, and
// returns the stream's read model.
func caughtUp(t *testing.T, p *Projections, stream string, n uint64) []KV {
	t.Helper()
	wait(t, p, stream, n)
	eventually(t, "ready", p.Ready)
	got, err := p.Snapshot(stream)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
