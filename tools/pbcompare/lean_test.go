package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLeanTransport drives a real HTTP server with the lean client: bodies
// both ways, Content-Length and chunked answers, headers, keep-alive reuse,
// and a body left unread closing its connection instead of poisoning the
// next call.
func TestLeanTransport(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-Auth", r.Header.Get("Authorization"))
			w.Write(b)
		case "/chunked":
			// Above net/http's 2 KiB buffer: sent chunked.
			for range 100 {
				w.Write([]byte(strings.Repeat("x", 100)))
				w.(http.Flusher).Flush()
			}
		case "/fail":
			http.Error(w, "no such thing", http.StatusNotFound)
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	hc, closeIdle := newClient(4, true)
	defer closeIdle()
	ctx := context.Background()
	for i := range 20 {
		var out map[string]any
		if err := call(ctx, hc, http.MethodPost, srv.URL+"/echo", "key-1", map[string]any{"i": i}, &out); err != nil {
			t.Fatal(err)
		}
		if out["i"] != float64(i) {
			t.Fatalf("call %d echoed %v", i, out)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential calls opened %d connections, want 1 (keep-alive)", n)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/echo", nil)
	req.Header.Set("Authorization", "Bearer t")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if got := res.Header.Get("X-Auth"); got != "Bearer t" {
		t.Fatalf("the server saw Authorization %q", got)
	}

	res, err = hc.Get(srv.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || len(b) != 10_000 || len(res.TransferEncoding) == 0 {
		t.Fatalf("chunked answer: %d bytes, %v, transfer encoding %v", len(b), err, res.TransferEncoding)
	}

	// An answer closed unread: its connection goes, the next call works.
	before := conns.Load()
	res, err = hc.Get(srv.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := call(ctx, hc, http.MethodPost, srv.URL+"/echo", "", []byte(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if conns.Load() != before+1 {
		t.Fatalf("after an unread answer: %d new connections, want 1", conns.Load()-before)
	}

	// An answer that closes its connection: the next call dials anew
	// instead of writing to the closed one (the first of three goes on the
	// idle connection of the call before, the other two dial).
	before = conns.Load()
	for range 3 {
		if err := call(ctx, hc, http.MethodGet, srv.URL+"/close", "", nil, nil); err != nil {
			t.Fatalf("after Connection: close: %v", err)
		}
	}
	if conns.Load() != before+2 {
		t.Fatalf("three calls answered Connection: close opened %d connections, want 2", conns.Load()-before)
	}

	err = call(ctx, hc, http.MethodGet, srv.URL+"/fail", "", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "404") || !bytes.Contains([]byte(err.Error()), []byte("no such thing")) {
		t.Fatalf("a 404 answer: %v", err)
	}
}
