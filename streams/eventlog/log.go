package eventlog

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// ReadSide is what the write path needs from the node's projections.
type ReadSide interface {
	// WaitApplied blocks until the local projector of stream has applied seq.
	WaitApplied(ctx context.Context, stream string, seq uint64) error
	// IdempotentSeq returns the sequence of the message stored with msgID,
	// while it is inside the duplicate window.
	IdempotentSeq(stream, msgID string) (uint64, bool, error)
	// StreamKnown reports whether the registry says stream exists: then a
	// stream that NATS does not find is between leaders or not yet known to
	// every server, not gone.
	StreamKnown(stream string) bool
}

// Options configure a Log.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxAttempts bounds retries on concurrency conflicts (default 16).
	MaxAttempts int
	Logger      *slog.Logger
	// OnAppend, when set, observes every append attempt: its duration and
	// result ("ok", "duplicate", "conflict", "unavailable", "full", "error").
	OnAppend func(d time.Duration, result string)
	// Tracer, when set, traces appends and the waits for the projection,
	// and carries the trace context in the events' headers.
	Tracer trace.TracerProvider
}

// Log appends events through the generic write path.
type Log struct {
	store       *streams.Store
	reads       ReadSide
	now         func() time.Time
	maxAttempts int
	log         *slog.Logger
	onAppend    func(time.Duration, string)
	tracer      trace.Tracer // nil: not tracing

	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

// New returns a Log writing to store and waiting on reads.
func New(store *streams.Store, reads ReadSide, opts Options) *Log {
	l := &Log{store: store, reads: reads, now: opts.Now, maxAttempts: opts.MaxAttempts, log: opts.Logger,
		onAppend: opts.OnAppend, entropy: ulid.Monotonic(crand.Reader, 0)}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxAttempts <= 0 {
		l.maxAttempts = 16
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.onAppend == nil {
		l.onAppend = func(time.Duration, string) {}
	}
	if opts.Tracer != nil {
		l.tracer = opts.Tracer.Tracer("github.com/cairn-dev/cairn/streams/eventlog")
	}
	return l
}

// Now returns the log's clock reading; commands take their time from it.
func (l *Log) Now() time.Time { return l.now() }

// NewID returns a new ULID (monotonic within this process).
func (l *Log) NewID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ulid.MustNew(ulid.Timestamp(l.now()), l.entropy).String()
}

// Meta is what a write records besides its events.
type Meta struct {
	Actor         *eventsv1.Actor
	CorrelationID string
	// IdempotencyKey is the client's Idempotency-Key; Scope separates equal
	// keys sent to different procedures.
	IdempotencyKey string
	Scope          string
	// Prepare, when set, runs after the decision and before the append: for
	// infrastructure the events need to exist first (a project's stream).
	// It must be idempotent: a conflict retry runs it again.
	Prepare func(ctx context.Context, events []*eventsv1.Envelope) error
}

// Result is the outcome of a write.
type Result struct {
	// Seq is the stream sequence of the last event written (or, when the
	// decision produced no events, of the aggregate's last event).
	Seq uint64
	// Events are the stored envelopes: the state the response reports.
	Events []*eventsv1.Envelope
	// Duplicate is set when an earlier request with the same idempotency
	// key already wrote these events; nothing was appended.
	Duplicate bool
}

// Decider turns the aggregate's last event (nil when it has none) into new
// events. Since every event carries the full resource state, the last event
// is the aggregate's state.
type Decider func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error)

// Write runs the write path for one aggregate (WriteAll with one change).
// Returns the decider's domain errors unchanged, KindConflict when
// concurrent writers kept winning, KindResourceExhausted when the project's
// stream is full. A decision with no events answers the aggregate's last
// sequence.
func (l *Log) Write(ctx context.Context, agg Aggregate, meta Meta, decide Decider) (Result, error) {
	var lastSeq uint64
	res, err := l.WriteAll(ctx, meta, []Change{{Agg: agg, Decide: func(last *eventsv1.Envelope, seq uint64) ([]*eventsv1.Envelope, error) {
		lastSeq = seq
		return decide(last)
	}}})
	if err == nil && len(res.Events) == 0 {
		res.Seq = lastSeq
	}
	return res, err
}

// retryFor bounds how long a read or append is retried while NATS does not
// answer (a stream leader election in a cluster takes a few seconds).
const retryFor = 15 * time.Second

// append appends, retrying the very same messages while NATS is
// unavailable: the message ids make a retry of an append that was stored
// after all come back as a duplicate.
func (l *Log) append(ctx context.Context, a streams.Append) (ack streams.Ack, err error) {
	if l.tracer != nil {
		var span trace.Span
		ctx, span = l.tracer.Start(ctx, "eventlog.append", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("cairn.stream", a.Stream), attribute.Int("cairn.events", len(a.Msgs))))
		defer func() { endSpan(span, err) }()
		for i := range a.Msgs {
			a.Msgs[i].Header = streams.InjectTrace(ctx, a.Msgs[i].Header)
		}
	}
	err = l.retry(ctx, a.Stream, func() error {
		start := time.Now()
		ack, err = l.store.Append(ctx, a)
		l.onAppend(time.Since(start), appendResult(ack, err))
		return err
	})
	return ack, err
}

// retry runs op until it succeeds, fails for good, or retryFor passes.
// Transient: NATS unavailable, or no stream where the registry has one (a
// stream between leaders answers nobody for a while, and a server that has
// not caught up with a new stream yet says it does not exist).
// Giving up on a transient failure reports ErrUnavailable, never "not found".
func (l *Log) retry(ctx context.Context, stream string, op func() error) error {
	deadline := time.Now().Add(retryFor)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := op()
		transient := errors.Is(err, streams.ErrUnavailable)
		if errors.Is(err, streams.ErrNoStream) {
			transient = l.reads.StreamKnown(stream) && ctx.Err() == nil
		}
		if !transient {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: gave up after %s: %w", streams.ErrUnavailable, retryFor, err)
		}
		l.log.WarnContext(ctx, "NATS did not answer; retrying unchanged", "stream", stream, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func appendResult(ack streams.Ack, err error) string {
	switch {
	case err == nil && ack.Duplicate:
		return "duplicate"
	case err == nil:
		return "ok"
	case errors.Is(err, streams.ErrConflict):
		return "conflict"
	case errors.Is(err, streams.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, streams.ErrStreamFull):
		return "full"
	}
	return "error"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Last returns the aggregate's last event and its sequence (nil, 0 when
// none), read from the stream: fresher than any read model, for work that
// must be checked before a long write (an upload chunk) and decided again
// at the append.
func (l *Log) Last(ctx context.Context, agg Aggregate) (*eventsv1.Envelope, uint64, error) {
	return l.load(ctx, agg)
}

// load returns the aggregate's last event and its sequence (0 when none).
func (l *Log) load(ctx context.Context, agg Aggregate) (*eventsv1.Envelope, uint64, error) {
	var msg streams.StoredMsg
	var found bool
	err := l.retry(ctx, agg.Stream, func() (err error) {
		msg, found, err = l.store.Last(ctx, agg.Stream, agg.Filter)
		return err
	})
	switch {
	case errors.Is(err, streams.ErrUnavailable):
		return nil, 0, domain.Errorf(domain.KindUnavailable, "the event store did not answer in time; retry")
	case errors.Is(err, streams.ErrNoStream):
		return nil, 0, domain.Errorf(domain.KindNotFound, "project not found")
	case err != nil:
		return nil, 0, fmt.Errorf("load %s: %w", agg.Filter, err)
	}
	if !found {
		return nil, 0, nil
	}
	env, err := Decode(msg.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("load %s seq %d: %w", agg.Filter, msg.Seq, err)
	}
	return env, msg.Seq, nil
}

// seal stamps envelopes with id, time and actor and builds the messages.
func (l *Log) seal(events []*eventsv1.Envelope, meta Meta, msgID string) ([]streams.Msg, error) {
	now := timestamppb.New(l.now())
	msgs := make([]streams.Msg, len(events))
	for i, env := range events {
		env.Id = l.NewID()
		env.OccurredAt = now
		env.Actor = meta.Actor
		env.CorrelationId = meta.CorrelationID
		subject, err := Subject(env)
		if err != nil {
			return nil, err
		}
		data, err := Encode(env)
		if err != nil {
			return nil, err
		}
		msgs[i] = streams.Msg{Subject: subject, Data: data, MsgID: batchMsgID(msgID, i)}
	}
	return msgs, nil
}

// stored rebuilds the result of an earlier write from the stream: the
// message at seq and the rest of its batch. duplicate tells the caller the
// write was another request's (an idempotent repeat), not its own.
func (l *Log) stored(ctx context.Context, stream string, seq uint64, msgID string, duplicate bool) (Result, error) {
	res := Result{Duplicate: duplicate}
	for i := 0; ; i++ {
		msg, err := l.store.Get(ctx, stream, seq+uint64(i))
		if i > 0 && (errors.Is(err, streams.ErrNotFound) || (err == nil && msg.Header.Get(streams.HeaderMsgID) != batchMsgID(msgID, i))) {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("load earlier result %s seq %d: %w", stream, seq, err)
		}
		env, err := Decode(msg.Data)
		if err != nil {
			return Result{}, err
		}
		res.Events = append(res.Events, env)
		res.Seq = msg.Seq
	}
	if err := l.waitApplied(ctx, stream, res.Seq); err != nil {
		return Result{}, fmt.Errorf("wait for projection of %s seq %d: %w", stream, res.Seq, err)
	}
	return res, nil
}

// waitApplied waits until this node's projector has applied seq.
func (l *Log) waitApplied(ctx context.Context, stream string, seq uint64) (err error) {
	if l.tracer != nil {
		var span trace.Span
		ctx, span = l.tracer.Start(ctx, "eventlog.wait", trace.WithAttributes(attribute.String("cairn.stream", stream), attribute.Int64("cairn.seq", int64(seq))))
		defer func() { endSpan(span, err) }()
	}
	return l.reads.WaitApplied(ctx, stream, seq)
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// IdempotencyPrefix marks message ids derived from a client's
// Idempotency-Key; projections index only those.
const IdempotencyPrefix = "idem:"

// IdempotencyMsgID derives the Nats-Msg-Id of a request's first event. The
// key is hashed so any client string becomes a safe, bounded header value.
func IdempotencyMsgID(scope, key string) string {
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	return IdempotencyPrefix + hex.EncodeToString(sum[:16])
}

func batchMsgID(msgID string, i int) string {
	if i == 0 {
		return msgID
	}
	return msgID + "." + strconv.Itoa(i)
}

// Decide adapts a typed domain decider to a Decider: the last event is
// evolved into the aggregate's state S, then decide runs on it.
func Decide[S any](evolve func(S, *eventsv1.Envelope) S, decide func(S) ([]*eventsv1.Envelope, error)) Decider {
	return func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		var s S
		if last != nil {
			s = evolve(s, last)
		}
		return decide(s)
	}
}
