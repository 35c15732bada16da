// Package unary serves the Connect protocol's plain unary calls (POST,
// application/proto or application/json, a small body of known length, no
// request compression) of chosen procedures straight into a
// connect.Server — the same interceptors and handlers — without
// connecthttp's per-call protocol negotiation, wrappers and copies. The
// answer is what connecthttp would send: the same status, headers and body
// (TestAgreesWithConnectHTTP). Every request it does not handle — another
// method, content type, encoding or protocol, a larger or streamed body, an
// unusual header value — goes to the fallback handler unchanged.
//
// It never reads the environment and holds no global state.
package unary

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
)

// Header names and values of the Connect unary protocol.
const (
	headerContentType     = "Content-Type"
	headerContentEncoding = "Content-Encoding"
	headerAcceptEncoding  = "Accept-Encoding"
	headerTimeout         = "Connect-Timeout-Ms"
	headerVersion         = "Connect-Protocol-Version"
	trailerPrefix         = "Trailer-"
	contentTypeProto      = "application/proto"
	contentTypeJSON       = "application/json"
)

// protocolHeaders are the headers a handler's response metadata may not
// set (connecthttp's list: they are the protocol's own).
var protocolHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Content-Encoding": true, "Trailer": true, "Date": true,
	"Accept-Encoding": true, "Trailer-": true, "Connect-Content-Encoding": true, "Connect-Accept-Encoding": true,
	"Connect-Timeout-Ms": true, "Connect-Protocol-Version": true,
	"Grpc-Encoding": true, "Grpc-Accept-Encoding": true, "Grpc-Timeout": true, "Grpc-Status": true,
	"Grpc-Message": true, "Grpc-Status-Details-Bin": true,
}

// Options configure a Transport; they must match the connecthttp options
// the fallback was mounted with, or answers differ.
type Options struct {
	// Codecs are the server's codecs; "proto" and "json" are served.
	Codecs []connect.Codec
	// Compressors are the server's compressors (connecthttp's default:
	// gzip), in preference order.
	Compressors []connect.Compressor
	// CompressMinBytes is connecthttp.WithCompressMinBytes.
	CompressMinBytes int
	// MaxBodyBytes is the largest request body served here (by its
	// Content-Length); larger ones go to the fallback, which owns the
	// limits and their errors. It must be below the fallback's read limit.
	MaxBodyBytes int64
}

// Transport serves plain unary calls of a connect.Server.
type Transport struct {
	server      *connect.Server
	proto, json connect.Codec
	compressors map[string]connect.Compressor
	acceptNames string
	minCompress int
	maxBody     int64
	errors      *connecthttp.ErrorWriter
	buffers     sync.Pool
	served      atomic.Uint64
}

// Served is how many calls the Transport has served (not handed on).
func (t *Transport) Served() uint64 { return t.served.Load() }

// New returns a Transport calling server.
func New(server *connect.Server, opts Options) *Transport {
	t := &Transport{server: server, compressors: map[string]connect.Compressor{}, minCompress: opts.CompressMinBytes,
		maxBody: opts.MaxBodyBytes, errors: connecthttp.NewErrorWriter()}
	for _, c := range opts.Codecs {
		switch c.Name() {
		case connect.CodecNameProto:
			t.proto = c
		case connect.CodecNameJSON:
			t.json = c
		}
	}
	var names []string
	for _, c := range opts.Compressors {
		if _, dup := t.compressors[c.Name()]; !dup {
			t.compressors[c.Name()] = c
			names = append(names, c.Name())
		}
	}
	t.acceptNames = strings.Join(names, ",")
	t.buffers.New = func() any { return new(bytes.Buffer) }
	return t
}

// Handler serves spec's plain unary calls and hands every other request
// to fallback. spec must be a unary procedure registered on the server.
func (t *Transport) Handler(spec connect.Spec, fallback http.Handler) http.Handler {
	if spec.StreamType != connect.StreamTypeUnary {
		return fallback
	}
	return &procedure{t: t, spec: spec, fallback: fallback}
}

type procedure struct {
	t        *Transport
	spec     connect.Spec
	fallback http.Handler
}

func (p *procedure) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := p.t
	h := r.Header
	var codec connect.Codec
	contentType := first(h, headerContentType)
	switch contentType {
	case contentTypeProto:
		codec = t.proto
	case contentTypeJSON:
		codec = t.json
	}
	timeout, hasTimeout, timeoutOK := parseTimeout(first(h, headerTimeout))
	if codec == nil || r.Method != http.MethodPost || r.ContentLength < 0 || r.ContentLength > t.maxBody || !timeoutOK ||
		len(h[headerContentEncoding]) > 1 || (first(h, headerContentEncoding) != "" && first(h, headerContentEncoding) != connect.CompressionNameIdentity) ||
		(first(h, headerVersion) != "" && first(h, headerVersion) != "1") || r.URL.RawQuery != "" {
		p.fallback.ServeHTTP(w, r)
		return
	}
	t.served.Add(1)
	ctx := r.Context()
	if hasTimeout { // 0 too: a call already out of time, as connecthttp makes it
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// connecthttp hands interceptors the request's headers with Host set.
	h["Host"] = []string{r.Host}
	responseCompression := connect.CompressionNameIdentity
	if accept := first(h, headerAcceptEncoding); accept != "" {
		for name := range strings.FieldsFuncSeq(accept, func(c rune) bool { return c == ',' || c == ' ' }) {
			if _, ok := t.compressors[name]; ok {
				responseCompression = name
				break
			}
		}
	}
	header := w.Header()
	header[headerContentType] = []string{contentType}
	header[headerAcceptEncoding] = []string{t.acceptNames}

	info := &connect.CallInfo{Spec: p.spec, PeerAddr: r.RemoteAddr, Protocol: connect.ProtocolNameConnect, Codec: codec.Name(),
		RequestEncoding: connect.CompressionNameIdentity, ResponseEncoding: responseCompression}
	req := info.RequestHeader()
	for k, v := range h {
		req.SetValues(k, v)
	}
	s := &stream{t: t, ctx: ctx, w: w, r: r, info: info, codec: codec, compression: responseCompression}
	err := t.server.Call(ctx, p.spec.Procedure, info, s)
	s.flushHeader()
	if err == nil || s.wrote {
		return
	}
	s.mergeTrailer()
	_ = t.errors.Write(w, r, scrub(err))
}

// scrub is what connecthttp lets a caller see of a handler's error: a
// local *connect.Error whole; a remote one as a bare internal error; any
// other as a bare unknown (canceled, deadline exceeded) error.
func scrub(err error) error {
	if ce, ok := errors.AsType[*connect.Error](err); ok && ce != nil {
		if ce.IsRemote() {
			return connect.NewError(connect.CodeInternal, "").WithCause(err)
		}
		return err
	}
	code := connect.CodeUnknown
	switch {
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	}
	return connect.NewError(code, "").WithCause(err)
}

// stream is one call's connect.ServerStream, as connecthttp's unary
// handler stream behaves.
type stream struct {
	t           *Transport
	ctx         context.Context
	w           http.ResponseWriter
	r           *http.Request
	info        *connect.CallInfo
	codec       connect.Codec
	compression string

	received, headerFlushed, wrote bool
}

func (s *stream) Receive(msg any) error {
	if s.received {
		return io.EOF
	}
	s.received = true
	data := s.t.buffers.Get().(*bytes.Buffer)
	defer s.t.putBuffer(data)
	if _, err := data.ReadFrom(s.r.Body); err != nil {
		return readError(s.ctx, err)
	}
	size := data.Len()
	if err := s.codec.UnmarshalRead(s.ctx, data, msg); err != nil {
		return connect.Errorf(connect.CodeInvalidArgument, "unmarshal message: %s", err).WithCause(err)
	}
	s.info.ReceiveStats = connect.MessageStats{Size: size}
	return nil
}

// SendHeaders does nothing: a unary answer's status says how it ended, so
// its headers wait for the message or the error.
func (s *stream) SendHeaders() error { return nil }

func (s *stream) Send(msg any) error {
	s.flushHeader()
	s.mergeTrailer()
	if msg == nil {
		s.wrote = true
		return nil
	}
	buf := s.t.buffers.Get().(*bytes.Buffer)
	defer s.t.putBuffer(buf)
	if err := s.codec.MarshalWrite(s.ctx, buf, msg); err != nil {
		return connect.Errorf(connect.CodeInternal, "marshal message: %s", err).WithCause(err)
	}
	size, compressed := buf.Len(), 0
	out := buf
	if c := s.t.compressors[s.compression]; c != nil && size >= s.t.minCompress {
		zbuf := s.t.buffers.Get().(*bytes.Buffer)
		defer s.t.putBuffer(zbuf)
		if err := compress(c, zbuf, buf); err != nil {
			return err
		}
		out, compressed = zbuf, zbuf.Len()
		s.w.Header()[headerContentEncoding] = []string{s.compression}
	}
	s.wrote = true
	if _, err := s.w.Write(out.Bytes()); err != nil {
		return writeError(err)
	}
	s.info.SendStats = connect.MessageStats{Size: size, CompressedSize: compressed}
	return nil
}

// flushHeader copies the call's response headers onto the answer, once.
func (s *stream) flushHeader() {
	if s.headerFlushed {
		return
	}
	s.headerFlushed = true
	h := s.w.Header()
	for k, v := range s.info.ResponseHeader().All() {
		if !protocolHeaders[k] {
			h[k] = append(h[k], v...)
		}
	}
}

// mergeTrailer sends the call's trailers as Trailer- headers (the unary
// protocol has no trailers of its own).
func (s *stream) mergeTrailer() {
	h := s.w.Header()
	for k, v := range s.info.ResponseTrailer().All() {
		if !protocolHeaders[k] {
			h[trailerPrefix+k] = v
		}
	}
}

func (t *Transport) putBuffer(b *bytes.Buffer) {
	if b.Cap() > 64<<10 {
		return // a rare large answer is not kept for every call
	}
	b.Reset()
	t.buffers.Put(b)
}

func compress(c connect.Compressor, dst, src *bytes.Buffer) error {
	w, err := c.Compress(dst)
	if err != nil {
		return connect.Errorf(connect.CodeUnknown, "get compressor: %s", err).WithCause(err)
	}
	if _, err := src.WriteTo(w); err != nil {
		_ = w.Close()
		return connect.Errorf(connect.CodeInternal, "compress: %s", err).WithCause(err)
	}
	if err := w.Close(); err != nil {
		return connect.Errorf(connect.CodeInternal, "compress: %s", err).WithCause(err)
	}
	return nil
}

// parseTimeout reads Connect-Timeout-Ms; ok is false for a value this
// path leaves to connecthttp (a refusal, or a sign it accepts), so the
// answer is its own.
func parseTimeout(v string) (d time.Duration, present, ok bool) {
	if v == "" {
		return 0, false, true
	}
	if len(v) > 10 {
		return 0, false, false
	}
	var ms int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false, false
		}
		ms = ms*10 + int64(v[i]-'0')
	}
	return time.Duration(ms) * time.Millisecond, true, true
}

// readError is connecthttp's error for a request body that could not be
// read (a client gone, a body shorter than its Content-Length).
func readError(ctx context.Context, err error) error {
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(ctx.Err(), context.Canceled):
		return connect.NewError(connect.CodeCanceled, err.Error()).WithCause(err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err.Error()).WithCause(err)
	}
	return connect.Errorf(connect.CodeUnknown, "read message: %s", err).WithCause(err)
}

// writeError is connecthttp's error for an answer that could not be
// written (the client is gone).
func writeError(err error) error {
	if errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeCanceled, err.Error()).WithCause(err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, err.Error()).WithCause(err)
	}
	return connect.Errorf(connect.CodeUnknown, "write message: %s", err).WithCause(err)
}

func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
