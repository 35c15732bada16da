package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func (c clients) functions() cairnv1connect.FunctionsServiceClient {
	return cairnv1connect.NewFunctionsServiceClient(c.client)
}

var (
	wasmOnce sync.Once
	wasmCode []byte
	wasmErr  error
)

// testWasm is testdata/wasmfn built for wasip1, once per test binary.
func testWasm(t testing.TB) []byte {
	t.Helper()
	wasmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmfn")
		if err != nil {
			wasmErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "fn.wasm")
		cmd := exec.Command("go", "build", "-o", out, "./testdata/wasmfn")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			wasmErr = fmt.Errorf("build wasm: %v: %s", err, b)
			return
		}
		wasmCode, wasmErr = os.ReadFile(out)
	})
	if wasmErr != nil {
		t.Fatal(wasmErr)
	}
	return wasmCode
}

// deployWasm creates a wasm function and deploys the test module over HTTP.
func deployWasm(t *testing.T, in *instance, key, project string, req *cairnv1.CreateFunctionRequest) {
	t.Helper()
	ctx, _ := as(context.Background(), key)
	req.ProjectId, req.Runtime = project, "wasm"
	if _, err := in.functions().CreateFunction(ctx, req); err != nil {
		t.Fatal(err)
	}
	res := in.do(t, httpCall{method: http.MethodPost, path: "/v1/projects/" + project + "/functions/" + req.GetFunctionId() + "/deployments",
		token: key, query: map[string][]string{"activate": {"true"}}, body: bytes.NewReader(testWasm(t))})
	if res.status != http.StatusCreated || !strings.Contains(string(res.body), `"status":"ready"`) {
		t.Fatalf("deploy: %s", res)
	}
}

// waitExecution polls until execution id of fn is finished.
func waitExecution(t *testing.T, in *instance, key, project, fn, id string) *cairnv1.Execution {
	t.Helper()
	ctx, _ := as(context.Background(), key)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := in.functions().GetExecution(ctx, &cairnv1.GetExecutionRequest{ProjectId: project, FunctionId: fn, ExecutionId: id})
		if err == nil {
			if s := res.GetExecution().GetStatus(); s == cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED || s == cairnv1.ExecutionStatus_EXECUTION_STATUS_FAILED {
				return res.GetExecution()
			}
		} else if connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s not finished: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFunctionsWasm(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "fnw", append(docScopes, "functions.read", "functions.write", "executions.read", "executions.write")...)
	ctx, _ := as(context.Background(), key)
	deployWasm(t, in, key, "fnw", &cairnv1.CreateFunctionRequest{FunctionId: "echo", Name: "Echo", Execute: []string{"any"},
		Variables: []*cairnv1.FunctionVariable{{Key: "PLAIN", Value: "p"}, {Key: "SECRET", Value: "s3cret", Secret: true}}})

	// Secrets are never returned.
	f, err := in.functions().GetFunction(ctx, &cairnv1.GetFunctionRequest{ProjectId: "fnw", FunctionId: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if v := f.GetFunction().GetVariables(); len(v) != 2 || v[1].GetValue() != "" || !v[1].GetSecret() || f.GetFunction().GetActiveDeploymentId() == "" {
		t.Fatalf("function %v", f.GetFunction())
	}

	// Synchronous over the RPC: the code sees the request and variables.
	res, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "fnw", FunctionId: "echo",
		Method: "PUT", Path: "/x", Body: []byte("hi"), Headers: map[string]string{"x-test": "h"}})
	if err != nil {
		t.Fatal(err)
	}
	e := res.GetExecution()
	var got map[string]any
	if err := json.Unmarshal(e.GetResponseBody(), &got); err != nil {
		t.Fatalf("%v: %s", err, e.GetResponseBody())
	}
	vars, _ := got["variables"].(map[string]any)
	if e.GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED || e.GetResponseStatus() != 201 || got["method"] != "PUT" ||
		got["body"] != "hi" || got["header"] != "h" || vars["SECRET"] != "s3cret" || got["hasKey"] != true || !strings.Contains(e.GetLogs(), "handling PUT /x") {
		t.Fatalf("execution %v: %v", e, got)
	}

	// The HTTP route behaves like an endpoint, for guests too (execute: any).
	r := in.do(t, httpCall{method: http.MethodPost, path: "/v1/functions/fnw/echo/a/b", query: map[string][]string{"q": {"1"}}, body: strings.NewReader("body")})
	if r.status != 201 || r.header.Get("X-Fn") != "yes" || !strings.Contains(string(r.body), `"path":"/a/b"`) || r.header.Get("Cairn-Execution-Id") == "" {
		t.Fatalf("http route: %s %v", r, r.header)
	}
	if r := in.do(t, httpCall{method: http.MethodGet, path: "/v1/functions/fnw/echo/fail"}); r.status != http.StatusInternalServerError || !strings.Contains(string(r.body), "failed") {
		t.Errorf("failing function: %s", r)
	}

	// A module that allocates without end fails for memory; the server
	// stays up.
	res, err = in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "fnw", FunctionId: "echo", Path: "/alloc"})
	if err != nil {
		t.Fatal(err)
	}
	if e := res.GetExecution(); e.GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_FAILED || !strings.Contains(e.GetErrors(), "memory") {
		t.Fatalf("runaway allocation: %v", e)
	}
	if r := in.do(t, httpCall{method: http.MethodGet, path: "/v1/functions/fnw/echo/after"}); r.status != 201 {
		t.Fatalf("after the runaway allocation: %s", r)
	}

	// Asynchronous: queued, run by a worker.
	res, err = in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "fnw", FunctionId: "echo", Async: true, Body: []byte("later")})
	if err != nil || res.GetExecution().GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_WAITING {
		t.Fatalf("async: %v %v", res, err)
	}
	done := waitExecution(t, in, key, "fnw", "echo", res.GetExecution().GetId())
	if done.GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED || done.GetResponseStatus() != 201 {
		t.Fatalf("async result %v", done)
	}

	// Event trigger: one execution per document created.
	deployWasm(t, in, key, "fnw", &cairnv1.CreateFunctionRequest{FunctionId: "onDoc", Name: "On doc",
		Events: []string{"databases.*.collections.*.documents.*.create"}})
	docsFixture(t, ctx, in.databases(), "fnw", "posts", []string{`read("any")`}, false)
	time.Sleep(3 * time.Second) // the node starts the project's trigger consumer within its 2 s reconcile
	var seqs []uint64
	for i := range 2 {
		dctx, info := as(context.Background(), key)
		if _, err := in.databases().CreateDocument(dctx, &cairnv1.CreateDocumentRequest{ProjectId: "fnw", DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", i), Data: data(t, map[string]any{"title": "t"})}}); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seqOf(t, info))
	}
	for _, seq := range seqs {
		e := waitExecution(t, in, key, "fnw", "onDoc", fmt.Sprint("evt", seq))
		if e.GetTrigger() != "event" || e.GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED || !strings.Contains(string(e.GetResponseBody()), `"hasEvent":true`) {
			t.Fatalf("triggered execution %v", e)
		}
	}
	list, err := in.functions().ListExecutions(ctx, &cairnv1.ListExecutionsRequest{ProjectId: "fnw", FunctionId: "onDoc", Trigger: "event"})
	if err != nil || len(list.GetExecutions()) != 2 {
		t.Fatalf("event executions: %d %v", len(list.GetExecutions()), err)
	}

	// A schedule every 2 s fires, once per period.
	deployWasm(t, in, key, "fnw", &cairnv1.CreateFunctionRequest{FunctionId: "tick", Name: "Tick", Schedule: "*/2 * * * * *"})
	deadline := time.Now().Add(15 * time.Second)
	for {
		l, err := in.functions().ListExecutions(ctx, &cairnv1.ListExecutionsRequest{ProjectId: "fnw", FunctionId: "tick", Trigger: "schedule",
			Status: cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.GetExecutions()) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("schedule fired %d times in 15 s", len(l.GetExecutions()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFunctionsCluster: two nodes sharing one NATS both run trigger,
// job and schedule consumers. Every event makes exactly one execution
// record, a job delivered again after its execution finished runs nothing,
// and a schedule fires once per period, not once per node.
func TestFunctionsCluster(t *testing.T) {
	url := startSharedNATS(t)
	a := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	b := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	const p = "fc"
	key := newProjectWithKey(t, a, p, append(docScopes, "functions.read", "functions.write", "executions.read", "executions.write")...)
	ctx, _ := as(context.Background(), key)
	// The schedule starts when the function is created, before its
	// deployment is built (firings until then fail: no deployment).
	scheduled := time.Now()
	deployWasm(t, a, key, p, &cairnv1.CreateFunctionRequest{FunctionId: "tick", Name: "Tick", Schedule: "*/2 * * * * *"})
	deployWasm(t, a, key, p, &cairnv1.CreateFunctionRequest{FunctionId: "onDoc", Name: "On doc",
		Events: []string{"databases.*.collections.*.documents.*.create"}})
	docsFixture(t, ctx, a.databases(), p, "posts", []string{`read("any")`}, false)
	time.Sleep(3 * time.Second) // both nodes start the project's trigger consumer within their 2 s reconcile

	// Documents written on either node: one execution each.
	want := map[string]bool{}
	for i := range 6 {
		in := []*instance{a, b}[i%2]
		dctx, info := as(context.Background(), key)
		if _, err := in.databases().CreateDocument(dctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", i), Data: data(t, map[string]any{"title": "t"})}}); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprint("evt", seqOf(t, info))] = true
	}
	finished := map[string]*cairnv1.Execution{}
	for id := range want {
		e := waitExecution(t, a, key, p, "onDoc", id)
		if e.GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED {
			t.Fatalf("execution %v", e)
		}
		finished[id] = e
	}
	// A job delivered again (a worker that crashed before acknowledging
	// it) finds its execution finished and runs nothing.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if _, err := js.Publish(context.Background(), "cairn_jobs."+p+".onDoc."+id, nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := js.Stream(context.Background(), "CAIRN_JOBS")
		if err != nil {
			t.Fatal(err)
		}
		if info.CachedInfo().State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redelivered jobs not consumed: %d left", info.CachedInfo().State.Msgs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, in := range []*instance{a, b} {
		list, err := in.functions().ListExecutions(ctx, &cairnv1.ListExecutionsRequest{ProjectId: p, FunctionId: "onDoc"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, e := range list.GetExecutions() {
			got[e.GetId()] = true
			if f := finished[e.GetId()]; f == nil || !e.GetUpdatedAt().AsTime().Equal(f.GetUpdatedAt().AsTime()) {
				t.Errorf("execution %s ran again: %v", e.GetId(), e)
			}
		}
		if len(list.GetExecutions()) != len(want) || len(got) != len(want) {
			t.Errorf("%d executions for %d events: %v", len(list.GetExecutions()), len(want), got)
		}
	}

	// The schedule: once per 2 s period across the two nodes.
	time.Sleep(time.Until(scheduled.Add(7 * time.Second)))
	off := false
	if _, err := a.functions().UpdateFunction(ctx, &cairnv1.UpdateFunctionRequest{ProjectId: p, FunctionId: "tick", Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	periods := 0
	for s := scheduled.Truncate(time.Second).Add(time.Second); !s.After(stopped); s = s.Add(time.Second) {
		if s.Second()%2 == 0 {
			periods++
		}
	}
	time.Sleep(time.Second) // let firings in flight finish
	l, err := a.functions().ListExecutions(ctx, &cairnv1.ListExecutionsRequest{ProjectId: p, FunctionId: "tick"})
	if err != nil {
		t.Fatal(err)
	}
	n := len(l.GetExecutions())
	t.Logf("schedule: %d executions for %d periods in %v", n, periods, stopped.Sub(scheduled).Round(time.Millisecond))
	if n < periods-1 || n > periods+1 {
		t.Errorf("schedule fired %d times for %d periods", n, periods)
	}
	for _, e := range l.GetExecutions() {
		if e.GetTrigger() != "schedule" {
			t.Errorf("tick execution %v", e)
		}
	}
}
