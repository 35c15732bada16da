package main

import (
	"context"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestFunctionsRetention: execution records older than the retention are
// dropped by an event the sweep appends, so every node and a rebuild drop
// the same ones.
func TestFunctionsRetention(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, "--execution-retention", "2s", "--execution-retention-sweep", "* * * * * *")
	key := newProjectWithKey(t, in, "ret", "functions.read", "functions.write", "executions.read", "executions.write")
	deployWasm(t, in, key, "ret", &cairnv1.CreateFunctionRequest{FunctionId: "echo", Name: "Echo"})
	ctx, _ := as(context.Background(), key)
	run := func() string {
		res, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "ret", FunctionId: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetExecution().GetId()
	}
	run()
	run()
	time.Sleep(2500 * time.Millisecond)
	fresh := run()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l, err := in.functions().ListExecutions(ctx, &cairnv1.ListExecutionsRequest{ProjectId: "ret", FunctionId: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		if es := l.GetExecutions(); len(es) == 1 && es[0].GetId() == fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old executions not expired: %d records", len(l.GetExecutions()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The function itself is untouched and still runs.
	if _, err := in.functions().GetFunction(ctx, &cairnv1.GetFunctionRequest{ProjectId: "ret", FunctionId: "echo"}); err != nil {
		t.Fatal(err)
	}
	run()
	in.stop()
	nd := openStopped(t, dir)
	defer nd.close()
	checkRebuild(t, nd, "ret", "retention")
}
