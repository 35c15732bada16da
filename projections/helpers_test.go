package projections

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// env is a test node's parts: a real embedded JetStream and a real Badger,
// both under one temp dir, so they can be closed and reopened.
type env struct {
	t     testing.TB
	dir   string
	log   *slog.Logger
	nats  *streams.Embedded
	store *streams.Store
	db    *badger.DB
	seq   int // envelope id counter
	// memtable, when set, is Badger's memtable size: a small one makes
	// its largest transaction small too (15% of it).
	memtable int64
	// vlogFile, when set, is the size of Badger's value log files.
	vlogFile int64
	// serve, when set, opens Badger as `cairn serve` does by default.
	serve bool
}

// serveBadgerOptions are cmd/cairn's default Badger settings
// (cmd/cairn/memory.go: 16 MiB × 3 memtables, 32 MiB block cache, 16 MiB
// index cache, 2 compactors), for benchmarks that should measure what a
// node does rather than Badger's own defaults (64 MiB memtables).
func serveBadgerOptions(o badger.Options) badger.Options {
	return o.WithMemTableSize(16 << 20).WithNumMemtables(3).WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20).WithNumCompactors(2)
}

func testLogger() *slog.Logger {
	if os.Getenv("CAIRN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, &env{})
}

// newServeEnv is newEnv with Badger opened with serveBadgerOptions.
func newServeEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, &env{serve: true})
}

func newEnvWith(t testing.TB, e *env) *env {
	t.Helper()
	e.t, e.dir, e.log = t, t.TempDir(), testLogger()
	e.openNATS()
	e.openBadger()
	t.Cleanup(func() {
		if e.db != nil {
			e.db.Close()
		}
		if e.nats != nil {
			e.nats.Shutdown()
		}
	})
	return e
}

func (e *env) openNATS() {
	e.t.Helper()
	ctx := context.Background()
	srv, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: filepath.Join(e.dir, "nats"), Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		e.t.Fatal(err)
	}
	store, err := streams.Open(ctx, nc, streams.Options{Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	e.nats, e.store = srv, store
}

// restartNATS stops and restarts the server on the same directory.
func (e *env) restartNATS() {
	e.nats.Shutdown()
	e.nats = nil
	e.openNATS()
}

func (e *env) openBadger() {
	e.t.Helper()
	e.db = e.badgerAt(filepath.Join(e.dir, "badger"))
}

// secondBadger opens another Badger beside e.db, with its options, closed
// at the end of the test.
func (e *env) secondBadger() *badger.DB {
	e.t.Helper()
	db := e.badgerAt(filepath.Join(e.dir, "badger2"))
	e.t.Cleanup(func() { db.Close() })
	return db
}

func (e *env) badgerAt(dir string) *badger.DB {
	e.t.Helper()
	opts := badger.DefaultOptions(dir).WithSyncWrites(false).WithLogger(nil)
	if e.serve {
		opts = serveBadgerOptions(opts)
	}
	if e.vlogFile > 0 {
		opts = opts.WithValueLogFileSize(e.vlogFile)
	}
	if e.memtable > 0 {
		opts = opts.WithMemTableSize(e.memtable).WithValueThreshold(min(opts.ValueThreshold, e.memtable/10))
	}
	db, err := badger.Open(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return db
}

func (e *env) reopenBadger() {
	e.t.Helper()
	if err := e.db.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.openBadger()
}

// newProjections returns a started Projections recording every commit.
func (e *env) newProjections() (*Projections, *commits) {
	e.t.Helper()
	p := New(e.db, e.store, Options{Logger: e.log})
	c := &commits{}
	p.onCommit = c.add
	if err := p.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p, c
}

type commits struct {
	mu   sync.Mutex
	seqs map[string][]uint64
}

func (c *commits) add(stream string, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seqs == nil {
		c.seqs = map[string][]uint64{}
	}
	c.seqs[stream] = append(c.seqs[stream], seq)
}

func (c *commits) of(stream string) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.seqs[stream]...)
}

func (e *env) nextID() string {
	e.seq++
	return fmt.Sprintf("01TESTEVENT%015d", e.seq)
}

// appendEnv appends one envelope and returns its sequence.
func (e *env) appendEnv(stream, subject, msgID string, ev *eventsv1.Envelope) uint64 {
	e.t.Helper()
	if ev.Id == "" {
		ev.Id = e.nextID()
	}
	if ev.OccurredAt == nil {
		ev.OccurredAt = timestamppb.New(time.Unix(1_700_000_000, 0))
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	if msgID == "" {
		msgID = ev.Id
	}
	ack, err := e.store.Append(context.Background(), streams.Append{Stream: stream, Msgs: []streams.Msg{{Subject: subject, Data: data, MsgID: msgID}}})
	if err != nil {
		e.t.Fatalf("append to %s: %v", stream, err)
	}
	return ack.Seq
}

func project(id, name string) *eventsv1.Project {
	return &eventsv1.Project{Id: id, Name: name, CreatedAt: timestamppb.New(time.Unix(1_700_000_000, 0))}
}

// createProject provisions the stream and appends ProjectCreated, the way
// the write path does. It returns the system sequence.
func (e *env) createProject(id string) uint64 {
	e.t.Helper()
	if err := e.store.EnsureProjectStream(context.Background(), id, streams.Limits{}); err != nil {
		e.t.Fatal(err)
	}
	return e.appendEnv(streams.SystemStream, streams.SystemSubject("projects", id, "create"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_ProjectCreated{ProjectCreated: &eventsv1.ProjectCreated{Project: project(id, "Project "+id)}}})
}

func (e *env) updateProject(id, name string) uint64 {
	e.t.Helper()
	return e.appendEnv(streams.SystemStream, streams.SystemSubject("projects", id, "update"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_ProjectUpdated{ProjectUpdated: &eventsv1.ProjectUpdated{Project: project(id, name)}}})
}

func (e *env) deleteProject(id string) uint64 {
	e.t.Helper()
	return e.appendEnv(streams.SystemStream, streams.SystemSubject("projects", id, "delete"), "",
		&eventsv1.Envelope{Payload: &eventsv1.Envelope_ProjectDeleted{ProjectDeleted: &eventsv1.ProjectDeleted{Project: project(id, "")}}})
}

func key(projectID, id, name string) *eventsv1.Key {
	return &eventsv1.Key{Id: id, ProjectId: projectID, Name: name, Scopes: []string{"documents.read"},
		SecretHash: []byte("hash-" + id), CreatedAt: timestamppb.New(time.Unix(1_700_000_000, 0))}
}

// keyEvent appends a key event ("create", "update" or "delete").
func (e *env) keyEvent(projectID, action string, k *eventsv1.Key, msgID string) uint64 {
	e.t.Helper()
	ev := &eventsv1.Envelope{}
	switch action {
	case "create":
		ev.Payload = &eventsv1.Envelope_KeyCreated{KeyCreated: &eventsv1.KeyCreated{Key: k}}
	case "update":
		ev.Payload = &eventsv1.Envelope_KeyUpdated{KeyUpdated: &eventsv1.KeyUpdated{Key: k}}
	case "delete":
		ev.Payload = &eventsv1.Envelope_KeyDeleted{KeyDeleted: &eventsv1.KeyDeleted{Key: k}}
	}
	return e.appendEnv(streams.ProjectStream(projectID), streams.ProjectSubject(projectID, "keys", k.Id, action), msgID, ev)
}

func wait(t testing.TB, p *Projections, stream string, seq uint64) {
	t.Helper()
	// A ceiling, not a measure: 20,000 events take a loaded 2-core
	// machine more than 10 s to apply (TestIndexBuildInChunks).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.WaitApplied(ctx, stream, seq); err != nil {
		t.Fatalf("WaitApplied(%s, %d): %v", stream, seq, err)
	}
}

// eventually polls cond (tests only; the package itself never polls).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
