package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// stopMargin is how much longer than its bound a stop may take on a
// loaded machine (the process's own start of shutdown, exit).
const stopMargin = 10 * time.Second

// TestShutdownWithNATSGone: with its NATS server gone and writes in flight,
// `cairn serve` (a child process) still exits within its bound on SIGTERM.
func TestShutdownWithNATSGone(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true, MaxPayload: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(srv.Shutdown)
	c := startCrashChild(t, buildCrashBinary(t), filepath.Join(t.TempDir(), "data"), "gone", "--nats-url", srv.ClientURL())
	op, _ := as(context.Background(), testAdminKey)
	if _, err := c.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "gone", Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	k, err := c.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "gone", Name: "k", Scopes: &cairnv1.Scopes{Scopes: []string{"documents.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Writes keep coming while NATS goes away: some are in flight at the stop.
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	for range 8 {
		go func() {
			for loadCtx.Err() == nil {
				// A context per call: a CallInfo records the response's
				// headers, so sharing one between goroutines is a data race.
				ctx, _ := as(loadCtx, testAdminKey)
				name := "n" + strconv.FormatInt(time.Now().UnixNano(), 10)
				_, _ = c.keys().UpdateKey(ctx, &cairnv1.UpdateKeyRequest{ProjectId: "gone", KeyId: k.GetKey().GetId(), Name: &name})
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	srv.Shutdown()
	srv.WaitForShutdown()
	time.Sleep(time.Second) // the node notices

	st, took := c.signal(syscall.SIGTERM, shutdownBound+stopMargin)
	if !st.Success() {
		t.Errorf("exit status %v after SIGTERM\n--- child log ---\n%s", st, c.logTail())
	}
	t.Logf("stopped in %s\n%s", took.Round(time.Millisecond), c.logTail())
}

// TestShutdownEndsStreams: on stop, a WebSocket client gets a closing
// message and close 1001 "server stopping" (not 1006), and Connect server
// streams end with Unavailable "server stopping" (not a clean end).
func TestShutdownEndsStreams(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "stop", "events.read", "keys.read")
	ctx, _ := as(context.Background(), key)

	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	ws, _, err := websocket.Dial(context.Background(), in.rtURL("project=stop&channels=documents"), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	events, err := in.events().StreamEvents(ctx, &cairnv1.StreamEventsRequest{ProjectId: "stop", StartSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := in.realtime().Subscribe(ctx, &cairnv1.SubscribeRequest{ProjectId: "stop", Channels: []string{"documents"}})
	if err != nil {
		t.Fatal(err)
	}
	// Each is open: its first message arrived.
	rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := ws.Read(rctx); err != nil {
		t.Fatal(err)
	}
	if _, err := events.Receive(); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Receive(); err != nil {
		t.Fatal(err)
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		in.stop()
	}()

	var closingSeen bool
	for {
		_, b, err := ws.Read(rctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "server stopping" {
				t.Errorf("WebSocket ended with %v, want close 1001 \"server stopping\"", err)
			}
			break
		}
		m := &cairnv1.SubscribeResponse{}
		if protojson.Unmarshal(b, m) == nil && m.GetClosing().GetReason() == "server stopping" {
			closingSeen = true
		}
	}
	if !closingSeen {
		t.Error("WebSocket: no closing message before the close")
	}
	wantStopping := func(what string, receive func() error) {
		t.Helper()
		for {
			err := receive()
			if err == nil {
				continue
			}
			if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "server stopping") {
				t.Errorf("%s ended with %v, want unavailable: server stopping", what, err)
			}
			return
		}
	}
	wantStopping("StreamEvents", func() error { _, err := events.Receive(); return err })
	wantStopping("Subscribe", func() error { _, err := rt.Receive(); return err })
	<-stopped
}

// serveOnce runs serve in-process and returns its error and stdout; a serve
// that starts after all is stopped at once.
func serveOnce(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out syncBuffer
	err := run(ctx, append([]string{"serve", "--log-level", "error"}, args...), &out, io.Discard, func(k string) string { return env[k] })
	return out.String(), err
}

// TestServeRefusesBusyPort: a port in use fails the start with that cause,
// before an operator key is generated or NATS started.
func TestServeRefusesBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	out, err := serveOnce(t, nil, "--data-dir", dir, "--http-addr", ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a busy port: %v", err)
	}
	if strings.Contains(out, "CAIRN_ADMIN_KEY") {
		t.Errorf("a key was generated and printed before the port was checked:\n%s", out)
	}
	for _, f := range []string{"admin.key", "master.key", "nats"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was created before the port was checked", f)
		}
	}
}

// TestServeRefusesUnwritableDataDir: a data directory (or a store in it)
// Cairn cannot write fails the start at once, naming it, instead of after
// the embedded NATS's 30 s timeout.
func TestServeRefusesUnwritableDataDir(t *testing.T) {
	env := map[string]string{"CAIRN_ADMIN_KEY": testAdminKey, "CAIRN_MASTER_KEY": clusterMasterKey}
	check := func(t *testing.T, dir, want string) {
		t.Helper()
		out, err := serveOnce(t, env, "--data-dir", dir, "--http-addr", "127.0.0.1:0")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("serve on %s: %v, want an error naming %q\n%s", dir, err, want, out)
		}
	}
	t.Run("under a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, filepath.Join(file, "data"), "data dir")
	})
	t.Run("a store that is not a directory", func(t *testing.T) {
		// What a store Cairn cannot write looks like to root, whom chmod
		// does not stop.
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "nats"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "nats", "jetstream"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, dir, filepath.Join(dir, "nats", "jetstream")+" is not writable")
	})
	t.Run("read-only", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes to read-only directories")
		}
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "nats"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "nats"), 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(filepath.Join(dir, "nats"), 0o700)
		check(t, dir, filepath.Join(dir, "nats")+" is not writable")
	})
}
