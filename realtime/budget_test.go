package realtime

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// TestBudgetWait: a full bucket lets a fan-out through, a fan-out may take
// it into debt, and the next waits until the debt is paid at the rate.
func TestBudgetWait(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b budget
	if d := b.wait(t0, 100, 10); d != 0 {
		t.Fatalf("full bucket waits %v", d)
	}
	b.spend(30) // 10 - 30 = -20: 0.2 s of debt at 100/s
	if d := b.wait(t0, 100, 10); d != 200*time.Millisecond {
		t.Fatalf("in debt of 20 at 100/s: wait %v, want 200ms", d)
	}
	if d := b.wait(t0.Add(150*time.Millisecond), 100, 10); d != 50*time.Millisecond {
		t.Fatalf("150 ms later: wait %v, want 50ms", d)
	}
	if d := b.wait(t0.Add(10*time.Second), 100, 10); d != 0 || b.tokens != 10 {
		t.Fatalf("10 s later: wait %v, tokens %v (want 0, the burst)", d, b.tokens)
	}
	if d := b.wait(t0, -1, 0); d != 0 {
		t.Fatalf("no budget waits %v", d)
	}
}

// TestWorkersTakeTurns: with every worker taken, feeds waiting get them
// in the order they asked, never more than they asked for, and a wait
// that ends with its context takes none.
func TestWorkersTakeTurns(t *testing.T) {
	w := newWorkers(2)
	if got := w.acquire(t.Context(), 3); got != 2 {
		t.Fatalf("asked 3 of 2 free: got %d", got)
	}
	order := make(chan string, 2)
	var wg sync.WaitGroup
	for i, name := range []string{"first", "second"} {
		wg.Go(func() {
			got := w.acquire(t.Context(), 1)
			order <- fmt.Sprint(name, got)
		})
		// The second asks once the first waits.
		for deadline := time.Now().Add(5 * time.Second); ; {
			w.mu.Lock()
			n := len(w.waiting)
			w.mu.Unlock()
			if n == i+1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got := w.acquire(ctx, 1); got != 0 {
		t.Fatalf("ended context: got %d workers", got)
	}
	w.release(1)
	if got := <-order; got != "first1" {
		t.Fatalf("first served: %s", got)
	}
	w.release(1)
	if got := <-order; got != "second1" {
		t.Fatalf("second served: %s", got)
	}
	wg.Wait()
	w.release(2)
	if w.free != 2 || len(w.waiting) != 0 {
		t.Fatalf("after all released: %d free, %d waiting", w.free, len(w.waiting))
	}
}

// addTo appends n document events of collection c to project's stream.
func (l *testLog) addTo(t testing.TB, project, c string, n int) {
	t.Helper()
	for i := range n {
		// Ids unique across calls: each event creates a new document.
		d := &eventsv1.Document{ProjectId: project, DatabaseId: "db", CollectionId: c, Id: fmt.Sprint("d", time.Now().UnixNano(), "-", i)}
		env := &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}}
		subject, err := eventlog.Subject(env)
		if err != nil {
			t.Fatal(err)
		}
		b, err := eventlog.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.js.Publish(context.Background(), subject, b); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeliveryBudget: project p over its delivery budget gets its events
// later, but all of them and in order, with none of its subscribers cut
// off; project q, on the same hub at the same time, gets its events
// without waiting for p's budget.
func TestDeliveryBudget(t *testing.T) {
	l := newTestLog(t, 1)
	if _, err := l.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: streams.ProjectStream("q"), Subjects: []string{"cairn.q.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	const rate, burst = 200, 20 // p's deliveries per second
	h := NewHub(t.Context(), l, applied, slog.New(slog.DiscardHandler), Limits{Buffer: fanOutRun + 8, ProjectBudget: func(project string) (int, int) {
		if project == "p" {
			return rate, burst
		}
		return 0, 0
	}})
	const subsP, eventsP, eventsQ = 2, 200, 20
	type result struct {
		seqs []uint64
		last time.Time
		err  error
	}
	run := func(project string, want int) (chan result, *Subscriber) {
		s, err := h.Subscribe(project, []string{"documents"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan result, 1)
		live := make(chan struct{})
		go func() {
			var r result
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			r.err = s.Run(ctx, all, func(d Delivery) error {
				if d.State == StatusConnected {
					close(live)
				}
				if d.Event != nil {
					r.seqs = append(r.seqs, d.Event.Seq)
					r.last = time.Now()
					if len(r.seqs) == want {
						return context.Canceled
					}
				}
				return nil
			})
			out <- r
		}()
		<-live
		return out, s
	}
	var ps []chan result
	for range subsP {
		r, _ := run("p", eventsP)
		ps = append(ps, r)
	}
	q, _ := run("q", eventsQ)

	// p's 2 × 200 = 400 deliveries over a burst of 20 at 200/s: at least
	// 1.9 s, less the last run of events, which is fanned out whole and
	// paid for after (a run's deliveries stay within the burst: 1.8 s). Their queues are smaller than their backlog: waiting for
	// the budget must not make them slow consumers.
	t0 := time.Now()
	l.addTo(t, "p", "c", eventsP)
	l.addTo(t, "q", "c", eventsQ)
	rq := <-q
	if len(rq.seqs) != eventsQ {
		t.Fatalf("q: %d of %d events (%v)", len(rq.seqs), eventsQ, rq.err)
	}
	var lastP time.Time
	for _, c := range ps {
		r := <-c
		if len(r.seqs) != eventsP {
			t.Fatalf("p: %d of %d events (%v)", len(r.seqs), eventsP, r.err)
		}
		for i, seq := range r.seqs {
			if seq != uint64(i+1) {
				t.Fatalf("p: event %d has sequence %d: lost, repeated or out of order", i, seq)
			}
		}
		if r.last.After(lastP) {
			lastP = r.last
		}
	}
	tookP, tookQ := lastP.Sub(t0), rq.last.Sub(t0)
	t.Logf("p (over its budget) had its last event after %v, q after %v", tookP, tookQ)
	if least := time.Duration(float64(subsP*eventsP-2*burst) / rate * float64(time.Second)); tookP < least*9/10 {
		t.Fatalf("p's %d deliveries took %v: faster than its budget allows (%v)", subsP*eventsP, tookP, least)
	}
	if tookQ >= tookP/2 {
		t.Fatalf("q's events waited for p's budget: q's last after %v, p's after %v", tookQ, tookP)
	}
}

// TestResumeBehindABudget: a subscriber resuming while its project's feed
// is held back by the delivery budget catches up from the log past the
// feed's position; once it is direct (RunDirect), the feed's later
// delivery of those same events must not repeat them. Every event arrives
// once, in order.
func TestResumeBehindABudget(t *testing.T) {
	l := newTestLog(t, 1)
	h := NewHub(t.Context(), l, applied, slog.New(slog.DiscardHandler), Limits{ProjectBudget: func(string) (int, int) { return 40, 1 }})
	// A first subscriber starts the feed, which the budget then holds
	// back: 60 events at 40 deliveries/s.
	holder, err := h.Subscribe("p", []string{"documents"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = holder.Run(t.Context(), all, func(Delivery) error { return nil }) }()
	const n = 60
	l.addTo(t, "p", "c", n)
	s, err := h.Subscribe("p", []string{"documents"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seqs []uint64
	got := func(seq uint64) {
		mu.Lock()
		seqs = append(seqs, seq)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	go func() {
		_ = s.RunDirect(ctx, all, func(d Delivery) error {
			if d.Event != nil {
				got(d.Event.Seq)
			}
			return nil
		}, sinkFuncs{deliver: func(e *Event, _ uint64) bool { got(e.Seq); return true }})
	}()
	if pos := holder.feed.pos.Load(); pos >= n {
		t.Fatalf("the feed is not behind (at %d of %d): the test shows nothing", pos, n)
	}
	// Until the feed has delivered everything (then any repeat is in).
	for holder.feed.pos.Load() < n && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seqs) != n-1 {
		t.Fatalf("%d deliveries of %d events after 1: %v", len(seqs), n-1, seqs)
	}
	for i, seq := range seqs {
		if seq != uint64(i+2) {
			t.Fatalf("delivery %d is sequence %d: lost, repeated or out of order (%v)", i, seq, seqs)
		}
	}
}

// TestSharePause: when other projects made calls during its last run, a
// feed whose last run's fan-out took d pauses d·(100−share)/share before
// its next run (at most maxSharePause); not when nobody else called, with
// the share off, or after a run that fanned nothing out; and each run's
// time is counted anew.
func TestSharePause(t *testing.T) {
	for _, tc := range []struct {
		name  string
		share int
		busy  bool
		took  time.Duration
		least time.Duration
	}{
		{"default share, others busy", 0, true, 30 * time.Millisecond, 25 * time.Millisecond},
		{"capped", 0, true, time.Hour, maxSharePause * 9 / 10},
		{"a quarter", 25, true, 4 * time.Millisecond, 12 * time.Millisecond},
		{"others idle", 0, false, 30 * time.Millisecond, 0},
		{"share off", 100, true, 30 * time.Millisecond, 0},
		{"no share", -1, true, 30 * time.Millisecond, 0},
		{"nothing fanned out", 0, true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := int64(7)
			h := &Hub{lim: Limits{FanoutShare: tc.share, OthersCalls: func(project string) int64 {
				if project != "p" {
					t.Errorf("asked about %q", project)
				}
				return calls
			}}}
			f := &feed{project: "p", fanned: tc.took, others: calls}
			if tc.busy {
				calls += 3
			}
			t0 := time.Now()
			if !h.share(t.Context(), f) {
				t.Fatal("share ended early")
			}
			took := time.Since(t0)
			if took < tc.least {
				t.Fatalf("paused %v, want at least %v", took, tc.least)
			}
			if tc.least == 0 && took > 5*time.Millisecond {
				t.Fatalf("paused %v, want no pause", took)
			}
			if tc.least > 0 && took > maxSharePause+time.Second {
				t.Fatalf("paused %v, want at most about %v", took, maxSharePause)
			}
			if f.fanned != 0 {
				t.Fatalf("the run's fan-out time %v was not reset", f.fanned)
			}
		})
	}
	// A pause ends with its context.
	h := &Hub{lim: Limits{OthersCalls: func(string) int64 { return 1 }}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if h.share(ctx, &feed{project: "p", fanned: time.Hour}) {
		t.Fatal("a pause outlived its context")
	}
}

// TestShareKeepsEveryEvent: a project whose fan-out pauses for the other
// projects' calls (a call during every run here, the smallest share) still delivers
// every event to every subscriber, in order, and the other project's
// feed does not wait for its pauses.
func TestShareKeepsEveryEvent(t *testing.T) {
	l := newTestLog(t, 1)
	if _, err := l.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: streams.ProjectStream("q"), Subjects: []string{"cairn.q.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	const events = 300
	var asked sync.Map
	var calls atomic.Int64
	h := NewHub(t.Context(), l, applied, slog.New(slog.DiscardHandler), Limits{Buffer: 2 * events, FanoutShare: 1,
		OthersCalls: func(project string) int64 {
			asked.Store(project, true)
			if project == "p" {
				return calls.Add(1)
			}
			return 0
		}})
	collect := func(project string, want int) chan []uint64 {
		s, err := h.Subscribe(project, []string{"documents"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan []uint64, 1)
		live := make(chan struct{})
		go func() {
			var seqs []uint64
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_ = s.Run(ctx, all, func(d Delivery) error {
				if d.State == StatusConnected {
					close(live)
				}
				if d.Event != nil {
					if seqs = append(seqs, d.Event.Seq); len(seqs) == want {
						return context.Canceled
					}
				}
				return nil
			})
			out <- seqs
		}()
		<-live
		return out
	}
	p1, p2, q := collect("p", events), collect("p", events), collect("q", events)
	l.addTo(t, "p", "c", events)
	l.addTo(t, "q", "c", events)
	for name, c := range map[string]chan []uint64{"p": p1, "p'": p2, "q": q} {
		seqs := <-c
		if len(seqs) != events {
			t.Fatalf("%s: %d of %d events", name, len(seqs), events)
		}
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("%s: event %d has sequence %d: lost, repeated or out of order", name, i, seq)
			}
		}
	}
	if _, ok := asked.Load("p"); !ok {
		t.Fatal("p's feed never asked whether others were busy: its fan-out never kept to a share")
	}
}
