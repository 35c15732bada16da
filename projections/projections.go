package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/streams"
)

// Sentinel errors; returned errors wrap them.
var (
	// ErrNotFound: no such resource in the read model.
	ErrNotFound = errors.New("projections: not found")
	// ErrUnknownEvent: the stream holds an event type this build cannot
	// apply (written by a newer version). The projector stops.
	ErrUnknownEvent = errors.New("projections: unknown event type")
	// ErrProjectorStopped: the stream's projector stopped on an error it
	// cannot recover from (gap, undecodable or unknown event); see the log.
	ErrProjectorStopped = errors.New("projections: projector stopped")
	// ErrProjectDeleted: the project was deleted while waiting (or while
	// rebuilding it).
	ErrProjectDeleted = errors.New("projections: project deleted")
	// ErrClosed: the Projections was closed.
	ErrClosed = errors.New("projections: closed")
)

// DefaultBatch is the largest number of events applied in one transaction.
const DefaultBatch = 512

// bulkBatch is the batch of a rebuild's consume (keyspace.bulk),
// whose events write little each.
const bulkBatch = 4096

// bulkCatchUpMin is the shortest stream a project projector starting from
// an empty read model applies the way a rebuild does (bulk.go): below it,
// building the indexes at the end saves less than it delays the first
// reads.
const bulkCatchUpMin = 10_000

// Options configure Projections.
type Options struct {
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// DuplicateWindow is the streams' deduplication window: how long an
	// idempotency-index entry lives after its event. Default 2 minutes
	// (the streams package's default); keep it equal to streams.Options'.
	DuplicateWindow time.Duration
	// Batch is the most events applied per transaction; default
	// DefaultBatch.
	Batch int
	// IdleAfter is how long a project's projector stays active (holding a
	// consumer on its stream) after it caught up and nothing new arrived,
	// before it parks; default DefaultIdleAfter, negative never parks an
	// active projector. The system projector never parks.
	IdleAfter time.Duration
	// SweepEvery is how often every stream's last sequence is compared with
	// what its parked projector applied, waking those left behind (a missed
	// notification); default DefaultSweepEvery.
	SweepEvery time.Duration
	// Tracer, when set, traces every event's apply as a child of the write
	// that appended it (the trace context in its headers).
	Tracer trace.TracerProvider
	// WebhookDeliveryRecords is how many delivery records the read model
	// keeps per webhook (the newest; the events stay in the log); default
	// DefaultWebhookDeliveryRecords. A rebuild keeps the same ones.
	WebhookDeliveryRecords int
	// RankingCacheBytes bounds the list cache: ranked index ranges that
	// lists sorted in memory reuse, and their pages' stored documents
	// (rankings.go); default DefaultRankingCacheBytes, negative caches
	// nothing.
	RankingCacheBytes int64
	// DocumentCacheBytes bounds the cache of documents read by id
	// (doccache.go); default DefaultDocumentCacheBytes, negative caches
	// nothing.
	DocumentCacheBytes int64
}

// DefaultWebhookDeliveryRecords is Options.WebhookDeliveryRecords' default.
const DefaultWebhookDeliveryRecords = 1000

// Defaults of Options.IdleAfter and Options.SweepEvery.
const (
	DefaultIdleAfter  = 30 * time.Second
	DefaultSweepEvery = 15 * time.Second
)

// Projections is a node's read side: the projectors and the read models.
type Projections struct {
	db    *badger.DB
	store *streams.Store
	log   *slog.Logger
	dup   time.Duration
	batch int
	idle  time.Duration
	sweep time.Duration
	// tracer is nil when not tracing.
	tracer trace.Tracer

	// gate orders commits against DropPrefix, which blocks every write
	// while it runs: commits hold it shared, drops exclusively.
	gate sync.RWMutex

	mu         sync.Mutex
	started    bool
	closed     bool
	caughtUp   bool // Ready returned true once: later starts do not count
	baseCtx    context.Context
	cancel     context.CancelFunc
	projectors map[string]*projector  // by stream: every registered stream, active or parked
	states     map[string]*state      // by stream; outlives projectors for waiters
	lifecycle  map[string]*sync.Mutex // by stream: rebuild vs. delete
	rebuilding map[string]bool        // by stream
	stopNotify func()                 // ends the notification subscription
	bg         sync.WaitGroup         // the supervisor and the waker

	// Notifications (see notify): project ids waiting for the waker.
	nmu     sync.Mutex
	nqueue  map[string]struct{}
	nsignal chan struct{}
	// checkSignal asks the supervisor to compare newly registered projects
	// with their streams.
	checkSignal chan struct{}
	sweepSignal chan struct{} // RequestSweep

	// schemas caches decoded collection schemas; garbage is set while
	// dropped collections or indexes may have keys left to delete.
	schemas schemaCache
	colls   collCache
	garbage atomic.Bool
	// metaVersion is MetaVersion (metaversion.go).
	metaVersion atomic.Uint64
	// rankings caches ranked index ranges (rankings.go).
	rankings *rankings
	// docs caches documents read by id (doccache.go).
	docs *docCache

	// Test hooks: onCommit sees every committed event's stream and
	// sequence; muteNotify drops notifications (a lost one).
	onCommit   func(stream string, seq uint64)
	muteNotify atomic.Bool
	// activations counts parked projectors made active.
	activations atomic.Int64
	// bulkCatchUp is bulkCatchUpMin; tests lower it.
	bulkCatchUp uint64
	// newBulkWriter, when set (benchmarks: the unsorted path beside the
	// sorted one), replaces newSortedLoad for a bulk run's writes.
	newBulkWriter func(keyspace) (bulkWriter, error)
	// onIndexChunk, when set (tests), runs after each committed chunk of an
	// index build but the last; an error ends the build there.
	onIndexChunk func(ctx context.Context, chunks int) error
	// deliveryRecords is Options.WebhookDeliveryRecords.
	deliveryRecords int64
}

// New returns the read side over db, fed from store. Nothing runs until
// Start; the query methods work at once on whatever db holds.
func New(db *badger.DB, store *streams.Store, opts Options) *Projections {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = 2 * time.Minute
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.IdleAfter == 0 {
		opts.IdleAfter = DefaultIdleAfter
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = DefaultSweepEvery
	}
	if opts.WebhookDeliveryRecords <= 0 {
		opts.WebhookDeliveryRecords = DefaultWebhookDeliveryRecords
	}
	if opts.RankingCacheBytes == 0 {
		opts.RankingCacheBytes = DefaultRankingCacheBytes
	}
	if opts.DocumentCacheBytes == 0 {
		opts.DocumentCacheBytes = DefaultDocumentCacheBytes
	}
	ctx, cancel := context.WithCancel(context.Background())
	var tracer trace.Tracer
	if opts.Tracer != nil {
		tracer = opts.Tracer.Tracer("github.com/cairn-dev/cairn/projections")
	}
	return &Projections{
		db: db, store: store, dup: opts.DuplicateWindow, batch: opts.Batch,
		idle: opts.IdleAfter, sweep: opts.SweepEvery, tracer: tracer, bulkCatchUp: bulkCatchUpMin,
		deliveryRecords: int64(opts.WebhookDeliveryRecords),
		rankings:        newRankings(max(opts.RankingCacheBytes, 0)),
		docs:            newDocCache(max(opts.DocumentCacheBytes, 0)),
		log:             opts.Logger.With("component", "projections"),
		baseCtx:         ctx,
		cancel:          cancel,
		projectors:      map[string]*projector{},
		states:          map[string]*state{},
		lifecycle:       map[string]*sync.Mutex{},
		rebuilding:      map[string]bool{},
		nsignal:         make(chan struct{}, 1),
		checkSignal:     make(chan struct{}, 1),
		sweepSignal:     make(chan struct{}, 1),
	}
}

// Start starts the system projector and registers every project the system
// read model holds; the system projector registers and unregisters the
// others as projects are created and deleted. A project's projector is
// active only while its stream has something it has not applied: Start
// compares every checkpoint with its stream's state in one paginated listing
// (in the background; Ready waits for it) and activates only the projects
// that are behind, parking the rest. ctx bounds only the start-up.
func (p *Projections) Start(ctx context.Context) error {
	ids, err := p.projectIDs()
	if err != nil {
		return fmt.Errorf("projections: start: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.started {
		p.mu.Unlock()
		return errors.New("projections: already started")
	}
	p.mu.Unlock()
	// Subscribed before the streams are listed, so whatever the listing
	// misses is notified.
	stop, err := p.store.NotifyProjects(p.notify)
	if err != nil {
		return fmt.Errorf("projections: start: %w", err)
	}
	p.mu.Lock()
	if p.closed || p.started {
		err := ErrClosed
		if p.started {
			err = errors.New("projections: already started")
		}
		p.mu.Unlock()
		stop()
		return err
	}
	p.started, p.stopNotify = true, stop
	p.activateLocked(p.registerLocked(streams.SystemStream))
	for _, id := range ids {
		p.registerLocked(streams.ProjectStream(id))
	}
	p.bg.Add(2)
	go p.supervise(p.baseCtx)
	go p.waker(p.baseCtx)
	p.garbage.Store(true) // a drop may have been left unfinished
	go p.garbageCollector()
	p.mu.Unlock()
	p.log.InfoContext(ctx, "projections started", "projects", len(ids))
	return nil
}

// Close stops every projector and waits for them. It does not close db.
// Stopping a projector is local (its consumer is left to the server's
// inactivity threshold), so closing does not wait on the server.
func (p *Projections) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	var dones []chan struct{}
	for _, pr := range p.projectors {
		if pr.done != nil {
			dones = append(dones, pr.done)
		}
	}
	p.projectors = map[string]*projector{}
	states := make([]*state, 0, len(p.states))
	for _, st := range p.states {
		states = append(states, st)
	}
	stop := p.stopNotify
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
	for _, done := range dones {
		<-done
	}
	p.bg.Wait()
	for _, st := range states {
		st.stop(ErrClosed)
	}
	return nil
}

// startProjector registers the stream's projector and activates it, unless
// the stream is being rebuilt (Rebuild restarts it) or the Projections is
// not running. Rebuild uses it.
func (p *Projections) startProjector(stream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.closed || p.rebuilding[stream] {
		return
	}
	p.activateLocked(p.registerLocked(stream))
}

// addProject registers a project the system projector just applied the
// creation of. The supervisor compares it with its stream and activates it
// if the stream holds events (a node catching up on the system stream); a
// project registered already is left alone (a replay of the system stream).
func (p *Projections) addProject(stream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.closed || p.rebuilding[stream] || p.projectors[stream] != nil {
		return
	}
	pr := p.registerLocked(stream)
	if pr.st.hasWaiters() {
		p.activateLocked(pr)
		return
	}
	select {
	case p.checkSignal <- struct{}{}:
	default:
	}
}

// stopProjector unregisters the stream's projector and, if it is active,
// stops it and waits for it. It reports whether one was registered.
func (p *Projections) stopProjector(stream string) bool {
	p.mu.Lock()
	pr := p.projectors[stream]
	delete(p.projectors, stream)
	var (
		done   chan struct{}
		cancel context.CancelFunc
	)
	if pr != nil {
		done, cancel = pr.done, pr.cancel
	}
	p.mu.Unlock()
	if done != nil {
		cancel()
		<-done
	}
	return pr != nil
}

// lifecycleLock serialises a stream's rebuild with its project's deletion.
func (p *Projections) lifecycleLock(stream string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lifecycle[stream]
	if l == nil {
		l = &sync.Mutex{}
		p.lifecycle[stream] = l
	}
	return l
}

func (p *Projections) state(stream string) *state {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stateLocked(stream)
}

func (p *Projections) stateLocked(stream string) *state {
	st := p.states[stream]
	if st == nil {
		st = newState()
		p.states[stream] = st
	}
	return st
}

// WaitApplied blocks until the local projector of stream has applied seq,
// ctx ends (its error is returned, wrapped), the projector stopped on an
// error, or the project was deleted.
func (p *Projections) WaitApplied(ctx context.Context, stream string, seq uint64) error {
	if _, ok := streams.ProjectFromStream(stream); !ok && stream != streams.SystemStream {
		_, err := spaceOf(stream) // its error
		return err
	}
	st := p.state(stream)
	_, epoch, _, _ := st.snapshot()
	waiting := false
	var stall *time.Timer // one per wait, reset on progress, not one per wake
	for {
		applied, e, ch, err := st.snapshot()
		if applied >= seq {
			return nil
		}
		if !waiting {
			// Registered before the wake, so a projector about to park sees
			// it and stays: read-your-writes never hangs on a notification.
			waiting = true
			st.addWaiter(1)
			defer st.addWaiter(-1)
			p.wake(stream)
		}
		if err == nil && e != epoch {
			// Deleted while we waited. A waiter that arrives after the
			// deletion just waits: the project may be created again.
			err = ErrProjectDeleted
		}
		if err != nil {
			return fmt.Errorf("projections: wait for %s seq %d (applied %d): %w", stream, seq, applied, err)
		}
		if stall == nil {
			stall = time.NewTimer(stallCheck)
			defer stall.Stop()
		}
		select {
		case <-ch:
			stall.Reset(stallCheck)
		case <-ctx.Done():
			return fmt.Errorf("projections: wait for %s seq %d (applied %d): %w", stream, seq, applied, ctx.Err())
		case <-stall.C:
			// No progress for a while: a sweep compares with the stream and
			// restarts a projector that is stuck (two sweeps, no progress).
			p.RequestSweep()
			stall.Reset(stallCheck)
		}
	}
}

// stallCheck is how long a waiter sees no progress before asking for a sweep.
const stallCheck = 2 * time.Second

// AppliedSeq returns the last sequence of stream applied by this node's
// running projector (0 before it started).
func (p *Projections) AppliedSeq(stream string) uint64 {
	p.mu.Lock()
	st := p.states[stream]
	p.mu.Unlock()
	if st == nil {
		return 0
	}
	seq, _, _, _ := st.snapshot()
	return seq
}

// Ready reports whether the node's read side is serving fresh data: started,
// every project compared with its stream, and every projector that was
// behind caught up to its stream's last sequence as seen when it started,
// with none stopped on an error. A parked projector is caught up.
//
// Once the node has caught up, a projector that starts later (a project
// created at runtime, a parked one woken) does not take it out of
// readiness: only a projector stopped on an error does. Otherwise every
// CreateProject would flap it.
func (p *Projections) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.closed {
		return false
	}
	for stream, st := range p.states {
		pr := p.projectors[stream]
		if p.caughtUp || pr == nil {
			if st.hasFailed() {
				return false
			}
			continue
		}
		if !pr.checked {
			return false
		}
		if !st.ready(pr.done != nil) {
			return false
		}
	}
	p.caughtUp = true
	return true
}

// state is a stream's applied sequence as seen by waiters. Waiters take the
// current channel; every change closes it and installs a new one, so a wait
// costs nothing until something happens (no polling).
type state struct {
	mu       sync.Mutex
	applied  uint64
	target   uint64 // the stream's last sequence when the projector started
	starting bool   // the projector has not compared itself with the stream yet
	err      error  // why the projector stopped (nil while it runs)
	failed   bool   // err is a fatal projector error, which makes Ready false
	epoch    uint64 // bumped when the project is deleted
	waiters  int    // WaitApplied calls waiting for more than applied
	ch       chan struct{}
	// version moves on with every change of state, each commit included
	// (before waiters hear of it), except a commit of document events
	// alone, which moves on the versions of their collections in colls
	// instead: what was read from a collection at one docVersion may have
	// changed at the next.
	version atomic.Uint64
	// colls counts the commits that changed each collection's documents
	// ("database/collection"; collKey), under mu; emptied, with version
	// moved on, past maxCollVersions.
	colls map[string]uint64
}

// readVersion is a collection's read model version (state.docVersion).
type readVersion struct{ base, coll uint64 }

// maxCollVersions bounds state.colls.
const maxCollVersions = 4096

// collKey names a collection in state.colls.
func collKey(database, collection string) string { return database + "/" + collection }

func newState() *state { return &state{ch: make(chan struct{})} }

func (s *state) broadcastLocked() {
	s.version.Add(1)
	s.notifyLocked()
}

func (s *state) notifyLocked() {
	close(s.ch)
	s.ch = make(chan struct{})
}

func (s *state) snapshot() (applied, epoch uint64, ch chan struct{}, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied, s.epoch, s.ch, s.err
}

// docVersion is the version of the documents of collection (collKey): a
// ranking built from a Badger snapshot opened after reading it is valid
// while it is unchanged.
func (s *state) docVersion(collection string) readVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	return readVersion{s.version.Load(), s.colls[collection]}
}

// begin marks a (re)starting projector.
func (s *state) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starting, s.err, s.failed = true, nil, false
	s.broadcastLocked()
}

// started records the checkpoint the projector resumes from and the
// stream's last sequence it has to reach to be ready.
func (s *state) started(applied, target uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied, s.target, s.starting = applied, target, false
	s.broadcastLocked()
}

func (s *state) advance(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = seq
	s.broadcastLocked()
}

// advanceDocs is advance after a commit that changed the documents of
// colls (collKey) and nothing else a query reads: only their versions
// move on, other collections' cached answers stay valid.
func (s *state) advanceDocs(seq uint64, colls []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = seq
	if len(s.colls) >= maxCollVersions {
		// A forgotten count would start again at zero: move every
		// collection's version on with it.
		clear(s.colls)
		s.version.Add(1)
	}
	if s.colls == nil {
		s.colls = map[string]uint64{}
	}
	for _, c := range colls {
		s.colls[c]++
	}
	s.notifyLocked()
}

// rewind forgets the applied sequence: the read models were dropped.
func (s *state) rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = 0
	s.broadcastLocked()
}

// deleted wakes the current waiters with ErrProjectDeleted.
func (s *state) deleted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied, s.starting = 0, false
	s.epoch++
	s.broadcastLocked()
}

// stop wakes every waiter with err.
func (s *state) stop(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err, s.starting = err, false
	s.failed = errors.Is(err, ErrProjectorStopped)
	s.broadcastLocked()
}

func (s *state) addWaiter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters += n
}

func (s *state) hasWaiters() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiters > 0
}

func (s *state) appliedSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

func (s *state) hasFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *state) ready(running bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return false
	}
	if !running {
		return true // parked (caught up), deleted, or a stream nobody projects here
	}
	return !s.starting && s.applied >= s.target
}

// KV is one stored Badger entry, for comparing read models.
type KV struct {
	Key       string
	Value     []byte
	ExpiresAt uint64
}

// Snapshot returns every entry of stream's read models (its checkpoint
// included) in key order; two read models built from the same stream must
// return equal snapshots.
func (p *Projections) Snapshot(stream string) ([]KV, error) {
	sp, err := spaceOf(stream)
	if err != nil {
		return nil, err
	}
	all, err := p.Dump([]byte(sp.prefix))
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, kv := range all {
		if !notReadModel(kv.Key) {
			out = append(out, kv)
		}
	}
	return out, nil
}

// Dump returns every live entry under prefix in key order.
func (p *Projections) Dump(prefix []byte) ([]KV, error) {
	var out []KV
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, KV{Key: string(item.KeyCopy(nil)), Value: v, ExpiresAt: item.ExpiresAt()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections: dump %q: %w", prefix, err)
	}
	return out, nil
}

// IdempotentSeq returns the sequence of the message stored in stream with
// Nats-Msg-Id msgID (an "idem:" id; see eventlog.IdempotencyMsgID), while
// it is inside the duplicate window.
func (p *Projections) IdempotentSeq(stream, msgID string) (uint64, bool, error) {
	sp, err := spaceOf(stream)
	if err != nil {
		return 0, false, err
	}
	var seq uint64
	err = p.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(sp.idemKey(msgID))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			seq, err = decodeSeq(v)
			return err
		})
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("projections: idempotency entry %s in %s: %w", msgID, stream, err)
	}
	return seq, true, nil
}

// get reads one value; ErrNotFound when the key is absent.
func (p *Projections) get(key []byte, fn func([]byte) error) error {
	err := p.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		return item.Value(fn)
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	return err
}

// list calls fn for up to limit values under prefix whose key suffix sorts
// after `after` (keyset pagination).
func (p *Projections) list(prefix, after string, limit int, fn func([]byte) error) error {
	limit = clampLimit(limit)
	return p.db.View(func(txn *badger.Txn) error {
		// No prefetch: a goroutine per item, for values Badger keeps inline
		// (its default value threshold is above any read model's value).
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		start := []byte(prefix)
		if after != "" {
			start = append([]byte(prefix+after), 0) // the first key strictly after
		}
		n := 0
		for it.Seek(start); it.Valid() && n < limit; it.Next() {
			if after != "" && bytes.Equal(it.Item().Key(), []byte(prefix+after)) {
				continue
			}
			if err := it.Item().Value(fn); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

// Page sizes of the List methods: limit <= 0 means DefaultListLimit, and
// no page holds more than MaxListLimit.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultListLimit
	case limit > MaxListLimit:
		return MaxListLimit
	}
	return limit
}
