package realtime

import (
	"cmp"
	"context"
	"runtime"
	"sync"
	"time"
)

// Fan-out is most of a node's CPU when one project has many subscribers
// and writes fast (each write is a delivery per subscriber), and Go has no
// goroutine priorities: left alone, one project's fan-out takes every core
// from every other project's requests. Two things bound it:
//
//   - a budget of deliveries per second for each project (a token bucket
//     with a burst): a feed over its budget waits before it fans out its
//     next event. Its events stay in the stream meanwhile, so they arrive
//     later but all of them and in order; while it waits, the next events
//     queue up and then go to each socket in one write.
//   - a bound on the fan-out goroutines running at once across the node
//     (by default one fewer than the cores), taken in turn: a feed waits
//     for a worker behind the feeds already waiting, so projects with
//     events pending alternate, and a core is left for requests.

// Budget defaults.
const (
	// DefaultDeliveryRatePerCore is a project's default realtime
	// deliveries per second on a node, per core: about what a core writes
	// at saturation, so by default it binds only a project that would
	// keep the node's fan-out saturated (at a quarter of this,
	// BenchmarkRealtimeFanout's burst of 300 events to 1,000 subscribers
	// waited for the budget). What keeps a core for other projects by
	// default is the bound on fan-out workers.
	DefaultDeliveryRatePerCore = 100_000
	// defaultBurstSeconds is the default burst, in seconds of the rate.
	defaultBurstSeconds = 2
)

// budget is a project's token bucket of deliveries. Only its feed's
// goroutine touches it.
type budget struct {
	tokens float64
	at     time.Time // zero: full
}

// rates returns project's deliveries per second and burst (rate < 0: no
// budget).
func (h *Hub) rates(project string) (rate, burst int) {
	rate, burst = h.lim.DeliveryRate, h.lim.DeliveryBurst
	if h.lim.ProjectBudget != nil {
		// A project's own rate comes with its own burst (0: two
		// seconds of that rate), never the instance's.
		if r, b := h.lim.ProjectBudget(project); r > 0 {
			rate, burst = r, b
		} else if b > 0 {
			burst = b
		}
	}
	if rate < 0 {
		return -1, 0
	}
	if burst <= 0 {
		burst = rate * defaultBurstSeconds
	}
	return rate, burst
}

// wait returns how long the project's feed must wait before its next
// fan-out: zero while the bucket is not in debt. A fan-out is never split:
// it may take the bucket below zero, and the next waits for the debt.
func (b *budget) wait(now time.Time, rate, burst int) time.Duration {
	if rate < 0 {
		return 0
	}
	if b.at.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.at).Seconds()*float64(rate))
	}
	b.at = now
	if b.tokens >= 0 || rate == 0 {
		return 0
	}
	return time.Duration(-b.tokens / float64(rate) * float64(time.Second))
}

// spend takes n deliveries from the bucket.
func (b *budget) spend(n int) { b.tokens -= float64(n) }

// workers bounds the fan-out goroutines running at once on the node. A
// feed asks for as many as its subscribers are worth and gets at least
// one; feeds that find none free are served in the order they asked.
type workers struct {
	mu      sync.Mutex
	free    int
	waiting []*workerWait
}

type workerWait struct {
	want int
	got  chan int
}

// newWorkers returns a bound of n workers; n == 0 means one fewer than the
// cores (at least one), n < 0 no bound (nil).
func newWorkers(n int) *workers {
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = max(1, runtime.GOMAXPROCS(0)-1)
	}
	return &workers{free: n}
}

// acquire waits for between 1 and want workers and returns how many it
// got; 0 once ctx ended.
func (w *workers) acquire(ctx context.Context, want int) int {
	if w == nil {
		return want
	}
	w.mu.Lock()
	if len(w.waiting) == 0 && w.free > 0 {
		n := min(want, w.free)
		w.free -= n
		w.mu.Unlock()
		return n
	}
	ww := &workerWait{want: want, got: make(chan int, 1)}
	w.waiting = append(w.waiting, ww)
	w.mu.Unlock()
	select {
	case n := <-ww.got:
		return n
	case <-ctx.Done():
		w.mu.Lock()
		for i, x := range w.waiting {
			if x == ww {
				w.waiting = append(w.waiting[:i], w.waiting[i+1:]...)
				break
			}
		}
		w.mu.Unlock()
		select {
		case n := <-ww.got: // granted meanwhile: give them back
			w.release(n)
		default:
		}
		return 0
	}
}

// release gives n workers back, to the feeds waiting first.
func (w *workers) release(n int) {
	if w == nil || n == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.free += n
	for w.free > 0 && len(w.waiting) > 0 {
		ww := w.waiting[0]
		w.waiting[0] = nil
		w.waiting = w.waiting[1:]
		k := min(ww.want, w.free)
		w.free -= k
		ww.got <- k
	}
}

// DefaultFanoutShare is Limits.FanoutShare's default: while other
// projects' calls run, one project's fan-out takes at most half of its
// worker's time. Go has no goroutine priorities, and a busy project's
// fan-out (an event to 500 sockets is ~5 ms of CPU) otherwise takes a
// core whole, so the other projects' calls share the remaining one with
// everything else (BenchmarkFairness: A's fan-out was ~45 % of the
// node's CPU under its flood; CPU profiles split by project label).
const DefaultFanoutShare = 50

// maxSharePause bounds one pause: a long run (thousands of subscribers,
// or a node short of CPU) is not followed by a stall as long. Under
// BenchmarkFairness's flood a run of A's took ~110 ms: a bound of 20 ms
// left its fan-out ~85 % of the time.
const maxSharePause = 100 * time.Millisecond

// share pauses f's feed before its next run of events, if other
// projects made calls during its last run, for as long as its fan-out may
// not run to keep to its share of the worker's time: the last run's
// fan-out took f.fanned. No worker is held meanwhile, and the events that
// arrive wait in the stream: the next run takes them together, and each
// socket gets them in one write, so a project under contention also
// spends less CPU per delivery. False once ctx ended.
func (h *Hub) share(ctx context.Context, f *feed) bool {
	took := f.fanned
	f.fanned = 0
	pct := cmp.Or(h.lim.FanoutShare, DefaultFanoutShare)
	if pct < 0 || pct >= 100 || h.lim.OthersCalls == nil {
		return true
	}
	others := h.lim.OthersCalls(f.project)
	busy := others != f.others
	f.others = others
	if !busy || took <= 0 {
		return true
	}
	d := min(maxSharePause, took*time.Duration(100-pct)/time.Duration(pct))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
