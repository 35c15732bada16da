package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// requestLines returns the server's per-request log lines (JSON) whose
// request_id is id.
func requestLines(t *testing.T, in *instance, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range in.logs.lines(`"msg":"request"`, id) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		if m["request_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// oneLine checks the one line of request id. The line is written once the
// handler returns, which a client may see a moment before: it waits a
// little for it.
func oneLine(t *testing.T, in *instance, id string, want map[string]any) map[string]any {
	t.Helper()
	lines := requestLines(t, in, id)
	for deadline := time.Now().Add(2 * time.Second); len(lines) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		lines = requestLines(t, in, id)
	}
	if len(lines) != 1 {
		t.Fatalf("request %s: want one log line, got %d: %v", id, len(lines), lines)
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("request %s: %s = %v, want %v (line %v)", id, k, lines[0][k], v, lines[0])
		}
	}
	return lines[0]
}

func TestRequestLog(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--log-level", "info")
	ctx := context.Background()

	// A client's request id is answered, logged and becomes the events'
	// correlation id.
	op, info := as(ctx, testAdminKey)
	info.RequestHeader().Set("X-Request-Id", "req-create-project-1")
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "logs", Name: "Logs"}); err != nil {
		t.Fatal(err)
	}
	if got := info.ResponseHeader().Get("X-Request-Id"); got != "req-create-project-1" {
		t.Errorf("X-Request-Id answered %q", got)
	}
	line := oneLine(t, in, "req-create-project-1", map[string]any{"route": "/cairn.v1.ProjectsService/CreateProject",
		"code": "ok", "status": float64(200), "caller": "operator", "project": "logs"})
	if line["bytes_in"].(float64) <= 0 || line["bytes_out"].(float64) <= 0 || line["duration"] == nil || line["level"] != "INFO" {
		t.Errorf("bytes, duration or level missing: %v", line)
	}

	// No id sent: one is generated (a ULID), answered, and carried into
	// the events.
	op, info = as(ctx, testAdminKey)
	key, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "logs", Name: "reader",
		Scopes: &cairnv1.Scopes{Scopes: []string{"events.read", "keys.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	gen := info.ResponseHeader().Get("X-Request-Id")
	if len(gen) != 26 {
		t.Fatalf("generated X-Request-Id %q is no ULID", gen)
	}
	oneLine(t, in, gen, map[string]any{"route": "/cairn.v1.KeysService/CreateKey", "code": "ok", "caller": "operator", "project": "logs"})
	kctx, info := as(ctx, key.GetSecret())
	info.RequestHeader().Set("X-Request-Id", "req-list-events")
	evs, err := in.events().ListEvents(kctx, &cairnv1.ListEventsRequest{ProjectId: "logs", Subject: "keys.>"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(evs.GetEvents()); n != 1 || evs.GetEvents()[0].GetEnvelope().GetCorrelationId() != gen {
		t.Errorf("the key's event does not carry the generated request id %s: %v", gen, evs.GetEvents())
	}
	oneLine(t, in, "req-list-events", map[string]any{"caller": "key", "caller_id": key.GetKey().GetId(), "project": "logs", "code": "ok"})

	// A refused credential leaves a line, without the credential.
	bad, info := as(ctx, "cak_not_the_key_0123456789abcdef0123456789abcdef")
	info.RequestHeader().Set("X-Request-Id", "req-bad-key")
	_, err = in.projects().ListProjects(bad, &cairnv1.ListProjectsRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	oneLine(t, in, "req-bad-key", map[string]any{"code": "unauthenticated", "caller": "none", "route": "/cairn.v1.ProjectsService/ListProjects"})

	// A plain route logs its pattern, not its path; an id that is not
	// sane (too long, control characters) is replaced.
	for _, sent := range []string{strings.Repeat("x", 129), "a\tb"} {
		req, _ := http.NewRequest(http.MethodGet, in.url+"/v1/projects/logs/jwks.json", nil)
		req.Header.Set("X-Request-Id", sent)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := res.Header.Get("X-Request-Id")
		if got == sent || len(got) != 26 {
			t.Errorf("X-Request-Id %q answered as %q", sent, got)
		}
		oneLine(t, in, got, map[string]any{"route": "GET /v1/projects/{project}/jwks.json", "status": float64(200), "caller": "none",
			"project": "logs", "method": "GET"})
	}
	// A 401 on a plain route too.
	req, _ := http.NewRequest(http.MethodGet, in.url+"/metrics", nil)
	req.Header.Set("X-Request-Id", "req-metrics-401")
	req.Header.Set("Authorization", "Bearer "+key.GetSecret())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	oneLine(t, in, "req-metrics-401", map[string]any{"route": "GET /metrics", "status": float64(401)})

	// A WebSocket (hijacked through the counting writer) and gRPC over
	// h2c (trailers) log too.
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key.GetSecret())
	h.Set("X-Request-Id", "req-websocket")
	conn, _, err := websocket.Dial(ctx, in.rtURL("project=logs&channels=documents"), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
	oneLine(t, in, "req-websocket", map[string]any{"route": "GET /v1/realtime", "status": float64(101), "caller": "key", "project": "logs"})
	gc, err := grpc.NewClient(strings.TrimPrefix(in.url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	gctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key.GetSecret(), "x-request-id", "req-grpc")
	if err := gc.Invoke(gctx, cairnv1connect.KeysServiceListKeysProcedure, &cairnv1.ListKeysRequest{ProjectId: "logs"}, &cairnv1.ListKeysResponse{}); err != nil {
		t.Fatal(err)
	}
	oneLine(t, in, "req-grpc", map[string]any{"route": "/cairn.v1.KeysService/ListKeys", "code": "ok", "caller": "key", "project": "logs"})

	for _, l := range in.logs.lines(`"msg":"request"`) {
		if strings.Contains(l, testAdminKey) || strings.Contains(l, key.GetSecret()) || strings.Contains(l, "cak_not_the_key") {
			t.Fatalf("a credential was logged: %s", l)
		}
	}
}

// TestRequestLogOff: --request-log=false leaves the lines to debug.
func TestRequestLogOff(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--log-level", "info", "--request-log=false")
	op, info := as(context.Background(), testAdminKey)
	info.RequestHeader().Set("X-Request-Id", "req-quiet")
	if _, err := in.projects().ListProjects(op, &cairnv1.ListProjectsRequest{}); err != nil {
		t.Fatal(err)
	}
	if info.ResponseHeader().Get("X-Request-Id") != "req-quiet" {
		t.Error("X-Request-Id not answered with the request log off")
	}
	if lines := requestLines(t, in, "req-quiet"); len(lines) != 0 {
		t.Errorf("logged at info with --request-log=false: %v", lines)
	}
}

// TestLogFormat: --log-format picks the handler; unset, anything but a
// terminal gets JSON.
func TestLogFormat(t *testing.T) {
	for format, want := range map[string]string{"json": `{"time":`, "text": "time=", "": `{"time":`} {
		var buf strings.Builder
		l, err := newLogger(&buf, "info", format)
		if err != nil {
			t.Fatal(err)
		}
		l.Info("hello")
		if !strings.HasPrefix(buf.String(), want) {
			t.Errorf("format %q: logged %q", format, buf.String())
		}
	}
	if _, err := newLogger(io.Discard, "info", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("--log-format xml: %v", err)
	}
}
