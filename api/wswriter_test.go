package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsPair serves one WebSocket whose writer handle gets, and returns the
// client's connection.
func wsPair(t *testing.T, limit int, handle func(conn *websocket.Conn, w *wsWriter)) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		tap := &wsTap{ResponseWriter: rw, timeout: 10 * time.Second, limit: limit}
		conn, err := websocket.Accept(tap, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer tap.w.close()
		conn.CloseRead(context.Background())
		handle(conn, tap.w)
	}))
	t.Cleanup(srv.Close)
	conn, _, err := websocket.Dial(context.Background(), strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

func payload(i, n int) []byte {
	return append([]byte(fmt.Sprintf("%06d:", i)), bytes.Repeat([]byte{'a' + byte(i%26)}, n)...)
}

// TestWSWriterFrames: frames of each length encoding, queued by Send and
// Kick or by Write, arrive whole and in order at a coder/websocket client,
// followed by the library's own close frame.
func TestWSWriterFrames(t *testing.T) {
	sizes := []int{0, 100, 125, 126, 1000, 65535, 65536, 200_000}
	conn := wsPair(t, 64, func(conn *websocket.Conn, w *wsWriter) {
		for i, n := range sizes {
			if i%2 == 0 {
				// Queued and kicked in one call, or in two.
				if !w.Send(wsTextFrame(payload(i, n)), i%4 == 0) {
					t.Error("Send refused with room in the queue")
				}
				w.Kick()
			} else if err := w.Write(wsTextFrame(payload(i, n))); err != nil {
				t.Error(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Error(err)
		}
		_ = conn.Close(websocket.StatusNormalClosure, "done")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, n := range sizes {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ != websocket.MessageText || !bytes.Equal(b, payload(i, n)) {
			t.Fatalf("frame %d: %d bytes of type %v, want %d", i, len(b), typ, len(payload(i, n)))
		}
	}
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after the frames: %v, want a normal close", err)
	}
}

// TestWSWriterRun: a run of frames queued by Send and written by one Kick
// (one writev, which the socket may take only part of, the rest going to
// the writer's goroutine) arrives whole and in order, twice over.
func TestWSWriterRun(t *testing.T) {
	sizes := []int{0, 100, 125, 126, 1000, 65535, 65536, 200_000, 3, 70_000, 10}
	conn := wsPair(t, 64, func(conn *websocket.Conn, w *wsWriter) {
		for round := range 2 {
			for i, n := range sizes {
				if !w.Send(wsTextFrame(payload(round*len(sizes)+i, n)), false) {
					t.Error("Send refused with room in the queue")
				}
			}
			w.Kick()
		}
		if err := w.Flush(); err != nil {
			t.Error(err)
		}
		_ = conn.Close(websocket.StatusNormalClosure, "done")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for round := range 2 {
		for i, n := range sizes {
			j := round*len(sizes) + i
			typ, b, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("frame %d: %v", j, err)
			}
			if typ != websocket.MessageText || !bytes.Equal(b, payload(j, n)) {
				t.Fatalf("frame %d: %d bytes of type %v, want %d", j, len(b), typ, len(payload(j, n)))
			}
		}
	}
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after the frames: %v, want a normal close", err)
	}
}

// TestWSWriterSlowReader: with a client that does not read, Send never
// blocks and refuses once the queue is full; when the client reads, every
// frame queued (some written partly by the non-blocking attempt) arrives
// whole and in order.
func TestWSWriterSlowReader(t *testing.T) {
	const limit = 8
	sent := make(chan int, 1)
	conn := wsPair(t, limit, func(conn *websocket.Conn, w *wsWriter) {
		n := 0
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); n++ {
			if !w.Send(wsTextFrame(payload(n, 64<<10)), true) {
				break
			}
		}
		sent <- n
		if err := w.Flush(); err != nil {
			t.Error(err)
		}
		_ = conn.Close(websocket.StatusNormalClosure, "")
	})
	var n int
	select {
	case n = <-sent:
	case <-time.After(time.Minute):
		t.Fatal("Send blocked")
	}
	if n < limit {
		t.Fatalf("only %d frames accepted", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d of %d: %v", i, n, err)
		}
		if !bytes.Equal(b, payload(i, 64<<10)) {
			t.Fatalf("frame %d: %.10q…, want %.10q…", i, b, payload(i, 64<<10))
		}
	}
	t.Logf("%d frames of 64 KiB queued before the queue of %d was full", n, limit)
}
