package unary

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectgzip"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// documents answers GetDocument by its document id, to exercise every
// way a call ends.
type documents struct {
	cairnv1connect.UnimplementedDatabasesServiceHandler
}

func (documents) GetDocument(ctx context.Context, req *cairnv1.GetDocumentRequest) (*cairnv1.GetDocumentResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	info.ResponseHeader().Set("Cairn-Seq", "42")
	info.ResponseHeader().Add("X-Echo", info.RequestHeader().Get("X-Echo"))
	info.ResponseHeader().Set("Content-Type", "text/html") // a protocol header: never sent
	switch req.GetDocumentId() {
	case "missing":
		return nil, connect.NewError(connect.CodeNotFound, `document "missing" not found`)
	case "detailed":
		d, err := connectproto.NewErrorDetail(&cairnv1.GetDocumentRequest{DocumentId: "why"})
		if err != nil {
			return nil, err
		}
		return nil, connect.NewError(connect.CodeInvalidArgument, "document_id: bad").WithDetail(d)
	case "trailer":
		info.ResponseTrailer().Set("Cairn-Trailer", "t")
	case "deadline":
		<-ctx.Done()
		return nil, connect.NewError(connect.CodeDeadlineExceeded, ctx.Err().Error())
	case "panic":
		panic("boom")
	case "plain-error":
		return nil, errors.New("plain")
	}
	title := "document " + req.GetDocumentId()
	if req.GetDocumentId() == "big" {
		title = strings.Repeat("big document ", 200) // compressed above 1 KiB
	}
	data, err := structpb.NewStruct(map[string]any{"title": title})
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetDocumentResponse{Document: &cairnv1.Document{Id: req.GetDocumentId(), CollectionId: req.GetCollectionId(), Data: data}}, nil
}

// servers returns two loopback servers of one connect.Server: the first
// with the fast path in front of connecthttp, the second connecthttp
// alone; fast counts the calls the fast path served.
func servers(t *testing.T) (withFast, plain string, fast *atomic.Int64) {
	t.Helper()
	fast = new(atomic.Int64)
	// Interceptors as the API's do: refuse without a credential, recover
	// panics, and note which transport served the call.
	var interceptors []connect.ServerInterceptor
	interceptors = append(interceptors, func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) (err error) {
			info, _ := connect.CallInfoForServerContext(ctx)
			if info.TransportInfo == nil {
				fast.Add(1)
			}
			defer func() {
				if r := recover(); r != nil {
					err = connect.NewError(connect.CodeInternal, "internal error")
				}
			}()
			if info.RequestHeader().Get("Authorization") == "" {
				return connect.NewError(connect.CodeUnauthenticated, "missing credential")
			}
			if info.Spec.Procedure != spec.Procedure || info.Protocol != connect.ProtocolNameConnect || info.RequestHeader().Get("Host") == "" {
				return connect.NewError(connect.CodeInternal, "call info incomplete")
			}
			return next(ctx, spec, stream)
		}
	})
	server := connect.NewServer(interceptors...)
	cairnv1connect.RegisterDatabasesServiceHandler(server, documents{})
	json := connectproto.NewJSONCodec()
	json.UnmarshalOptions.DiscardUnknown = false
	codecs := []connect.Codec{connectproto.NewBinaryCodec(), json}
	compressors := []connect.Compressor{connectgzip.New()}
	const maxBytes = 1 << 16
	opts := []connecthttp.Option{connecthttp.WithReadMaxBytes(maxBytes), connecthttp.WithCompressMinBytes(1024),
		connecthttp.WithCodecs(codecs...), connecthttp.WithCompressors(compressors...)}
	plainMux := http.NewServeMux()
	connecthttp.Mount(plainMux, server, opts...)
	tr := New(server, Options{Codecs: codecs, Compressors: compressors, CompressMinBytes: 1024, MaxBodyBytes: 1 << 12})
	fastMux := http.NewServeMux()
	for spec := range server.Specs() {
		fastMux.Handle(spec.Procedure, tr.Handler(spec, plainMux))
	}
	fastMux.Handle("/", plainMux)
	a, b := httptest.NewServer(fastMux), httptest.NewServer(plainMux)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	return a.URL, b.URL, fast
}

type request struct {
	name        string
	method      string
	contentType string
	header      map[string]string
	body        []byte
	query       string
	fast        bool // the fast path must serve it
}

func binaryBody(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAgreesWithConnectHTTP sends the same requests to the fast path and
// to connecthttp alone and wants the same status, headers (but Date) and
// body, byte for byte.
func TestAgreesWithConnectHTTP(t *testing.T) {
	withFast, plain, fast := servers(t)
	auth := map[string]string{"Authorization": "Bearer k", "X-Echo": "hello"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range auth {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	get := func(id string) []byte {
		return binaryBody(t, &cairnv1.GetDocumentRequest{ProjectId: "p", DatabaseId: "main", CollectionId: "items", DocumentId: id})
	}
	getJSON := func(id string) []byte {
		return []byte(`{"projectId":"p","databaseId":"main","collectionId":"items","documentId":"` + id + `"}`)
	}
	cases := []request{
		{name: "binary", contentType: "application/proto", header: auth, body: get("d1"), fast: true},
		{name: "json", contentType: "application/json", header: auth, body: getJSON("d1"), fast: true},
		{name: "empty body", contentType: "application/proto", header: auth, fast: true},
		{name: "unknown document", contentType: "application/json", header: auth, body: getJSON("missing"), fast: true},
		{name: "error detail", contentType: "application/proto", header: auth, body: get("detailed"), fast: true},
		{name: "trailer", contentType: "application/json", header: auth, body: getJSON("trailer"), fast: true},
		{name: "panic", contentType: "application/json", header: auth, body: getJSON("panic"), fast: true},
		{name: "plain error", contentType: "application/json", header: auth, body: getJSON("plain-error"), fast: true},
		{name: "no key", contentType: "application/json", body: getJSON("d1"), fast: true},
		{name: "malformed json", contentType: "application/json", header: auth, body: []byte(`{"projectId":`), fast: true},
		{name: "unknown field", contentType: "application/json", header: auth, body: []byte(`{"projectID":"p"}`), fast: true},
		{name: "malformed binary", contentType: "application/proto", header: auth, body: []byte{0x0a, 0x7f, 1}, fast: true},
		{name: "accept gzip small", contentType: "application/json", header: with(map[string]string{"Accept-Encoding": "gzip"}), body: getJSON("d1"), fast: true},
		{name: "accept gzip big", contentType: "application/json", header: with(map[string]string{"Accept-Encoding": "br, gzip"}), body: getJSON("big"), fast: true},
		{name: "big identity", contentType: "application/proto", header: auth, body: get("big"), fast: true},
		{name: "timeout", contentType: "application/json", header: with(map[string]string{"Connect-Timeout-Ms": "5000"}), body: getJSON("d1"), fast: true},
		{name: "timeout zero", contentType: "application/json", header: with(map[string]string{"Connect-Timeout-Ms": "0"}), body: getJSON("deadline"), fast: true},
		{name: "signed timeout", contentType: "application/json", header: with(map[string]string{"Connect-Timeout-Ms": "+5000"}), body: getJSON("d1")},
		{name: "timeout expires", contentType: "application/json", header: with(map[string]string{"Connect-Timeout-Ms": "20"}), body: getJSON("deadline"), fast: true},
		{name: "protocol version", contentType: "application/json", header: with(map[string]string{"Connect-Protocol-Version": "1"}), body: getJSON("d1"), fast: true},
		{name: "identity encoding", contentType: "application/json", header: with(map[string]string{"Content-Encoding": "identity"}), body: getJSON("d1"), fast: true},
		// Left to connecthttp: the answers must still agree.
		{name: "gzip request", contentType: "application/json", header: with(map[string]string{"Content-Encoding": "gzip"}), body: gzipped(t, getJSON("d1"))},
		{name: "unknown encoding", contentType: "application/json", header: with(map[string]string{"Content-Encoding": "zstd"}), body: getJSON("d1")},
		{name: "bad timeout", contentType: "application/json", header: with(map[string]string{"Connect-Timeout-Ms": "soon"}), body: getJSON("d1")},
		{name: "long timeout", contentType: "application/json", header: with(map[string]string{"Connect-Timeout-Ms": "12345678901"}), body: getJSON("d1")},
		{name: "bad protocol version", contentType: "application/json", header: with(map[string]string{"Connect-Protocol-Version": "2"}), body: getJSON("d1")},
		{name: "charset", contentType: "application/json; charset=utf-8", header: auth, body: getJSON("d1")},
		{name: "wrong content type", contentType: "text/plain", header: auth, body: getJSON("d1")},
		{name: "grpc-web", contentType: "application/grpc-web+proto", header: auth, body: append([]byte{0, 0, 0, 0, 0}, nil...)},
		{name: "huge body", contentType: "application/json", header: auth, body: bytes.Repeat([]byte(" "), 1<<17)},
		{name: "body over fast limit", contentType: "application/json", header: auth, body: append(bytes.Repeat([]byte(" "), 1<<13), getJSON("d1")...)},
		{name: "query", contentType: "application/json", header: auth, body: getJSON("d1"), query: "x=1"},
		{name: "GET", method: http.MethodGet, header: auth, query: "encoding=json&message=" + string(getJSON("d1"))},
		{name: "PUT", method: http.MethodPut, contentType: "application/json", header: auth, body: getJSON("d1")},
	}
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(hc.CloseIdleConnections)
	send := func(base string, c request) (int, http.Header, []byte) {
		method := c.method
		if method == "" {
			method = http.MethodPost
		}
		u := base + cairnv1connect.DatabasesServiceGetDocumentProcedure
		if c.query != "" {
			u += "?" + strings.ReplaceAll(c.query, `"`, "%22")
		}
		req, err := http.NewRequest(method, u, bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		res.Header.Del("Date")
		return res.StatusCode, res.Header, body
	}
	for _, c := range cases {
		before := fast.Load()
		fs, fh, fb := send(withFast, c)
		if served := fast.Load() > before; served != c.fast {
			t.Errorf("%s: served by the fast path: %v, want %v", c.name, served, c.fast)
		}
		ps, ph, pb := send(plain, c)
		if fs != ps || !headersEqual(fh, ph) || !bytes.Equal(fb, pb) {
			t.Errorf("%s: fast path answered\n%d %v %q\nconnecthttp answered\n%d %v %q", c.name, fs, fh, fb, ps, ph, pb)
		}
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestGeneratedClient calls through the fast path with the generated
// client in both codecs, with and without gzip.
func TestGeneratedClient(t *testing.T) {
	withFast, _, fast := servers(t)
	for _, tc := range []struct {
		opts []connecthttp.Option
		fast int64 // calls the fast path serves: a gzip request is connecthttp's
	}{{nil, 3}, {[]connecthttp.Option{connecthttp.WithProtoJSON()}, 3}, {[]connecthttp.Option{connecthttp.WithSendGzip()}, 0}} {
		opts := tc.opts
		c := cairnv1connect.NewDatabasesServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, withFast, opts...)))
		ctx, info := connect.NewClientContext(context.Background())
		info.RequestHeader().Set("Authorization", "Bearer k")
		before := fast.Load()
		res, err := c.GetDocument(ctx, &cairnv1.GetDocumentRequest{ProjectId: "p", DatabaseId: "main", CollectionId: "items", DocumentId: "big"})
		if err != nil || res.GetDocument().GetId() != "big" || !strings.HasPrefix(res.GetDocument().GetData().GetFields()["title"].GetStringValue(), "big document") {
			t.Fatalf("GetDocument: %v, %v", res, err)
		}
		if got := info.ResponseHeader().Get("Cairn-Seq"); got != "42" {
			t.Errorf("Cairn-Seq: %q", got)
		}
		ctx, info = connect.NewClientContext(context.Background())
		info.RequestHeader().Set("Authorization", "Bearer k")
		_, err = c.GetDocument(ctx, &cairnv1.GetDocumentRequest{DocumentId: "missing"})
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("missing document: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		ctx, info = connect.NewClientContext(ctx)
		info.RequestHeader().Set("Authorization", "Bearer k")
		_, err = c.GetDocument(ctx, &cairnv1.GetDocumentRequest{DocumentId: "deadline"})
		cancel()
		if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
			t.Errorf("deadline: %v", err)
		}
		if got := fast.Load() - before; got != tc.fast {
			t.Errorf("fast path served %d calls, want %d", got, tc.fast)
		}
	}
}

// BenchmarkTransport serves one GetDocument call (binary and JSON, the
// test service behind an interceptor) through the fast path and through
// connecthttp, in this goroutine, without a network: the transport's own
// CPU and allocations per call.
func BenchmarkTransport(b *testing.B) {
	server := connect.NewServer(func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			info, _ := connect.CallInfoForServerContext(ctx)
			if info.RequestHeader().Get("Authorization") == "" {
				return connect.NewError(connect.CodeUnauthenticated, "missing credential")
			}
			return next(ctx, spec, stream)
		}
	})
	cairnv1connect.RegisterDatabasesServiceHandler(server, documents{})
	codecs := []connect.Codec{connectproto.NewBinaryCodec(), connectproto.NewJSONCodec()}
	compressors := []connect.Compressor{connectgzip.New()}
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server, connecthttp.WithReadMaxBytes(1<<20), connecthttp.WithCompressMinBytes(1024),
		connecthttp.WithCodecs(codecs...), connecthttp.WithCompressors(compressors...))
	tr := New(server, Options{Codecs: codecs, Compressors: compressors, CompressMinBytes: 1024, MaxBodyBytes: 1 << 16})
	var fast http.Handler
	for spec := range server.Specs() {
		if spec.Procedure == cairnv1connect.DatabasesServiceGetDocumentProcedure {
			fast = tr.Handler(spec, mux)
		}
	}
	req := &cairnv1.GetDocumentRequest{ProjectId: "p", DatabaseId: "main", CollectionId: "items", DocumentId: "d1"}
	bin, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	js := []byte(`{"projectId":"p","databaseId":"main","collectionId":"items","documentId":"d1"}`)
	for _, codec := range []struct {
		name, contentType string
		body              []byte
	}{{"binary", "application/proto", bin}, {"json", "application/json", js}} {
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"fast", fast}, {"connecthttp", mux}} {
			b.Run(codec.name+"/"+h.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r := httptest.NewRequest(http.MethodPost, cairnv1connect.DatabasesServiceGetDocumentProcedure, bytes.NewReader(codec.body))
					r.Header.Set("Content-Type", codec.contentType)
					r.Header.Set("Authorization", "Bearer k")
					r.Header.Set("Connect-Protocol-Version", "1")
					w := httptest.NewRecorder()
					h.h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}
