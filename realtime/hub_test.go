package realtime

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"testing"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// memLog is an in-memory project stream whose first sequence can be
// above 1, as a stream that lost its oldest events would be (Cairn's never
// do: this is the only way to reach the resync path).
type memLog struct {
	mu    sync.Mutex
	first uint64
	msgs  []streams.StoredMsg // msgs[i].Seq == first+i
	grew  chan struct{}
}

func newMemLog(first uint64) *memLog { return &memLog{first: first, grew: make(chan struct{})} }

// add appends n document events of collection c.
func (l *memLog) add(t testing.TB, c string, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		seq := l.first + uint64(len(l.msgs))
		d := &eventsv1.Document{ProjectId: "p", DatabaseId: "db", CollectionId: c, Id: fmt.Sprint("d", seq)}
		env := &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}}
		subject, _ := eventlog.Subject(env)
		b, err := eventlog.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		l.msgs = append(l.msgs, streams.StoredMsg{Seq: seq, Subject: subject, Data: b, Time: time.Now()})
	}
	close(l.grew)
	l.grew = make(chan struct{})
}

func (l *memLog) StreamInfo(context.Context, string) (streams.Info, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return streams.Info{FirstSeq: l.first, LastSeq: l.first + uint64(len(l.msgs)) - 1}, nil
}

func (l *memLog) Read(ctx context.Context, _ string, opts streams.ReadOptions) iter.Seq2[streams.StoredMsg, error] {
	return func(yield func(streams.StoredMsg, error) bool) {
		next := max(opts.StartSeq, l.first)
		l.mu.Lock()
		end := l.first + uint64(len(l.msgs))
		l.mu.Unlock()
		for {
			l.mu.Lock()
			n, grew := l.first+uint64(len(l.msgs)), l.grew
			var m streams.StoredMsg
			if next < n && (opts.Follow || next < end) {
				m = l.msgs[next-l.first]
			}
			l.mu.Unlock()
			switch {
			case m.Seq != 0:
				if !yield(m, nil) {
					return
				}
				next++
			case !opts.Follow:
				return
			default:
				select {
				case <-grew:
				case <-ctx.Done():
					yield(streams.StoredMsg{}, ctx.Err())
					return
				}
			}
		}
	}
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

// TestResumeResync: resuming from before the first stored sequence, or
// from beyond the end, says so (never a silent hole), then delivers
// from the first sequence there.
func TestResumeResync(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after uint64
	}{{"gap", 3}, {"beyond the end", 500}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newMemLog(10)
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
	l := newMemLog(10)
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
	l := newMemLog(1)
	l.add(t, "c", 50)
	h := NewHub(t.Context(), l, applied, slog.Default(), Limits{Buffer: 4})
	s, err := h.Subscribe("p", []string{"databases.db.collections.c.documents"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 20 {
			l.add(t, "c", 10)
			l.add(t, "other", 3)
			time.Sleep(time.Millisecond)
		}
	}()
	ds, err := collect(t, s, all, 40+200, 100*time.Microsecond)
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
	if seqs[0] != 11 || len(seqs) != 240 {
		t.Fatalf("got %d events from %d", len(seqs), seqs[0])
	}

	// Live and slow: cut off, with the reason.
	s, err = h.Subscribe("p", []string{"documents"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		l.add(t, "c", 100)
	}()
	_, err = collect(t, s, all, 100, 5*time.Millisecond)
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("slow live subscriber ended with %v", err)
	}
}

// TestHubLimits: channels are validated and counted; a project takes at
// most MaxPerProject subscriptions, and a closed one frees its place.
func TestHubLimits(t *testing.T) {
	l := newMemLog(1)
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
