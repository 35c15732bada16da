package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect/v2"
)

// Defaults of the connection and body limits (docs/operations.md, Limits).
const (
	defaultMaxConnsPerAddr = 256
	defaultBodyReadTimeout = 30 * time.Second
	defaultMinBodyRate     = 1024 // bytes/s
)

// connLimitListener closes connections from an address that already holds
// max open ones: a client cannot pin the server's memory and descriptors
// with thousands of idle or slow connections. Trusted proxies speak for
// many clients and are exempt.
type connLimitListener struct {
	net.Listener
	max    int
	exempt []netip.Prefix
	mu     sync.Mutex
	open   map[netip.Addr]int
}

func limitConnsPerAddr(ln net.Listener, max int, exempt []netip.Prefix) net.Listener {
	if max <= 0 {
		return ln
	}
	return &connLimitListener{Listener: ln, max: max, exempt: exempt, open: map[netip.Addr]int{}}
}

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr != nil {
			return c, nil
		}
		addr := ap.Addr().Unmap()
		if l.exempted(addr) {
			return c, nil
		}
		l.mu.Lock()
		full := l.open[addr] >= l.max
		if !full {
			l.open[addr]++
		}
		l.mu.Unlock()
		if full {
			c.Close() // closed before any byte is read: nothing to answer
			continue
		}
		return &countedConn{Conn: c, release: func() { l.release(addr) }}, nil
	}
}

func (l *connLimitListener) exempted(a netip.Addr) bool {
	for _, p := range l.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l *connLimitListener) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[a]--; l.open[a] <= 0 {
		delete(l.open, a)
	}
}

// countedConn gives its slot back once, however often it is closed (a
// hijacked WebSocket connection is closed by its handler).
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// SyscallConn reaches the socket beneath: the realtime fan-out tries each
// write without blocking first (api's wsWriter).
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// errSlowBody ends a request whose body stalls or trickles.
var errSlowBody = errors.New("request body too slow")

// slowBody is a Connect error, so that handlers answer DeadlineExceeded
// with the reason rather than an internal error.
func slowBody(err error) error {
	return connect.NewError(connect.CodeDeadlineExceeded, err.Error()).WithCause(err)
}

// bodyDeadlines bounds how slowly a request body may arrive, without a
// whole-request ReadTimeout that would cut large uploads and long-lived
// streams: each read must bring bytes within idle (the read deadline moves
// forward as data arrives and is cleared at the body's end, so a stream
// answering for hours is not cut), and after the first idle period the
// body must average at least minRate bytes/s. Requests without a body
// (WebSocket upgrades, GETs) are untouched.
func bodyDeadlines(next http.Handler, idle time.Duration, minRate int64) http.Handler {
	if idle <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		b := &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: idle, minRate: minRate, start: time.Now()}
		r.Body = b
		// Also bounds the server's own drain of a body the handler answered
		// without reading (it drains before writing the answer).
		_ = b.rc.SetReadDeadline(time.Now().Add(idle))
		if r.ProtoMajor == 1 {
			w = &closeIfUnread{ResponseWriter: w, b: b}
		}
		next.ServeHTTP(w, r)
	})
}

// closeIfUnread answers "Connection: close" when the handler answers before
// reading the whole body: HTTP/1.1 would drain the rest to reuse the
// connection, and a drain that fails (a trickle past its deadline) leaves
// the rest to be parsed as the next request. (HTTP/2 resets the stream.)
type closeIfUnread struct {
	http.ResponseWriter
	b     *deadlineBody
	wrote bool
}

func (w *closeIfUnread) mark() {
	if !w.wrote {
		w.wrote = true
		if !w.b.done {
			w.Header().Set("Connection", "close")
		}
	}
}

func (w *closeIfUnread) WriteHeader(code int) { w.mark(); w.ResponseWriter.WriteHeader(code) }

func (w *closeIfUnread) Write(p []byte) (int, error) { w.mark(); return w.ResponseWriter.Write(p) }

// Flush: Connect requires an http.Flusher.
func (w *closeIfUnread) Flush() { w.mark(); _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (w *closeIfUnread) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type deadlineBody struct {
	io.ReadCloser
	rc         *http.ResponseController
	idle       time.Duration
	minRate    int64
	start      time.Time
	n          int64
	done, slow bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.slow {
		return 0, slowBody(errSlowBody)
	}
	// Not every transport supports it; then only the rate applies.
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	var ne net.Error
	switch elapsed := time.Since(b.start); {
	case errors.As(err, &ne) && ne.Timeout():
		b.slow = true
		return n, slowBody(fmt.Errorf("%w: no byte for %s", errSlowBody, b.idle))
	case err != nil:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case b.minRate > 0 && elapsed > b.idle && float64(b.n) < float64(b.minRate)*elapsed.Seconds():
		b.slow = true
		return n, slowBody(fmt.Errorf("%w: %d bytes in %s, less than %d bytes/s", errSlowBody, b.n, elapsed.Round(time.Millisecond), b.minRate))
	}
	return n, err
}
