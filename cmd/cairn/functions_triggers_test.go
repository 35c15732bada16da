package main

import (
	"context"
	"fmt"
	"testing"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// Event triggers start at the event that made them take effect: a document
// written right after CreateFunction answered runs the function exactly
// once, also across a restart, and a re-enabled function runs for events
// after re-enabling, never for those written while it was disabled.
// (No deployment: each execution is recorded as failed, which is enough to
// count them.)
func TestFunctionTriggerStart(t *testing.T) {
	top, dir := t, t.TempDir()
	in := startInstance(t, dir)
	scopes := append(docScopes, "functions.read", "functions.write", "executions.read", "executions.write")
	const onCreate = "databases.*.collections.*.documents.*.create"

	setUp := func(t *testing.T, in *instance, p string, fn *cairnv1.CreateFunctionRequest) (string, context.Context) {
		t.Helper()
		key := newProjectWithKey(t, in, p, scopes...)
		ctx, _ := as(context.Background(), key)
		docsFixture(t, ctx, in.databases(), p, "posts", []string{`read("any")`}, false)
		fn.ProjectId, fn.Runtime, fn.Name = p, "wasm", fn.GetFunctionId()
		if _, err := in.functions().CreateFunction(ctx, fn); err != nil {
			t.Fatal(err)
		}
		return key, ctx
	}
	write := func(t *testing.T, in *instance, key, p, id string) uint64 {
		t.Helper()
		ctx, info := as(context.Background(), key)
		if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id})}}); err != nil {
			t.Fatal(err)
		}
		return seqOf(t, info)
	}
	// executions waits for the executions of the given event sequences, then
	// requires that they are the function's only ones.
	executions := func(t *testing.T, in *instance, key, p, fn string, seqs ...uint64) {
		t.Helper()
		want := map[string]bool{}
		for _, seq := range seqs {
			id := fmt.Sprint("evt", seq)
			if e := waitExecution(t, in, key, p, fn, id); e.GetTrigger() != "event" {
				t.Fatalf("execution %v", e)
			}
			want[id] = true
		}
		ctx, _ := as(context.Background(), key)
		l, err := in.functions().ListExecutions(ctx, &cairnv1.ListExecutionsRequest{ProjectId: p, FunctionId: fn})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range l.GetExecutions() {
			got = append(got, e.GetId())
		}
		if len(got) != len(want) {
			t.Fatalf("%s/%s: executions %v, want those of %v", p, fn, got, seqs)
		}
		for _, id := range got {
			if !want[id] {
				t.Fatalf("%s/%s: executions %v, want those of %v", p, fn, got, seqs)
			}
		}
	}

	t.Run("right after create", func(t *testing.T) {
		key, _ := setUp(t, in, "trg-a", &cairnv1.CreateFunctionRequest{FunctionId: "f", Events: []string{onCreate}})
		seq := write(t, in, key, "trg-a", "d1")
		executions(t, in, key, "trg-a", "f", seq)
	})

	t.Run("restart right after the write", func(t *testing.T) {
		key, _ := setUp(t, in, "trg-b", &cairnv1.CreateFunctionRequest{FunctionId: "f", Events: []string{onCreate}})
		seq := write(t, in, key, "trg-b", "d1")
		in.stop()
		in = startInstance(top, dir) // outlives this subtest

		executions(t, in, key, "trg-b", "f", seq)
	})

	t.Run("disabled then enabled", func(t *testing.T) {
		off, on := false, true
		key, ctx := setUp(t, in, "trg-c", &cairnv1.CreateFunctionRequest{FunctionId: "f", Events: []string{onCreate}, Enabled: &off})
		enable := func(v *bool) {
			if _, err := in.functions().UpdateFunction(ctx, &cairnv1.UpdateFunctionRequest{ProjectId: "trg-c", FunctionId: "f", Enabled: v}); err != nil {
				t.Fatal(err)
			}
		}
		write(t, in, key, "trg-c", "while-off-1")
		enable(&on)
		after1 := write(t, in, key, "trg-c", "after-on-1")
		executions(t, in, key, "trg-c", "f", after1)
		// Again, with the trigger consumer running all along.
		enable(&off)
		write(t, in, key, "trg-c", "while-off-2")
		enable(&on)
		after2 := write(t, in, key, "trg-c", "after-on-2")
		after3 := write(t, in, key, "trg-c", "after-on-3")
		executions(t, in, key, "trg-c", "f", after1, after2, after3)
	})
}
