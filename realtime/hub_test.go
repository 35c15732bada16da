package realtime

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/streams"
)

// testLog is project "p"'s stream on a real embedded JetStream server. Its
// first sequence can be above 1, as a stream that lost its oldest events
// would be (Cairn's streams never do: a purge here is the only way to
// reach the resync path).
type testLog struct {
	*streams.Store
	js jetstream.JetStream
}

func newTestLog(t *testing.T, first uint64) *testLog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	emb, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := streams.Open(ctx, nc, streams.Options{Logger: quiet, ReadHeartbeat: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	js := st.JetStream()
	str, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: streams.ProjectStream("p"), Subjects: []string{"cairn.p.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{Store: st, js: js}
	if first > 1 {
		for range first - 1 {
			if _, err := js.Publish(ctx, "cairn.p.filler.x.create", nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := str.Purge(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// add appends n document events of collection c to project p's stream.
func (l *testLog) add(t testing.TB, c string, n int) {
	t.Helper()
	l.addTo(t, "p", c, n)
}

func applied(context.Context, string, uint64) error { return nil }

// collect runs s until want events arrived (or the subscription ended) and
// returns the deliveries.
func collect(t *testing.T, s *Subscriber, accept func(*Event) bool, want int, slow time.Duration) ([]Delivery, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []Delivery
	events := 0
	done := errors.New("done")
	err := s.Run(ctx, accept, func(d Delivery) error {
		out = append(out, d)
		if d.Event != nil {
			events++
			time.Sleep(slow)
		}
		if events == want {
			return done
		}
		return nil
	})
	if errors.Is(err, done) {
		err = nil
	}
	return out, err
}

func all(*Event) bool { return true }

// sinkFuncs is a Sink of two functions (kick may be nil).
type sinkFuncs struct {
	deliver func(*Event, uint64) bool
	kick    func()
}

func (f sinkFuncs) Deliver(e *Event, set uint64, kick bool) bool {
	ok := f.deliver(e, set)
	if kick {
		f.Kick()
	}
	return ok
}

func (f sinkFuncs) Kick() {
	if f.kick != nil {
		f.kick()
	}
}

// TestResumeResync: resuming from before the first stored sequence, or
// from beyond the end, says so (never a silent hole), then delivers
// from the first sequence there.
func TestResumeResync(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after uint64
	}{{"gap", 3}, {"beyond the end", 500}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLog(t, 10)
			l.add(t, "c", 5) // 10..14
			h := NewHub(t.Context(), l, applied, slog.Default(), Limits{})
			s, err := h.Subscribe("p", []string{"documents"}, tc.after)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := collect(t, s, all, 5, 0)
			if err != nil {
				t.Fatal(err)
			}
			if ds[0].State != StatusResuming || ds[1].ResyncFrom != 10 || ds[1].Reason == "" {
				t.Fatalf("first deliveries %+v %+v", ds[0], ds[1])
			}
			for i, d := range ds[2:] {
				if d.Event == nil || d.Event.Seq != uint64(10+i) {
					t.Fatalf("delivery %d: %+v", i, d)
				}
			}
		})
	}
	// Resuming exactly at the first stored sequence is no gap.
	l := newTestLog(t, 10)
	l.add(t, "c", 2)
	s, err := NewHub(t.Context(), l, applied, slog.Default(), Limits{}).Subscribe("p", []string{"documents"}, 9)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := collect(t, s, all, 2, 0)
	if err != nil || ds[1].ResyncFrom != 0 || ds[1].Event == nil || ds[1].Event.Seq != 10 {
		t.Fatalf("%+v %v", ds, err)
	}
}

// TestResumeOverflowIsLossless: live events overflow a tiny queue while
// the subscriber catches up; the catch-up reads on, and every event
// arrives once, in order. Live, the same overflow cuts it off.
func TestResumeOverflowIsLossless(t *testing.T) {
	l := newTestLog(t, 1)
	l.add(t, "c", 1000)
	h := NewHub(t.Context(), l, applied, slog.Default(), Limits{Buffer: 4})
	s, err := h.Subscribe("p", []string{"databases.db.collections.c.documents"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Written after the subscription and before its slow catch-up of 990
	// events: they reach the live queue while it resumes and overflow it.
	for range 20 {
		l.add(t, "c", 10)
		l.add(t, "other", 3)
	}
	ds, err := collect(t, s, all, 990+200, 100*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, d := range ds {
		if d.Event != nil {
			if d.Event.Env.GetDocumentCreated().GetDocument().GetCollectionId() != "c" {
				t.Fatalf("event of another channel: %d", d.Event.Seq)
			}
			seqs = append(seqs, d.Event.Seq)
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("out of order or duplicate at %d: %v", i, seqs[i-1:i+1])
		}
	}
	if seqs[0] != 11 || len(seqs) != 1190 {
		t.Fatalf("got %d events from %d", len(seqs), seqs[0])
	}

	// Live and slow: cut off, with the reason.
	s, err = h.Subscribe("p", []string{"documents"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.add(t, "c", 100)
	_, err = collect(t, s, all, 100, 5*time.Millisecond)
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("slow live subscriber ended with %v", err)
	}
}

// TestHubLimits: channels are validated and counted; a project takes at
// most MaxPerProject subscriptions, and a closed one frees its place.
func TestHubLimits(t *testing.T) {
	l := newTestLog(t, 1)
	l.add(t, "c", 1)
	h := NewHub(t.Context(), l, applied, slog.Default(), Limits{MaxPerProject: 2, MaxChannels: 2})
	if _, err := h.Subscribe("p", []string{"documents", "files", "teams"}, 0); err == nil {
		t.Fatal("three channels accepted")
	}
	if _, err := h.Subscribe("p", []string{"users"}, 0); err == nil {
		t.Fatal("bad channel accepted")
	}
	a, err := h.Subscribe("p", []string{"documents"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe("p", []string{"documents"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe("p", []string{"documents"}, 0); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third subscription: %v", err)
	}
	a.Close(nil)
	if _, err := h.Subscribe("p", []string{"documents"}, 0); err != nil {
		t.Fatalf("after a close: %v", err)
	}
}

// TestFanOutChannelSets: direct subscribers of different channel sets,
// interleaved and spread over several fan-out shares (the fan-out reuses
// one set's match for the next subscriber with the same set), each get
// exactly the events of their channels, with the channels they matched;
// the same channels in another order are one set, and a subscriber that
// changes its channels gets the new ones' events.
func TestFanOutChannelSets(t *testing.T) {
	l := newTestLog(t, 1)
	// No bound on the fan-out workers: the shares run on goroutines of
	// their own even on a 2-core machine.
	h := NewHub(t.Context(), l, applied, slog.Default(), Limits{FanoutWorkers: -1})
	const a, b = "databases.db.collections.a.documents", "databases.db.collections.b.documents"
	sets := [][]string{{a}, {b}, {a, b}, {b, a}, {a}, {a}, {b}}
	const n = 4 * fanOutShare
	type got struct {
		mu     sync.Mutex
		counts map[string]int // matched channel → events
	}
	gots := make([]*got, n)
	subs := make([]*Subscriber, n)
	live := make(chan struct{}, n)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		s, err := h.Subscribe("p", sets[i%len(sets)], 0)
		if err != nil {
			t.Fatal(err)
		}
		g := &got{counts: map[string]int{}}
		gots[i], subs[i] = g, s
		wg.Go(func() {
			_ = s.RunDirect(ctx, all, func(d Delivery) error {
				if d.State == StatusLive {
					live <- struct{}{}
				}
				return nil
			}, sinkFuncs{deliver: func(e *Event, set uint64) bool {
				g.mu.Lock()
				defer g.mu.Unlock()
				for j, c := range e.Route.Channels {
					if set&(1<<j) != 0 {
						g.counts[c]++
					}
				}
				return true
			}})
		})
	}
	for range n {
		<-live
	}
	if subs[2].channels.Load() != subs[3].channels.Load() {
		t.Error("the same channels in another order are two sets")
	}
	subs[0].SetChannels([]string{b}) // was a
	l.add(t, "a", 3)
	l.add(t, "b", 2)
	want := func(i int) map[string]int {
		w := map[string]int{}
		set := sets[i%len(sets)]
		if i == 0 {
			set = []string{b}
		}
		for _, c := range set {
			w[c] = map[string]int{a: 3, b: 2}[c]
		}
		return w
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := range n {
		for {
			g := gots[i]
			g.mu.Lock()
			ok := maps.Equal(g.counts, want(i))
			counts := maps.Clone(g.counts)
			g.mu.Unlock()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscriber %d of %v: %v, want %v", i, sets[i%len(sets)], counts, want(i))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
}
