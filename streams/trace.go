package streams

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Trace context travels in an event's NATS headers (W3C traceparent), so
// the projector, realtime and function triggers that read the event join
// the trace of the write that appended it.
var traceContext = propagation.TraceContext{}

// InjectTrace adds ctx's span, when there is one, to h (the headers of a
// message to append) and returns h, allocated if needed.
func InjectTrace(ctx context.Context, h nats.Header) nats.Header {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return h
	}
	if h == nil {
		h = nats.Header{}
	}
	traceContext.Inject(ctx, propagation.HeaderCarrier(http.Header(h)))
	return h
}

// TraceParent returns ctx with the span of the write that appended m as
// its remote parent (ctx unchanged when m carries none).
func TraceParent(ctx context.Context, m StoredMsg) context.Context {
	if len(m.Header) == 0 {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.HeaderCarrier(http.Header(m.Header)))
}
