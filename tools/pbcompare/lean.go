package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// leanTransport is the load generator's HTTP/1.1 keep-alive client for
// -lean-client: each request borrows an idle connection (or dials one),
// writes the request itself and parses the answer with http.ReadResponse,
// on the caller's goroutine. net/http's Transport runs two goroutines per
// connection and hands every request and answer between them: with the 64
// clients on the servers' cores it cost 46 µs of CPU per get, about as
// much as the call cost Cairn, so the unpinned ratios measured the
// generator too. Both servers meet the same client; only HTTP/1.1 with
// Content-Length or chunked answers is spoken, which is all they send.
type leanTransport struct {
	idle chan *leanConn
}

type leanConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// leanTimeout bounds one call: a server that stops answering fails the
// load instead of hanging it.
const leanTimeout = time.Minute

func newLeanTransport(clients int) *leanTransport {
	return &leanTransport{idle: make(chan *leanConn, clients)}
}

func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return nil, fmt.Errorf("lean client: %s: only http", req.URL)
	}
	var lc *leanConn
	select {
	case lc = <-t.idle:
	default:
		c, err := net.Dial("tcp", req.URL.Host)
		if err != nil {
			return nil, err
		}
		lc = &leanConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 4<<10)}
	}
	res, err := lc.roundTrip(req)
	if err != nil {
		lc.c.Close()
		return nil, err
	}
	res.Body = &leanBody{body: res.Body, lc: lc, t: t, closing: res.Close}
	return res, nil
}

func (lc *leanConn) roundTrip(req *http.Request) (*http.Response, error) {
	if err := lc.c.SetDeadline(time.Now().Add(leanTimeout)); err != nil {
		return nil, err
	}
	w := lc.bw
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.URL.Host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if req.Body != nil {
		if req.ContentLength < 0 {
			return nil, errors.New("lean client: a body of unknown length")
		}
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n\r\n")
		if _, err := io.Copy(w, req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	} else {
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return http.ReadResponse(lc.br, req)
}

// leanBody gives its connection back once the answer was read to its end
// (closes it otherwise: what is left of the answer would be read as the
// next one), unless the server said it closes it (Connection: close).
type leanBody struct {
	body    io.ReadCloser
	lc      *leanConn
	t       *leanTransport
	eof     bool
	closing bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *leanBody) Close() error {
	if b.lc == nil {
		return nil
	}
	lc := b.lc
	b.lc = nil
	b.body.Close()
	if !b.eof || b.closing {
		return lc.c.Close()
	}
	select {
	case b.t.idle <- lc:
	default:
		lc.c.Close()
	}
	return nil
}

// closeIdle closes the idle connections.
func (t *leanTransport) closeIdle() {
	for {
		select {
		case lc := <-t.idle:
			lc.c.Close()
		default:
			return
		}
	}
}
