package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Challenges keeps short-lived, single-use secrets that a two-step
// ceremony hands out in its first call and checks in its second (WebAuthn
// challenges), in one KV bucket shared by every node of the instance:
//
//   - any node may finish a ceremony another began, because all read the
//     same bucket;
//   - taking a challenge is a delete that expects the revision just read,
//     so of two concurrent finishes (two nodes, a replayed request) exactly
//     one gets it;
//   - they expire on their own (the bucket's TTL): an abandoned ceremony
//     leaves nothing behind, and none of it enters a project's event log,
//     which is forever and open to guests' sign-in attempts only through
//     the events that follow a verified one.
//
// Keys are <project>.<kind>.<id>; projects never read each other's.
type Challenges struct {
	ttl    time.Duration
	bucket lazyBucket
}

// ChallengesBucket is the KV bucket of ceremony challenges.
const ChallengesBucket = "cairn_challenges"

// ChallengesMaxBytes bounds the bucket: some 60,000 ceremonies under way.
const ChallengesMaxBytes = 64 << 20

// ErrNoChallenge is what Take returns for a challenge that is unknown,
// expired or already taken.
var ErrNoChallenge = errors.New("streams: no such challenge")

// Challenges returns the store's challenges, which live for ttl.
func (s *Store) Challenges(ttl time.Duration) *Challenges {
	// Bounded: guests begin ceremonies, and a full bucket refuses new ones
	// (a KV discards new writes) rather than filling the disk. Created on
	// first use: instances that never run a ceremony never have it.
	return &Challenges{ttl: ttl, bucket: lazyBucket{js: s.js, what: "challenges", cfg: jetstream.KeyValueConfig{Bucket: ChallengesBucket,
		TTL: ttl, History: 1, Storage: jetstream.FileStorage, Replicas: s.opts.Replicas, MaxValueSize: 64 << 10, MaxBytes: ChallengesMaxBytes}}}
}

// TTL is how long a challenge lives.
func (c *Challenges) TTL() time.Duration { return c.ttl }

func challengeKey(project, kind, id string) (string, error) {
	for _, part := range []string{project, kind, id} {
		if part == "" || strings.ContainsFunc(part, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			return "", ErrNoChallenge
		}
	}
	return project + "." + kind + "." + id, nil
}

// Put stores a new challenge; an id already in use is an error.
func (c *Challenges) Put(ctx context.Context, project, kind, id string, value []byte) error {
	key, err := challengeKey(project, kind, id)
	if err != nil {
		return fmt.Errorf("streams: challenge key %q: %w", id, err)
	}
	kv, err := c.bucket.get(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Create(ctx, key, value); err != nil {
		return fmt.Errorf("streams: put challenge: %w", err)
	}
	return nil
}

// Take returns a challenge's value and removes it: only the first Take of
// a challenge gets it. Returns ErrNoChallenge when it is unknown, expired
// or taken.
func (c *Challenges) Take(ctx context.Context, project, kind, id string, now time.Time) ([]byte, error) {
	key, err := challengeKey(project, kind, id)
	if err != nil {
		return nil, err
	}
	kv, err := c.bucket.get(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoChallenge
	}
	if err != nil {
		return nil, fmt.Errorf("streams: get challenge: %w", err)
	}
	if err := kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return nil, ErrNoChallenge // another request took it first
		}
		return nil, fmt.Errorf("streams: take challenge: %w", err)
	}
	// The bucket's expiry runs periodically; a challenge is never used
	// past its time even if it is still stored.
	if !now.Before(e.Created().Add(c.ttl)) {
		return nil, ErrNoChallenge
	}
	return e.Value(), nil
}
