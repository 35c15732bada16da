// Package usage counts what a node serves per project and UTC day (egress
// bytes, realtime connection time and deliveries) and publishes the counts
// where every node's add up: the key-value bucket streams.UsageBucket, one
// key per project, day and node process.
//
// Why a key per node process, holding absolute counts: each key has exactly
// one writer, so a flush is a plain Put with no read-modify-write and no
// conflict between nodes; a flush that is repeated or lost is corrected by
// the next one (it carries the whole count, not a delta); and a restarted
// node takes a new key instead of reading back and overwriting the old
// one. A reader sums every key of the project and day. Per-event system
// stream messages would have summed as well, but would grow with traffic;
// the bucket grows with projects × days × node starts.
//
// What a node counted since its last flush is lost if it crashes (at most
// Options.FlushEvery); a graceful stop flushes. Figures that come from the
// event log (events, documents, storage, executions) are not counted here:
// every node's projections already hold them, and summing them across
// nodes would count them once per node.
//
// It never touches a project's stream, and never reads or writes another
// bucket.
package usage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DayLayout is how a UTC day is written in keys and answers.
const DayLayout = "2006-01-02"

// Counts are one node's (or, summed, every node's) counters of a project
// and day. The JSON names are stored in the bucket: only ever add.
type Counts struct {
	DownloadBytes        int64 `json:"download_bytes,omitempty"`
	SiteBytes            int64 `json:"site_bytes,omitempty"`
	RealtimeConnectionMs int64 `json:"realtime_connection_ms,omitempty"`
	RealtimeDeliveries   int64 `json:"realtime_deliveries,omitempty"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.DownloadBytes += o.DownloadBytes
	c.SiteBytes += o.SiteBytes
	c.RealtimeConnectionMs += o.RealtimeConnectionMs
	c.RealtimeDeliveries += o.RealtimeDeliveries
}

// Bucket is what the meter needs of the key-value bucket.
type Bucket interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// Options configure a Meter.
type Options struct {
	// FlushEvery is the pause between flushes (default 10 s).
	FlushEvery time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

type dayKey struct{ project, day string }

// Meter counts one node process's usage. It is safe for concurrent use;
// a nil *Meter counts nothing.
type Meter struct {
	bucket Bucket
	node   string
	opts   Options

	mu    sync.Mutex
	days  map[dayKey]*Counts
	dirty map[dayKey]bool
	conns map[*Conn]struct{}
	// flushMu orders flushes: an older snapshot must not land after a
	// newer one.
	flushMu sync.Mutex
}

// New returns a Meter publishing to bucket under a new node process id.
func New(bucket Bucket, opts Options) (*Meter, error) {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("usage: node id: %w", err)
	}
	return &Meter{bucket: bucket, node: hex.EncodeToString(id), opts: opts,
		days: map[dayKey]*Counts{}, dirty: map[dayKey]bool{}, conns: map[*Conn]struct{}{}}, nil
}

// Day returns the UTC day of t as DayLayout.
func Day(t time.Time) string { return t.UTC().Format(DayLayout) }

func (m *Meter) add(project string, at time.Time, f func(*Counts)) {
	k := dayKey{project, Day(at)}
	c := m.days[k]
	if c == nil {
		c = &Counts{}
		m.days[k] = c
	}
	f(c)
	m.dirty[k] = true
}

// Download counts n response bytes of a file download, view or preview.
func (m *Meter) Download(project string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(project, m.opts.Now(), func(c *Counts) { c.DownloadBytes += n })
}

// Site counts n response bytes of site serving.
func (m *Meter) Site(project string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(project, m.opts.Now(), func(c *Counts) { c.SiteBytes += n })
}

// Delivered counts one event sent to a realtime subscriber.
func (m *Meter) Delivered(project string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(project, m.opts.Now(), func(c *Counts) { c.RealtimeDeliveries++ })
}

// Conn is an open realtime subscription being timed.
type Conn struct {
	m       *Meter
	project string
	since   time.Time // accrued up to here
}

// Open starts timing a realtime subscription; Close stops it.
func (m *Meter) Open(project string) *Conn {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &Conn{m: m, project: project, since: m.opts.Now()}
	m.conns[c] = struct{}{}
	return c
}

// Close adds the subscription's time since the last flush.
func (c *Conn) Close() {
	if c == nil {
		return
	}
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.conns[c]; !ok {
		return
	}
	m.accrue(c, m.opts.Now())
	delete(m.conns, c)
}

// accrue adds c's time up to now, split at UTC midnights so each day gets
// its own share. Less than a millisecond before now is left for the next
// accrual, so many flushes do not round the time away.
func (m *Meter) accrue(c *Conn, now time.Time) {
	for c.since.Before(now) {
		end := c.since.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
		last := !end.Before(now)
		if last {
			end = now
		}
		ms := end.Sub(c.since).Milliseconds()
		if last && ms == 0 {
			return
		}
		m.add(c.project, c.since, func(x *Counts) { x.RealtimeConnectionMs += ms })
		if !last {
			c.since = end
			continue
		}
		c.since = c.since.Add(time.Duration(ms) * time.Millisecond)
	}
}

// key is the bucket key of a project's day on this node.
func (m *Meter) key(k dayKey) string { return k.project + "." + k.day + "." + m.node }

// Flush publishes every changed count. Open subscriptions' time is accrued
// first, so a reader sees connection time while it is still running.
func (m *Meter) Flush(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	now := m.opts.Now()
	for c := range m.conns {
		m.accrue(c, now)
	}
	type put struct {
		key string
		val []byte
	}
	var puts []put
	for k := range m.dirty {
		b, err := json.Marshal(m.days[k])
		if err != nil {
			m.mu.Unlock()
			return fmt.Errorf("usage: encode: %w", err)
		}
		puts = append(puts, put{m.key(k), b})
		// Days before yesterday no longer change once flushed.
		if k.day < Day(now.Add(-24*time.Hour)) {
			delete(m.days, k)
		}
	}
	clear(m.dirty)
	m.mu.Unlock()
	var errs []error
	for _, p := range puts {
		if _, err := m.bucket.Put(ctx, p.key, p.val); err != nil {
			errs = append(errs, fmt.Errorf("usage: publish %s: %w", p.key, err))
		}
	}
	if len(errs) > 0 {
		// Published again by the next flush: mark every day dirty.
		m.mu.Lock()
		for _, p := range puts {
			parts := strings.SplitN(p.key, ".", 3)
			k := dayKey{parts[0], parts[1]}
			if _, ok := m.days[k]; ok {
				m.dirty[k] = true
			}
		}
		m.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Run flushes every Options.FlushEvery until ctx ends, then once more.
func (m *Meter) Run(ctx context.Context) {
	if m == nil {
		return
	}
	t := time.NewTicker(m.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := m.Flush(fctx); err != nil {
				m.opts.Logger.Warn("usage: last flush", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := m.Flush(ctx); err != nil && ctx.Err() == nil {
				m.opts.Logger.Warn("usage: flush", "err", err)
			}
		}
	}
}

// Read sums every node's counts of project for the days from..to
// (DayLayout, inclusive), by day.
func Read(ctx context.Context, bucket Bucket, project, from, to string) (map[string]Counts, error) {
	w, err := bucket.WatchFiltered(ctx, []string{project + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("usage: read %s: %w", project, err)
	}
	defer w.Stop()
	out := map[string]Counts{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("usage: read %s: watcher closed", project)
			}
			if e == nil { // every current value delivered
				return out, nil
			}
			parts := strings.Split(e.Key(), ".")
			if len(parts) != 3 || parts[1] < from || parts[1] > to {
				continue
			}
			var c Counts
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				return nil, fmt.Errorf("usage: key %s: %w", e.Key(), err)
			}
			sum := out[parts[1]]
			sum.Add(c)
			out[parts[1]] = sum
		}
	}
}
