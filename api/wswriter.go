package api

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"
)

// A realtime WebSocket's writes bypass the WebSocket library: a server's
// frames carry no mask, so an event's frame is encoded once and the same
// bytes are written to every socket it goes to. coder/websocket still does
// the handshake, the reads and the control frames (ping replies, close);
// those reach the socket through the same writer, so frames never
// interleave.

// wsTextFrame returns payload as one final, unmasked WebSocket text frame.
func wsTextFrame(payload []byte) []byte {
	n := len(payload)
	var b []byte
	switch {
	case n < 126:
		b = make([]byte, 2, 2+n)
		b[1] = byte(n)
	case n <= 0xFFFF:
		b = make([]byte, 4, 4+n)
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = make([]byte, 10, 10+n)
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[0] = 0x81 // FIN, text
	return append(b, payload...)
}

// errWSClosed is a write to a connection that ended.
var errWSClosed = errors.New("websocket connection closed")

// wsWriter writes one connection's frames in order. Send queues a frame
// without ever blocking (the fan-out calls it for many sockets in turn):
// with nothing queued it first tries the socket once, non-blocking, so an
// idle subscriber costs one system call and no goroutine switch. What the
// socket does not take waits in the queue; a goroutine per connection
// writes everything queued in one writev under one write deadline, so a
// subscriber that fell behind catches up in few system calls.
type wsWriter struct {
	nc      net.Conn
	raw     syscall.RawConn // nil: every frame goes through the queue
	timeout time.Duration
	// limit is how many frames Send may leave queued; past it the
	// subscriber is too far behind.
	limit int

	mu      sync.Mutex
	changed *sync.Cond // flushed, queue length or err changed
	queue   [][]byte   // frames not written yet; the first from off on
	off     int
	spare   [][]byte
	busy    bool // the goroutine owns the socket's writes
	queued  uint64
	flushed uint64
	err     error
	wake    chan struct{}
	done    chan struct{}
}

func newWSWriter(nc net.Conn, timeout time.Duration, limit int) *wsWriter {
	w := &wsWriter{nc: nc, timeout: timeout, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.changed = sync.NewCond(&w.mu)
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	go w.loop()
	return w
}

// Send queues frame; false when the queue is full (the frame is not
// queued). It never blocks. Frames after a failed write are dropped: the
// connection is ending.
func (w *wsWriter) Send(frame []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return true
	}
	if len(w.queue) >= w.limit {
		return false
	}
	w.add(frame)
	return true
}

// Write queues frame, waiting while the queue is full; the error is the
// connection's.
func (w *wsWriter) Write(frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && len(w.queue) >= w.limit {
		w.changed.Wait()
	}
	if w.err != nil {
		return w.err
	}
	w.add(frame)
	return nil
}

// Flush waits until everything queued is written.
func (w *wsWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && w.flushed < w.queued {
		w.changed.Wait()
	}
	if w.flushed < w.queued {
		return w.err
	}
	return nil
}

// add queues frame (w.mu held).
func (w *wsWriter) add(frame []byte) {
	w.queued++
	if !w.busy && len(w.queue) == 0 && w.raw != nil {
		n := w.tryWrite(frame)
		if n == len(frame) {
			w.flushed++
			return
		}
		w.off = n
	}
	w.queue = append(w.queue, frame)
	if !w.busy {
		w.busy = true
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// tryWrite writes what the socket takes of p now, without waiting.
func (w *wsWriter) tryWrite(p []byte) int {
	n := 0
	_ = w.raw.Write(func(fd uintptr) bool {
		var err error
		for n < len(p) {
			var m int
			m, err = syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			if err != nil && err != syscall.EINTR {
				break
			}
		}
		// Done either way: what is left goes to the queue, whose
		// blocking write waits for room or reports the error.
		return true
	})
	return n
}

func (w *wsWriter) loop() {
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		for w.writeQueued() {
		}
	}
}

// writeQueued writes what is queued; false once nothing is, or the
// connection failed.
func (w *wsWriter) writeQueued() bool {
	w.mu.Lock()
	if len(w.queue) == 0 || w.err != nil {
		w.busy = false
		w.changed.Broadcast()
		w.mu.Unlock()
		return false
	}
	batch, off := w.queue, w.off
	w.queue, w.off, w.spare = w.spare[:0], 0, nil
	w.changed.Broadcast() // room in the queue
	w.mu.Unlock()

	// WriteTo consumes bufs' elements, which are batch's: cleared below.
	bufs := net.Buffers(batch)
	bufs[0] = bufs[0][off:]
	err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	if err == nil {
		_, err = bufs.WriteTo(w.nc)
	}
	clear(batch)
	w.mu.Lock()
	w.spare = batch[:0]
	w.flushed += uint64(len(batch))
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("websocket write: %w", err)
	}
	w.changed.Broadcast()
	w.mu.Unlock()
	if err != nil {
		// A write that timed out left a partial frame: nothing more may
		// follow it.
		_ = w.nc.Close()
		return false
	}
	return true
}

// close stops the writer; queued frames are dropped.
func (w *wsWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = errWSClosed
		close(w.done)
	}
	w.changed.Broadcast()
}

// wsTap hands coder/websocket a connection whose writes go through a
// wsWriter, which the handler then uses for its own frames.
type wsTap struct {
	http.ResponseWriter
	timeout time.Duration
	limit   int
	w       *wsWriter
}

func (t *wsTap) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *wsTap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(t.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	t.w = newWSWriter(nc, t.timeout, t.limit)
	c := &wsTapConn{Conn: nc, w: t.w}
	return c, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(c)), nil
}

// wsTapConn is the connection coder/websocket sees: it writes only control
// frames (each flushed in one Write), which queue behind the data frames.
type wsTapConn struct {
	net.Conn
	w *wsWriter
}

func (c *wsTapConn) Write(p []byte) (int, error) {
	if err := c.w.Write(slices.Clone(p)); err != nil {
		return 0, err
	}
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsTapConn) Close() error {
	c.w.close()
	return c.Conn.Close()
}
