package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RetryAfterSeconds rounds a retry delay up to whole seconds, at least 1,
// as an HTTP Retry-After header counts them.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Error is the error a handler returns for a refused request: code
// ResourceExhausted, a message naming the limit and the wait, and a
// google.rpc.RetryInfo detail with the delay (which gRPC and Connect
// clients understand). The delay is in whole seconds, rounded up.
func Error(rule Rule, retryAfter time.Duration) *connect.Error {
	secs := RetryAfterSeconds(retryAfter)
	err := connect.NewError(connect.CodeResourceExhausted,
		fmt.Sprintf("too many requests: %s; retry after %d s", rule.Name, secs))
	detail, derr := connectproto.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)})
	if derr != nil { // cannot happen for a well-formed message; the error stands without it
		return err
	}
	return err.WithDetail(detail)
}

// RetryDelay is the delay in err's google.rpc.RetryInfo detail, if it has
// one: how a plain-HTTP route learns the Retry-After of a refusal.
func RetryDelay(err *connect.Error) (time.Duration, bool) {
	for _, d := range err.Details() {
		v, verr := connectproto.UnmarshalErrorDetail(d)
		if verr != nil {
			continue
		}
		if ri, ok := v.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// SetRetryAfter sets the Retry-After response header (whole seconds) on
// the RPC ctx belongs to, for plain-HTTP clients that read headers rather
// than error details. It reports false when ctx is not a server call's.
func SetRetryAfter(ctx context.Context, retryAfter time.Duration) bool {
	info, ok := connect.CallInfoForServerContext(ctx)
	if !ok {
		return false
	}
	info.ResponseHeader().Set("Retry-After", strconv.Itoa(RetryAfterSeconds(retryAfter)))
	return true
}

// Refuse is Allow for handlers: nil when rule allows key's request at now;
// otherwise it sets the Retry-After header and returns Error.
func (l *Limiter) Refuse(ctx context.Context, key string, now time.Time) error {
	ok, retry := l.Allow(key, now)
	if ok {
		return nil
	}
	SetRetryAfter(ctx, retry)
	return Error(l.rule, retry)
}
