package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Presence keeps who is present on which realtime channel, in one KV
// bucket shared by every node of the instance, so a client on one node
// sees members that joined through another:
//
//   - a member is one key, <project>.<channel>.<member>, written by the
//     node that holds its connection and rewritten by it every third of
//     the TTL; a node that crashes stops rewriting, and its members age
//     out within the TTL (the bucket's max age), each leaving a marker
//     that watchers see as a removal;
//   - presence never enters a project's event log, which is forever:
//     it is how things are now, not something that happened.
//
// The bucket is file storage like the others: operators bound memory
// stores tightly (deploy's 256 MB is the whole server's), and nothing in
// it needs to survive a NATS restart — the nodes write every member again
// within a third of the TTL.
type Presence struct {
	ttl    time.Duration
	bucket lazyBucket
}

// PresenceBucket is the KV bucket of realtime presence.
const PresenceBucket = "cairn_presence"

// PresenceMaxBytes bounds the bucket: some 300,000 members with small
// payloads, 50,000 with 1 KiB ones; a full bucket refuses new joins.
const PresenceMaxBytes = 64 << 20

// PresenceMaxValue bounds one member's stored value.
const PresenceMaxValue = 4 << 10

// Presence returns the store's presence bucket, whose members live for
// ttl unless rewritten (at least 1s: the server's smallest marker TTL).
func (s *Store) Presence(ttl time.Duration) *Presence {
	ttl = max(ttl, time.Second)
	// LimitMarkerTTL: an expired member leaves a marker, which watchers
	// see as a purge — the leave of a member whose node died.
	return &Presence{ttl: ttl, bucket: lazyBucket{js: s.js, what: "presence", cfg: jetstream.KeyValueConfig{Bucket: PresenceBucket,
		TTL: ttl, History: 1, Storage: jetstream.FileStorage, Replicas: s.opts.Replicas, MaxValueSize: PresenceMaxValue,
		MaxBytes: PresenceMaxBytes, LimitMarkerTTL: time.Second}}}
}

// TTL is how long a member lives without being rewritten.
func (p *Presence) TTL() time.Duration { return p.ttl }

// ErrPresenceKey is what a project, channel or member id that cannot be
// part of a key gives.
var ErrPresenceKey = errors.New("streams: not a presence key")

func presenceKey(project, channel, member string) (string, error) {
	prefix, err := presencePrefix(project, channel)
	if err != nil {
		return "", err
	}
	if !keyToken(member) {
		return "", fmt.Errorf("%w: member %q", ErrPresenceKey, member)
	}
	return prefix + member, nil
}

// presencePrefix is the keys' prefix for a channel's members; the member
// is the last token, so a channel's wildcard never matches another
// channel's members.
func presencePrefix(project, channel string) (string, error) {
	if !keyToken(project) {
		return "", fmt.Errorf("%w: project %q", ErrPresenceKey, project)
	}
	for part := range strings.SplitSeq(channel, ".") {
		if !keyToken(part) {
			return "", fmt.Errorf("%w: channel %q", ErrPresenceKey, channel)
		}
	}
	return project + "." + channel + ".", nil
}

func keyToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	})
}

// Put writes (or rewrites, keeping it alive) a member of a channel and
// returns its revision.
func (p *Presence) Put(ctx context.Context, project, channel, member string, value []byte) (uint64, error) {
	key, err := presenceKey(project, channel, member)
	if err != nil {
		return 0, err
	}
	kv, err := p.bucket.get(ctx)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Put(ctx, key, value)
	if err != nil {
		return 0, fmt.Errorf("streams: put presence: %w", err)
	}
	return rev, nil
}

// Delete removes a member of a channel.
func (p *Presence) Delete(ctx context.Context, project, channel, member string) error {
	key, err := presenceKey(project, channel, member)
	if err != nil {
		return err
	}
	kv, err := p.bucket.get(ctx)
	if err != nil {
		return err
	}
	// Purge rather than Delete: no tombstone per departed member stays
	// behind beyond the marker.
	if err := kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("streams: delete presence: %w", err)
	}
	return nil
}

// PresenceChange is one member written or removed. Synced (with no
// member) says the members present when the watch began have all been
// given.
type PresenceChange struct {
	Member   string
	Value    []byte
	Revision uint64
	Gone     bool
	Synced   bool
}

// WatchPresence yields a channel's members as they are, then Synced, then
// every change, until ctx ends (the channel is then closed).
func (p *Presence) WatchPresence(ctx context.Context, project, channel string) (<-chan PresenceChange, error) {
	prefix, err := presencePrefix(project, channel)
	if err != nil {
		return nil, err
	}
	kv, err := p.bucket.get(ctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.Watch(ctx, prefix+"*")
	if err != nil {
		return nil, fmt.Errorf("streams: watch presence: %w", err)
	}
	out := make(chan PresenceChange, 64)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			}
			c := PresenceChange{Synced: e == nil}
			if e != nil {
				c.Member = strings.TrimPrefix(e.Key(), prefix)
				c.Value = e.Value()
				c.Revision = e.Revision()
				c.Gone = e.Operation() != jetstream.KeyValuePut
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
