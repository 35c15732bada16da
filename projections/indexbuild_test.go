package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// indexBuildEnv is a project holding docs documents (docStream's
// collection), applied live into a Badger whose largest transaction holds
// far fewer index entries than that: an index built in one transaction
// would stop the projector.
type indexBuildEnv struct {
	*env
	p       *Projections
	project string
	ps      string
	c       *eventsv1.Collection
	last    uint64
}

const smallMemtable = 1 << 20 // a transaction of ~150 KB, ~2,400 entries

func newIndexBuildEnv(t *testing.T, docs int) *indexBuildEnv {
	t.Helper()
	e := newEnv(t)
	e.memtable = smallMemtable
	e.reopenBadger()
	p, _ := e.newProjections()
	b := &indexBuildEnv{env: e, p: p, project: "big", ps: streams.ProjectStream("big"), c: docCollection("big")}
	wait(t, p, streams.SystemStream, e.createProject(b.project))
	docStream(t, e, b.project, docs*4+2)
	b.last = uint64(docs*4 + 2)
	wait(t, p, b.ps, b.last)
	if max := e.db.MaxBatchCount(); max >= int64(docs) {
		t.Fatalf("a transaction holds %d entries: not fewer than %d documents", max, docs)
	}
	return b
}

// addIndex appends the IndexCreated event of ix and returns its sequence.
func (b *indexBuildEnv) addIndex(ix *eventsv1.Index) uint64 {
	b.c = proto.Clone(b.c).(*eventsv1.Collection)
	b.c.Version++
	ix.Status = string(database.StatusProcessing)
	b.c.Indexes = append(b.c.Indexes, ix)
	b.last = b.appendEnv(b.ps, streams.ProjectSubject(b.project, "databases", "main", "collections", b.c.Id, "update"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_IndexCreated{IndexCreated: &eventsv1.IndexCreated{Collection: b.c, Key: ix.Key}}})
	return b.last
}

// dropIndex appends the IndexDeleted event of the index key.
func (b *indexBuildEnv) dropIndex(key string) uint64 {
	b.c = proto.Clone(b.c).(*eventsv1.Collection)
	b.c.Version++
	var kept []*eventsv1.Index
	for _, ix := range b.c.Indexes {
		if ix.Key != key {
			kept = append(kept, ix)
		}
	}
	b.c.Indexes = kept
	b.last = b.appendEnv(b.ps, streams.ProjectSubject(b.project, "databases", "main", "collections", b.c.Id, "update"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_IndexDeleted{IndexDeleted: &eventsv1.IndexDeleted{Collection: b.c, Key: key}}})
	return b.last
}

// putDoc appends a document's create with data.
func (b *indexBuildEnv) putDoc(id string, data map[string]any) uint64 {
	raw, _ := json.Marshal(data)
	at := timestamppb.New(time.Unix(1_800_000_000, 0))
	d := &eventsv1.Document{Id: id, ProjectId: b.project, DatabaseId: "main", CollectionId: b.c.Id, CollectionUid: b.c.Uid,
		DataJson: string(raw), CreatedAt: at, UpdatedAt: at, SchemaVersion: 1}
	b.last = b.appendEnv(b.ps, streams.ProjectSubject(b.project, "databases", "main", "collections", b.c.Id, "documents", id, "create"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}})
	return b.last
}

// status returns the stored status and error of index key ("" if the
// stored collection does not list it).
func (b *indexBuildEnv) status(t *testing.T, key string) (string, string) {
	t.Helper()
	c, err := b.p.Collection(b.project, "main", b.c.Id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ix := range c.GetIndexes() {
		if ix.GetKey() == key {
			return ix.GetStatus(), ix.GetError()
		}
	}
	return "", ""
}

// entries counts the keys under the index uid and the stored documents.
func (b *indexBuildEnv) entries(t *testing.T, uid string) (entries, docs int) {
	t.Helper()
	ix, err := b.p.Dump(indexPrefix(b.project, b.c.Uid, uid))
	if err != nil {
		t.Fatal(err)
	}
	d, err := b.p.Dump([]byte(documentsPrefix(b.project, b.c.Uid)))
	if err != nil {
		t.Fatal(err)
	}
	return len(ix), len(d)
}

// rebuildEquals checks that a rebuild from the stream (a bulk run) ends
// with the read model applied live.
func (b *indexBuildEnv) rebuildEquals(t *testing.T) {
	t.Helper()
	if err := b.p.CollectGarbage(); err != nil {
		t.Fatal(err)
	}
	live, err := b.p.Snapshot(b.ps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.p.Rebuild(context.Background(), b.project); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := b.p.Snapshot(b.ps)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffKV(withoutUsage(live), withoutUsage(rebuilt)); d != "" {
		t.Fatalf("rebuilt read model differs from the live one: %s", d)
	}
}

// TestIndexBuildInChunks: an index declared over more documents than one
// Badger transaction holds is built (in chunks), and a unique index whose
// duplicate sits in a later chunk than its first holder fails with the
// same message a rebuild gives, leaving no entry behind.
func TestIndexBuildInChunks(t *testing.T) {
	const docs = 5000
	b := newIndexBuildEnv(t, docs)
	wait(t, b.p, b.ps, b.addIndex(&eventsv1.Index{Key: "by_title", Type: string(database.IndexKey), Attributes: []string{"title"}, Desc: []bool{false}, Uid: "01IXTITLE"}))
	if st, msg := b.status(t, "by_title"); st != string(database.StatusAvailable) {
		t.Fatalf("by_title: %s %q, want available", st, msg)
	}
	if n, d := b.entries(t, "01IXTITLE"); n != docs || d != docs {
		t.Fatalf("by_title holds %d entries for %d documents, want %d", n, d, docs)
	}

	// doc0000000's last n, given again by a document that sorts last.
	first, err := b.p.Document(b.project, b.c, "doc0000000")
	if err != nil {
		t.Fatal(err)
	}
	var data struct{ N int }
	if err := json.Unmarshal([]byte(first.GetDataJson()), &data); err != nil {
		t.Fatal(err)
	}
	b.putDoc("zzz", map[string]any{"n": data.N, "tag": "t", "title": "z"})
	wait(t, b.p, b.ps, b.addIndex(&eventsv1.Index{Key: "uniq_n", Type: string(database.IndexUnique), Attributes: []string{"n"}, Desc: []bool{false}, Uid: "01IXUNIQN"}))
	st, msg := b.status(t, "uniq_n")
	if want := fmt.Sprintf(`documents "doc0000000" and "zzz" have the same n: [%d]`, data.N); st != string(database.StatusFailed) || !strings.Contains(msg, want) {
		t.Fatalf("uniq_n: %s %q, want failed with %q", st, msg, want)
	}
	if n, _ := b.entries(t, "01IXUNIQN"); n != 0 {
		t.Fatalf("a failed build left %d entries", n)
	}
	b.rebuildEquals(t)
}

// TestIndexBuildInterrupted: a node stopped in the middle of an index build
// (the projector's context ends, Badger is closed and opened again) leaves
// the event unapplied and the collection without the index; the next start
// builds it again from the start. A document written while it builds is
// indexed once, and an index deleted right after its creation leaves
// nothing. The result equals a rebuild.
func TestIndexBuildInterrupted(t *testing.T) {
	const docs = 4000
	b := newIndexBuildEnv(t, docs)
	mid := make(chan struct{})
	b.p.onIndexChunk = func(ctx context.Context, chunks int) error {
		if chunks == 2 {
			close(mid)
			<-ctx.Done() // the node stops here
			return ctx.Err()
		}
		return nil
	}
	b.addIndex(&eventsv1.Index{Key: "by_title", Type: string(database.IndexKey), Attributes: []string{"title"}, Desc: []bool{false}, Uid: "01IXTITLE"})
	select {
	case <-mid:
	case <-time.After(30 * time.Second):
		t.Fatal("the build never reached its second chunk")
	}
	b.putDoc("during", map[string]any{"n": -1, "tag": "t", "title": "written during the build"})
	b.addIndex(&eventsv1.Index{Key: "by_tag_only", Type: string(database.IndexKey), Attributes: []string{"tag"}, Desc: []bool{false}, Uid: "01IXTAGONLY"})
	b.dropIndex("by_tag_only")
	// Half built: entries exist, but the stored collection does not list
	// the index, so no query can use it.
	if n, _ := b.entries(t, "01IXTITLE"); n == 0 || n >= docs {
		t.Fatalf("mid-build: %d entries", n)
	}
	if st, _ := b.status(t, "by_title"); st != "" {
		t.Fatalf("mid-build the stored collection lists by_title as %q", st)
	}
	if err := b.p.Close(); err != nil {
		t.Fatal(err)
	}
	b.reopenBadger()
	p, _ := b.newProjections()
	b.p = p
	wait(t, p, b.ps, b.last)
	if st, msg := b.status(t, "by_title"); st != string(database.StatusAvailable) {
		t.Fatalf("by_title after the restart: %s %q", st, msg)
	}
	if st, _ := b.status(t, "by_tag_only"); st != "" {
		t.Fatalf("deleted index still listed as %q", st)
	}
	if n, d := b.entries(t, "01IXTITLE"); n != docs+1 || d != docs+1 {
		t.Fatalf("by_title holds %d entries for %d documents, want %d", n, d, docs+1)
	}
	if err := p.CollectGarbage(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.entries(t, "01IXTAGONLY"); n != 0 {
		t.Fatalf("the deleted index left %d entries", n)
	}
	b.rebuildEquals(t)
}
