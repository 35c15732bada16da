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
	"unsafe"

	"golang.org/x/sys/unix"
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

// wsWriter writes one connection's frames in order. The fan-out queues a
// frame with Send, which never blocks, and once it has queued what it had
// (one event, or a run of them arriving together) kicks it (Send's kick, or
// Kick): with the socket idle, the kick writes the whole queue in one
// non-blocking write or writev from the fan-out's goroutine, so an idle
// subscriber costs one system call per run of events and no goroutine
// switch. What the socket does not take stays queued for the connection's
// goroutine (started the first time it is needed), which writes everything
// queued in one writev under one write deadline.
type wsWriter struct {
	// What a Send and a kick touch comes first, and a short queue and its
	// iovec live in the struct: with a thousand sockets written once per
	// event, each separate allocation is a cache miss per write.
	mu      sync.Mutex
	busy    bool     // the goroutine owns the socket's writes
	started bool     // the goroutine runs
	waiting int      // goroutines in changed.Wait
	limit   int      // how many frames Send may leave queued; past it the subscriber is too far behind
	queue   [][]byte // frames not written yet; the first from off on
	off     int
	queued  uint64
	flushed uint64
	err     error
	// fd is the socket's descriptor for the fan-out's non-blocking writes
	// (-1: the goroutine does every write). It is written to only under
	// mu and while err is nil, and the socket is closed only after err
	// is set (close, writeQueued), so it never names another file.
	fd     int
	iov    []unix.Iovec // tryWrite's, reused
	queue0 [4][]byte
	iov0   [4]unix.Iovec

	nc      net.Conn
	timeout time.Duration
	changed *sync.Cond // flushed, queue length or err changed
	spare   [][]byte
	wake    chan struct{}
	done    chan struct{}
}

func newWSWriter(nc net.Conn, timeout time.Duration, limit int) *wsWriter {
	w := &wsWriter{nc: nc, timeout: timeout, limit: limit, fd: -1, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.changed = sync.NewCond(&w.mu)
	w.queue, w.iov = w.queue0[:0], w.iov0[:0]
	if sc, ok := nc.(syscall.Conn); ok {
		// The descriptor itself, not RawConn.Write: that locks and
		// checks the runtime's poll descriptor, two more cache misses
		// per write on an idle connection; our own lock and err do that
		// job here.
		if raw, err := sc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { w.fd = int(fd) })
		}
	}
	return w
}

// Send queues frame and, with kick, starts writing the queue (as Kick);
// false when the queue is full (the frame is not queued). It never
// blocks. Frames after a failed write are dropped: the connection is
// ending.
func (w *wsWriter) Send(frame []byte, kick bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return true
	}
	if len(w.queue) >= w.limit {
		if kick {
			w.kick()
		}
		return false
	}
	w.queued++
	w.queue = append(w.queue, frame)
	if kick {
		w.kick()
	}
	return true
}

// Kick starts writing what Send queued, without blocking.
func (w *wsWriter) Kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kick()
}

// Write queues frame, waiting while the queue is full, and starts writing
// it; the error is the connection's.
func (w *wsWriter) Write(frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && len(w.queue) >= w.limit {
		w.wait()
	}
	if w.err != nil {
		return w.err
	}
	w.queued++
	w.queue = append(w.queue, frame)
	w.kick()
	return nil
}

// Flush waits until everything queued is written.
func (w *wsWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && w.flushed < w.queued {
		w.wait()
	}
	if w.flushed < w.queued {
		return w.err
	}
	return nil
}

// kick writes the queue now if the socket takes it, else hands the rest
// to the goroutine (w.mu held).
func (w *wsWriter) kick() {
	if w.busy || len(w.queue) == 0 || w.err != nil {
		return
	}
	if w.fd >= 0 {
		w.tryWrite()
		if len(w.queue) == 0 {
			return
		}
	}
	w.busy = true
	if !w.started {
		// Most connections never need it: their socket takes every
		// write at once.
		w.started = true
		go w.loop()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// tryWrite writes what the socket takes of the queue now, without
// waiting, and drops the frames written from it (w.mu held).
func (w *wsWriter) tryWrite() {
	n := w.off
	written := w.writeNow(w.queue[:min(len(w.queue), 1024)], w.off) // IOV_MAX
	// Drop the frames written whole; keep the offset into the next.
	n += written
	k := 0
	for k < len(w.queue) && n >= len(w.queue[k]) {
		n -= len(w.queue[k])
		k++
	}
	w.off = n
	w.flushed += uint64(k)
	if k == len(w.queue) {
		clear(w.queue)
		w.queue, w.off = w.queue[:0], 0
	} else if k > 0 {
		rest := copy(w.queue, w.queue[k:])
		clear(w.queue[rest:])
		w.queue = w.queue[:rest]
	}
	if k > 0 && w.waiting > 0 {
		// Only then: the condition is another allocation, another cache
		// line to touch per write.
		w.changed.Broadcast()
	}
}

// wait waits for changed (w.mu held).
func (w *wsWriter) wait() {
	w.waiting++
	w.changed.Wait()
	w.waiting--
}

// writeNow makes one non-blocking write(2) or writev(2) of frames, the
// first from off on, and returns how many bytes the socket took (w.mu
// held). The system call is raw: the socket never blocks it, and the
// runtime's bookkeeping for a call that may block is a sizeable part of
// a small frame's write. The iovec array is the writer's, so a write
// allocates nothing.
func (w *wsWriter) writeNow(frames [][]byte, off int) int {
	w.iov = w.iov[:0]
	for i, f := range frames {
		if i == 0 {
			f = f[off:]
		}
		if len(f) > 0 {
			v := unix.Iovec{Base: &f[0]}
			v.SetLen(len(f))
			w.iov = append(w.iov, v)
		}
	}
	took := 0
	for len(w.iov) > 0 {
		var r uintptr
		var errno syscall.Errno
		if len(w.iov) == 1 {
			r, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(w.fd), uintptr(unsafe.Pointer(w.iov[0].Base)), uintptr(w.iov[0].Len))
		} else {
			r, _, errno = syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(w.fd), uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
		}
		if errno == 0 {
			took = int(r)
		}
		if errno != syscall.EINTR {
			// Done either way: what is left stays queued for the
			// goroutine, whose blocking write waits for room or reports
			// the error.
			break
		}
	}
	clear(w.iov) // no pointers into frames once written
	return took
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
	// Copied: the library reuses p.
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
