package main

import (
	"bytes"
	"context"
	"net/http"
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
