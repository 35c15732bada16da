// Package inflight bounds how many requests of one key (a project) run at
// once on a node. Go has no goroutine priorities: a project whose callers
// keep many requests in flight gets most of the CPU, Badger's write slots
// and the projector's attention, and every other project waits behind it
// in the scheduler's queue. A bound per key keeps one tenant's
// concurrency, and so its share, from growing with its callers.
//
// A request over its key's bound waits in a FIFO queue for a slot, as a
// client would wait for a pooled connection, until its context ends or
// MaxWait passes; a queue that is already Queue long refuses at once. The
// waiting costs no CPU: the work that was admitted runs meanwhile.
//
// It reads no clock and keeps no globals; a Limiter is safe for concurrent
// use. Idle keys are kept for reuse until there are idleMax of them, then
// forgotten, so memory follows the number of recently busy keys.
package inflight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// idleMax bounds the keys kept with nothing in flight.
const idleMax = 4096

// ErrBusy is why Acquire refused: the key had limit requests in flight
// and either its queue was full or no slot came free in time.
var ErrBusy = errors.New("too many requests in flight")

// Limiter holds the slots of every key.
type Limiter struct {
	// MaxWait bounds how long a request waits for a slot.
	MaxWait time.Duration
	// Queue bounds how many requests of one key may wait; beyond it a
	// request is refused without waiting.
	Queue int

	mu   sync.Mutex
	keys map[string]*slots
	idle int // keys with nothing running or waiting
	// started counts the slots ever taken across all keys.
	started atomic.Int64
}

// slots is one key's: running requests and the queue of waiters, each
// waiting on its own channel, closed when handed a slot.
type slots struct {
	running int
	waiting []chan struct{}
	started int64 // slots ever taken
}

// New returns a Limiter whose requests wait at most maxWait for a slot,
// at most queue of them per key.
func New(maxWait time.Duration, queue int) *Limiter {
	return &Limiter{MaxWait: maxWait, Queue: queue, keys: map[string]*slots{}}
}

// Slot is one taken slot; Release gives it back.
type Slot struct {
	l     *Limiter
	s     *slots
	limit int
	done  atomic.Bool
}

// Release gives the slot back: to the key's first waiter, or free. A
// second call does nothing; so does a call on nil (no slot was taken).
func (sl *Slot) Release() {
	if sl == nil || sl.done.Swap(true) {
		return
	}
	sl.l.mu.Lock()
	sl.l.handOn(sl.s, sl.limit)
	sl.l.mu.Unlock()
}

// Acquire takes one of key's limit slots, waiting for one when all are
// taken. It returns the slot (Release it once done), or ErrBusy, or ctx's
// error when ctx ended while waiting. limit < 1 means no bound: Acquire
// then takes nothing and returns nil, whose Release does nothing.
func (l *Limiter) Acquire(ctx context.Context, key string, limit int) (*Slot, error) {
	if limit < 1 {
		return nil, nil
	}
	l.mu.Lock()
	s := l.keys[key]
	switch {
	case s == nil:
		if l.idle >= idleMax {
			l.forgetIdle()
		}
		s = &slots{}
		l.keys[key] = s
	case s.running == 0 && len(s.waiting) == 0:
		l.idle--
	}
	if s.running < limit && len(s.waiting) == 0 {
		s.running++
		s.started++
		l.started.Add(1)
		l.mu.Unlock()
		return &Slot{l: l, s: s, limit: limit}, nil
	}
	if len(s.waiting) >= l.Queue {
		l.mu.Unlock()
		return nil, ErrBusy
	}
	ch := make(chan struct{})
	s.waiting = append(s.waiting, ch)
	l.mu.Unlock()

	t := time.NewTimer(l.MaxWait)
	defer t.Stop()
	var why error
	select {
	case <-ch:
		return &Slot{l: l, s: s, limit: limit}, nil
	case <-t.C:
		why = ErrBusy
	case <-ctx.Done():
		why = ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-ch:
		// Handed a slot just as the wait ended: give it on.
		l.handOn(s, limit)
	default:
		s.waiting = removeChan(s.waiting, ch)
		if s.running == 0 && len(s.waiting) == 0 {
			l.idle++
		}
	}
	return nil, why
}

// forgetIdle drops every key with nothing in flight (l.mu held). Their
// slots records are unreachable afterwards: none is running or waiting.
func (l *Limiter) forgetIdle() {
	for k, s := range l.keys {
		if s.running == 0 && len(s.waiting) == 0 {
			delete(l.keys, k)
		}
	}
	l.idle = 0
}

// handOn passes a running slot to the next waiter, or frees it (l.mu held).
// A limit lowered while requests ran shrinks running before anyone waits.
func (l *Limiter) handOn(s *slots, limit int) {
	if len(s.waiting) > 0 && s.running <= limit {
		ch := s.waiting[0]
		s.waiting = s.waiting[1:]
		s.started++
		l.started.Add(1)
		close(ch)
		return
	}
	s.running--
	if s.running == 0 && len(s.waiting) == 0 {
		l.idle++
	}
}

// InFlight returns key's running and waiting requests.
func (l *Limiter) InFlight(key string) (running, waiting int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.keys[key]; s != nil {
		return s.running, len(s.waiting)
	}
	return 0, 0
}

// Started returns the slots ever taken across all keys, and by key: a
// caller that compares them with what it saw before learns whether other
// keys were busy meanwhile, however short their calls. A forgotten idle
// key starts again from 0.
func (l *Limiter) Started(key string) (all, byKey int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.keys[key]; s != nil {
		byKey = s.started
	}
	return l.started.Load(), byKey
}

func removeChan(q []chan struct{}, ch chan struct{}) []chan struct{} {
	for i, c := range q {
		if c == ch {
			return append(q[:i], q[i+1:]...)
		}
	}
	return q
}
