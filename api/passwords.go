package api

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/password"
)

// hasher runs argon2id with bounded concurrency: each hash holds 19 MiB
// for tens of milliseconds, so a burst of sign-ins queues here instead of
// exhausting memory.
type hasher struct {
	sem    chan struct{}
	params password.Params
	// dummy is verified when a sign-in names no account, so that a wrong
	// email costs as much time as a wrong password.
	dummy string
}

func newHasher() (*hasher, error) {
	h := &hasher{sem: make(chan struct{}, 2*runtime.GOMAXPROCS(0)), params: password.Default}
	d, err := h.hash(context.Background(), rand.Text())
	if err != nil {
		return nil, err
	}
	h.dummy = d
	return h, nil
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return domain.Errorf(domain.KindUnavailable, "too many password checks in progress; retry")
	}
}

func (h *hasher) hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-h.sem }()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	return password.Hash(pw, salt, h.params)
}

// verify checks pw against encoded; an empty encoded (no account, or no
// password) is checked against the dummy hash and always fails.
func (h *hasher) verify(ctx context.Context, pw, encoded string) (ok, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer func() { <-h.sem }()
	if encoded == "" {
		_, _, _ = password.Verify(pw, h.dummy)
		return false, false, nil
	}
	return password.Verify(pw, encoded)
}

// newPasswordHash checks a new password against project's policy and
// hashes it.
func (s *Server) newPasswordHash(ctx context.Context, project, pw string) (string, error) {
	cfg, err := s.authConfig(project)
	if err != nil {
		return "", err
	}
	if err := cfg.policy.Check(pw); err != nil {
		return "", err
	}
	return s.hasher.hash(ctx, pw)
}
