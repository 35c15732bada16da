package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/projections"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
)

// benchDocsDefault is how many documents BenchmarkDocuments preloads for
// its reads unless CAIRN_BENCH_DOCS says otherwise (100000 for the manual
// run).
const benchDocsDefault = 5000

// benchConcurrency is the number of concurrent clients of the -64
// sub-benchmarks.
const benchConcurrency = 64

var benchCategories = []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}

// benchDocData is a document of ten attributes (about 300 bytes of JSON).
func benchDocData(i int) *structpb.Struct {
	st, err := structpb.NewStruct(map[string]any{
		"name":   fmt.Sprintf("document number %d", i),
		"cat":    benchCategories[i%len(benchCategories)],
		"n":      i % 1000,
		"score":  float64(i%997) / 7,
		"flag":   i%2 == 0,
		"at":     time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
		"note":   fmt.Sprintf("note %d", i%100),
		"color":  []string{"red", "green", "blue"}[i%3],
		"count":  i % 50,
		"labels": []any{"l" + strconv.Itoa(i%10), "m" + strconv.Itoa(i%7)},
	})
	if err != nil {
		panic(err)
	}
	return st
}

// parallelFor sets b's parallelism so RunParallel runs about n goroutines.
func parallelFor(b *testing.B, n int) {
	b.SetParallelism(max(1, (n+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
}

func reportOps(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkDocuments measures the document API against one in-process
// server (embedded JetStream, Badger, h2c on loopback), next to the raw
// JetStream publish rate of the same server:
//
//	raw-publish-64   js.Publish of 500 B awaiting the ack, 64 concurrent
//	create-64        CreateDocument of 10 attributes, 64 concurrent, with
//	                 the process's CPU per create (clients included)
//	get              GetDocument by id
//	list-indexed     equal on an index's first attribute, ordered by its
//	                 second, limit 25, no total
//	list-unindexed   equal on an attribute no index covers, no total (a
//	                 scan; above the scan limit it fails, which it reports)
//
// CAIRN_BENCH_DOCS sets the documents preloaded for the reads (default
// 5000).
// benchServer runs a node with its API on loopback, as bench does, until
// the benchmark ends. It logs at warn; CAIRN_BENCH_LOG=info logs every
// request's line into a file as serve does, CAIRN_BENCH_LOG=info-direct
// the same with one write system call per line (as before lineWriter).
func benchServer(b *testing.B, options ...func(*config)) *server {
	b.Helper()
	level, out := "warn", io.Writer(io.Discard)
	if v := os.Getenv("CAIRN_BENCH_LOG"); v != "" {
		// info: the request line of every call, into a file as serve
		// writes it (through a lineWriter); info-direct: one write each.
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.Close() })
		level, out = "info", f
		if v != "info-direct" {
			var closeLog func()
			out, closeLog = logOutput(f)
			b.Cleanup(closeLog)
		}
	}
	logger, err := newLogger(out, level, "json")
	if err != nil {
		b.Fatal(err)
	}
	cfg := config{DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", AdminKey: testAdminKey, Sync: defaultSync,
		LogLevel: level, RequestLog: true, MaxRequestBytes: 1 << 20, SitesDomain: "localhost", ListCache: projections.DefaultRankingCacheBytes}
	for _, o := range options {
		o(&cfg)
	}
	srv, err := startBenchServer(context.Background(), &cfg, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.shutdown(logger) })
	return srv
}

func BenchmarkDocuments(b *testing.B) {
	nDocs := benchDocsDefault
	if v := os.Getenv("CAIRN_BENCH_DOCS"); v != "" {
		var err error
		if nDocs, err = strconv.Atoi(v); err != nil || nDocs < 100 {
			b.Fatalf("CAIRN_BENCH_DOCS=%q: want a number of at least 100", v)
		}
	}
	ctx := context.Background()
	srv := benchServer(b)
	cl := clients{client: benchConnect(srv.url)}

	const p, db = "bench", "main"
	// A context carries one call's headers: a fresh one per call.
	secret := benchProjectKey(b, cl, p)
	kc := func() context.Context { return authed(ctx, secret) }
	k := kc()
	dbs := cl.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: "Main"}); err != nil {
		b.Fatal(err)
	}
	str := cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING
	attrs := []*cairnv1.Attribute{
		{Key: "name", Type: str, Size: 64},
		{Key: "cat", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM, Elements: benchCategories},
		{Key: "n", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER},
		{Key: "score", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT},
		{Key: "flag", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN},
		{Key: "at", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_DATETIME},
		{Key: "note", Type: str, Size: 64},
		{Key: "color", Type: str, Size: 16},
		{Key: "count", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER},
		{Key: "labels", Type: str, Size: 16, Array: true},
	}
	for _, coll := range []string{"items", "writes"} {
		if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Name: coll}); err != nil {
			b.Fatal(err)
		}
		for _, a := range attrs {
			if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Attribute: a}); err != nil {
				b.Fatalf("attribute %s: %v", a.GetKey(), err)
			}
		}
		if _, err := dbs.CreateIndex(k, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Index: &cairnv1.Index{
			Key: "by_cat_n", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"cat", "n"}}}); err != nil {
			b.Fatal(err)
		}
		waitIndexes(b, dbs, k, p, db, coll)
	}
	start := time.Now()
	for i := 0; i < nDocs; i += 100 {
		req := &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: "items"}
		for j := i; j < min(i+100, nDocs); j++ {
			req.Documents = append(req.Documents, &cairnv1.DocumentInput{DocumentId: "d" + strconv.Itoa(j), Data: benchDocData(j)})
		}
		if _, err := dbs.CreateDocuments(k, req); err != nil {
			b.Fatalf("preload: %v", err)
		}
	}
	b.Logf("preloaded %d documents in %s", nDocs, time.Since(start).Round(time.Millisecond))

	b.Run("raw-publish-64", func(b *testing.B) {
		const project = "bench-raw-docs"
		if err := srv.node.store.EnsureProjectStream(ctx, project, streams.Limits{}); err != nil {
			b.Fatal(err)
		}
		js := srv.node.store.JetStream()
		subject := streams.ProjectSubject(project, "bench", "msg")
		data := make([]byte, 500)
		parallelFor(b, benchConcurrency)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := js.Publish(ctx, subject, data); err != nil {
					b.Errorf("publish: %v", err)
					return
				}
			}
		})
		reportOps(b)
	})

	var created atomic.Int64
	b.Run("create-64", func(b *testing.B) {
		parallelFor(b, benchConcurrency)
		cpu0 := processCPU(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(created.Add(1))
				if _, err := dbs.CreateDocument(kc(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: "writes",
					Document: &cairnv1.DocumentInput{DocumentId: "w" + strconv.Itoa(i), Data: benchDocData(i)}}); err != nil {
					b.Errorf("create: %v", err)
					return
				}
			}
		})
		reportOps(b)
		// The whole process's CPU: server, projector, NATS and the clients.
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	})

	b.Run("get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			id := "d" + strconv.Itoa(i*7919%nDocs)
			res, err := dbs.GetDocument(kc(), &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: "items", DocumentId: id})
			if err != nil || res.GetDocument().GetId() != id {
				b.Fatalf("get %s: %v", id, err)
			}
		}
		reportOps(b)
	})

	b.Run("list-indexed", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			res, err := dbs.ListDocuments(kc(), &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: "items",
				Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_EQUAL, Attribute: "cat", Values: []*structpb.Value{val(benchCategories[i%len(benchCategories)])}}},
				Orders:  []*cairnv1.Order{{Attribute: "n", Desc: i%2 == 0}}, Limit: 25, Total: boolp(false), Explain: i == 0})
			if err != nil || len(res.GetDocuments()) != min(25, nDocs/len(benchCategories)) {
				b.Fatalf("list: %d documents, %v", len(res.GetDocuments()), err)
			}
			if i == 0 {
				b.Logf("plan %q", res.GetExplain().GetPlan())
			}
		}
		reportOps(b)
	})

	b.Run("list-unindexed", func(b *testing.B) {
		var failed int
		var firstErr error
		for i := 0; b.Loop(); i++ {
			res, err := dbs.ListDocuments(kc(), &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: "items",
				Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_EQUAL, Attribute: "note", Values: []*structpb.Value{val(fmt.Sprintf("note %d", i%100))}}},
				Limit:   25, Total: boolp(false), Explain: i == 0})
			switch {
			case connect.CodeOf(err) == connect.CodeFailedPrecondition:
				failed++
				if firstErr == nil {
					firstErr = err
				}
			case err != nil:
				b.Fatalf("list: %v", err)
			case i == 0:
				e := res.GetExplain()
				b.Logf("plan %q index %q documents examined %d, %d documents", e.GetPlan(), e.GetIndex(), e.GetDocumentsExamined(), len(res.GetDocuments()))
			}
		}
		if firstErr != nil {
			b.Logf("%d of %d calls failed: %v", failed, b.N, firstErr)
		}
		b.ReportMetric(float64(failed)/float64(b.N), "failed/op")
		reportOps(b)
	})
}
