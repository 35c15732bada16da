package main

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// slowJS answers after half a second.
const slowJS = `module.exports.default = async ({ res }) => { await new Promise(r => setTimeout(r, 500)); return res.json({ ok: true }); };`

// TestFunctionsFairQueue: one project's flood of queued executions does not
// starve another project's: with two executions per project at a time, a
// job of a busy project goes back to the queue instead of holding a worker.
func TestFunctionsFairQueue(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--max-function-concurrency", "2")
	scopes := []string{"functions.read", "functions.write", "executions.read", "executions.write"}
	keys := map[string]string{}
	for _, p := range []string{"flood", "quiet"} {
		keys[p] = newProjectWithKey(t, in, p, scopes...)
		ctx, _ := as(context.Background(), keys[p])
		if _, err := in.functions().CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: p, FunctionId: "slow", Name: "slow", Runtime: "js"}); err != nil {
			t.Fatal(err)
		}
		res := in.do(t, httpCall{method: http.MethodPost, path: "/v1/projects/" + p + "/functions/slow/deployments", token: keys[p],
			query: map[string][]string{"activate": {"true"}}, body: bytes.NewReader([]byte(slowJS))})
		if res.status != http.StatusCreated || !strings.Contains(string(res.body), `"status":"ready"`) {
			t.Fatalf("deploy: %s", res)
		}
	}
	fctx, _ := as(context.Background(), keys["flood"])
	for range 60 {
		if _, err := in.functions().CreateExecution(fctx, &cairnv1.CreateExecutionRequest{ProjectId: "flood", FunctionId: "slow", Async: true}); err != nil {
			t.Fatal(err)
		}
	}
	// 60 half-second runs two at a time take 15 s; the quiet project's one
	// run must not wait for them.
	qctx, _ := as(context.Background(), keys["quiet"])
	start := time.Now()
	res, err := in.functions().CreateExecution(qctx, &cairnv1.CreateExecutionRequest{ProjectId: "quiet", FunctionId: "slow", Async: true})
	if err != nil {
		t.Fatal(err)
	}
	e := waitExecution(t, in, keys["quiet"], "quiet", "slow", res.GetExecution().GetId())
	if e.GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("quiet execution %v", e)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the quiet project's execution waited %v behind the flood", waited)
	}
	l, err := in.functions().ListExecutions(fctx, &cairnv1.ListExecutionsRequest{ProjectId: "flood", FunctionId: "slow",
		Status: cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quiet ran in %v while the flood had completed %d of 60", time.Since(start), len(l.GetExecutions()))
}

// TestFunctionsConcurrencyAndQueue: a function's own limit runs its
// executions one at a time, and its queue depth is visible meanwhile.
func TestFunctionsConcurrencyAndQueue(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "solo", "functions.read", "functions.write", "executions.read", "executions.write")
	ctx, _ := as(context.Background(), key)
	if _, err := in.functions().CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: "solo", FunctionId: "slow", Name: "slow",
		Runtime: "js", MaxConcurrency: 1}); err != nil {
		t.Fatal(err)
	}
	res := in.do(t, httpCall{method: http.MethodPost, path: "/v1/projects/solo/functions/slow/deployments", token: key,
		query: map[string][]string{"activate": {"true"}}, body: bytes.NewReader([]byte(slowJS))})
	if res.status != http.StatusCreated {
		t.Fatalf("deploy: %s", res)
	}
	var ids []string
	for range 4 {
		r, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "solo", FunctionId: "slow", Async: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetExecution().GetId())
	}
	f, err := in.functions().GetFunction(ctx, &cairnv1.GetFunctionRequest{ProjectId: "solo", FunctionId: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	if q := f.GetFunction().GetQueued(); q < 2 || f.GetFunction().GetMaxConcurrency() != 1 {
		t.Errorf("queue depth %d (max concurrency %d) right after queuing 4 half-second runs one at a time", q, f.GetFunction().GetMaxConcurrency())
	}
	var ends []time.Time
	for _, id := range ids {
		e := waitExecution(t, in, key, "solo", "slow", id)
		ends = append(ends, e.GetUpdatedAt().AsTime())
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(ends); i++ {
		if d := ends[i].Sub(ends[i-1]); d < 450*time.Millisecond {
			t.Errorf("runs %d and %d ended %v apart: they overlapped", i-1, i, d)
		}
	}
	f, err = in.functions().GetFunction(ctx, &cairnv1.GetFunctionRequest{ProjectId: "solo", FunctionId: "slow"})
	if err != nil || f.GetFunction().GetQueued() != 0 {
		t.Errorf("queue after the runs: %d %v", f.GetFunction().GetQueued(), err)
	}
}
