package projections

import (
	"cmp"
	"context"
	"errors"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-dev/cairn/streams"
)

// Active and parked projectors.
//
// A project's projector is ACTIVE (a goroutine holding an ordered consumer
// from checkpoint+1 and applying batches) only while its stream has, or
// recently had, something to apply. Once it has caught up and nothing has
// arrived for Options.IdleAfter, it stops its consumer and PARKS: what is
// left is a projector record and the stream's state (applied sequence and
// waiters), with no goroutine and nothing on the server. The system
// projector is always active.
//
// A parked projector is woken, so that no event is ever left unapplied, by
//
//  1. a notification: one plain NATS subscription per node on every project
//     subject; a message for a parked project wakes its projector. It only
//     signals (plain NATS is at most once, and the message may not be stored
//     yet); the projector reads the stream as always;
//  2. WaitApplied for a sequence it has not applied: read-your-writes never
//     depends on a notification arriving, and a projector does not park
//     while someone waits on it;
//  3. a sweep every Options.SweepEvery that lists every stream's state in a
//     few paginated requests and wakes each parked projector whose stream
//     has gone past what it applied (or was recreated).
//
// Every transition happens under Projections.mu: a wake that finds the
// projector running sets woken, which the projector checks, under the same
// lock, both before it stops its consumer and after, so a wake racing with
// parking keeps it (or makes it again) active.

// projector is a registered stream's projector.
type projector struct {
	sp keyspace
	st *state

	// Guarded by Projections.mu.
	checked bool // compared with its stream (parked that way, or activated) since registration
	woken   bool // woken while running: do not park at the next idle check
	stopped bool // stopped on a fatal error: only Rebuild or a restart resumes it
	cancel  context.CancelFunc
	done    chan struct{} // non-nil while active; closed when its goroutine ends
	created time.Time     // the stream's creation time, as last seen
	// sweptApplied is the applied sequence the previous sweep saw while
	// the projector was active and behind; equal at the next sweep means
	// it is stuck (a consumer that did not come back after a NATS failover).
	sweptApplied uint64
	sweptBehind  bool

	last atomic.Uint64 // the stream's last sequence, as last seen
}

func (pr *projector) noteLast(seq uint64) {
	for {
		cur := pr.last.Load()
		if seq <= cur || pr.last.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// registerLocked returns the stream's projector, registering it parked and
// unchecked if it is not registered.
func (p *Projections) registerLocked(stream string) *projector {
	if pr := p.projectors[stream]; pr != nil {
		return pr
	}
	sp, err := spaceOf(stream)
	if err != nil {
		panic(err) // every caller derives stream from a valid name
	}
	pr := &projector{sp: sp, st: p.stateLocked(stream)}
	p.projectors[stream] = pr
	return pr
}

// activateLocked starts pr's goroutine if it is parked; if it runs, it
// marks it woken. A projector stopped on an error stays stopped.
func (p *Projections) activateLocked(pr *projector) {
	if pr.stopped || p.closed || !p.started || p.projectors[pr.sp.stream] != pr {
		return
	}
	if pr.done != nil {
		pr.woken = true
		return
	}
	ctx, cancel := context.WithCancel(p.baseCtx)
	done := make(chan struct{})
	pr.cancel, pr.done, pr.checked, pr.woken = cancel, done, true, false
	pr.st.begin()
	p.activations.Add(1)
	// Labelled with its project, so that a CPU profile splits the
	// node's work by project (`go tool pprof -tagfocus project=<id>`).
	go pprof.Do(ctx, pprof.Labels("project", cmp.Or(pr.sp.project, "_sys")), func(ctx context.Context) { p.run(ctx, cancel, pr, done) })
}

// wake activates the stream's projector if it is registered and parked.
func (p *Projections) wake(stream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr := p.projectors[stream]; pr != nil {
		p.activateLocked(pr)
	}
}

// run is an active projector's goroutine: it follows the stream until it
// parks, is stopped, or fails.
func (p *Projections) run(ctx context.Context, cancel context.CancelFunc, pr *projector, done chan struct{}) {
	defer close(done)
	defer cancel()
	for {
		parked := p.follow(ctx, pr)
		p.mu.Lock()
		if parked && ctx.Err() == nil && pr.woken {
			pr.woken = false // woken while stopping: resume from the checkpoint
			p.mu.Unlock()
			continue
		}
		if pr.done == done {
			pr.done, pr.cancel = nil, nil
		}
		p.mu.Unlock()
		return
	}
}

// mayPark is asked by an active project projector that has been caught up
// and idle for IdleAfter whether it may stop its consumer.
func (p *Projections) mayPark(pr *projector) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.woken {
		pr.woken = false
		return false
	}
	return !pr.st.hasWaiters()
}

// markStopped records a projector stopped on a fatal error.
func (p *Projections) markStopped(pr *projector) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr.stopped = true
}

// notify is the notification subscription's handler: it only queues the
// project for the waker, coalescing repeats, and never blocks.
func (p *Projections) notify(project string) {
	if p.muteNotify.Load() {
		return
	}
	p.nmu.Lock()
	if p.nqueue == nil {
		p.nqueue = map[string]struct{}{}
	}
	p.nqueue[project] = struct{}{}
	p.nmu.Unlock()
	select {
	case p.nsignal <- struct{}{}:
	default:
	}
}

// waker wakes the projectors of notified projects.
func (p *Projections) waker(ctx context.Context) {
	defer p.bg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.nsignal:
		}
		p.nmu.Lock()
		q := p.nqueue
		p.nqueue = nil
		p.nmu.Unlock()
		for id := range q {
			p.wake(streams.ProjectStream(id))
		}
	}
}

// supervise compares the registered projects with their streams at start
// (retrying until it could), then sweeps every SweepEvery and checks
// projects registered since.
func (p *Projections) supervise(ctx context.Context) {
	defer p.bg.Done()
	backoff := 100 * time.Millisecond
	for {
		err := p.check(ctx, true)
		if err == nil || ctx.Err() != nil {
			break
		}
		p.log.Warn("cannot list the streams to compare projects with; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	tick := time.NewTicker(p.sweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := p.sweepOnce(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("sweep failed; next one in", "err", err, "retry_in", p.sweep)
			}
		case <-p.sweepSignal:
			if err := p.sweepOnce(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("sweep failed; next one in", "err", err, "retry_in", p.sweep)
			}
		case <-p.checkSignal:
			if err := p.check(ctx, false); err != nil && ctx.Err() == nil {
				p.log.Warn("cannot compare new projects with their streams; the next sweep will", "err", err)
			}
		}
	}
}

// checkListThreshold: more unchecked projects than this are compared with
// one listing of all streams rather than one look-up each.
const checkListThreshold = 32

// check compares every unchecked (just registered) project with its stream:
// with one listing of all streams when list is set or there are many, else
// one look-up each.
func (p *Projections) check(ctx context.Context, list bool) error {
	prs := p.unchecked()
	if len(prs) == 0 && !list {
		return nil
	}
	var infos map[string]streams.Info
	if list || len(prs) > checkListThreshold {
		var err error
		if infos, err = p.store.StreamStates(ctx); err != nil {
			return err
		}
		prs = p.unchecked() // registered meanwhile: the listing may hold them
	}
	p.classify(ctx, prs, infos)
	return nil
}

func (p *Projections) unchecked() []*projector {
	p.mu.Lock()
	defer p.mu.Unlock()
	var prs []*projector
	for _, pr := range p.projectors {
		if !pr.checked && pr.done == nil {
			prs = append(prs, pr)
		}
	}
	return prs
}

// classifyWorkers bounds the concurrent checkpoint verifications.
const classifyWorkers = 16

// classify parks each of prs that has applied its whole stream (same last
// sequence and creation time, and the event at the checkpoint is the one
// it recorded) and activates the others, whose consume verifies the
// checkpoint again and rebuilds if needed. infos is a listing of the
// streams; a stream missing from it (or a nil infos) is looked up alone.
func (p *Projections) classify(ctx context.Context, prs []*projector, infos map[string]streams.Info) {
	work := make(chan *projector)
	var wg sync.WaitGroup
	for range min(classifyWorkers, len(prs)) {
		wg.Go(func() {
			for pr := range work {
				p.classifyOne(ctx, pr, infos)
			}
		})
	}
	for _, pr := range prs {
		select {
		case work <- pr:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

func (p *Projections) classifyOne(ctx context.Context, pr *projector, infos map[string]streams.Info) {
	if ctx.Err() != nil {
		return
	}
	stream := pr.sp.stream
	ck, err := p.loadCheckpoint(pr.sp)
	if err != nil {
		p.wake(stream) // consume retries
		return
	}
	info, ok := infos[stream]
	if !ok {
		info, err = p.store.StreamInfo(ctx, stream)
		if errors.Is(err, streams.ErrNoStream) {
			// Nothing to catch up with, as an active projector would find.
			p.park(pr, ck.Seq, 0, time.Time{})
			return
		}
		if err != nil {
			p.wake(stream)
			return
		}
	}
	pr.noteLast(info.LastSeq)
	if ck.Seq != info.LastSeq || (ck.Seq > 0 && !ck.Created.Equal(info.Created)) {
		p.wake(stream) // behind, ahead or recreated: consume sorts it out
		return
	}
	if why, err := p.verify(ctx, pr.sp, ck, info); err != nil || why != "" {
		p.wake(stream)
		return
	}
	p.park(pr, ck.Seq, info.LastSeq, info.Created)
}

// park records a parked projector as compared with its stream, unless it
// was activated (or unregistered) meanwhile or someone waits on it.
func (p *Projections) park(pr *projector, applied, target uint64, created time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.projectors[pr.sp.stream] != pr || pr.done != nil || pr.checked {
		return
	}
	if pr.st.hasWaiters() {
		p.activateLocked(pr)
		return
	}
	pr.checked, pr.created = true, created
	pr.st.started(applied, target)
}

// sweepOnce lists every stream's state and wakes each parked projector
// whose stream went past what it applied, or was recreated; it also
// compares projects not compared yet.
func (p *Projections) sweepOnce(ctx context.Context) error {
	infos, err := p.store.StreamStates(ctx)
	if err != nil {
		return err
	}
	var unchecked, stuck []*projector
	p.mu.Lock()
	woken := 0
	for stream, pr := range p.projectors {
		info, ok := infos[stream]
		if ok {
			pr.last.Store(info.LastSeq)
		}
		applied := pr.st.appliedSeq()
		behind := pr.done != nil && !pr.stopped && ok && info.LastSeq > applied
		if behind && pr.sweptBehind && pr.sweptApplied == applied {
			stuck = append(stuck, pr)
		}
		pr.sweptBehind, pr.sweptApplied = behind, applied
		switch {
		case pr.done != nil || pr.stopped:
		case !pr.checked:
			unchecked = append(unchecked, pr)
		case ok && (info.LastSeq > pr.st.appliedSeq() ||
			(!pr.created.IsZero() && !info.Created.Equal(pr.created))):
			p.activateLocked(pr)
			woken++
		}
	}
	p.mu.Unlock()
	if woken > 0 {
		p.log.Info("sweep woke projectors left behind (missed notifications)", "woken", woken)
	}
	for _, pr := range stuck {
		p.restart(ctx, pr)
	}
	p.classify(ctx, unchecked, infos)
	return nil
}

// restart stops an active projector that made no progress between two
// sweeps while its stream moved on, and starts it again from its
// checkpoint with a fresh consumer.
func (p *Projections) restart(ctx context.Context, pr *projector) {
	p.mu.Lock()
	cancel, done := pr.cancel, pr.done
	p.mu.Unlock()
	if cancel == nil || done == nil {
		return
	}
	p.log.WarnContext(ctx, "projector made no progress while its stream moved on; restarting it", "stream", pr.sp.stream,
		"applied", pr.st.appliedSeq(), "stream_last", pr.last.Load())
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return
	case <-time.After(10 * time.Second):
		p.log.ErrorContext(ctx, "stuck projector did not stop", "stream", pr.sp.stream)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pr.sweptBehind = false
	if !pr.stopped && pr.done == nil && !p.closed {
		p.activateLocked(pr)
	}
}

// RequestSweep asks for a sweep now, without waiting for it: call it when
// notifications may have been lost, e.g. from the NATS connection's
// reconnect handler. It never blocks.
func (p *Projections) RequestSweep() {
	select {
	case p.sweepSignal <- struct{}{}:
	default:
	}
}

// LagInfo is where a stream's projector stands.
type LagInfo struct {
	// Applied is the last sequence applied.
	Applied uint64
	// Last is the stream's last sequence as last seen: by the active
	// projector's consumer, by the start-up comparison or by the last
	// sweep. For a parked projector it can trail the stream by up to one
	// sweep (a notification wakes the projector but carries no sequence).
	Last uint64
	// Active: a consumer is open; false means parked (or stopped).
	Active bool
	// Stopped: the projector stopped on an error (see the log).
	Stopped bool
}

// Lag returns every registered stream's LagInfo, by stream name. It reads
// only memory.
func (p *Projections) Lag() map[string]LagInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]LagInfo, len(p.projectors))
	for stream, pr := range p.projectors {
		applied := pr.st.appliedSeq()
		out[stream] = LagInfo{Applied: applied, Last: max(pr.last.Load(), applied),
			Active: pr.done != nil, Stopped: pr.stopped || pr.st.hasFailed()}
	}
	return out
}
