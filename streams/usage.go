package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// UsageBucket is the key-value bucket where every node publishes its usage
// counters (package usage): one key per project, UTC day and node process,
// "<project>.<YYYY-MM-DD>.<node>". Its backing stream is "KV_cairn_usage".
const UsageBucket = "cairn_usage"

// Usage returns the usage bucket, creating it on first use. In a cluster
// that has just formed, the bucket another node is creating may have no
// leader yet to answer: a lookup that gets no answer is tried again for up
// to usageOpenFor (CI: a second node's start failed with "open usage
// bucket: context deadline exceeded" while the first created it).
func (s *Store) Usage(ctx context.Context) (jetstream.KeyValue, error) {
	giveUp := time.Now().Add(usageOpenFor)
	for {
		kv, err := s.openUsage(ctx)
		if err == nil || !errors.Is(err, nats.ErrNoResponders) && !unavailable(err) || time.Now().After(giveUp) {
			return kv, err
		}
		s.log.WarnContext(ctx, "usage bucket not answering yet; trying again", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("streams: open usage bucket: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// usageOpenFor bounds Usage's tries.
const usageOpenFor = 30 * time.Second

func (s *Store) openUsage(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, UsageBucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("streams: open usage bucket: %w", err)
	}
	kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      UsageBucket,
		Description: "per-node usage counters of Cairn projects",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    s.opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("streams: create usage bucket: %w", err)
	}
	return kv, nil
}

// PurgeUsage removes a deleted project's usage counters, so a new project
// with the same id starts from zero.
func (s *Store) PurgeUsage(ctx context.Context, project string) error {
	if err := ValidateProject(project); err != nil {
		return err
	}
	str, err := s.js.Stream(ctx, "KV_"+UsageBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("streams: usage bucket: %w", err)
	}
	if err := str.Purge(ctx, jetstream.WithPurgeSubject("$KV."+UsageBucket+"."+project+".>")); err != nil {
		return fmt.Errorf("streams: purge usage of project %s: %w", project, err)
	}
	return nil
}
