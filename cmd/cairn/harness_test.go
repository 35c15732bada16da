package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/cairn-dev/cairn/projections"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/streams"
)

// testAdminKey is long enough for the admin key check (128 bits).
const testAdminKey = "cak_test_operator_key_0123456789abcdef0123456789abcdef"

// Browsers and curl resolve localhost and every name under .localhost to
// loopback (RFC 6761); Go's resolver does not. Tests reach sites' and
// functions' own hosts (api/hosts) the way a browser does.
func init() {
	http.DefaultTransport.(*http.Transport).DialContext = dialLocalhost
}

// routeURL is where a test sends path: a function's route goes straight to
// the function's own host (the API's host only redirects there, and an
// HTTP client drops the credential on a redirect to another host).
func (in *instance) routeURL(path string) string {
	if rest, ok := strings.CutPrefix(path, "/v1/functions/"); ok {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) >= 2 {
			u := in.hostURL(parts[1]+"."+parts[0]+".fn") + "/"
			if len(parts) == 3 {
				u += parts[2]
			}
			return u
		}
	}
	return in.url + path
}

func dialLocalhost(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// instance is a real `cairn serve` running in-process on loopback: embedded
// JetStream and Badger in a temp dir, the generated Connect clients over
// real HTTP.
type instance struct {
	t       testing.TB
	dataDir string
	url     string
	cancel  context.CancelFunc
	done    chan error
	// logs is what the server logged (at warn and above).
	logs *logBuffer
	clients
}

// logBuffer collects a server's log lines; the server writes while tests
// read.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the logged lines containing all of parts.
func (b *logBuffer) lines(parts ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for l := range strings.Lines(b.buf.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// startInstance runs serve on dataDir until the test ends (or stop).
func startInstance(t testing.TB, dataDir string, extra ...string) *instance {
	t.Helper()
	return startInstanceLog(t, dataDir, io.Discard, extra...)
}

// startInstanceLog is startInstance with the server's log written to
// stderr.
func startInstanceLog(t testing.TB, dataDir string, stderr io.Writer, extra ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	in := &instance{t: t, dataDir: dataDir, cancel: cancel, done: make(chan error, 1), logs: &logBuffer{}}
	env := map[string]string{"CAIRN_ADMIN_KEY": testAdminKey}
	args := append([]string{"serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	go func() {
		err := run(ctx, args, pw, io.MultiWriter(in.logs, stderr), func(k string) string { return env[k] })
		pw.CloseWithError(errors.New("serve exited"))
		in.done <- err
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "cairn listening on "); ok {
				urlc <- u
			}
		}
	}()
	select {
	case in.url = <-urlc:
	case err := <-in.done:
		t.Fatalf("serve exited during start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start within 30s")
	}
	in.client = connect.NewClient(connecthttp.NewTransport(h2cClient(), in.url))
	t.Cleanup(in.stop)
	// Serve only once caught up, as a load balancer would via /readyz.
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := http.Get(in.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 30s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return in
}

var stopOnce sync.Map

// stop shuts the server down gracefully and waits for it.
func (in *instance) stop() {
	if _, loaded := stopOnce.LoadOrStore(in, true); loaded {
		return
	}
	in.cancel()
	select {
	case err := <-in.done:
		if err != nil {
			in.t.Errorf("serve returned %v", err)
		}
	case <-time.After(60 * time.Second):
		in.t.Error("serve did not stop within 60s")
	}
}

// h2cClient speaks HTTP/2 without TLS, as gRPC clients do.
func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p, DialContext: dialLocalhost}}
}

// as returns a context carrying a bearer credential, and the call info to
// read response headers from.
func as(ctx context.Context, token string) (context.Context, *connect.CallInfo) {
	ctx, info := connect.NewClientContext(ctx)
	if token != "" {
		info.RequestHeader().Set("Authorization", "Bearer "+token)
	}
	return ctx, info
}

// clients are the generated Connect clients of one server.
type clients struct{ client *connect.Client }

func (c clients) projects() cairnv1connect.ProjectsServiceClient {
	return cairnv1connect.NewProjectsServiceClient(c.client)
}
func (c clients) keys() cairnv1connect.KeysServiceClient {
	return cairnv1connect.NewKeysServiceClient(c.client)
}
func (c clients) events() cairnv1connect.EventsServiceClient {
	return cairnv1connect.NewEventsServiceClient(c.client)
}
func (c clients) account() cairnv1connect.AccountServiceClient {
	return cairnv1connect.NewAccountServiceClient(c.client)
}
func (c clients) users() cairnv1connect.UsersServiceClient {
	return cairnv1connect.NewUsersServiceClient(c.client)
}

// guest returns a context for an end user's call to project: the
// Cairn-Project header, and the session token when there is one.
func guest(ctx context.Context, project, session string) (context.Context, *connect.CallInfo) {
	ctx, info := as(ctx, session)
	info.RequestHeader().Set("Cairn-Project", project)
	return ctx, info
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %v error, got success", code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("want %v, got %v: %v", code, got, err)
	}
}

// checkRebuild checks that a stream's incrementally built read model equals
// a fresh rebuild from the stream (project "" is the system registry) and
// returns the snapshot.
func checkRebuild(t *testing.T, n *node, project, label string) []projections.KV {
	t.Helper()
	stream := streams.SystemStream
	if project != "" {
		stream = streams.ProjectStream(project)
	}
	// Dropped collections' documents may still wait for the background
	// sweep, which a rebuild finishes: compare finished read models.
	if err := n.reads.CollectGarbage(); err != nil {
		t.Fatal(err)
	}
	before, err := n.reads.Snapshot(stream)
	if err != nil {
		t.Fatal(err)
	}
	events, err := n.reads.Rebuild(context.Background(), project)
	if err != nil {
		t.Fatalf("%s: rebuild %s: %v", label, stream, err)
	}
	after, err := n.reads.Snapshot(stream)
	if err != nil {
		t.Fatal(err)
	}
	if d := crashDiffKV(before, after); d != "" {
		t.Errorf("%s %s: incrementally built read models differ from a fresh rebuild of %d events: %s", label, stream, events, d)
	} else {
		t.Logf("%s %s: %d read-model entries equal a fresh rebuild of %d events", label, stream, len(after), events)
	}
	return before
}
