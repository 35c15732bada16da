package eventlog_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/project"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// node is the real write path: embedded JetStream, Badger, projections.
type node struct {
	store *streams.Store
	reads *projections.Projections
	log   *eventlog.Log
}

func newNode(t testing.TB) *node {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: filepath.Join(dir, "nats"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	store, err := streams.Open(ctx, nc, streams.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reads := projections.New(db, store, projections.Options{Logger: quiet})
	if err := reads.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reads.Close() })
	return &node{store: store, reads: reads, log: eventlog.New(store, reads, eventlog.Options{Logger: quiet})}
}

func (n *node) rename(ctx context.Context, meta eventlog.Meta, id, name string) (eventlog.Result, error) {
	return n.log.Write(ctx, eventlog.ProjectAggregate(id), meta, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		return project.Decide(s, project.Update{Name: &name, Now: n.log.Now()})
	}))
}

func (n *node) create(t *testing.T, id string) eventlog.Result {
	t.Helper()
	res, err := n.log.Write(context.Background(), eventlog.ProjectAggregate(id), eventlog.Meta{}, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		return project.Decide(s, project.Create{ID: id, Name: id, Now: n.log.Now()})
	}))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// countEvents counts the messages on an aggregate's subjects.
func (n *node) countEvents(t *testing.T, filter string) int {
	t.Helper()
	c := 0
	for _, err := range n.store.Read(context.Background(), streams.SystemStream, streams.ReadOptions{Filters: []string{filter}}) {
		if err != nil {
			t.Fatal(err)
		}
		c++
	}
	return c
}

func TestWriteAnswersOnceApplied(t *testing.T) {
	n := newNode(t)
	res := n.create(t, "p1")
	if res.Seq == 0 || len(res.Events) != 1 || res.Duplicate {
		t.Fatalf("create: %+v", res)
	}
	// Read-your-writes: the read model has it when Write returns.
	if p, err := n.reads.Project("p1"); err != nil || p.GetName() != "p1" {
		t.Fatalf("read model behind its own write: %v %v", p, err)
	}
	// A second create is the decider's error, unchanged, and writes nothing.
	_, err := n.log.Write(context.Background(), eventlog.ProjectAggregate("p1"), eventlog.Meta{}, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		return project.Decide(s, project.Create{ID: "p1", Name: "again", Now: n.log.Now()})
	}))
	if domain.KindOf(err) != domain.KindAlreadyExists {
		t.Fatalf("want AlreadyExists, got %v", err)
	}
	// A decision with no events appends nothing and answers the last seq.
	same, err := n.rename(context.Background(), eventlog.Meta{}, "p1", "p1")
	if err != nil || len(same.Events) != 0 || same.Seq != res.Seq {
		t.Fatalf("no-op write: %+v %v", same, err)
	}
	if c := n.countEvents(t, "cairn._sys.projects.p1.>"); c != 1 {
		t.Fatalf("%d events, want 1", c)
	}
}

// Concurrent writers on one aggregate: every write decides on the state the
// previous one left (the stale ones are rejected by the server and decided
// again), so no two writers both win and none is lost.
func TestConcurrentWritesSerialize(t *testing.T) {
	n := newNode(t)
	n.create(t, "race")
	const writers = 12
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.rename(context.Background(), eventlog.Meta{}, "race", fmt.Sprintf("name-%d", i))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent write failed: %v", err)
		}
	}
	if c := n.countEvents(t, "cairn._sys.projects.race.>"); c != writers+1 {
		t.Fatalf("%d events, want %d (one per write)", c, writers+1)
	}
}

func TestIdempotencyKey(t *testing.T) {
	n := newNode(t)
	n.create(t, "idem")
	meta := eventlog.Meta{IdempotencyKey: "k1", Scope: "rename\x00caller-a"}
	first, err := n.rename(context.Background(), meta, "idem", "x")
	if err != nil || first.Duplicate {
		t.Fatalf("first: %+v %v", first, err)
	}
	// The retry answers the first result, even though deciding again would
	// now be a no-op, and appends nothing.
	again, err := n.rename(context.Background(), meta, "idem", "x")
	if err != nil || !again.Duplicate || again.Seq != first.Seq || len(again.Events) != 1 || again.Events[0].GetId() != first.Events[0].GetId() {
		t.Fatalf("retry: %+v %v, first %+v", again, err, first)
	}
	// Another caller's equal key is another request.
	other, err := n.rename(context.Background(), eventlog.Meta{IdempotencyKey: "k1", Scope: "rename\x00caller-b"}, "idem", "y")
	if err != nil || other.Duplicate || other.Seq == first.Seq {
		t.Fatalf("other caller: %+v %v", other, err)
	}
	if c := n.countEvents(t, "cairn._sys.projects.idem.>"); c != 3 {
		t.Fatalf("%d events, want 3", c)
	}
}

func TestWriteToMissingProjectStream(t *testing.T) {
	n := newNode(t)
	_, err := n.log.Write(context.Background(), eventlog.KeyAggregate("ghost", "k1"), eventlog.Meta{}, func(*eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_KeyCreated{KeyCreated: &eventsv1.KeyCreated{
			Key: &eventsv1.Key{Id: "k1", ProjectId: "ghost", Name: "x"}}}}}, nil
	})
	if domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("want NotFound for a project that does not exist, got %v", err)
	}
}

// A change marked New is decided against nothing on its first attempt;
// when its aggregate does exist, the append is refused and the change is
// decided again on what the log holds: the answer is the same as reading
// first (already exists), and nothing is written twice.
func TestWriteAllNew(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	calls := 0
	create := func(id string) (eventlog.Result, error) {
		return n.log.WriteAll(ctx, eventlog.Meta{}, []eventlog.Change{{
			Agg: eventlog.ProjectAggregate(id), New: true,
			Decide: func(last *eventsv1.Envelope, _ uint64) ([]*eventsv1.Envelope, error) {
				calls++
				return project.Decide(project.Evolve(nil, last), project.Create{ID: id, Name: id, Now: n.log.Now()})
			},
		}})
	}
	res, err := create("p1")
	if err != nil || len(res.Events) != 1 || calls != 1 {
		t.Fatalf("create of a new aggregate: %+v, %v, decided %d times", res, err, calls)
	}
	if p, err := n.reads.Project("p1"); err != nil || p.GetName() != "p1" {
		t.Fatalf("read model: %v %v", p, err)
	}
	calls = 0
	if _, err := create("p1"); domain.KindOf(err) != domain.KindAlreadyExists || calls != 2 {
		t.Fatalf("create of an existing aggregate: %v after %d decisions, want already exists after 2", err, calls)
	}
	if c := n.countEvents(t, eventlog.ProjectAggregate("p1").Filter); c != 1 {
		t.Fatalf("%d events for p1, want 1", c)
	}
	// Deleted, then created again: the aggregate has events, the second
	// decision sees the deletion and the create lands after it.
	if _, err := n.log.Write(ctx, eventlog.ProjectAggregate("p1"), eventlog.Meta{}, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		return project.Decide(s, project.Delete{Now: n.log.Now()})
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := create("p1"); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	if c := n.countEvents(t, eventlog.ProjectAggregate("p1").Filter); c != 3 {
		t.Fatalf("%d events for p1, want 3 (create, delete, create)", c)
	}
}
