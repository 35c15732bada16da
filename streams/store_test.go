package streams

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestEnsureProjectStream(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	env.project("p1", 0)
	env.project("p1", 0) // idempotent
	if err := env.store.EnsureProjectStream(ctx, "p1", Limits{MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	info, err := env.store.StreamInfo(ctx, ProjectStream("p1"))
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxBytes != 1<<20 || info.Created.IsZero() {
		t.Fatalf("info = %+v", info)
	}
	str, err := env.store.js.Stream(ctx, ProjectStream("p1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := str.CachedInfo().Config
	if !cfg.AllowAtomicPublish || !cfg.AllowDirect || !cfg.DenyDelete || !cfg.DenyPurge || cfg.Discard != 1 || cfg.Subjects[0] != "cairn.p1.>" {
		t.Fatalf("config = %+v", cfg)
	}
	if err := env.store.EnsureProjectStream(ctx, "Bad.Id", Limits{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad id err = %v", err)
	}
	if _, err := env.store.StreamInfo(ctx, ProjectStream("nope")); !errors.Is(err, ErrNoStream) {
		t.Fatalf("missing info err = %v", err)
	}
}

func TestObjectStoreAndDeleteProject(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("p1", 0)
	env.mustAppend(stream, "", 0, ProjectSubject("p1", "a"), "x", "")

	if ok, err := env.store.HasObjectStore(ctx, "p1"); ok || err != nil {
		t.Fatalf("object store before first use: %v, %v", ok, err)
	}
	obs, err := env.store.ObjectStore(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "f1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	again, err := env.store.ObjectStore(ctx, "p1") // opens, does not recreate
	if err != nil {
		t.Fatal(err)
	}
	if b, err := again.GetBytes(ctx, "f1"); err != nil || !bytes.Equal(b, []byte("hello")) {
		t.Fatalf("get = %q, %v", b, err)
	}

	if err := env.store.DeleteProject(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.StreamInfo(ctx, stream); !errors.Is(err, ErrNoStream) {
		t.Fatalf("stream after delete: %v", err)
	}
	if ok, err := env.store.HasObjectStore(ctx, "p1"); ok || err != nil {
		t.Fatalf("object store after delete: %v, %v", ok, err)
	}
	if err := env.store.DeleteProject(ctx, "p1"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	// A project without an object store deletes fine too.
	env.project("p2", 0)
	if err := env.store.DeleteProject(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.Append(ctx, Append{Stream: stream, Msgs: []Msg{{Subject: ProjectSubject("p1", "a"), MsgID: "y"}}}); !errors.Is(err, ErrNoStream) {
		t.Fatalf("append after delete err = %v", err)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("p1", 4<<20)
	filter := ProjectSubject("p1", "keys", "K", ">")
	env.mustAppend(stream, filter, 0, ProjectSubject("p1", "keys", "K", "create"), "a", "1")
	env.mustAppend(stream, filter, 1, ProjectSubject("p1", "keys", "K", "update"), "b", "2")
	obs, err := env.store.ObjectStore(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "f", []byte("data")); err != nil {
		t.Fatal(err)
	}
	env.mustAppend(SystemStream, "", 0, SystemSubject("projects", "p1", "create"), "sys", "")

	env.restart()

	m, found, err := env.store.Last(ctx, stream, filter)
	if err != nil || !found || m.Seq != 2 || string(m.Data) != "2" {
		t.Fatalf("Last after restart = %+v %v %v", m, found, err)
	}
	// The duplicate window survives too.
	ack, err := env.store.Append(ctx, Append{Stream: stream, ExpectFilter: filter, ExpectSeq: 1,
		Msgs: []Msg{{Subject: ProjectSubject("p1", "keys", "K", "update"), MsgID: "b"}}})
	if err != nil || !ack.Duplicate || ack.Seq != 2 {
		t.Fatalf("retry after restart = %+v, %v", ack, err)
	}
	info, _ := env.store.StreamInfo(ctx, stream)
	if info.MaxBytes != 4<<20 || info.Msgs != 2 {
		t.Fatalf("info after restart = %+v", info)
	}
	obs, err = env.store.ObjectStore(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := obs.GetBytes(ctx, "f"); err != nil || string(b) != "data" {
		t.Fatalf("object after restart = %q, %v", b, err)
	}
	if _, found, _ := env.store.Last(ctx, SystemStream, SystemSubject("projects", "p1", ">")); !found {
		t.Fatal("system event lost")
	}
}

func TestSyncAlwaysServer(t *testing.T) {
	env := &testEnv{t: t, dir: t.TempDir()}
	env.start(EmbeddedConfig{SyncAlways: true})
	stream := env.project("p1", 0)
	env.mustAppend(stream, "", 0, ProjectSubject("p1", "a"), "x", "")
	if !env.emb.Server().JetStreamEnabled() {
		t.Fatal("JetStream off")
	}
}

func TestStartEmbeddedNeedsDir(t *testing.T) {
	if _, err := StartEmbedded(context.Background(), EmbeddedConfig{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}
