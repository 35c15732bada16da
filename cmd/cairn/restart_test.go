package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
)

// seed writes a little of everything: two projects, keys, updates, a delete.
func seed(t *testing.T, in *instance) map[string]string {
	t.Helper()
	op, _ := as(context.Background(), testAdminKey)
	names := map[string]string{}
	for _, p := range []string{"alpha", "beta"} {
		if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			k, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: p, Name: fmt.Sprint(i), Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
			if err != nil {
				t.Fatal(err)
			}
			n := fmt.Sprintf("%s-renamed-%d", p, i)
			if _, err := in.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: p, KeyId: k.GetKey().GetId(), Name: &n}); err != nil {
				t.Fatal(err)
			}
			names[p+"/"+k.GetKey().GetId()] = n
			if i == 2 {
				if _, err := in.keys().DeleteKey(op, &cairnv1.DeleteKeyRequest{ProjectId: p, KeyId: k.GetKey().GetId()}); err != nil {
					t.Fatal(err)
				}
				delete(names, p+"/"+k.GetKey().GetId())
			}
		}
	}
	return names
}

func checkKeys(t *testing.T, in *instance, want map[string]string) {
	t.Helper()
	op, _ := as(context.Background(), testAdminKey)
	for pk, name := range want {
		p, k, _ := strings.Cut(pk, "/")
		got, err := in.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: p, KeyId: k})
		if err != nil || got.GetKey().GetName() != name {
			t.Fatalf("key %s: got %v %v, want name %q", pk, got, err, name)
		}
	}
	for _, p := range []string{"alpha", "beta"} {
		ks, err := in.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: p})
		if err != nil || len(ks.GetKeys()) != 2 {
			t.Fatalf("project %s: want 2 keys, got %v %v", p, ks, err)
		}
	}
}

// openStopped opens a stopped server's data dir in-process.
func openStopped(t *testing.T, dir string) *node {
	t.Helper()
	n, err := openNode(context.Background(), &config{DataDir: dir, Sync: defaultSync}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRestartAndReplay: a second start sees everything; replay rebuilds read
// models byte-identical to the incrementally built ones.
func TestRestartAndReplay(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	want := seed(t, in)
	in.stop()

	in = startInstance(t, dir)
	checkKeys(t, in, want)
	in.stop()

	n := openStopped(t, dir)
	for _, project := range []string{"", "alpha", "beta"} {
		if kv := checkRebuild(t, n, project, "after restart"); len(kv) == 0 {
			t.Fatalf("empty read model for %q", project)
		}
	}
	n.close()

	// The CLI's replay reports events/s and the server still serves after it.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"replay", "--all", "--data-dir", dir, "--log-level", "warn"}, &out, io.Discard, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "events/s") || !strings.Contains(out.String(), "project alpha") {
		t.Fatalf("replay output: %s", out.String())
	}
	in = startInstance(t, dir)
	checkKeys(t, in, want)
}

// TestProjectDeletionLeavesNothing: stream, object store and every Badger key
// of a deleted project are gone; other projects are untouched.
func TestProjectDeletionLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	want := seed(t, in)
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "doomed", Name: "Doomed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "doomed", Name: "k", Scopes: &cairnv1.Scopes{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.projects().DeleteProject(op, &cairnv1.DeleteProjectRequest{ProjectId: "doomed"}); err != nil {
		t.Fatal(err)
	}
	_, err := in.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: "doomed"})
	wantCode(t, err, connect.CodeNotFound)
	in.stop()

	n := openStopped(t, dir)
	ctx := context.Background()
	if _, err := n.store.StreamInfo(ctx, streams.ProjectStream("doomed")); err == nil {
		t.Error("the project's stream survived its deletion")
	}
	if ok, err := n.store.HasObjectStore(ctx, "doomed"); err != nil || ok {
		t.Errorf("the project's object store survived: %v %v", ok, err)
	}
	left, err := n.reads.Dump([]byte("p/doomed/"))
	if err != nil || len(left) != 0 {
		t.Errorf("read-model keys survived: %v %v", left, err)
	}
	if _, err := n.reads.Project("doomed"); err == nil {
		t.Error("the registry still lists the project")
	}
	n.close()
	// Nothing on disk names it either.
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && strings.Contains(filepath.Base(path), "doomed") {
			t.Errorf("file left behind: %s", path)
		}
		return nil
	})
	in = startInstance(t, dir)
	checkKeys(t, in, want)
}

// TestConcurrentWritersOneAggregate: many writers on one key; each
// acknowledged write is exactly one event, in a single order, and the read
// model ends at the last one. Two writers never both win one sequence.
func TestConcurrentWritersOneAggregate(t *testing.T) {
	in := startInstance(t, t.TempDir())
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "race", Name: "Race"}); err != nil {
		t.Fatal(err)
	}
	k, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "race", Name: "start", Scopes: &cairnv1.Scopes{}})
	if err != nil {
		t.Fatal(err)
	}
	id := k.GetKey().GetId()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := fmt.Sprintf("w%d-%d", w, i)
				// Each call its own context: a shared one races on its
				// response headers.
				op, _ := as(context.Background(), testAdminKey)
				if _, err := in.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: "race", KeyId: id, Name: &n}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if connect.CodeOf(err) != connect.CodeAborted {
			t.Fatalf("unexpected error: %v", err)
		}
		failed++
	}
	evs, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: "race", Subject: "keys." + id + ".update", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(evs.GetEvents()); got != writers*each-failed {
		t.Fatalf("%d acknowledged updates but %d events", writers*each-failed, got)
	}
	seen := map[string]bool{}
	var prev string
	for i, e := range evs.GetEvents() {
		key := e.GetEnvelope().GetKeyUpdated().GetKey()
		if seen[key.GetName()] {
			t.Fatalf("update %q stored twice", key.GetName())
		}
		seen[key.GetName()] = true
		// Each event was decided on the state the previous one left.
		if i > 0 && !key.GetUpdatedAt().AsTime().After(key.GetCreatedAt().AsTime().Add(-1)) {
			t.Fatalf("bad timestamps in %v", key)
		}
		prev = key.GetName()
	}
	got, err := in.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: "race", KeyId: id})
	if err != nil || got.GetKey().GetName() != prev {
		t.Fatalf("read model %v, want last event's name %q", got, prev)
	}
}
