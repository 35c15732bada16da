package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// bareDocuments answers every GetDocument with one fixed response: the
// ceiling Cairn's GetDocument is measured against.
type bareDocuments struct {
	cairnv1connect.UnimplementedDatabasesServiceHandler
	res *cairnv1.GetDocumentResponse
}

func (b bareDocuments) GetDocument(context.Context, *cairnv1.GetDocumentRequest) (*cairnv1.GetDocumentResponse, error) {
	return b.res, nil
}

// serveBare serves h on loopback with connect-go's defaults and no
// interceptor, over the same protocols as Cairn's server (HTTP/1.1 and
// h2c), until the benchmark ends. It compresses only what Cairn
// compresses (api.New: 1 KiB and up), so both send the same bytes.
func serveBare(b *testing.B, h cairnv1connect.DatabasesServiceHandler) string {
	b.Helper()
	server := connect.NewServer()
	cairnv1connect.RegisterDatabasesServiceHandler(server, h)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server, connecthttp.WithCompressMinBytes(1024))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: p}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// getDocBenchClients is how many clients call at once.
const getDocBenchClients = 32

// h1Client speaks HTTP/1.1 with a kept-alive connection per client.
func h1Client(b *testing.B) *http.Client {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: getDocBenchClients}}
	b.Cleanup(hc.CloseIdleConnections)
	return hc
}

// BenchmarkGetDocumentVsBare runs Cairn's GetDocument (API key, a
// document {title, n, tag} of a collection with an index on tag) beside a
// bare connect-go handler that returns the same response message from an
// interceptor-free server, both in this process on loopback, over
// HTTP/1.1 with getDocBenchClients keep-alive clients, in Connect's JSON
// and binary codecs. Each run reports the process's CPU time per call
// (cpu-ns/op), which the other load of a shared machine moves less than
// wall time; each cairn run reports pct-of-bare, the bare run's CPU per
// call over its own (the throughput ratio when the CPU is the limit), and
// ops-pct-of-bare, the same for wall calls/s. Client and servers share the
// process, so the client's CPU is in both figures (the same for both: the
// same request and response bytes). The alternating runs call both
// servers in turn, chunk by chunk, and report both CPU times per call and
// pct-of-bare from them: the figure to quote on a shared machine. They
// also call a second Cairn server with --fast-unary=false (every call
// through connect-go's handler, as before api/unary) in the same turns:
// connecthttp-cpu-ns/op and connecthttp-pct-of-bare are the baseline of
// the same run.
func BenchmarkGetDocumentVsBare(b *testing.B) {
	ctx := context.Background()
	const p, db, coll = "bench", "main", "items"
	// A server with its data and a key of it; the second server is the
	// same with --fast-unary=false: its calls go through connect-go's
	// handler, as every call did before api/unary.
	setup := func(options ...func(*config)) (url, secret string) {
		srv := benchServer(b, options...)
		cl := clients{client: benchConnect(srv.url)}
		secret = benchTitleCollection(b, cl, p, db, coll, 200)
		dbs := cl.databases()
		if _, err := dbs.CreateIndex(authed(ctx, secret), &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Index: &cairnv1.Index{
			Key: "by_tag", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"tag"}}}); err != nil {
			b.Fatal(err)
		}
		waitIndexes(b, dbs, authed(ctx, secret), p, db, coll)
		req := &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll}
		for i := range 100 {
			data, err := structpb.NewStruct(map[string]any{"title": "document number " + strconv.Itoa(i) + " of the get benchmark",
				"n": i * 37 % 1000, "tag": "t" + strconv.Itoa(i%10)})
			if err != nil {
				b.Fatal(err)
			}
			req.Documents = append(req.Documents, &cairnv1.DocumentInput{DocumentId: "d" + strconv.Itoa(i), Data: data})
		}
		if _, err := dbs.CreateDocuments(authed(ctx, secret), req); err != nil {
			b.Fatal(err)
		}
		return srv.url, secret
	}
	srvURL, secret := setup()
	plainURL, plainSecret := setup(func(c *config) { c.NoFastUnary = true })
	dbs := clients{client: benchConnect(srvURL)}.databases()
	get := &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, DocumentId: "d42"}
	want, err := dbs.GetDocument(authed(ctx, secret), get)
	if err != nil {
		b.Fatal(err)
	}
	bare := serveBare(b, bareDocuments{res: want})

	type figures struct{ ops, cpu float64 }
	run := func(b *testing.B, url string, opts ...connecthttp.Option) figures {
		c := cairnv1connect.NewDatabasesServiceClient(connect.NewClient(connecthttp.NewTransport(h1Client(b), url, opts...)))
		// The response is the same message from both servers.
		if got, err := c.GetDocument(authed(ctx, secret), get); err != nil || !proto.Equal(got, want) {
			b.Fatalf("GetDocument: %v, %v; want %v", got, err, want)
		}
		b.ReportAllocs()
		parallelFor(b, getDocBenchClients)
		cpu0 := processCPU(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.GetDocument(authed(ctx, secret), get); err != nil {
					b.Errorf("GetDocument: %v", err)
					return
				}
			}
		})
		b.StopTimer()
		f := figures{ops: float64(b.N) / b.Elapsed().Seconds(), cpu: float64((processCPU(b) - cpu0).Nanoseconds()) / float64(b.N)}
		b.ReportMetric(f.ops, "ops/s")
		b.ReportMetric(f.cpu, "cpu-ns/op")
		return f
	}
	// alternate calls both servers in turn, a chunk of calls each, so that
	// both meet the same load from the rest of the machine: the ratio
	// changes far less from run to run than that of separate runs.
	alternate := func(b *testing.B, opts ...connecthttp.Option) {
		clientOf := func(url string) cairnv1connect.DatabasesServiceClient {
			return cairnv1connect.NewDatabasesServiceClient(connect.NewClient(connecthttp.NewTransport(h1Client(b), url, opts...)))
		}
		servers := [3]cairnv1connect.DatabasesServiceClient{clientOf(bare), clientOf(srvURL), clientOf(plainURL)}
		secrets := [3]string{secret, secret, plainSecret}
		const chunk = 4 * getDocBenchClients
		var cpu [3]time.Duration
		var calls [3]int
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; calls[0]+calls[1]+calls[2] < b.N; i++ {
			which := i % 3
			n := min(chunk, b.N-calls[0]-calls[1]-calls[2])
			var wg sync.WaitGroup
			cpu0 := processCPU(b)
			for g := range getDocBenchClients {
				wg.Go(func() {
					for j := g; j < n; j += getDocBenchClients {
						if _, err := servers[which].GetDocument(authed(ctx, secrets[which]), get); err != nil {
							b.Errorf("GetDocument: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			cpu[which] += processCPU(b) - cpu0
			calls[which] += n
		}
		b.StopTimer()
		if calls[0] == 0 || calls[1] == 0 || calls[2] == 0 {
			return
		}
		bareCPU := float64(cpu[0].Nanoseconds()) / float64(calls[0])
		cairnCPU := float64(cpu[1].Nanoseconds()) / float64(calls[1])
		plainCPU := float64(cpu[2].Nanoseconds()) / float64(calls[2])
		b.ReportMetric(bareCPU, "bare-cpu-ns/op")
		b.ReportMetric(cairnCPU, "cairn-cpu-ns/op")
		b.ReportMetric(plainCPU, "connecthttp-cpu-ns/op")
		b.ReportMetric(100*bareCPU/cairnCPU, "pct-of-bare")
		b.ReportMetric(100*bareCPU/plainCPU, "connecthttp-pct-of-bare")
	}
	for _, codec := range []struct {
		name string
		opts []connecthttp.Option
	}{{"json", []connecthttp.Option{connecthttp.WithProtoJSON()}}, {"binary", nil}} {
		var base figures
		b.Run("bare-"+codec.name, func(b *testing.B) { base = run(b, bare, codec.opts...) })
		b.Run("cairn-"+codec.name, func(b *testing.B) {
			f := run(b, srvURL, codec.opts...)
			if base.ops > 0 && f.cpu > 0 {
				b.ReportMetric(100*base.cpu/f.cpu, "pct-of-bare")
				b.ReportMetric(100*f.ops/base.ops, "ops-pct-of-bare")
			}
		})
		b.Run("alternating-"+codec.name, func(b *testing.B) { alternate(b, codec.opts...) })
	}
}

// benchTitleCollection creates project p with a server key, database db
// and collection coll of {title (titleSize), n, tag} — pbcompare's
// documents — for the document benchmarks, and returns the key's secret.
func benchTitleCollection(b *testing.B, cl clients, p, db, coll string, titleSize int64) string {
	b.Helper()
	ctx := context.Background()
	secret := benchProjectKey(b, cl, p)
	dbs := cl.databases()
	k := authed(ctx, secret)
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: "Main"}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Name: coll}); err != nil {
		b.Fatal(err)
	}
	for _, a := range []*cairnv1.Attribute{
		{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: titleSize},
		{Key: "n", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER},
		{Key: "tag", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 32},
	} {
		if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Attribute: a}); err != nil {
			b.Fatal(err)
		}
	}
	return secret
}

// benchProjectKey creates project p with a server key that may write
// databases, collections and documents, and returns the key's secret.
func benchProjectKey(b *testing.B, cl clients, p string) string {
	b.Helper()
	op := authed(context.Background(), testAdminKey)
	if _, err := cl.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
		b.Fatal(err)
	}
	key, err := cl.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: p, Name: "server", Scopes: &cairnv1.Scopes{Scopes: []string{
		"databases.write", "collections.write", "collections.read", "documents.read", "documents.write"}}})
	if err != nil {
		b.Fatal(err)
	}
	return key.GetSecret()
}
