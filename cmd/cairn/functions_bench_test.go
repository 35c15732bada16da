package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/cairn-dev/cairn/fnrun/js"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkFunctions measures functions on one node (embedded NATS):
//
//   - cold/<runtime>: the first execution of a new deployment (code never
//     compiled before), sync over the RPC; the deployment itself is not
//     timed.
//   - warm/<runtime>: later executions of the same deployment.
//   - http/<runtime>: executions/s of a trivial function, sync over the
//     HTTP route, from parallel clients.
//   - event: document create → execution of a function triggered by it:
//     p50/p99 until the record is created (its created_at) and until it is
//     visible as completed to a client polling it.
//
// go test ./cmd/cairn -run '^$' -bench BenchmarkFunctions -benchtime 200x
func BenchmarkFunctions(b *testing.B) {
	in := startInstance(b, b.TempDir())
	const p = "bench"
	key := newProjectWithKey(b, in, p, append(docScopes, "functions.read", "functions.write", "executions.read", "executions.write")...)
	ctx, _ := as(context.Background(), key)
	fns := in.functions()
	dir := b.TempDir()
	writeTree(b, dir, tsProject)
	bundle, err := js.Bundle(dir, "index.ts")
	if err != nil {
		b.Fatal(err)
	}
	trivialJS := []byte(`module.exports = { default: async ({ res }) => res.text('ok') };`)
	code := map[string][]byte{"js": bundle, "wasm": testWasm(b)}
	create := func(b *testing.B, id, runtime string, events ...string) {
		if _, err := fns.CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: p, FunctionId: id, Name: id, Runtime: runtime,
			Execute: []string{"any"}, Events: events}); err != nil {
			b.Fatal(err)
		}
	}
	// Deployments go over the HTTP route: the RPC takes at most 1 MiB.
	deploy := func(b *testing.B, id string, c []byte) {
		res := in.do(b, httpCall{method: http.MethodPost, path: "/v1/projects/" + p + "/functions/" + id + "/deployments", token: key,
			query: map[string][]string{"activate": {"true"}}, body: bytes.NewReader(c)})
		if res.status != http.StatusCreated || !bytes.Contains(res.body, []byte(`"status":"ready"`)) {
			b.Fatalf("deploy %s: %s", id, res)
		}
	}
	execute := func(b *testing.B, id, path string) {
		res, err := fns.CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: p, FunctionId: id, Path: path, Method: "GET"})
		if err != nil || res.GetExecution().GetStatus() != cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED {
			b.Fatalf("execute %s: %v %v", id, res, err)
		}
	}
	for _, rt := range []string{"js", "wasm"} {
		create(b, "cold-"+rt, rt)
		create(b, "warm-"+rt, rt)
		deploy(b, "warm-"+rt, code[rt])
		create(b, "http-"+rt, rt)
	}
	deploy(b, "http-js", trivialJS)
	deploy(b, "http-wasm", code["wasm"])
	create(b, "onDoc", "wasm", "databases.*.collections.*.documents.*.create")
	deploy(b, "onDoc", code["wasm"])
	docsFixture(b, ctx, in.databases(), p, "posts", nil, false)
	triggersFrom := time.Now().Add(3 * time.Second) // the trigger consumer starts within the 2 s reconcile

	for _, rt := range []string{"js", "wasm"} {
		b.Run("cold/"+rt, func(b *testing.B) {
			for i := range b.N {
				b.StopTimer()
				deploy(b, "cold-"+rt, distinct(rt, code[rt], i))
				b.StartTimer()
				execute(b, "cold-"+rt, "/version")
			}
		})
	}
	for _, rt := range []string{"js", "wasm"} {
		b.Run("warm/"+rt, func(b *testing.B) {
			execute(b, "warm-"+rt, "/version")
			b.ResetTimer()
			for range b.N {
				execute(b, "warm-"+rt, "/version")
			}
		})
	}
	for _, rt := range []string{"js", "wasm"} {
		b.Run("http/"+rt, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			url := in.url + "/v1/functions/" + p + "/http-" + rt + "/"
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode >= 300 {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exec/s")
		})
	}
	b.Run("event", func(b *testing.B) {
		time.Sleep(time.Until(triggersFrom))
		var created, visible []time.Duration
		b.ResetTimer()
		for i := range b.N {
			dctx, info := as(context.Background(), key)
			start := time.Now()
			if _, err := in.databases().CreateDocument(dctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
				Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("b%d-%d", b.N, i), Data: data(b, map[string]any{"title": "t"})}}); err != nil {
				b.Fatal(err)
			}
			id := fmt.Sprint("evt", info.ResponseHeader().Get("Cairn-Seq"))
			for {
				res, err := fns.GetExecution(ctx, &cairnv1.GetExecutionRequest{ProjectId: p, FunctionId: "onDoc", ExecutionId: id})
				if err == nil && res.GetExecution().GetStatus() == cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED {
					visible = append(visible, time.Since(start))
					created = append(created, res.GetExecution().GetCreatedAt().AsTime().Sub(start))
					break
				}
				if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
					b.Fatal(err)
				}
				if time.Since(start) > 20*time.Second {
					b.Fatalf("no execution %s", id)
				}
				time.Sleep(time.Millisecond)
			}
		}
		b.StopTimer()
		for name, ds := range map[string][]time.Duration{"created": created, "visible": visible} {
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
			b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Microseconds())/1000, name+"-p99-ms")
		}
	})
}

// distinct returns code that differs from every other i's, so that no
// compile cache has seen it: a comment for js, a custom section for wasm.
func distinct(runtime string, code []byte, i int) []byte {
	tag := fmt.Sprintf("cold-%d-%d", time.Now().UnixNano(), i)
	if runtime == "js" {
		return append(slices.Clip(code), []byte("\n// "+tag+"\n")...)
	}
	// A custom section: id 0, size, name length, name, one byte of data
	// (sizes < 128 bytes; wazero refuses an empty one).
	sec := append(append([]byte{byte(len(tag))}, tag...), 0)
	return append(slices.Clip(code), append([]byte{0, byte(len(sec))}, sec...)...)
}
