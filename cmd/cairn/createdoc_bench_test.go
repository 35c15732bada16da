package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// createBenchClients is how many clients create at once (pbcompare's 64).
const createBenchClients = 64

// BenchmarkCreateDocumentHTTP runs pbcompare's create in this process:
// CreateDocument over HTTP/1.1 keep-alive with Connect's JSON written by
// hand (as a browser or curl sends it), createBenchClients at once, an
// API key, a document {title, n, tag} of a collection with an index on
// tag, in the default sync mode. It reports the process's CPU time and
// allocations per create (server, projector, embedded NATS and the thin
// clients together).
//
// The alternating run sends, chunk by chunk, the plain body (read by hand,
// api/createjson.go) and the same request with `"permissions":null`
// added, which the hand reader leaves to protojson (the same message
// afterwards, so the rest of the path is the same): the cost of
// protojson's reading beside the hand reader's, from one run.
func BenchmarkCreateDocumentHTTP(b *testing.B) {
	ctx := context.Background()
	srv := benchServer(b)
	cl := clients{client: benchConnect(srv.url)}
	const p, db, coll = "bench", "main", "items"
	secret := benchTitleCollection(b, cl, p, db, coll, 256)
	dbs := cl.databases()
	if _, err := dbs.CreateIndex(authed(ctx, secret), &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Index: &cairnv1.Index{
		Key: "by_tag", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"tag"}}}); err != nil {
		b.Fatal(err)
	}
	waitIndexes(b, dbs, authed(ctx, secret), p, db, coll)

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: createBenchClients, MaxConnsPerHost: createBenchClients}}
	b.Cleanup(hc.CloseIdleConnections)
	url := srv.url + "/cairn.v1.DatabasesService/CreateDocument"
	var next atomic.Int64
	// create sends one create; declined adds what the hand reader leaves
	// to protojson.
	create := func(declined bool) error {
		i := next.Add(1)
		extra := ""
		if declined {
			extra = `,"permissions":null`
		}
		body := fmt.Appendf(nil, `{"collectionId":%q,"databaseId":%q,"document":{"data":{"n":%d,"tag":"t%d","title":"document number %d"},"documentId":"d%d"%s},"projectId":%q}`,
			coll, db, i*7919%1_000_003, i%10, i, i, extra, p)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		out, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("create: %s: %s", res.Status, out)
		}
		return err
	}
	for _, declined := range []bool{false, true} {
		if err := create(declined); err != nil {
			b.Fatal(err)
		}
	}
	// chunks runs n creates on createBenchClients goroutines and returns
	// the process's CPU time and allocations they took.
	chunks := func(b *testing.B, n int, declined bool) (time.Duration, uint64) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mallocs, cpu0 := ms.Mallocs, processCPU(b)
		var wg sync.WaitGroup
		for g := range createBenchClients {
			wg.Go(func() {
				for j := g; j < n; j += createBenchClients {
					if err := create(declined); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		cpu := processCPU(b) - cpu0
		runtime.ReadMemStats(&ms)
		return cpu, ms.Mallocs - mallocs
	}

	b.Run("plain", func(b *testing.B) {
		b.ResetTimer()
		cpu, allocs := chunks(b, b.N, false)
		b.StopTimer()
		reportOps(b)
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(allocs)/float64(b.N), "process-allocs/op")
	})
	b.Run("alternating", func(b *testing.B) {
		const chunk = 8 * createBenchClients
		var cpu [2]time.Duration
		var allocs [2]uint64
		var calls [2]int
		b.ResetTimer()
		for i := 0; calls[0]+calls[1] < b.N; i++ {
			which := i % 2
			n := min(chunk, b.N-calls[0]-calls[1])
			c, a := chunks(b, n, which == 1)
			cpu[which] += c
			allocs[which] += a
			calls[which] += n
		}
		b.StopTimer()
		if calls[0] == 0 || calls[1] == 0 {
			return
		}
		hand := float64(cpu[0].Nanoseconds()) / float64(calls[0])
		protojson := float64(cpu[1].Nanoseconds()) / float64(calls[1])
		b.ReportMetric(hand, "hand-cpu-ns/op")
		b.ReportMetric(protojson, "protojson-cpu-ns/op")
		b.ReportMetric(float64(allocs[0])/float64(calls[0]), "hand-allocs/op")
		b.ReportMetric(float64(allocs[1])/float64(calls[1]), "protojson-allocs/op")
		b.ReportMetric(100*hand/protojson, "hand-pct-of-protojson")
	})
}
