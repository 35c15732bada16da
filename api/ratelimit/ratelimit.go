// Package ratelimit limits how often one key (an address, an email, a
// user) may call an endpoint: sign-in, sign-up, recovery, token and MFA
// checks. It is in memory and per node, which is what brute-force limits
// need; it is no quota system.
//
// Each Limiter enforces one Rule with GCRA (the generic cell rate
// algorithm, a token bucket that stores one timestamp per key): a key may
// make Burst requests at once and regains one every Every. Refused
// requests cost nothing. Memory is bounded: at most MaxKeys keys are
// remembered; a key whose bucket is full again is forgotten (that changes
// nothing), and when a flood of new keys fills the table the least
// recently used key is dropped (counted by Stats).
//
// It reads no clock (now is an argument) and keeps no globals; a Limiter is
// safe for concurrent use.
package ratelimit

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxKeys is a Rule's MaxKeys when it names none.
const DefaultMaxKeys = 100_000

// Keys are split over shards (each with its own lock) once MaxKeys is at
// least shardFrom; smaller limiters keep one exact LRU.
const (
	shards    = 16
	shardFrom = 1024
)

// Rule is one limit.
type Rule struct {
	// Name says what is limited, for people: it appears in the error the
	// caller sees ("sign-in attempts from this address").
	Name string
	// Every is how long it takes to regain one request.
	Every time.Duration
	// Burst is how many requests a key may make at once (at least 1).
	Burst int
	// MaxKeys bounds the number of keys remembered; 0 means
	// DefaultMaxKeys.
	MaxKeys int
}

// Limiter enforces one Rule per key.
type Limiter struct {
	rule    Rule
	every   int64 // ns
	window  int64 // every × burst, ns
	seed    maphash.Seed
	shards  []shard
	evicted atomic.Uint64
}

type shard struct {
	mu    sync.Mutex
	max   int
	index map[string]int32
	nodes []node
	head  int32 // most recently used
	tail  int32 // least recently used
	free  int32 // free list through next
	_     [40]byte
}

type node struct {
	key        string
	tat        int64 // theoretical arrival time, unix ns
	every      int64 // the rate tat was counted at, ns
	prev, next int32
}

const none = -1

// New returns a Limiter for rule.
func New(rule Rule) (*Limiter, error) {
	if rule.MaxKeys == 0 {
		rule.MaxKeys = DefaultMaxKeys
	}
	switch {
	case rule.Every <= 0:
		return nil, errors.New("ratelimit: Every must be positive")
	case rule.Burst < 1:
		return nil, errors.New("ratelimit: Burst must be at least 1")
	case rule.MaxKeys < 1:
		return nil, errors.New("ratelimit: MaxKeys must be positive")
	case rule.Every > 24*time.Hour*365/time.Duration(rule.Burst):
		return nil, errors.New("ratelimit: Every × Burst must be under a year")
	}
	n := 1
	if rule.MaxKeys >= shardFrom {
		n = shards
	}
	l := &Limiter{
		rule:   rule,
		every:  int64(rule.Every),
		window: int64(rule.Every) * int64(rule.Burst),
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.max = rule.MaxKeys / n
		s.index = make(map[string]int32)
		s.head, s.tail, s.free = none, none, none
	}
	return l, nil
}

// Rule returns the limiter's rule, with defaults filled in.
func (l *Limiter) Rule() Rule { return l.rule }

// Allow records a request by key at now, if the rule allows it. When it
// does not, retryAfter is how long until the key's next request would be
// allowed.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	return l.allow(key, l.every, l.window, now)
}

// AllowEvery is Allow with the rule's Every and Burst replaced by every
// and burst (every positive, burst at least 1): for limits that differ
// from key to key and change while the limiter runs, such as a project's
// request rate. A change applies from the key's next request.
func (l *Limiter) AllowEvery(key string, every time.Duration, burst int, now time.Time) (ok bool, retryAfter time.Duration) {
	every = max(every, 1)
	return l.allow(key, int64(every), int64(every)*int64(max(burst, 1)), now)
}

func (l *Limiter) allow(key string, every, window int64, now time.Time) (ok bool, retryAfter time.Duration) {
	t := now.UnixNano()
	s := &l.shards[0]
	if len(l.shards) > 1 {
		s = &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	i, found := s.index[key]
	tat := t
	if found && s.nodes[i].tat > t {
		tat = s.nodes[i].tat
	}
	if found && s.nodes[i].every != every && tat > t {
		// The key's rate changed (AllowEvery): its debt, counted in
		// requests, carries over at the new rate.
		tat = t + int64(float64(tat-t)*float64(every)/float64(s.nodes[i].every))
	}
	newTAT := tat + every
	if allowAt := newTAT - window; t < allowAt {
		// Only a remembered key can be refused: a new one has a full bucket.
		s.touch(i)
		s.reap(t, 2)
		return false, time.Duration(allowAt - t)
	}
	if found {
		s.nodes[i].tat = newTAT
		s.nodes[i].every = every
		s.touch(i)
	} else {
		if len(s.index) >= s.max {
			if s.nodes[s.tail].tat > t {
				l.evicted.Add(1) // a key that was still limited
			}
			s.remove(s.tail)
		}
		s.insert(key, newTAT, every)
	}
	s.reap(t, 2)
	return true, 0
}

// Stats reports how many keys are remembered, and how many keys were
// forgotten while still limited because the table was full (a sign that
// MaxKeys is too small, or of a flood of distinct keys).
func (l *Limiter) Stats() (keys int, evictedActive uint64) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		keys += len(s.index)
		s.mu.Unlock()
	}
	return keys, l.evicted.Load()
}

// touch moves node i to the front of the recency list.
func (s *shard) touch(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

func (s *shard) insert(key string, tat, every int64) {
	var i int32
	if s.free != none {
		i = s.free
		s.free = s.nodes[i].next
	} else {
		s.nodes = append(s.nodes, node{})
		i = int32(len(s.nodes) - 1)
	}
	s.nodes[i] = node{key: key, tat: tat, every: every}
	s.index[key] = i
	s.pushFront(i)
}

func (s *shard) remove(i int32) {
	s.unlink(i)
	delete(s.index, s.nodes[i].key)
	s.nodes[i] = node{prev: none, next: s.free}
	s.free = i
}

// reap forgets up to n least recently used keys whose buckets are full
// again: forgetting them changes no answer. Every Allow calls it, so idle
// keys drain away at twice the rate new ones arrive.
func (s *shard) reap(t int64, n int) {
	for ; n > 0 && s.tail != none && s.nodes[s.tail].tat <= t; n-- {
		s.remove(s.tail)
	}
}

func (s *shard) unlink(i int32) {
	nd := &s.nodes[i]
	if nd.prev != none {
		s.nodes[nd.prev].next = nd.next
	} else {
		s.head = nd.next
	}
	if nd.next != none {
		s.nodes[nd.next].prev = nd.prev
	} else {
		s.tail = nd.prev
	}
	nd.prev, nd.next = none, none
}

func (s *shard) pushFront(i int32) {
	nd := &s.nodes[i]
	nd.prev, nd.next = none, s.head
	if s.head != none {
		s.nodes[s.head].prev = i
	}
	s.head = i
	if s.tail == none {
		s.tail = i
	}
}
