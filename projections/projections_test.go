package projections

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

const sys = streams.SystemStream

func TestProjectsAndKeysApplied(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")

	e.createProject("p1")
	e.createProject("p2")
	wait(t, p, sys, e.updateProject("p1", "Renamed"))

	e.keyEvent("p1", "create", key("p1", "k1", "first"), "")
	e.keyEvent("p1", "create", key("p1", "k2", "second"), "")
	e.keyEvent("p1", "create", key("p1", "k3", "third"), "")
	e.keyEvent("p1", "update", key("p1", "k1", "first, renamed"), "")
	wait(t, p, ps, e.keyEvent("p1", "delete", key("p1", "k2", "second"), ""))

	pr, err := p.Project("p1")
	if err != nil || pr.GetName() != "Renamed" {
		t.Fatalf("Project(p1) = %v, %v", pr, err)
	}
	if _, err := p.Project("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Project(nope) err = %v, want ErrNotFound", err)
	}
	all, err := p.ListProjects("", 0)
	if err != nil || len(all) != 2 || all[0].GetId() != "p1" || all[1].GetId() != "p2" {
		t.Fatalf("ListProjects = %v, %v", all, err)
	}
	page, _ := p.ListProjects("p1", 10)
	if len(page) != 1 || page[0].GetId() != "p2" {
		t.Fatalf("ListProjects(after p1) = %v", page)
	}

	k1, err := p.Key("p1", "k1")
	if err != nil || k1.GetName() != "first, renamed" {
		t.Fatalf("Key(k1) = %v, %v", k1, err)
	}
	if _, err := p.Key("p1", "k2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Key(k2) after delete: err = %v", err)
	}
	keys, _ := p.ListKeys("p1", "", 1)
	if len(keys) != 1 || keys[0].GetId() != "k1" {
		t.Fatalf("ListKeys page 1 = %v", keys)
	}
	keys, _ = p.ListKeys("p1", "k1", 1)
	if len(keys) != 1 || keys[0].GetId() != "k3" {
		t.Fatalf("ListKeys page 2 = %v", keys)
	}
	if keys, _ := p.ListKeys("p2", "", 10); len(keys) != 0 {
		t.Fatalf("p2 has keys %v", keys)
	}
	if got := p.AppliedSeq(ps); got != 5 {
		t.Fatalf("AppliedSeq = %d, want 5", got)
	}
	eventually(t, "ready", p.Ready)
}

func TestResumeFromCheckpoint(t *testing.T) {
	e := newEnv(t)
	ps := streams.ProjectStream("p1")
	p, c := e.newProjections()
	e.createProject("p1")
	var last uint64
	for i := range 10 {
		last = e.keyEvent("p1", "create", key("p1", string(rune('a'+i)), "v1"), "")
	}
	wait(t, p, ps, last)
	p.Close()
	if got, want := c.of(ps), seqRange(1, 10); !slices.Equal(got, want) {
		t.Fatalf("first run applied %v, want %v", got, want)
	}

	// Events appended while no projector runs; JetStream and Badger both
	// restarted (the stream's creation time must survive a restart).
	for i := range 5 {
		last = e.keyEvent("p1", "update", key("p1", string(rune('a'+i)), "v2"), "")
	}
	e.restartNATS()
	e.reopenBadger()
	p, c = e.newProjections()
	wait(t, p, ps, last)
	if got, want := c.of(ps), seqRange(11, 15); !slices.Equal(got, want) {
		t.Fatalf("second run applied %v, want exactly %v", got, want)
	}
	if got := c.of(sys); len(got) != 0 {
		t.Fatalf("system events re-applied: %v", got)
	}
	k, err := p.Key("p1", "c")
	if err != nil || k.GetName() != "v2" {
		t.Fatalf("Key(c) = %v, %v", k, err)
	}
	eventually(t, "ready", p.Ready)
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestWaitApplied(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")

	// Waiting on a project that does not exist yet is fine: it wakes once
	// the project is created and its event applied.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- p.WaitApplied(ctx, ps, 2)
	}()
	e.createProject("p1")
	e.keyEvent("p1", "create", key("p1", "k1", "x"), "")
	select {
	case err := <-done:
		t.Fatalf("woke early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	e.keyEvent("p1", "create", key("p1", "k2", "x"), "")
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.WaitApplied(ctx, ps, 99); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied past the end: %v, want DeadlineExceeded", err)
	}
	if err := p.WaitApplied(ctx, "NOT_A_STREAM", 1); err == nil {
		t.Fatal("WaitApplied on a foreign stream succeeded")
	}
}

func TestProjectDelete(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")
	e.createProject("p1")
	e.createProject("p2")
	e.keyEvent("p2", "create", key("p2", "k1", "x"), "")
	e.keyEvent("p1", "create", key("p1", "k1", "x"), "idem:one")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k2", "x"), ""))
	if kv, _ := p.Snapshot(ps); len(kv) != 5 { // ckpt, idem, 2 keys, the day's usage
		t.Fatalf("before delete: %d entries", len(kv))
	}

	// A waiter for a sequence the project will never reach.
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.WaitApplied(context.Background(), ps, 100) }()
	time.Sleep(50 * time.Millisecond) // let it start waiting before the delete

	wait(t, p, sys, e.deleteProject("p1"))
	if kv, err := p.Dump([]byte("p/p1/")); err != nil || len(kv) != 0 {
		t.Fatalf("after delete: %v, %v", kv, err)
	}
	if _, err := p.Project("p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Project(p1) after delete: %v", err)
	}
	if _, err := e.store.StreamInfo(context.Background(), ps); !errors.Is(err, streams.ErrNoStream) {
		t.Fatalf("stream after delete: %v, want ErrNoStream", err)
	}
	if err := <-waitErr; !errors.Is(err, ErrProjectDeleted) {
		t.Fatalf("waiter: %v, want ErrProjectDeleted", err)
	}
	// The other project is untouched and its projector still live.
	wait(t, p, streams.ProjectStream("p2"), e.keyEvent("p2", "create", key("p2", "k2", "x"), ""))
	if keys, _ := p.ListKeys("p2", "", 0); len(keys) != 2 {
		t.Fatalf("p2 keys = %v", keys)
	}
	eventually(t, "ready", p.Ready)

	// A new project with the same id starts from nothing.
	e.createProject("p1")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k9", "new"), ""))
	if keys, _ := p.ListKeys("p1", "", 0); len(keys) != 1 || keys[0].GetId() != "k9" {
		t.Fatalf("recreated p1 keys = %v", keys)
	}

	// Replaying the system stream (Created, Deleted, Created) must not
	// delete the re-created project's stream.
	if _, err := p.Rebuild(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.StreamInfo(context.Background(), ps); err != nil {
		t.Fatalf("re-created stream after system replay: %v", err)
	}
	if keys, _ := p.ListKeys("p1", "", 0); len(keys) != 1 || keys[0].GetId() != "k9" {
		t.Fatalf("re-created p1 keys after system replay = %v", keys)
	}
}

func TestRebuildIsByteIdentical(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")
	e.createProject("p1")
	e.createProject("p2")
	e.updateProject("p2", "two")
	var last uint64
	for i := range 300 {
		id := string(rune('a' + i%20))
		switch {
		case i%7 == 6:
			last = e.keyEvent("p1", "delete", key("p1", id, "x"), "")
		case i%5 == 0:
			last = e.keyEvent("p1", "create", key("p1", id, "x"), "idem:"+e.nextID())
		default:
			last = e.keyEvent("p1", "update", key("p1", id, e.nextID()), "")
		}
	}
	wait(t, p, ps, last)
	wait(t, p, sys, 3)
	incProject, _ := p.Snapshot(ps)
	incSys, _ := p.Snapshot(sys)

	n, err := p.Rebuild(context.Background(), "p1")
	if err != nil || n != 300 {
		t.Fatalf("Rebuild(p1) = %d, %v", n, err)
	}
	if n, err := p.Rebuild(context.Background(), ""); err != nil || n != 3 {
		t.Fatalf("Rebuild(system) = %d, %v", n, err)
	}
	rebProject, _ := p.Snapshot(ps)
	rebSys, _ := p.Snapshot(sys)
	if !reflect.DeepEqual(incProject, rebProject) {
		t.Fatalf("project read model differs after rebuild:\n%v\n%v", incProject, rebProject)
	}
	if !reflect.DeepEqual(incSys, rebSys) {
		t.Fatalf("system read model differs after rebuild")
	}
	// The projector resumed live after the rebuild.
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "zz", "after"), ""))

	// A second node (fresh Badger, same streams) ends byte-identical too.
	opts := badger.DefaultOptions("").WithInMemory(true).WithLogger(nil)
	db2, err := badger.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	p2 := New(db2, e.store, Options{Logger: e.log})
	defer p2.Close()
	if err := p2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait(t, p2, ps, 301)
	wait(t, p2, sys, 3)
	a, _ := p.Snapshot(ps)
	b, _ := p2.Snapshot(ps)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("second node's read model differs")
	}
	if n, err := p2.RebuildAll(context.Background(), nil); err != nil || n != 3+301 {
		t.Fatalf("RebuildAll = %d, %v", n, err)
	}
}

func TestInconsistentReadModelRebuilt(t *testing.T) {
	e := newEnv(t)
	ps := streams.ProjectStream("p1")
	p, _ := e.newProjections()
	e.createProject("p1")
	e.keyEvent("p1", "create", key("p1", "k1", "x"), "")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k2", "x"), ""))
	good, _ := p.Snapshot(ps)
	p.Close()

	// 1. Checkpoint ahead of the stream (e.g. JetStream lost its tail).
	ck, err := p.loadCheckpoint(projectSpace("p1"))
	if err != nil {
		t.Fatal(err)
	}
	ahead := ck
	ahead.Seq = 50
	setRaw(t, e.db, projectSpace("p1").checkpointKey(), ahead.marshal())
	setRaw(t, e.db, keyKey("p1", "ghost"), []byte("not from the stream"))
	p, c := e.newProjections()
	wait(t, p, ps, 2)
	eventually(t, "ready", p.Ready)
	if got, _ := p.Snapshot(ps); !reflect.DeepEqual(got, good) {
		t.Fatalf("after checkpoint-ahead rebuild:\n%v\nwant\n%v", got, good)
	}
	if got := c.of(ps); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("rebuild applied %v", got)
	}
	p.Close()

	// 2. Same sequence, different event id at it.
	wrong := ck
	wrong.EventID = "01SOMETHINGELSE"
	setRaw(t, e.db, projectSpace("p1").checkpointKey(), wrong.marshal())
	setRaw(t, e.db, keyKey("p1", "ghost"), []byte("x"))
	p, _ = e.newProjections()
	wait(t, p, ps, 2)
	eventually(t, "ready", p.Ready)
	if got, _ := p.Snapshot(ps); !reflect.DeepEqual(got, good) {
		t.Fatal("after event-id mismatch rebuild: read model differs")
	}
	p.Close()

	// 3. The stream was recreated behind the read model's back, with as
	// many events, so only its creation time tells.
	if err := e.store.DeleteProject(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.EnsureProjectStream(context.Background(), "p1", streams.Limits{}); err != nil {
		t.Fatal(err)
	}
	e.keyEvent("p1", "create", key("p1", "n1", "x"), "")
	e.keyEvent("p1", "create", key("p1", "n2", "x"), "")
	p, _ = e.newProjections()
	wait(t, p, ps, 2)
	eventually(t, "ready", p.Ready)
	keys, _ := p.ListKeys("p1", "", 0)
	if len(keys) != 2 || keys[0].GetId() != "n1" || keys[1].GetId() != "n2" {
		t.Fatalf("after recreated stream: keys %v", keys)
	}
}

func setRaw(t *testing.T, db *badger.DB, k, v []byte) {
	t.Helper()
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) }); err != nil {
		t.Fatal(err)
	}
}

func TestIdempotencyIndex(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")
	e.createProject("p1")
	s1 := e.keyEvent("p1", "create", key("p1", "k1", "x"), "idem:abc")
	e.keyEvent("p1", "create", key("p1", "k2", "x"), "plain-id") // not an idempotency key
	wait(t, p, ps, e.keyEvent("p1", "update", key("p1", "k1", "y"), "idem:def"))

	if seq, ok, err := p.IdempotentSeq(ps, "idem:abc"); err != nil || !ok || seq != s1 {
		t.Fatalf("IdempotentSeq(idem:abc) = %d, %v, %v; want %d", seq, ok, err, s1)
	}
	if _, ok, _ := p.IdempotentSeq(ps, "plain-id"); ok {
		t.Fatal("a non-idempotency message id was indexed")
	}
	if _, ok, _ := p.IdempotentSeq(ps, "idem:unknown"); ok {
		t.Fatal("unknown key found")
	}
	msg, err := e.store.Get(context.Background(), ps, s1)
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := p.Dump(projectSpace("p1").idemKey("idem:abc"))
	if len(kv) != 1 || kv[0].ExpiresAt != uint64(msg.Time.Add(2*time.Minute).Unix()) {
		t.Fatalf("idem entry %v, want expiry at message time + 2m (%v)", kv, msg.Time)
	}
}

func TestUnknownEventStopsProjector(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")
	e.createProject("p1")
	good := e.keyEvent("p1", "create", key("p1", "k1", "x"), "")
	// A payload this build does not know (as from a newer writer): an
	// envelope whose oneof case is an unknown field.
	future := &eventsv1.Envelope{Id: e.nextID()}
	data, _ := proto.Marshal(future)
	data = append(data, 0xba, 0x3e, 0x00) // field 999 (unused), length 0
	ack, err := e.store.Append(context.Background(), streams.Append{Stream: ps,
		Msgs: []streams.Msg{{Subject: streams.ProjectSubject("p1", "future", "x", "create"), Data: data, MsgID: future.Id}}})
	if err != nil {
		t.Fatal(err)
	}
	e.keyEvent("p1", "create", key("p1", "k2", "x"), "")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.WaitApplied(ctx, ps, ack.Seq)
	if !errors.Is(err, ErrProjectorStopped) || !errors.Is(err, ErrUnknownEvent) {
		t.Fatalf("WaitApplied past an unknown event: %v", err)
	}
	if got := p.AppliedSeq(ps); got != good {
		t.Fatalf("applied %d, want to stop at %d", got, good)
	}
	if p.Ready() {
		t.Fatal("Ready with a stopped projector")
	}
	if _, err := p.Key("p1", "k2"); !errors.Is(err, ErrNotFound) {
		t.Fatal("an event after the unknown one was applied")
	}
}

func TestTxnTooBigSplitsBatch(t *testing.T) {
	e := newEnv(t)
	// A small memtable makes Badger's transaction limit ~150 KB, so a
	// batch of 2 KB events cannot fit in one transaction.
	e.db.Close()
	db, err := badger.Open(badger.DefaultOptions(e.dir + "/small").WithMemTableSize(1 << 20).WithValueThreshold(100 << 10).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	e.createProject("p1")
	big := string(make([]byte, 2048))
	var last uint64
	for i := range 400 {
		last = e.keyEvent("p1", "update", key("p1", string(rune('a'+i%26)), big+e.nextID()), "")
	}
	p, c := e.newProjections() // starts behind: the first batches are full
	ps := streams.ProjectStream("p1")
	wait(t, p, ps, last)
	if got := c.of(ps); !slices.Equal(got, seqRange(1, last)) {
		t.Fatalf("applied %d events, want 1..%d exactly once in order", len(got), last)
	}
	if keys, _ := p.ListKeys("p1", "", 0); len(keys) != 26 {
		t.Fatalf("%d keys", len(keys))
	}
}
