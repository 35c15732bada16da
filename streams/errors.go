package streams

import (
	"context"
	"errors"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors. Callers test them with errors.Is; the returned errors wrap
// them with context (and, where there is one, the server's API error).
var (
	// ErrConflict: the expected last sequence of the aggregate was stale
	// (another writer won). Reload the aggregate, decide again, retry.
	ErrConflict = errors.New("streams: expected last sequence is stale")
	// ErrStreamFull: the stream reached its byte or message limit. Nothing
	// was written; history is never discarded to make room.
	ErrStreamFull = errors.New("streams: stream is full")
	// ErrNoStream: the stream does not exist (for example, an unknown or
	// deleted project).
	ErrNoStream = errors.New("streams: stream not found")
	// ErrNotFound: no message at that sequence or on that filter.
	ErrNotFound = errors.New("streams: message not found")
	// ErrInvalid: a malformed argument (project id, subject filter, empty
	// append, missing message id).
	ErrInvalid = errors.New("streams: invalid argument")
	// ErrUnavailable: NATS did not answer in time or the connection is
	// down (a failover, a reconnect). The request may or may not have been
	// applied: retry it unchanged, with the same message ids, so that
	// deduplication makes the retry safe.
	ErrUnavailable = errors.New("streams: NATS unavailable")
	// ErrGap: an ordered read saw a sequence it did not expect. It means a
	// message would have been skipped; it is never silently tolerated.
	ErrGap = errors.New("streams: sequence gap in ordered read")
	// ErrTooLarge: a message exceeds the NATS server's max_payload. Nothing
	// was written. Callers keep their inputs within limits that fit
	// (RequiredMaxPayload); this turns a miss into a clear answer.
	ErrTooLarge = errors.New("streams: message too large")
)

// Server error codes met by this package that nats.go has no constant for
// (see nats-server's server/errors.json).
const (
	errCodeStreamStoreFailed         jetstream.ErrorCode = 10077 // {err}, e.g. "maximum bytes exceeded"
	errCodeStorageResourcesExceeded  jetstream.ErrorCode = 10047 // server's max_file_store reached
	errCodeInsufficientResources     jetstream.ErrorCode = 10023 // server-wide limits reached
	errCodeAccountResourcesExceeded  jetstream.ErrorCode = 10002 // account limits
	errCodeBatchContainsDuplicateMsg jetstream.ErrorCode = 10201 // atomic batch has a known Nats-Msg-Id
	errCodeWrongLastSeqConstant      jetstream.ErrorCode = 10164 // subject written twice in one batch / in flight
	errCodeWrongLastMsgID            jetstream.ErrorCode = 10070 // Nats-Expected-Last-Msg-Id mismatch
	errCodeDuplicateMsgInProcess     jetstream.ErrorCode = 10158 // a replicated stream has not applied that Nats-Msg-Id yet
)

// classify maps a server API error to this package's sentinels, keeping the
// original error in the chain for logs.
func classify(apiErr *jetstream.APIError) error {
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, errCodeWrongLastSeqConstant:
		return errors.Join(ErrConflict, apiErr)
	case jetstream.JSErrCodeStreamNotFound:
		return errors.Join(ErrNoStream, apiErr)
	case errCodeDuplicateMsgInProcess:
		// A retry that overtook its own first attempt, still being
		// replicated: once applied, the same retry is answered as a
		// duplicate with the original's sequence. So: no answer yet.
		return errors.Join(ErrUnavailable, apiErr)
	case jetstream.JSErrCodeMessageNotFound:
		return errors.Join(ErrNotFound, apiErr)
	case errCodeStorageResourcesExceeded, errCodeInsufficientResources, errCodeAccountResourcesExceeded:
		return errors.Join(ErrStreamFull, apiErr)
	case errCodeStreamStoreFailed:
		d := strings.ToLower(apiErr.Description)
		if strings.Contains(d, "maximum bytes") || strings.Contains(d, "maximum messages") {
			return errors.Join(ErrStreamFull, apiErr)
		}
	}
	return apiErr
}

// unavailable reports whether err means "no answer now", not "no".
func unavailable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}
