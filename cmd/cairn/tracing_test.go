package main

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// otlpReceiver is an OTLP/HTTP trace receiver on loopback: it decodes what
// the exporter sends (protobuf ExportTraceServiceRequest) and keeps the
// spans. It decodes the request as TracesData, which OTLP defines with the
// same fields: the collector package would bring grpc-gateway, whose
// health proto clashes with ours in the registry.
type otlpReceiver struct {
	url   string
	mu    sync.Mutex
	spans []*tracepb.Span
	// discard counts spans instead of keeping them (benchmarks).
	discard bool
	count   int
}

func startOTLPReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &otlpReceiver{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		req := &tracepb.TracesData{}
		if err == nil {
			err = proto.Unmarshal(body, req)
		}
		if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				rc.count += len(ss.GetSpans())
				if !rc.discard {
					rc.spans = append(rc.spans, ss.GetSpans()...)
				}
			}
		}
		rc.mu.Unlock()
		// An empty ExportTraceServiceResponse encodes as no bytes.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rc
}

// trace returns the received spans of trace id, by name.
func (rc *otlpReceiver) trace(id []byte) map[string][]*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]*tracepb.Span{}
	for _, s := range rc.spans {
		if string(s.GetTraceId()) == string(id) {
			out[s.GetName()] = append(out[s.GetName()], s)
		}
	}
	return out
}

func (rc *otlpReceiver) find(name string) *tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, s := range rc.spans {
		if s.GetName() == name {
			return s
		}
	}
	return nil
}

// TestTracing follows one CreateDocument: the RPC's span, the append and
// the wait for the projection under it, and, through the trace context in
// the event's NATS headers, the projector's apply and the realtime delivery
// under the append.
func TestTracing(t *testing.T) {
	rc := startOTLPReceiver(t)
	in := startInstance(t, t.TempDir(), "--otlp-endpoint", rc.url, "--log-level", "info")
	key := newProjectWithKey(t, in, "tr", append(docScopes, "events.read")...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), "tr", "posts", []string{`read("any")`}, false)
	sub := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: "tr", Channels: []string{"databases.main.collections.posts.documents"}})
	sub.untilLive(t)

	ctx, info := as(context.Background(), key)
	info.RequestHeader().Set("X-Request-Id", "req-traced")
	if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: "tr", DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data(t, map[string]any{"title": "hello"})}}); err != nil {
		t.Fatal(err)
	}
	sub.nextEvent(t, 5*time.Second)
	line := oneLine(t, in, "req-traced", map[string]any{"code": "ok"})
	sub.cancel()
	in.stop() // flushes the batched spans

	rpc := rc.find("cairn.v1.DatabasesService/CreateDocument")
	if rpc == nil {
		t.Fatal("no span of the CreateDocument RPC received")
	}
	if rpc.GetKind() != tracepb.Span_SPAN_KIND_SERVER || len(rpc.GetParentSpanId()) != 0 {
		t.Errorf("RPC span: kind %v, parent %x", rpc.GetKind(), rpc.GetParentSpanId())
	}
	if got := line["trace_id"]; got != hex.EncodeToString(rpc.GetTraceId()) {
		t.Errorf("request log trace_id %v, want %x", got, rpc.GetTraceId())
	}
	spans := rc.trace(rpc.GetTraceId())
	one := func(name string) *tracepb.Span {
		t.Helper()
		if len(spans[name]) != 1 {
			t.Fatalf("want one %s span in the trace, got %d (trace: %v)", name, len(spans[name]), names(spans))
		}
		return spans[name][0]
	}
	appendSpan, wait := one("eventlog.append"), one("eventlog.wait")
	apply, deliver := one("projections.apply"), one("realtime.deliver")
	for _, c := range []struct {
		child, parent *tracepb.Span
	}{{appendSpan, rpc}, {wait, rpc}, {apply, appendSpan}, {deliver, appendSpan}} {
		if string(c.child.GetParentSpanId()) != string(c.parent.GetSpanId()) {
			t.Errorf("%s: parent %x, want %s %x", c.child.GetName(), c.child.GetParentSpanId(), c.parent.GetName(), c.parent.GetSpanId())
		}
	}
	// The wait ends after the apply it waits for.
	if wait.GetEndTimeUnixNano() < apply.GetEndTimeUnixNano() {
		t.Errorf("the wait ended before the apply")
	}
}

func names(spans map[string][]*tracepb.Span) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}
