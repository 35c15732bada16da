package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	"github.com/cairn-dev/cairn/domain"
)

func TestErrorsBecomeConnectCodes(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cases := []struct {
		err  error
		code connect.Code
		msg  string
	}{
		{domain.FieldError("name", "must not be empty"), connect.CodeInvalidArgument, "name: must not be empty"},
		{fmt.Errorf("wrapped: %w", domain.Errorf(domain.KindNotFound, "key not found")), connect.CodeNotFound, "key not found"},
		{domain.Errorf(domain.KindConflict, "busy"), connect.CodeAborted, "busy"},
		{domain.Errorf(domain.KindResourceExhausted, "full"), connect.CodeResourceExhausted, "full"},
		{context.DeadlineExceeded, connect.CodeDeadlineExceeded, "deadline"},
		{errors.New("badger: disk on fire at /var/lib/secret"), connect.CodeInternal, "internal error"},
	}
	for _, c := range cases {
		got := toConnect(context.Background(), log, "/x/Y", c.err)
		ce, ok := errors.AsType[*connect.Error](got)
		if !ok || ce.Code() != c.code || !strings.Contains(ce.Message(), c.msg) {
			t.Errorf("%v → %v, want %v containing %q", c.err, got, c.code, c.msg)
		}
	}
	if strings.Contains(fmt.Sprint(toConnect(context.Background(), log, "/x/Y", errors.New("secret path"))), "secret path") {
		t.Error("an unclassified error leaked its text to the caller")
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Error("the operator log lacks the internal error")
	}
	// Every kind has a code.
	for k := domain.KindInternal; k <= domain.KindUnavailable; k++ {
		if _, ok := codes[k]; !ok {
			t.Errorf("kind %v has no Connect code", k)
		}
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	var logs bytes.Buffer
	h := errorInterceptor(slog.New(slog.NewTextHandler(&logs, nil)))(func(context.Context, connect.Spec, connect.ServerStream) error {
		panic("boom")
	})
	err := h(context.Background(), connect.Spec{Procedure: "/x/Y"}, nil)
	if connect.CodeOf(err) != connect.CodeInternal || strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic → %v", err)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("panic not logged with a stack: %s", logs.String())
	}
}
