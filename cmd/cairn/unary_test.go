package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// viaConnectHTTP makes a request miss the lean unary path (api/unary) and
// meet connecthttp: a charset parameter, which connecthttp drops and the
// lean path does not take.
type viaConnectHTTP struct{}

func (viaConnectHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if ct := r.Header.Get("Content-Type"); ct == "application/proto" || ct == "application/json" {
		r.Header.Set("Content-Type", ct+"; charset=utf-8")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestUnaryFastPathAgrees sends the same requests to one server through
// the lean unary path and through connecthttp and wants the same status,
// headers (but Date and X-Request-Id) and body, byte for byte; the calls
// the lean path served are timed in the RPC metrics and logged as any.
func TestUnaryFastPathAgrees(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--log-level", "info")
	ctx := context.Background()
	key := newProjectWithKey(t, in, "u", "databases.write", "collections.write", "documents.read", "documents.write")
	other := newProjectWithKey(t, in, "v", "documents.read")
	k, _ := as(ctx, key)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: "u", DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	k, _ = as(ctx, key)
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: "u", DatabaseId: "main", CollectionId: "items", Name: "items"}); err != nil {
		t.Fatal(err)
	}
	k, _ = as(ctx, key)
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: "u", DatabaseId: "main", CollectionId: "items",
		Attribute: &cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// One attribute each: a binary answer's map order is the
		// encoder's choice, so one key keeps the bytes comparable.
		data, _ := structpb.NewStruct(map[string]any{"title": "document " + strconv.Itoa(i)})
		k, _ = as(ctx, key)
		if _, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: "u", DatabaseId: "main", CollectionId: "items",
			Document: &cairnv1.DocumentInput{DocumentId: "d" + strconv.Itoa(i), Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	get := &cairnv1.GetDocumentRequest{ProjectId: "u", DatabaseId: "main", CollectionId: "items", DocumentId: "d1"}
	getJSON := `{"projectId":"u","databaseId":"main","collectionId":"items","documentId":"d1"}`
	bin := func(m proto.Message) string {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	type request struct {
		name, procedure, contentType, body string
		header                             map[string]string
	}
	getP, listP, createP := cairnv1connect.DatabasesServiceGetDocumentProcedure, cairnv1connect.DatabasesServiceListDocumentsProcedure,
		cairnv1connect.DatabasesServiceCreateDocumentProcedure
	keyed := func(token string, extra ...string) map[string]string {
		h := map[string]string{}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	const js, pb = "application/json", "application/proto"
	cases := []request{
		{"get json", getP, js, getJSON, keyed(key)},
		{"get binary", getP, pb, bin(get), keyed(key)},
		{"get select", getP, js, `{"projectId":"u","databaseId":"main","collectionId":"items","documentId":"d1","select":["title"]}`, keyed(key)},
		{"unknown document", getP, js, strings.Replace(getJSON, "d1", "nope", 1), keyed(key)},
		{"unknown document binary", getP, pb, bin(&cairnv1.GetDocumentRequest{ProjectId: "u", DatabaseId: "main", CollectionId: "items", DocumentId: "nope"}), keyed(key)},
		{"unknown collection", getP, js, strings.Replace(getJSON, "items", "other", 1), keyed(key)},
		{"invalid field", getP, js, strings.Replace(getJSON, "d1", "bad id!", 1), keyed(key)},
		{"invalid field binary", getP, pb, bin(&cairnv1.GetDocumentRequest{ProjectId: "u", DatabaseId: "main", CollectionId: "items", DocumentId: "bad id!"}), keyed(key)},
		{"other project's key", getP, js, getJSON, keyed(other)},
		{"other project named", getP, js, strings.Replace(getJSON, `"u"`, `"v"`, 1), keyed(key)},
		{"wrong key", getP, js, getJSON, keyed("cak_u_not_a_key_0123456789abcdef0123456789abcdef")},
		{"no key", getP, js, getJSON, keyed("")},
		{"guest", getP, js, getJSON, keyed("", "Cairn-Project", "u")},
		{"guest of no project", getP, js, strings.ReplaceAll(getJSON, `"u"`, `"nope"`), keyed("", "Cairn-Project", "nope")},
		{"malformed body", getP, js, `{"projectId":`, keyed(key)},
		{"malformed binary", getP, pb, "\x0a\x7f\x01", keyed(key)},
		{"unknown field", getP, js, `{"projectID":"u"}`, keyed(key)},
		{"wrong content type", getP, "text/plain", getJSON, keyed(key)},
		{"accept gzip", getP, js, getJSON, keyed(key, "Accept-Encoding", "gzip")},
		{"timeout", getP, js, getJSON, keyed(key, "Connect-Timeout-Ms", "5000")},
		{"bad timeout", getP, js, getJSON, keyed(key, "Connect-Timeout-Ms", "soon")},
		{"protocol version", getP, js, getJSON, keyed(key, "Connect-Protocol-Version", "1")},
		{"min seq", getP, js, getJSON, keyed(key, "Cairn-Min-Seq", "1")},
		{"disallowed origin", getP, js, getJSON, keyed(key, "Origin", "https://elsewhere.example")},
		{"huge body", getP, js, getJSON + strings.Repeat(" ", 2<<20), keyed(key)},
		{"list", listP, js, `{"projectId":"u","databaseId":"main","collectionId":"items","limit":2}`, keyed(key)},
		{"list binary", listP, pb, bin(&cairnv1.ListDocumentsRequest{ProjectId: "u", DatabaseId: "main", CollectionId: "items", Limit: 2}), keyed(key)},
		{"list bad limit", listP, js, `{"projectId":"u","databaseId":"main","collectionId":"items","limit":-1}`, keyed(key)},
		{"list other key", listP, js, `{"projectId":"u","databaseId":"main","collectionId":"items"}`, keyed(other)},
		{"create invalid", createP, js, `{"projectId":"u","databaseId":"main","collectionId":"items","document":{"documentId":"x","data":{"title":7}}}`, keyed(key)},
		{"create no collection", createP, js, `{"projectId":"u","databaseId":"main","collectionId":"nope","document":{"data":{"title":"t"}}}`, keyed(key)},
		{"create read-only key", createP, js, `{"projectId":"u","databaseId":"main","collectionId":"items","document":{"data":{"title":"t"}}}`, keyed(other)},
	}
	metricsBefore := scrape(t, in)
	send := func(c request, contentType, id string) (int, http.Header, []byte) {
		req, err := http.NewRequest(http.MethodPost, in.url+c.procedure, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Request-Id", id)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Header.Get("X-Request-Id"); got != id {
			t.Errorf("%s: X-Request-Id %q, want %q", c.name, got, id)
		}
		res.Header.Del("Date")
		res.Header.Del("X-Request-Id")
		return res.StatusCode, res.Header, b
	}
	for i, c := range cases {
		fs, fh, fb := send(c, c.contentType, "fast-"+strconv.Itoa(i))
		plainType := c.contentType
		if plainType == js || plainType == pb {
			plainType += "; charset=utf-8"
		}
		ps, ph, pb := send(c, plainType, "plain-"+strconv.Itoa(i))
		if fs != ps || !slices.EqualFunc(sortedHeader(fh), sortedHeader(ph), slices.Equal) || !bytes.Equal(fb, pb) {
			t.Errorf("%s: lean path answered\n%d %v %q\nconnecthttp answered\n%d %v %q", c.name, fs, fh, fb, ps, ph, pb)
		}
	}
	// Every plain request of a hot call above went through the lean path
	// (the ones it leaves to connecthttp: wrong content type, bad timeout,
	// huge body), and each is timed and logged as connecthttp's are.
	metricsAfter := scrape(t, in)
	leaned := counter(t, metricsAfter, `cairn_rpc_fast_unary_total`) - counter(t, metricsBefore, `cairn_rpc_fast_unary_total`)
	if want := float64(len(cases) - 3); leaned != want {
		t.Errorf("the lean path served %v calls, want %v", leaned, want)
	}
	okGets := `cairn_rpc_duration_seconds_count{code="ok",procedure="/cairn.v1.DatabasesService/GetDocument"}`
	// json, binary, select, accept gzip, timeout, protocol version, min
	// seq: each through both paths.
	if got := counter(t, metricsAfter, okGets) - counter(t, metricsBefore, okGets); got != 2*7 {
		t.Errorf("ok GetDocument calls timed: %v, want 14", got)
	}
	notFound := `cairn_rpc_duration_seconds_count{code="not_found",procedure="/cairn.v1.DatabasesService/GetDocument"}`
	if got := counter(t, metricsAfter, notFound) - counter(t, metricsBefore, notFound); got < 2*3 {
		t.Errorf("not_found GetDocument calls timed: %v, want at least 6", got)
	}
	oneLine(t, in, "fast-0", map[string]any{"route": getP, "code": "ok", "status": float64(200), "caller": "key", "project": "u"})
	oneLine(t, in, "fast-3", map[string]any{"route": getP, "code": "not_found", "status": float64(404), "caller": "key", "project": "u"})
	oneLine(t, in, "fast-10", map[string]any{"route": getP, "code": "unauthenticated", "caller": "none", "status": float64(401)})
	oneLine(t, in, "fast-25", map[string]any{"route": listP, "code": "ok", "caller": "key", "project": "u"})
}

// TestUnaryFastPathGeneratedClient: the generated client gets the same
// answers through the lean unary path and through connecthttp, in both
// codecs, for gets, lists and creates.
func TestUnaryFastPathGeneratedClient(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	key := newProjectWithKey(t, in, "g", "databases.write", "collections.write", "documents.read", "documents.write")
	k, _ := as(ctx, key)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: "g", DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	k, _ = as(ctx, key)
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: "g", DatabaseId: "main", CollectionId: "items", Name: "items"}); err != nil {
		t.Fatal(err)
	}
	k, _ = as(ctx, key)
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: "g", DatabaseId: "main", CollectionId: "items",
		Attribute: &cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64}}); err != nil {
		t.Fatal(err)
	}
	clientOf := func(hc *http.Client, opts ...connecthttp.Option) cairnv1connect.DatabasesServiceClient {
		return cairnv1connect.NewDatabasesServiceClient(connect.NewClient(connecthttp.NewTransport(hc, in.url, opts...)))
	}
	plainHC := &http.Client{Transport: viaConnectHTTP{}}
	for _, codec := range [][]connecthttp.Option{nil, {connecthttp.WithProtoJSON()}} {
		fast, plain := clientOf(http.DefaultClient, codec...), clientOf(plainHC, codec...)
		var created [2]*cairnv1.Document
		for i, c := range []cairnv1connect.DatabasesServiceClient{fast, plain} {
			data, _ := structpb.NewStruct(map[string]any{"title": "made " + strconv.Itoa(i)})
			k, info := as(ctx, key)
			res, err := c.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: "g", DatabaseId: "main", CollectionId: "items",
				Document: &cairnv1.DocumentInput{Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			if info.ResponseHeader().Get("Cairn-Seq") == "" {
				t.Errorf("client %d: CreateDocument answered no Cairn-Seq", i)
			}
			created[i] = res.GetDocument()
		}
		for _, d := range created {
			var got [2]*cairnv1.GetDocumentResponse
			for i, c := range []cairnv1connect.DatabasesServiceClient{fast, plain} {
				k, _ := as(ctx, key)
				res, err := c.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: "g", DatabaseId: "main", CollectionId: "items", DocumentId: d.GetId()})
				if err != nil {
					t.Fatal(err)
				}
				got[i] = res
			}
			if !proto.Equal(got[0], got[1]) || !proto.Equal(got[0].GetDocument(), d) {
				t.Errorf("GetDocument %s: lean %v, connecthttp %v, created %v", d.GetId(), got[0], got[1], d)
			}
		}
		var lists [2]*cairnv1.ListDocumentsResponse
		var errs [2]error
		for i, c := range []cairnv1connect.DatabasesServiceClient{fast, plain} {
			k, _ := as(ctx, key)
			lists[i], _ = c.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: "g", DatabaseId: "main", CollectionId: "items"})
			k, _ = as(ctx, key)
			_, errs[i] = c.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: "g", DatabaseId: "main", CollectionId: "items", DocumentId: "missing"})
		}
		if !proto.Equal(lists[0], lists[1]) || len(lists[0].GetDocuments()) < 2 {
			t.Errorf("ListDocuments: lean %v, connecthttp %v", lists[0], lists[1])
		}
		wantCode(t, errs[0], connect.CodeNotFound)
		if errs[0].Error() != errs[1].Error() {
			t.Errorf("errors differ: lean %v, connecthttp %v", errs[0], errs[1])
		}
	}
	// Over h2c (the harness's client) too.
	before := counter(t, scrape(t, in), `cairn_rpc_fast_unary_total`)
	k, _ = as(ctx, key)
	if _, err := dbs.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: "g", DatabaseId: "main", CollectionId: "items"}); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, scrape(t, in), `cairn_rpc_fast_unary_total`) - before; got != 1 {
		t.Errorf("an h2c ListDocuments: the lean path served %v calls, want 1", got)
	}
}

// sortedHeader lists h's keys and values for comparison.
func sortedHeader(h http.Header) [][]string {
	var out [][]string
	for k, v := range h {
		out = append(out, append([]string{k}, v...))
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// scrape reads the operator's /metrics.
func scrape(t *testing.T, in *instance) string {
	t.Helper()
	res, err := (&http.Client{Transport: operatorTransport{}}).Get(in.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// counter is the value of the metric line that begins with name (0 when
// absent).
func counter(t *testing.T, metrics, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
