package inflight

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestAcquireAtTheLimit: limit requests run, the next waits and gets the
// first slot given back, in the order they came; other keys never wait.
func TestAcquireAtTheLimit(t *testing.T) {
	l := New(time.Minute, 10)
	ctx := context.Background()
	var rel []*Slot
	for range 3 {
		r, err := l.Acquire(ctx, "a", 3)
		if err != nil {
			t.Fatal(err)
		}
		rel = append(rel, r)
	}
	type slot struct {
		i int
		r *Slot
	}
	got := make(chan slot, 2)
	for i := range 2 {
		go func() {
			r, err := l.Acquire(ctx, "a", 3)
			if err != nil {
				t.Error(err)
				return
			}
			got <- slot{i, r}
		}()
		waitFor(t, l, "a", 3, i+1) // queued in this order
	}
	if r, err := l.Acquire(ctx, "b", 3); err != nil {
		t.Fatalf("another key waited behind a: %v", err)
	} else {
		r.Release()
	}
	select {
	case s := <-got:
		t.Fatalf("waiter %d ran with all 3 slots taken", s.i)
	case <-time.After(20 * time.Millisecond):
	}
	rel[0].Release()
	rel[0].Release() // twice gives back once
	s0 := <-got
	if s0.i != 0 {
		t.Fatalf("waiter %d got the slot before waiter 0", s0.i)
	}
	waitFor(t, l, "a", 3, 1)
	rel[1].Release()
	s1 := <-got
	if s1.i != 1 {
		t.Fatalf("second slot went to %d", s1.i)
	}
	rel[2].Release()
	s0.r.Release()
	waitFor(t, l, "a", 1, 0)
	s1.r.Release()
	waitFor(t, l, "a", 0, 0)
	// Idle keys are kept up to idleMax, then forgotten.
	for i := range idleMax + 10 {
		r, err := l.Acquire(ctx, fmt.Sprint("k", i), 1)
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	if n := len(l.keys); n > idleMax {
		t.Fatalf("%d idle keys kept, at most %d wanted", n, idleMax)
	}
}

// TestAcquireRefuses: a full queue refuses at once, a wait past MaxWait
// and a cancelled context refuse, and a slot handed over at that moment is
// not lost.
func TestAcquireRefuses(t *testing.T) {
	l := New(30*time.Millisecond, 1)
	ctx := context.Background()
	r, err := l.Acquire(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := l.Acquire(ctx, "a", 1)
		done <- err
	}()
	waitFor(t, l, "a", 1, 1)
	if _, err := l.Acquire(ctx, "a", 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("queue of 1 full: got %v, want ErrBusy", err)
	}
	if err := <-done; !errors.Is(err, ErrBusy) {
		t.Fatalf("after MaxWait: got %v, want ErrBusy", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := l.Acquire(cctx, "a", 1)
		done <- err
	}()
	waitFor(t, l, "a", 1, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
	r.Release()
	waitFor(t, l, "a", 0, 0)
	// No bound: nothing is counted.
	r0, err := l.Acquire(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	r0.Release()
	if n, _ := l.InFlight("a"); n != 0 {
		t.Fatalf("limit 0 counted %d", n)
	}
}

func waitFor(t *testing.T, l *Limiter, key string, running, waiting int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if r, w := l.InFlight(key); r == running && w == waiting {
			return
		}
	}
	r, w := l.InFlight(key)
	t.Fatalf("%s: %d running, %d waiting; want %d, %d", key, r, w, running, waiting)
}

// BenchmarkAcquire: a slot taken and given back, by one caller and by
// callers of several keys in parallel, never at the bound.
func BenchmarkAcquire(b *testing.B) {
	l := New(time.Second, 16)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			r, err := l.Acquire(ctx, "a", 16)
			if err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		keys := []string{"a", "b", "c", "d"}
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := keys[n.Add(1)%int64(len(keys))]
			for pb.Next() {
				r, err := l.Acquire(ctx, key, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				r.Release()
			}
		})
	})
}

// TestStartedCountsEveryKey: Started counts the slots ever taken, across
// keys and by key: a slot handed to a waiter once, a refused call's not.
func TestStartedCountsEveryKey(t *testing.T) {
	l := New(50*time.Millisecond, 10)
	ctx := context.Background()
	a1, _ := l.Acquire(ctx, "a", 1)
	b1, _ := l.Acquire(ctx, "b", 2)
	b2, _ := l.Acquire(ctx, "b", 2)
	// One of a's waiters gives up, the other is handed a's slot.
	if _, err := l.Acquire(ctx, "a", 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("a's second call: %v, want ErrBusy", err)
	}
	got := make(chan *Slot)
	go func() {
		s, err := l.Acquire(ctx, "a", 1)
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	waitFor(t, l, "a", 1, 1)
	a1.Release()
	for _, s := range []*Slot{<-got, b1, b2, b2} { // a second Release does nothing
		s.Release()
	}
	all, a := l.Started("a")
	_, b := l.Started("b")
	if all != 4 || a != 2 || b != 2 {
		t.Fatalf("started %d (a %d, b %d), want 4 (2, 2)", all, a, b)
	}
	if all, c := l.Started("c"); all != 4 || c != 0 {
		t.Fatalf("started %d (c %d), want 4 (0)", all, c)
	}
}
