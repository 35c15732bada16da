package api

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"

	"connectrpc.com/connect/v2"

	"github.com/cairn-dev/cairn/domain"
)

// codes maps every domain error kind to a Connect code: the one table.
var codes = map[domain.Kind]connect.Code{
	domain.KindInternal:           connect.CodeInternal,
	domain.KindInvalid:            connect.CodeInvalidArgument,
	domain.KindNotFound:           connect.CodeNotFound,
	domain.KindAlreadyExists:      connect.CodeAlreadyExists,
	domain.KindConflict:           connect.CodeAborted,
	domain.KindPermissionDenied:   connect.CodePermissionDenied,
	domain.KindUnauthenticated:    connect.CodeUnauthenticated,
	domain.KindFailedPrecondition: connect.CodeFailedPrecondition,
	domain.KindResourceExhausted:  connect.CodeResourceExhausted,
	domain.KindUnavailable:        connect.CodeUnavailable,
}

// toConnect turns any handler error into a Connect error a caller may see.
// Unclassified errors become "internal error" for the caller and a full log
// line for the operator.
func toConnect(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce
	}
	if de, ok := errors.AsType[*domain.Error](err); ok && de.Kind != domain.KindInternal {
		return connect.NewError(codes[de.Kind], de.Error()).WithCause(err)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, "request canceled").WithCause(err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, "request deadline exceeded").WithCause(err)
	}
	log.ErrorContext(ctx, "request failed", "procedure", procedure, "err", err)
	return connect.NewError(connect.CodeInternal, "internal error").WithCause(err)
}

// errorInterceptor classifies errors and turns handler panics into Internal
// errors plus a log line, never a dead process.
func errorInterceptor(log *slog.Logger) connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ctx, "handler panic", "procedure", spec.Procedure, "panic", r, "stack", string(debug.Stack()))
					err = connect.NewError(connect.CodeInternal, "internal error")
				}
			}()
			return toConnect(ctx, log, spec.Procedure, next(ctx, spec, stream))
		}
	}
}
