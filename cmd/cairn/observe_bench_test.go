package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkObserve measures what the request log and tracing cost a read:
// GetDocument as Connect JSON over HTTP/1.1 keep-alive, 16 concurrent
// clients, against four in-process servers that differ only in those two
// settings, each b.N a round of 400 requests of every variant in turn
// (requests/s, and a percentage of the first):
//
//	quiet     --request-log=false (the line at debug, not logged), no tracing
//	log       the request line at info, JSON, to a discarding writer
//	trace     every request traced, spans exported over OTLP/HTTP to an
//	          in-process receiver that decodes and counts them
//	log+trace both
func BenchmarkObserve(b *testing.B) {
	rc := startOTLPReceiver(b)
	rc.discard = true
	variants := []struct {
		name       string
		requestLog bool
		trace      bool
		url        string
	}{{name: "quiet"}, {name: "log", requestLog: true}, {name: "trace", trace: true}, {name: "log+trace", requestLog: true, trace: true}}
	body := `{"projectId":"obs","databaseId":"main","collectionId":"notes","documentId":"d1"}`
	for i := range variants {
		v := &variants[i]
		logger, err := newLogger(io.Discard, "info", "json")
		if err != nil {
			b.Fatal(err)
		}
		cfg := config{DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", AdminKey: testAdminKey, Sync: defaultSync,
			LogLevel: "info", MaxRequestBytes: 1 << 20, SitesDomain: "localhost", RequestLog: v.requestLog}
		if v.trace {
			cfg.OTLPEndpoint = rc.url
		}
		srv, err := startBenchServer(context.Background(), &cfg, logger)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { srv.shutdown(logger) })
		v.url = srv.url + "/cairn.v1.DatabasesService/GetDocument"
		observeFixture(b, srv.url)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(u string) error {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	// The variants take turns in short rounds, so a noisy neighbour slows
	// them alike and their ratios hold.
	const clients, perRound = 16, 400
	elapsed := make([]time.Duration, len(variants))
	count := make([]int, len(variants))
	b.ResetTimer()
	for round := 0; round < max(1, b.N); round++ {
		for i, v := range variants {
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Value
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < perRound/clients; j++ {
						if err := get(v.url); err != nil {
							failed.Store(fmt.Sprintf("%s: %v", v.name, err))
							return
						}
					}
				}()
			}
			wg.Wait()
			if f := failed.Load(); f != nil {
				b.Fatal(f)
			}
			elapsed[i] += time.Since(start)
			count[i] += perRound
		}
	}
	b.StopTimer()
	base := float64(count[0]) / elapsed[0].Seconds()
	for i, v := range variants {
		rate := float64(count[i]) / elapsed[i].Seconds()
		b.ReportMetric(rate, v.name+"/s")
		if i > 0 {
			b.ReportMetric(100*rate/base, v.name+"-%-of-quiet")
		}
	}
}

// observeFixture makes project obs with document d1 readable by anyone.
func observeFixture(b *testing.B, url string) {
	ctx := context.Background()
	cl := clients{client: benchConnect(url)}
	op := authed(ctx, testAdminKey)
	if _, err := cl.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "obs", Name: "obs"}); err != nil {
		b.Fatal(err)
	}
	dbs := cl.databases()
	if _, err := dbs.CreateDatabase(op, &cairnv1.CreateDatabaseRequest{ProjectId: "obs", DatabaseId: "main", Name: "Main"}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateCollection(op, &cairnv1.CreateCollectionRequest{ProjectId: "obs", DatabaseId: "main", CollectionId: "notes", Name: "notes",
		Permissions: []string{`read("any")`}}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(op, &cairnv1.CreateAttributeRequest{ProjectId: "obs", DatabaseId: "main", CollectionId: "notes",
		Attribute: &cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64}}); err != nil {
		b.Fatal(err)
	}
	data, _ := structpb.NewStruct(map[string]any{"title": "hello"})
	if _, err := dbs.CreateDocument(op, &cairnv1.CreateDocumentRequest{ProjectId: "obs", DatabaseId: "main", CollectionId: "notes",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data}}); err != nil {
		b.Fatal(err)
	}
}
