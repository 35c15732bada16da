package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/oklog/ulid/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
)

// One log line per request: the HTTP wrapper (observe) owns the request id
// and writes the line once the handler is done, so it knows the status and
// both byte counts; the Connect interceptor and the authentication only fill
// in what they learn (procedure, code, caller, project). One writer of the
// line means a Connect call is never logged twice.

// requestRecord is what one request's log line says.
type requestRecord struct {
	mu sync.Mutex
	// route is the Connect procedure, the mux pattern of a plain route, or
	// what the edge served (site, function): never the raw path, whose ids
	// would make every line unique.
	route   string
	code    string // the Connect code of an RPC ("ok" on success)
	project string
	caller  access.Principal
	known   bool // caller was authenticated
	traceID trace.TraceID
}

type recordKey struct{}

func recordOf(ctx context.Context) *requestRecord {
	r, _ := ctx.Value(recordKey{}).(*requestRecord)
	return r
}

// noteCaller records who the request was authenticated as.
func noteCaller(ctx context.Context, p access.Principal) {
	if rec := recordOf(ctx); rec != nil {
		rec.mu.Lock()
		rec.caller, rec.known = p, true
		if p.Project != "" {
			rec.project = p.Project
		}
		rec.mu.Unlock()
	}
}

// noteProject records the project a request acts on (an operator's call
// names it in its message).
func noteProject(ctx context.Context, project string) {
	if rec := recordOf(ctx); rec != nil && domain.ValidProjectID(project) {
		rec.mu.Lock()
		rec.project = project
		rec.mu.Unlock()
	}
}

// noteRoute records what served the request, unless something more precise
// (an RPC's procedure) already did.
func noteRoute(ctx context.Context, route, project string) {
	if rec := recordOf(ctx); rec != nil {
		rec.mu.Lock()
		if rec.route == "" {
			rec.route = route
		}
		if rec.project == "" && domain.ValidProjectID(project) {
			rec.project = project
		}
		rec.mu.Unlock()
	}
}

// saneRequestID accepts a client's X-Request-Id that is safe to log and to
// store as an event's correlation id.
func saneRequestID(id string) bool {
	return id != "" && len(id) <= 128 && printable(id)
}

// observe gives every request an id (the client's X-Request-Id when sane,
// else a new ULID), answers it in X-Request-Id, and logs one line when the
// request is done.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(headerRequestID)
		if !saneRequestID(id) {
			id = ulid.Make().String()
			// writeMeta reads the header: the id becomes the events'
			// correlation id.
			r.Header.Set(headerRequestID, id)
		}
		w.Header().Set(headerRequestID, id)
		ctx := r.Context()
		if !s.logger.Enabled(ctx, s.reqLevel) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &requestRecord{}
		rw := &recordingWriter{ResponseWriter: w}
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		next.ServeHTTP(rw, r.WithContext(context.WithValue(ctx, recordKey{}, rec)))

		rec.mu.Lock()
		defer rec.mu.Unlock()
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		route := rec.route
		switch {
		case route != "":
		case r.Method == http.MethodOptions:
			route = "preflight" // answered by CORS before any route
		default:
			route = "unmatched"
		}
		attrs := make([]slog.Attr, 0, 12)
		attrs = append(attrs, slog.String("route", route), slog.String("method", r.Method), slog.Int("status", status))
		if rec.code != "" {
			attrs = append(attrs, slog.String("code", rec.code))
		}
		if rec.project != "" {
			attrs = append(attrs, slog.String("project", rec.project))
		}
		attrs = append(attrs, callerAttrs(rec)...)
		var in int64
		if body != nil {
			in = body.n
		}
		attrs = append(attrs, slog.Duration("duration", time.Since(start)), slog.Int64("bytes_in", in), slog.Int64("bytes_out", rw.bytes),
			slog.String("request_id", id))
		if rec.traceID.IsValid() {
			attrs = append(attrs, slog.String("trace_id", rec.traceID.String()))
		}
		s.logger.LogAttrs(ctx, s.reqLevel, "request", attrs...)
	})
}

// callerAttrs names the caller: its kind and id, never a credential.
func callerAttrs(rec *requestRecord) []slog.Attr {
	if !rec.known {
		return []slog.Attr{slog.String("caller", "none")}
	}
	switch rec.caller.Kind {
	case access.Operator, access.Member:
		if rec.caller.ID != "" {
			return []slog.Attr{slog.String("caller", "operator"), slog.String("caller_id", rec.caller.ID)}
		}
		return []slog.Attr{slog.String("caller", "operator")}
	case access.APIKey:
		return []slog.Attr{slog.String("caller", "key"), slog.String("caller_id", rec.caller.ID)}
	case access.User:
		return []slog.Attr{slog.String("caller", "user"), slog.String("caller_id", rec.caller.ID)}
	}
	return []slog.Attr{slog.String("caller", "guest")}
}

// logInterceptor fills in an RPC's procedure and code for observe's line.
func logInterceptor(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		rec := recordOf(ctx)
		if rec == nil {
			return next(ctx, spec, stream)
		}
		rec.mu.Lock()
		rec.route = spec.Procedure
		rec.traceID = trace.SpanContextFromContext(ctx).TraceID()
		rec.mu.Unlock()
		err := next(ctx, spec, stream)
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
		}
		rec.mu.Lock()
		rec.code = code
		rec.mu.Unlock()
		return err
	}
}

// routed serves mux and records the pattern that matched (ServeMux sets
// it on the request it was handed). An RPC's exact path goes straight to
// its procedure (procedureMux), not through mux's "/" and then the RPC
// mux: one map lookup instead of two pattern matches.
func routed(mux *http.ServeMux, procedures map[string]http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath == "" { // an escaped path is left to the muxes' rules
			if h, ok := procedures[r.URL.Path]; ok {
				h.ServeHTTP(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
		if rec := recordOf(r.Context()); rec != nil && r.Pattern != "" && r.Pattern != "/" {
			noteRoute(r.Context(), r.Pattern, r.PathValue("project"))
		}
	})
}

// recordingWriter counts what a handler answers. Unwrap lets
// http.ResponseController and WebSocket upgrades reach the connection.
type recordingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush is asserted directly by Connect's streaming.
func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ReadFrom keeps the connection's sendfile path for file and site bytes.
func (w *recordingWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.bytes += n
	return n, err
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the request bytes a handler read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// procedureMux is the RPC mux; it also keeps each procedure's handler by
// its exact path, bounded as the mux's are, for routed. No other route of
// the API's mux can match a procedure's path ("/cairn.v1.…/Method"): all
// of them begin with a fixed segment of their own.
type procedureMux struct {
	*http.ServeMux
	exact    map[string]http.Handler
	maxBytes int64
}

func (m procedureMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	if !strings.HasSuffix(pattern, "/") && !strings.ContainsAny(pattern, " {") {
		m.exact[pattern] = http.MaxBytesHandler(h, m.maxBytes)
	}
}
