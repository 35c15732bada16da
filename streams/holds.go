package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// HoldsBucket is the key-value bucket of object holds: while a project has
// one, no node deletes objects from its object store (an export is reading
// them, and the object store keeps no history). Key "<project>.<holder>",
// value the RFC 3339 time the hold lapses, so a holder that dies does not
// hold forever. Its backing stream is "KV_cairn_holds".
const HoldsBucket = "cairn_holds"

func (s *Store) holds(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, HoldsBucket)
	if err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) || !create {
		return kv, err
	}
	return s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: HoldsBucket, History: 1,
		Description: "projects whose objects must not be deleted now (exports)", Storage: jetstream.FileStorage, Replicas: s.opts.Replicas})
}

// HoldObjects keeps project's objects from deletion until `until` or
// ReleaseObjects, whichever is first; holder names the hold (one per
// export). Holding again moves `until`.
func (s *Store) HoldObjects(ctx context.Context, project, holder string, until time.Time) error {
	if err := ValidateProject(project); err != nil {
		return err
	}
	kv, err := s.holds(ctx, true)
	if err != nil {
		return fmt.Errorf("streams: holds bucket: %w", err)
	}
	if _, err := kv.Put(ctx, project+"."+holder, []byte(until.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("streams: hold objects of %s: %w", project, err)
	}
	return nil
}

// ReleaseObjects ends holder's hold on project's objects.
func (s *Store) ReleaseObjects(ctx context.Context, project, holder string) error {
	kv, err := s.holds(ctx, false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("streams: holds bucket: %w", err)
	}
	if err := kv.Purge(ctx, project+"."+holder); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("streams: release objects of %s: %w", project, err)
	}
	return nil
}

// ObjectsHeld reports whether a hold that has not lapsed at now keeps
// project's objects from deletion. Every deleter of objects asks first.
func (s *Store) ObjectsHeld(ctx context.Context, project string, now time.Time) (bool, error) {
	kv, err := s.holds(ctx, false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("streams: holds bucket: %w", err)
	}
	w, err := kv.WatchFiltered(ctx, []string{project + ".*"}, jetstream.IgnoreDeletes())
	if err != nil {
		return false, fmt.Errorf("streams: holds of %s: %w", project, err)
	}
	defer w.Stop()
	held := false
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return false, fmt.Errorf("streams: holds of %s: watcher closed", project)
			}
			if e == nil {
				return held, nil
			}
			if until, err := time.Parse(time.RFC3339Nano, string(e.Value())); err == nil && now.Before(until) {
				held = true
			}
		}
	}
}
