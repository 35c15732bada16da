package streams

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configures a Store.
type Options struct {
	// Replicas of every stream Cairn creates: 1 embedded, 3 in a cluster.
	Replicas int
	// DuplicateWindow is how long a Nats-Msg-Id is remembered for
	// deduplication; default 2 minutes.
	DuplicateWindow time.Duration
	// ReadHeartbeat is the idle heartbeat of Read and Subscribe consumers. A
	// reader whose server-side consumer vanished (server restart, deletion)
	// notices after two missed heartbeats and resumes after its last
	// delivered sequence; default 2s (nats.go's own default is 5s).
	ReadHeartbeat time.Duration
	// RequestTimeout bounds one publish or direct-get attempt; default 5s
	// (nats.go's JetStream default).
	RequestTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Store provisions and accesses Cairn's streams on one NATS connection. It
// is safe for concurrent use.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	opts    Options
	log     *slog.Logger
	payload atomic.Pointer[payloadLimit] // see maxPayload
}

// Info is the state of a stream.
type Info struct {
	FirstSeq uint64
	LastSeq  uint64
	Msgs     uint64
	Bytes    uint64
	Created  time.Time
	MaxBytes int64
}

// Open returns a Store on nc and ensures the system stream exists.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Store, error) {
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = 2 * time.Minute
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.ReadHeartbeat <= 0 {
		opts.ReadHeartbeat = 2 * time.Second
	}
	opts.ReadHeartbeat = min(max(opts.ReadHeartbeat, 500*time.Millisecond), 15*time.Second) // nats.go's range
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("streams: open jetstream: %w", err)
	}
	s := &Store{nc: nc, js: js, opts: opts, log: opts.Logger.With("component", "streams")}
	if err := s.ensureStream(ctx, s.streamConfig(SystemStream, SystemFilter, Limits{})); err != nil {
		return nil, err
	}
	return s, nil
}

// payloadLimit is the connection's max_payload as last looked up.
type payloadLimit struct {
	limit int64
	until int64 // UnixNano after which it is looked up again
}

// payloadRecheck is how long a max_payload lookup is used.
const payloadRecheck = time.Second

// maxPayload returns the connection's max_payload, looked up at most once
// per payloadRecheck: nats.Conn.MaxPayload takes the connection's lock,
// which every publish and every delivery also takes (under 64 concurrent
// creates, a fifth of a write's blocked time was spent there). A
// reconnect to a server with another limit is seen within payloadRecheck,
// and until then nats.go refuses a message over the current one itself.
func (s *Store) maxPayload() int64 {
	now := time.Now().UnixNano()
	if c := s.payload.Load(); c != nil && now < c.until {
		return c.limit
	}
	limit := s.nc.MaxPayload()
	s.payload.Store(&payloadLimit{limit: limit, until: now + int64(payloadRecheck)})
	return limit
}

// JetStream returns the underlying JetStream handle, for callers that need a
// feature this package does not wrap.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Limits are a project stream's operator-set bounds.
type Limits struct {
	// MaxBytes of the stream; <= 0 means unlimited.
	MaxBytes int64
	// Replicas of the stream and the project's object store; 0 means the
	// Store's default (Options.Replicas).
	Replicas int
}

// streamConfig is the one place stream settings are decided.
func (s *Store) streamConfig(name, filter string, limits Limits) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{filter},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Replicas:   cmp.Or(limits.Replicas, s.opts.Replicas),
		Duplicates: s.opts.DuplicateWindow,
		MaxMsgs:    -1,
		MaxBytes:   -1,
		MaxAge:     0, // events are forever
		// A full stream refuses writes; it never drops history to make room.
		Discard:            jetstream.DiscardNew,
		AllowAtomicPublish: true,
		AllowDirect:        true, // Last/Get answer from any replica without the API leader
		// Events are forever: no single message is ever removed, which is also
		// what lets ordered readers treat a sequence gap as an error. Deleting
		// a whole project deletes its stream, which these flags do not block.
		DenyDelete: true,
		DenyPurge:  true,
	}
	if limits.MaxBytes > 0 {
		cfg.MaxBytes = limits.MaxBytes
	}
	return cfg
}

// ensureStream creates the stream, or updates it when its mutable limits
// differ from cfg.
func (s *Store) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	str, err := s.js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := s.js.CreateStream(ctx, cfg); err != nil {
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return s.ensureStream(ctx, cfg) // lost a creation race; check limits
			}
			return fmt.Errorf("streams: create stream %s: %w", cfg.Name, err)
		}
		s.log.InfoContext(ctx, "stream created", "stream", cfg.Name, "max_bytes", cfg.MaxBytes, "replicas", cfg.Replicas)
		return nil
	case err != nil:
		return fmt.Errorf("streams: look up stream %s: %w", cfg.Name, err)
	}
	cur := str.CachedInfo().Config
	if cur.MaxBytes == cfg.MaxBytes && cur.Duplicates == cfg.Duplicates && cur.Replicas == cfg.Replicas &&
		cur.AllowAtomicPublish && cur.AllowDirect {
		return nil
	}
	upd := cur
	// JetStream moves a stream between replica counts online (in a cluster).
	upd.MaxBytes, upd.Duplicates, upd.Replicas = cfg.MaxBytes, cfg.Duplicates, cfg.Replicas
	upd.AllowAtomicPublish, upd.AllowDirect, upd.Discard = true, true, jetstream.DiscardNew
	if _, err := s.js.UpdateStream(ctx, upd); err != nil {
		return fmt.Errorf("streams: update stream %s: %w", cfg.Name, err)
	}
	s.log.InfoContext(ctx, "stream updated", "stream", cfg.Name, "max_bytes", cfg.MaxBytes, "replicas", cfg.Replicas)
	return nil
}

// EnsureProjectStream creates the project's stream, or updates its limits.
// It is idempotent.
func (s *Store) EnsureProjectStream(ctx context.Context, project string, limits Limits) error {
	if err := ValidateProject(project); err != nil {
		return err
	}
	return s.ensureStream(ctx, s.streamConfig(ProjectStream(project), ProjectFilter(project), limits))
}

// DeleteProject deletes the project's stream, object store and usage
// counters. Whatever is already gone is not an error, so a half-finished
// deletion can be retried.
func (s *Store) DeleteProject(ctx context.Context, project string) error {
	if err := ValidateProject(project); err != nil {
		return err
	}
	if err := s.js.DeleteObjectStore(ctx, ObjectStoreName(project)); err != nil &&
		!errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("streams: delete object store of project %s: %w", project, err)
	}
	if err := s.js.DeleteStream(ctx, ProjectStream(project)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("streams: delete stream of project %s: %w", project, err)
	}
	if err := s.PurgeUsage(ctx, project); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "project streams deleted", "project", project)
	return nil
}

// ObjectStore returns the project's object store, creating it on first use:
// most projects never store a file, and an idle bucket still costs a stream.
func (s *Store) ObjectStore(ctx context.Context, project string) (jetstream.ObjectStore, error) {
	if err := ValidateProject(project); err != nil {
		return nil, err
	}
	name := ObjectStoreName(project)
	obs, err := s.js.ObjectStore(ctx, name)
	if err == nil {
		return obs, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("streams: open object store of project %s: %w", project, err)
	}
	// The object store follows the replicas the operator set for the project.
	replicas := s.opts.Replicas
	if str, err := s.js.Stream(ctx, ProjectStream(project)); err == nil {
		replicas = str.CachedInfo().Config.Replicas
	}
	obs, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:   name,
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("streams: create object store of project %s: %w", project, err)
	}
	if err := objectStoreAnswers(ctx, obs); err != nil {
		return nil, fmt.Errorf("streams: new object store of project %s: %w", project, err)
	}
	s.log.InfoContext(ctx, "object store created", "project", project)
	return obs, nil
}

// objectStoreAnswers waits (bounded) until a new object store answers reads:
// in a cluster its stream elects a leader after creation, and until then a
// read gets "no responders".
func objectStoreAnswers(ctx context.Context, obs jetstream.ObjectStore) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, err := obs.GetInfo(ctx, "cairn-readiness-probe")
		if err == nil || errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil
		}
		if !errors.Is(err, nats.ErrNoResponders) && !unavailable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// HasObjectStore reports whether the project's object store exists, without
// creating it.
func (s *Store) HasObjectStore(ctx context.Context, project string) (bool, error) {
	if err := ValidateProject(project); err != nil {
		return false, err
	}
	_, err := s.js.ObjectStore(ctx, ObjectStoreName(project))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("streams: look up object store of project %s: %w", project, err)
	}
}

// StreamInfo returns the state of a stream; ErrNoStream if it does not exist.
func (s *Store) StreamInfo(ctx context.Context, stream string) (Info, error) {
	str, err := s.js.Stream(ctx, stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return Info{}, fmt.Errorf("stream %s: %w", stream, ErrNoStream)
		}
		if ctx.Err() == nil && unavailable(err) {
			return Info{}, fmt.Errorf("streams: info of stream %s: %w: %w", stream, ErrUnavailable, err)
		}
		return Info{}, fmt.Errorf("streams: info of stream %s: %w", stream, err)
	}
	ci := str.CachedInfo()
	return Info{
		FirstSeq: ci.State.FirstSeq,
		LastSeq:  ci.State.LastSeq,
		Msgs:     ci.State.Msgs,
		Bytes:    ci.State.Bytes,
		Created:  ci.Created,
		MaxBytes: ci.Config.MaxBytes,
	}, nil
}
