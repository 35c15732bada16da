package streams

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestClassify: the server's answers that callers act on map to the
// sentinels they test, and keep the server's error in the chain. 10158 was
// seen in a loaded cluster (a retry overtaking its own first attempt) and
// answered as an internal error before it was known as transient.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		code jetstream.ErrorCode
		want error
	}{
		{jetstream.JSErrCodeStreamWrongLastSequence, ErrConflict},
		{errCodeWrongLastSeqConstant, ErrConflict},
		{jetstream.JSErrCodeStreamNotFound, ErrNoStream},
		{jetstream.JSErrCodeMessageNotFound, ErrNotFound},
		{errCodeStorageResourcesExceeded, ErrStreamFull},
		{errCodeDuplicateMsgInProcess, ErrUnavailable},
	} {
		apiErr := &jetstream.APIError{Code: 409, ErrorCode: c.code, Description: "from the server"}
		err := classify(apiErr)
		if !errors.Is(err, c.want) {
			t.Errorf("code %d: %v is not %v", c.code, err, c.want)
		}
		var got *jetstream.APIError
		if !errors.As(err, &got) || got.ErrorCode != c.code {
			t.Errorf("code %d: the server's error is not in the chain: %v", c.code, err)
		}
	}
	if err := classify(&jetstream.APIError{ErrorCode: errCodeStreamStoreFailed, Description: "maximum bytes exceeded"}); !errors.Is(err, ErrStreamFull) {
		t.Errorf("a full stream: %v", err)
	}
	if err := classify(&jetstream.APIError{ErrorCode: 10999, Description: "something else"}); errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict) {
		t.Errorf("an unknown code became a sentinel: %v", err)
	}
}
