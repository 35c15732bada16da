package realtime

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// Source reads a project's stream (streams.Store).
type Source interface {
	Read(ctx context.Context, stream string, opts streams.ReadOptions) iter.Seq2[streams.StoredMsg, error]
	StreamInfo(ctx context.Context, stream string) (streams.Info, error)
}

// Event is one stored event of a project.
type Event struct {
	Project string
	Seq     uint64
	Subject string
	Time    time.Time
	Env     *eventsv1.Envelope
	Route   Route

	once     sync.Once
	prepared any
}

// Prepared returns what prepare computes from the event, computing it once
// for all subscribers (the payload, the resource's permissions).
func (e *Event) Prepared(prepare func(*Event) any) any {
	e.once.Do(func() { e.prepared = prepare(e) })
	return e.prepared
}

// Limits bound the hub; zero fields take the defaults.
type Limits struct {
	// Buffer is the events one subscriber may have queued; a live
	// subscriber that falls this far behind is cut off (a slow consumer).
	Buffer int
	// MaxPerProject is the most subscriptions of one project on this node.
	MaxPerProject int
	// MaxChannels is the most channels of one subscription.
	MaxChannels int
	// DeliveryRate is the deliveries (an event to one subscriber) per
	// second each project's feed may make on this node; a project over
	// it gets its events later, never fewer. 0: DefaultDeliveryRatePerCore
	// per core; < 0: no budget.
	DeliveryRate int
	// DeliveryBurst is the deliveries a project may make at once above
	// its rate; 0: two seconds of the rate.
	DeliveryBurst int
	// FanoutWorkers bounds the goroutines fanning events out at once,
	// across all projects of the node. 0: one fewer than the cores (at
	// least one); < 0: no bound (each project's fan-out takes every core).
	FanoutWorkers int
	// ProjectBudget, when set, returns a project's own rate and burst
	// (0: the node's); called before each fan-out, so it must be cheap.
	ProjectBudget func(project string) (rate, burst int)
	// FanoutShare is the percentage of its fan-out worker's time one
	// project's fan-out may take while other projects make calls (as
	// OthersCalls tells): after a run of events it pauses for the rest.
	// 0: DefaultFanoutShare; 100 or more, or < 0: no pause.
	FanoutShare int
	// OthersCalls, when set, counts the calls projects other than project
	// have made on the node so far; called before each run of events, so
	// it must be cheap.
	OthersCalls func(project string) int64
}

// Default limits.
const (
	DefaultBuffer        = 1024
	DefaultMaxPerProject = 20_000
	DefaultMaxChannels   = 100
)

func (l Limits) withDefaults() Limits {
	if l.Buffer <= 0 {
		l.Buffer = DefaultBuffer
	}
	if l.MaxPerProject <= 0 {
		l.MaxPerProject = DefaultMaxPerProject
	}
	if l.MaxChannels <= 0 {
		l.MaxChannels = DefaultMaxChannels
	}
	if l.DeliveryRate == 0 {
		l.DeliveryRate = DefaultDeliveryRatePerCore * runtime.GOMAXPROCS(0)
	}
	return l
}

// Errors a subscription can end with.
var (
	ErrTooMany      = errors.New("realtime: too many subscriptions for this project on this node")
	ErrSlowConsumer = errors.New("realtime: the subscriber fell too far behind and was disconnected")
	ErrClosed       = errors.New("realtime: the server is closing the subscription")
)

// Hub runs the per-project feeds of one node.
type Hub struct {
	src Source
	// applied waits until this node's read models have applied seq of a
	// stream, so filters that read them see the event's effects.
	applied func(ctx context.Context, stream string, seq uint64) error
	log     *slog.Logger
	lim     Limits
	ctx     context.Context
	tracer  trace.Tracer // nil: not tracing
	// workers bounds the fan-out running at once (nil: no bound).
	workers *workers
	now     func() time.Time

	mu    sync.Mutex
	feeds map[string]*feed

	// sets interns channel sets (by their sorted names), so subscribers
	// with the same channels share one *channelSet and the fan-out
	// matches an event against each set once, not once per subscriber.
	setsMu sync.Mutex
	sets   map[string]*channelSet
}

// channelSet is a subscriber's channels.
type channelSet map[string]bool

// maxInterned bounds Hub.sets: once it holds this many sets it starts
// again (sets already handed out stay valid, only unshared).
const maxInterned = 1024

// channelSet returns the interned set of channels.
func (h *Hub) channelSet(channels []string) *channelSet {
	names := slices.Clone(channels)
	slices.Sort(names)
	names = slices.Compact(names)
	key := strings.Join(names, "\x00")
	h.setsMu.Lock()
	defer h.setsMu.Unlock()
	if cs, ok := h.sets[key]; ok {
		return cs
	}
	if len(h.sets) >= maxInterned {
		clear(h.sets)
	}
	cs := make(channelSet, len(names))
	for _, c := range names {
		cs[c] = true
	}
	h.sets[key] = &cs
	return &cs
}

// matched is MatchedSet for the subscribers whose channels are cs.
func (cs *channelSet) matched(e *Event) uint64 {
	var set uint64
	for i, c := range e.Route.Channels {
		if i < 64 && (*cs)[c] {
			set |= 1 << i
		}
	}
	return set
}

// NewHub returns a hub whose feeds live until ctx ends.
func NewHub(ctx context.Context, src Source, applied func(context.Context, string, uint64) error, log *slog.Logger, lim Limits) *Hub {
	lim = lim.withDefaults()
	return &Hub{src: src, applied: applied, log: log, lim: lim, ctx: ctx, feeds: map[string]*feed{}, sets: map[string]*channelSet{},
		workers: newWorkers(lim.FanoutWorkers), now: time.Now}
}

// WithTracer traces each event's delivery to the subscribers as a child of
// the write that appended it; call it before the first Subscribe.
func (h *Hub) WithTracer(tp trace.TracerProvider) *Hub {
	h.tracer = tp.Tracer("github.com/cairn-dev/cairn/realtime")
	return h
}

// Limits returns the hub's limits with defaults applied.
func (h *Hub) Limits() Limits { return h.lim }

// feed is one project's ordered consumer and its subscribers.
type feed struct {
	project string
	cancel  context.CancelFunc
	mu      sync.Mutex
	subs    map[*Subscriber]struct{}
	// list holds subs in a slice, which the fan-out splits between cores.
	list []*Subscriber
	// pos is the last sequence the feed has handed to subscribers.
	pos atomic.Uint64
	// access counts events that may change permissions (teams,
	// memberships, users), so subscribers know to resolve theirs again.
	access atomic.Uint64
	// budget is the project's deliveries (the feed's goroutine's).
	budget budget
	// fanned is the time the current run's fan-outs took so far, others
	// the other projects' calls when it started (the feed's goroutine's):
	// the next run may pause after it (Hub.share).
	fanned time.Duration
	others int64
}

// Sink takes a RunDirect subscriber's live events on the feed's fan-out
// goroutines, one call at a time, in stream order. Neither method may
// block.
type Sink interface {
	// Deliver decides about e, whose channels the subscriber's match as
	// set (Subscriber.MatchedSet), and queues what to send; kick: then
	// start writing what is queued, as Kick. false when the queue is
	// full, which cuts the subscriber off as a slow consumer.
	Deliver(e *Event, set uint64, kick bool) bool
	// Kick starts writing what Deliver queued (after one event, or a run
	// of them, that did not match the subscriber or was not kicked).
	Kick()
}

// Subscriber is one subscription. Next yields what to send, in order.
type Subscriber struct {
	hub     *Hub
	feed    *feed
	project string
	after   uint64
	live    chan *Event
	// sink, once set, takes live events on the feed's fan-out
	// goroutines instead of live (RunDirect). Written and read only under
	// the feed's lock (the fan-out holds it), so a plain field: one
	// pointer fewer to follow per delivery than an atomic one.
	sink Sink
	// channels the subscriber listens to (set by SetChannels), interned.
	channels atomic.Pointer[channelSet]
	mu       sync.Mutex
	// resuming: live events are queued, an overflow only means catch up
	// again; once live, an overflow cuts the subscriber off.
	resuming bool
	overflow bool
	closed   chan struct{}
	closeErr error
	once     sync.Once
	last     uint64 // last sequence delivered or skipped
}

// Subscribe registers a subscriber of project on channels. after > 0
// resumes after that sequence; 0 starts with events from now on.
func (h *Hub) Subscribe(project string, channels []string, after uint64) (*Subscriber, error) {
	if len(channels) > h.lim.MaxChannels {
		return nil, fmt.Errorf("realtime: at most %d channels per subscription", h.lim.MaxChannels)
	}
	for _, c := range channels {
		if err := ValidChannel(c); err != nil {
			return nil, err
		}
	}
	s := &Subscriber{hub: h, project: project, after: after, live: make(chan *Event, h.lim.Buffer),
		closed: make(chan struct{}), resuming: after > 0}
	s.SetChannels(channels)
	h.mu.Lock()
	f := h.feeds[project]
	if f == nil {
		ctx, cancel := context.WithCancel(h.ctx)
		f = &feed{project: project, cancel: cancel, subs: map[*Subscriber]struct{}{}}
		info, err := h.src.StreamInfo(ctx, streams.ProjectStream(project))
		if err != nil {
			h.mu.Unlock()
			cancel()
			return nil, fmt.Errorf("realtime: project %s: %w", project, err)
		}
		f.pos.Store(info.LastSeq)
		h.feeds[project] = f
		// Labelled with its project (its fan-out goroutines inherit
		// it), so that a CPU profile splits the work by project.
		go pprof.Do(ctx, pprof.Labels("project", project), func(ctx context.Context) { h.run(ctx, f, info.LastSeq+1) })
	}
	f.mu.Lock()
	if len(f.subs) >= h.lim.MaxPerProject {
		f.mu.Unlock()
		h.mu.Unlock()
		return nil, ErrTooMany
	}
	f.subs[s] = struct{}{}
	f.list = append(f.list, s)
	s.feed = f
	if after == 0 {
		s.last = f.pos.Load()
	}
	f.mu.Unlock()
	h.mu.Unlock()
	return s, nil
}

// SetChannels replaces the subscriber's channels (validated by the caller
// with ValidChannel) on an open subscription.
func (s *Subscriber) SetChannels(channels []string) {
	s.channels.Store(s.hub.channelSet(channels))
}

// Matched returns the subscriber's channels e belongs to.
func (s *Subscriber) Matched(e *Event) []string {
	m := *s.channels.Load()
	var out []string
	for _, c := range e.Route.Channels {
		if m[c] {
			out = append(out, c)
		}
	}
	return out
}

// MatchedSet is Matched as a set of indexes into e.Route.Channels (bit i:
// the i-th), which names the same channels without allocating.
func (s *Subscriber) MatchedSet(e *Event) uint64 {
	return s.channels.Load().matched(e)
}

// AccessGeneration changes whenever an event that may change permissions
// passed through the project's feed: cached permission subjects are stale.
func (s *Subscriber) AccessGeneration() uint64 { return s.feed.access.Load() }

// Close ends the subscription; err says why (nil: the client left).
func (s *Subscriber) Close(err error) {
	s.once.Do(func() {
		s.closeErr = err
		close(s.closed)
		h, f := s.hub, s.feed
		h.mu.Lock()
		f.mu.Lock()
		delete(f.subs, s)
		if i := slices.Index(f.list, s); i >= 0 {
			f.list[i] = f.list[len(f.list)-1]
			f.list[len(f.list)-1] = nil
			f.list = f.list[:len(f.list)-1]
		}
		empty := len(f.subs) == 0
		f.mu.Unlock()
		if empty && h.feeds[f.project] == f {
			delete(h.feeds, f.project)
			f.cancel()
		}
		h.mu.Unlock()
	})
}

// Done is closed when the subscription ends.
func (s *Subscriber) Done() <-chan struct{} { return s.closed }

// Err is why the subscription ended.
func (s *Subscriber) Err() error { return s.closeErr }

// feedMsg is a message the feed read, decoded.
type feedMsg struct {
	m   streams.StoredMsg
	e   *Event // nil: undecodable
	err error
}

// run is a project's feed: one ordered consumer from start, handing every
// event to the subscribers whose channels it matches. A goroutine reads
// and decodes ahead, so the fan-out sees whether more events are waiting:
// while they are, frames queue; once none are (or after fanOutRun events)
// the subscribers' writers are kicked. One event alone is written at once;
// a run of events arriving faster than they are fanned out goes to each
// socket in one write. A project over its delivery budget waits before a
// run (budget.go), and each fan-out takes the node's fan-out workers.
func (h *Hub) run(ctx context.Context, f *feed, start uint64) {
	stream := streams.ProjectStream(f.project)
	msgs := make(chan feedMsg, fanOutRun)
	go func() {
		defer close(msgs)
		for m, err := range h.src.Read(ctx, stream, streams.ReadOptions{StartSeq: start, Follow: true}) {
			fm := feedMsg{m: m, err: err}
			if err == nil {
				if fm.e, err = decode(f.project, m); err != nil {
					h.log.Warn("realtime: undecodable event", "project", f.project, "seq", m.Seq, "err", err)
				}
			}
			select {
			case msgs <- fm:
			case <-ctx.Done():
				return
			}
			if fm.err != nil {
				return
			}
		}
	}()
	unkicked, runCap := 0, fanOutRun
	for fm := range msgs {
		if fm.err != nil {
			if ctx.Err() == nil {
				h.log.Warn("realtime feed stopped", "project", f.project, "err", fm.err)
				h.closeAll(f, fmt.Errorf("%w: %v", ErrClosed, fm.err))
			}
			return
		}
		if fm.e == nil {
			kick := len(msgs) == 0 || unkicked+1 >= runCap
			f.pos.Store(fm.m.Seq)
			if kick && unkicked > 0 {
				unkicked = 0
				h.kick(ctx, f)
			}
			continue
		}
		if unkicked > 0 && !h.appliedNow(ctx, stream, fm.e.Seq) {
			// The read models lag behind this event: what is queued
			// goes out now rather than after the wait.
			unkicked = 0
			h.kick(ctx, f)
		}
		if unkicked == 0 {
			if !h.share(ctx, f) {
				return
			}
			// The project's budget, checked at the start of a run only:
			// a run is fanned out whole (its frames go to each socket in
			// one write), and its debt makes the next run wait longer.
			rate, burst := h.rates(f.project)
			runCap = f.runCap(rate, burst)
			if d := f.budget.wait(h.now(), rate, burst); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
		}
		kick := len(msgs) == 0 || unkicked+1 >= runCap
		unkicked++
		if kick {
			unkicked = 0
		}
		if !h.deliver(ctx, f, stream, fm.m, fm.e, kick) {
			return
		}
	}
}

// kick has the feed's direct subscribers write what they queued; its time
// counts towards the run's fan-out (Hub.share).
func (h *Hub) kick(ctx context.Context, f *feed) {
	t0 := time.Now()
	h.fan(ctx, f, nil, true)
	f.fanned += time.Since(t0)
}

// runCap is the most events of one run: fanOutRun, or fewer when the
// project has a budget, so that a run's deliveries stay within its burst
// and the wait after it within the burst's worth of time.
func (f *feed) runCap(rate, burst int) int {
	if rate < 0 {
		return fanOutRun
	}
	f.mu.Lock()
	n := len(f.list)
	f.mu.Unlock()
	return max(1, min(fanOutRun, burst/max(n, 1)))
}

// appliedNow reports whether the read models have applied seq already.
func (h *Hub) appliedNow(ctx context.Context, stream string, seq uint64) bool {
	now, cancel := context.WithCancel(ctx)
	cancel()
	return h.applied(now, stream, seq) == nil
}

// fanOutRun is the most events queued to a direct subscriber before its
// writer is kicked, so a long run of events neither waits nor fills its
// queue.
const fanOutRun = 32

// deliver hands e to the feed's subscribers once the read models have it;
// false when ctx ended.
func (h *Hub) deliver(ctx context.Context, f *feed, stream string, m streams.StoredMsg, e *Event, kick bool) bool {
	var span trace.Span
	if h.tracer != nil {
		ctx, span = h.tracer.Start(streams.TraceParent(ctx, m), "realtime.deliver", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("cairn.stream", stream), attribute.Int64("cairn.seq", int64(e.Seq))))
		defer span.End()
	}
	// Filters read the read models: let them catch up with the event.
	if err := h.applied(ctx, stream, e.Seq); err != nil {
		if ctx.Err() != nil {
			return false
		}
		h.log.Warn("realtime: waiting for projections", "project", f.project, "seq", e.Seq, "err", err)
	}
	// Only now: a subscriber that sees the new generation and resolves
	// its permissions again must find the change in the read models
	// (before, it could cache the old ones under the new generation).
	if e.Route.AccessChange {
		f.access.Add(1)
	}
	t0 := time.Now()
	n := h.fan(ctx, f, e, kick)
	if n < 0 {
		return false
	}
	f.fanned += time.Since(t0)
	f.budget.spend(n)
	if span != nil {
		span.SetAttributes(attribute.Int("cairn.deliveries", n))
	}
	return true
}

// fan is fanOut of the feed's subscribers on as many of the node's
// fan-out workers as it gets, with the feed's position at e (nil: only
// kick); it returns the deliveries made, -1 once ctx ended.
func (h *Hub) fan(ctx context.Context, f *feed, e *Event, kick bool) int {
	f.mu.Lock()
	want := shares(len(f.list))
	f.mu.Unlock()
	got := h.workers.acquire(ctx, want)
	if got == 0 {
		return -1
	}
	defer h.workers.release(got)
	f.mu.Lock()
	defer f.mu.Unlock()
	if e != nil {
		f.pos.Store(e.Seq)
	}
	return fanOut(f.list, e, kick, min(got, shares(len(f.list))))
}

// fanOutShare is the fewest subscribers worth a goroutine of their own.
const fanOutShare = 64

// fanOutYield is how many subscribers a fan-out serves before it lets
// other goroutines run: a request of another project then waits for a few
// dozen socket writes of a busy project's fan-out, not for the runtime's
// 10 ms preemption slice (BenchmarkFairness in cmd/cairn).
const fanOutYield = 32

func yieldEvery(i int) {
	if i%fanOutYield == fanOutYield-1 {
		runtime.Gosched()
	}
}

// shares is how many goroutines n subscribers are worth: one per core at
// most, and none for fewer than fanOutShare subscribers.
func shares(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/fanOutShare))
}

// fanOut pushes e to subs in n shares, each on a goroutine: a
// subscriber's share of an event (its permission check, the write to its
// socket) does not wait for the others'. Each subscriber is in one share,
// so its events stay in order. kick: direct subscribers write what they
// queued (e nil: only that), each right after its push, while its state is
// in the cache. It returns the deliveries (pushes) made.
func fanOut(subs []*Subscriber, e *Event, kick bool, shares int) int {
	var pushed atomic.Int64
	share := func(subs []*Subscriber) {
		n := 0
		defer func() { pushed.Add(int64(n)) }()
		// Most subscribers share their channels (Hub.channelSet): the
		// last set's match is reused.
		var last *channelSet
		var set uint64
		for i, s := range subs {
			if e != nil {
				if cs := s.channels.Load(); cs != last {
					last, set = cs, cs.matched(e)
				}
				if set != 0 {
					// A direct subscriber's Deliver also kicks: one
					// call, one visit of its state.
					s.push(e, set, kick)
					n++
					yieldEvery(i)
					continue
				}
			}
			if kick {
				if s.sink != nil {
					s.sink.Kick()
				}
			}
			yieldEvery(i)
		}
	}
	if shares <= 1 || len(subs) < 2 {
		share(subs)
		return int(pushed.Load())
	}
	size := (len(subs) + shares - 1) / shares
	var wg sync.WaitGroup
	for chunk := range slices.Chunk(subs[size:], size) {
		wg.Go(func() { share(chunk) })
	}
	share(subs[:size])
	wg.Wait()
	return int(pushed.Load())
}

func (h *Hub) closeAll(f *feed, err error) {
	f.mu.Lock()
	subs := make([]*Subscriber, 0, len(f.subs))
	for s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		s.Close(err)
	}
}

func decode(project string, m streams.StoredMsg) (*Event, error) {
	env, err := eventlog.Decode(m.Data)
	if err != nil {
		return nil, err
	}
	return &Event{Project: project, Seq: m.Seq, Subject: m.Subject, Time: m.Time, Env: env, Route: RouteOf(m.Subject, env)}, nil
}

// push queues e, whose channels the subscriber's match as set (not
// empty), without ever blocking the feed; kick: a direct subscriber
// writes what it queued.
func (s *Subscriber) push(e *Event, set uint64, kick bool) {
	if d := s.sink; d != nil {
		// A resumed subscriber's catch-up may have read past the feed
		// (one held back by its budget, or waiting for the read
		// models): those events it has had. s.last is no longer written
		// once the subscriber is direct.
		if e.Seq <= s.last {
			if kick {
				d.Kick()
			}
			return
		}
		if !d.Deliver(e, set, kick) {
			s.cutOff()
		}
		return
	}
	select {
	case s.live <- e:
		return
	default:
	}
	s.mu.Lock()
	resuming := s.resuming
	if resuming {
		s.overflow = true
	}
	s.mu.Unlock()
	if !resuming {
		s.cutOff()
	}
}

// cutOff ends a subscriber that fell too far behind.
func (s *Subscriber) cutOff() {
	select {
	case <-s.closed:
	default:
		go s.Close(ErrSlowConsumer) // Close takes the feed's lock, held here
	}
}
