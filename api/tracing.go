package api

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// span starts a span of the API's own work (a function execution); a
// no-op span when the server does not trace.
func (s *Server) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, noop.Span{}
	}
	return s.tracer.Tracer("github.com/cairn-dev/cairn/api").Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends span, marking it failed when err is set.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(otelcodes.Error, err.Error())
	}
	span.End()
}
