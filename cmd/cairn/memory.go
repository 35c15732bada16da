package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Memory defaults (docs/configuration.md, Memory). Badger's own defaults
// (five 64 MiB memtables, a 256 MiB block cache, every table index in
// memory) made Cairn's RSS 3× PocketBase's after 60,000 documents: its
// memtable arenas alone were half the live heap. Measured with
// tools/pbcompare; the figures are in docs/operations.md.
const (
	// defaultBadgerMemtable keeps Badger's largest transaction (15% of a
	// memtable: 2.4 MiB, about 26,000 entries) well above the largest
	// event Cairn applies in one (a request is at most
	// --max-request-bytes, 1 MiB by default; a document 256 KiB, plus its
	// index entries).
	defaultBadgerMemtable   = 16 << 20
	defaultBadgerMemtables  = 3
	defaultBadgerBlockCache = 32 << 20
	defaultBadgerIndexCache = 16 << 20
	defaultBadgerCompactors = 2
	// minBadgerMemtable: below it Badger refuses its own value threshold.
	minBadgerMemtable = 8 << 20
)

// badgerOptions applies the memory flags (0: the default) to Badger's
// options.
func (c *config) badgerOptions(opts badger.Options) badger.Options {
	return opts.WithMemTableSize(cmp.Or(c.BadgerMemtable, defaultBadgerMemtable)).
		WithNumMemtables(cmp.Or(c.BadgerMemtables, defaultBadgerMemtables)).
		WithBlockCacheSize(cmp.Or(c.BadgerBlockCache, defaultBadgerBlockCache)).
		WithIndexCacheSize(max(cmp.Or(c.BadgerIndexCache, defaultBadgerIndexCache), 0)).
		WithNumCompactors(defaultBadgerCompactors)
}

// checkMemory validates the memory flags.
func (c *config) checkMemory() error {
	memtable := cmp.Or(c.BadgerMemtable, defaultBadgerMemtable)
	switch {
	case memtable < minBadgerMemtable:
		return fmt.Errorf("--badger-memtable: at least %d bytes (8 MiB), got %d", minBadgerMemtable, c.BadgerMemtable)
	case int64(c.MaxRequestBytes) > memtable*15/100:
		// What one request's event writes fits in one Badger transaction
		// (15% of a memtable; a value above 1 MiB goes to the value log
		// and counts little).
		return fmt.Errorf("--badger-memtable %d is too small for --max-request-bytes %d: make it at least %d", memtable, c.MaxRequestBytes, int64(c.MaxRequestBytes)*100/15+1)
	case c.BadgerMemtables < 0 || c.BadgerBlockCache < 0 || c.BadgerIndexCache < -1 || c.MemoryLimit < 0:
		return errors.New("--badger-memtables, --badger-block-cache and --memory-limit cannot be negative, --badger-index-cache only -1")
	case c.GCPercent < 0:
		return fmt.Errorf("--gc-percent: 0 (the runtime's own) or more, got %d", c.GCPercent)
	}
	return nil
}

// defaultMemoryLimit is --memory-limit's default: the floor of the Go
// runtime's soft memory limit. Measured with tools/pbcompare after 60,000
// documents it took the resident set from 239 to 188 MiB (the runtime
// returns freed memory to the OS instead of keeping it for later). 64 MiB
// let it return more at rest, but a young server (live heap 30–40 MB)
// then met the limit and collected back to back: 33–78 % more CPU per
// create on a quiet machine.
const defaultMemoryLimit = 128 << 20

// defaultGCPercent is --gc-percent's default, the collector's GOGC. Go's
// own 100 lets the heap grow to twice what was live at the last
// collection, and an idle server keeps that garbage until the next one
// (the runtime forces one only every 2 minutes): with 60,000 documents
// that was most of the distance to PocketBase's resident set. Most of
// the live heap is Badger's memtable and block buffers and NATS's message
// blocks, which the collector marks without scanning, so collecting more
// often costs less than the percentage suggests. Measured with
// tools/pbcompare (docs/operations.md, Memory): 100 → 50 took the
// resident set while writing 60,000 documents from 225 to 205 MiB (at
// rest 287 to 209) for 3–25 % more CPU per request; 25 went lower still (165–204 MiB) but cost 15–57 % more CPU
// per request on a quiet machine, so it is a setting, not the default.
const defaultGCPercent = 50

// memoryLimitEvery is how often followMemoryLimit looks at the live heap.
const memoryLimitEvery = 5 * time.Second

// Idle collection (docs/operations.md, Memory). A server whose writes stop
// keeps the garbage of its last seconds of work until the runtime's forced
// collection two minutes later, and with it the pages the scavenger could
// otherwise return: after 60,000 documents that garbage was as large as
// the live heap. So once the heap has been quiet for idleAfter (no
// collection, under idleAlloc allocated per idleEvery) after at least
// idleGarbage (and a quarter of the live heap) was allocated since the
// last idle collection, the follower collects; the memory limit then
// follows the smaller live heap and the scavenger returns what is free.
// Background work outlives the requests by seconds (a memtable flush, a
// compaction; JetStream keeps a stream's last block 10 s after its last
// write; Badger hands back its idle table-builder buffers one per 2 s), so
// it collects again idleLate later, when the heap is quiet again, and
// again while such a late collection frees at least idleFreed. Under load
// the heap is never quiet, so this costs nothing there. A collection
// costs CPU in proportion to the live heap: about 40 ms with Cairn's
// 50–70 MB after 60,000 documents (130 ms more CPU at rest for the first
// and a late one), 80 ms in BenchmarkIdleCollection's pointer-heavier
// 60 MB.
const (
	idleEvery   = time.Second
	idleAfter   = 2 * time.Second
	idleLate    = 10 * time.Second
	idleAlloc   = 1 << 20
	idleGarbage = 16 << 20
	idleFreed   = 4 << 20
)

// followMemoryLimit sets the collector's GOGC to gcPercent (0 leaves the
// runtime's own: GOGC or 100) and keeps the Go runtime's soft memory limit
// at max(floor, the live heap grown by twice GOGC) until ctx ends, then
// puts both back. A fixed limit below what a large instance needs would
// make the collector run back to back (up to half the CPU); following the
// live heap, the limit binds only where the heap outgrew it between looks,
// and the runtime returns to the OS what the heap holds above it instead
// of keeping it for later. It also collects an idle heap's garbage (see
// idleAfter). floor 0 leaves the runtime's own limit (GOMEMLIMIT, or
// none) and collector.
func followMemoryLimit(ctx context.Context, floor int64, gcPercent int) {
	pct := debug.SetGCPercent(-1)
	debug.SetGCPercent(pct)
	if gcPercent > 0 {
		old := debug.SetGCPercent(gcPercent)
		pct = gcPercent
		context.AfterFunc(ctx, func() { debug.SetGCPercent(old) })
	}
	if floor <= 0 {
		return
	}
	if pct <= 0 {
		pct = 100 // GOGC=off: the limit alone paces the collector
	}
	f := &heapFollower{floor: floor, pct: int64(pct), collect: runtime.GC,
		limitEvery: memoryLimitEvery, idleEvery: idleEvery, idleAfter: idleAfter, idleLate: idleLate, idleAlloc: idleAlloc, idleGarbage: idleGarbage, idleFreed: idleFreed}
	f.setLimit()
	go func() {
		defer debug.SetMemoryLimit(math.MaxInt64)
		f.run(ctx)
	}()
}

// heapFollower keeps the soft memory limit near the live heap and
// collects an idle heap's garbage; the durations and sizes are fields so
// that a test can run it faster.
type heapFollower struct {
	floor, pct                                 int64
	collect                                    func()
	limitEvery, idleEvery, idleAfter, idleLate time.Duration
	idleAlloc, idleGarbage, idleFreed          uint64
	samples                                    [3]metrics.Sample
	lastAllocs, lastCycles                     uint64
	quiet                                      time.Duration // how long the heap has been quiet
	lateDue                                    bool          // a late collection is still to come
	sinceIdle                                  time.Duration // since the last idle collection
	idleAllocs                                 uint64        // bytes allocated before the last idle collection
	sinceLimit                                 time.Duration
}

// read reads the live heap at the last collection, the bytes allocated
// and the collections so far.
func (f *heapFollower) read() (live, allocs, cycles uint64) {
	if f.samples[0].Name == "" {
		for i, n := range [...]string{"/gc/heap/live:bytes", "/gc/heap/allocs:bytes", "/gc/cycles/total:gc-cycles"} {
			f.samples[i].Name = n
		}
	}
	metrics.Read(f.samples[:])
	v := func(i int) uint64 {
		if f.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return f.samples[i].Value.Uint64()
	}
	return v(0), v(1), v(2)
}

// setLimit sets the memory limit from the live heap at the last
// collection.
func (f *heapFollower) setLimit() (live uint64) {
	live, allocs, cycles := f.read()
	f.lastAllocs, f.lastCycles = allocs, cycles
	// Twice the collector's growth: the limit binds only where the live
	// heap grew by more than half that since the last look (at the goal
	// itself it made a growing heap collect 2.4× as often), and still
	// holds freed heap close to it.
	l := int64(live)
	debug.SetMemoryLimit(max(f.floor, l+2*l*f.pct/100))
	f.sinceLimit = 0
	return live
}

func (f *heapFollower) run(ctx context.Context) {
	t := time.NewTicker(f.idleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.tick()
		}
	}
}

// tick is one look, idleEvery after the last.
func (f *heapFollower) tick() {
	live, allocs, cycles := f.read()
	if cycles == f.lastCycles && allocs-f.lastAllocs < f.idleAlloc {
		f.quiet += f.idleEvery
	} else {
		f.quiet = 0
	}
	f.lastAllocs, f.lastCycles = allocs, cycles
	f.sinceLimit += f.idleEvery
	f.sinceIdle += f.idleEvery
	// The runtime's own figures cannot tell what died since its last
	// collection (a flushed memtable, a compaction's buffers): that
	// collection may have come in the middle of the work. Hence a
	// collection once the heap is quiet after enough work, and a late one
	// for what background work still held at the first; a little work in
	// between (a probe, a health check) does not put the late one off.
	first := f.quiet >= f.idleAfter && allocs-f.idleAllocs >= max(f.idleGarbage, live/4)
	late := !first && f.lateDue && f.quiet >= f.idleAfter && f.sinceIdle >= f.idleLate
	if first || late {
		f.collect()
		if late {
			// What the first found in sync.Pools (NATS's message-block
			// buffers, 1–8 MiB each, go back to one when their cache
			// expires) it only moved aside; a second collection frees it.
			f.collect()
		}
		after := f.setLimit()
		// Badger hands back its idle table-builder buffers one per 2 s:
		// while a late collection still frees that much, another follows.
		f.lateDue = first || live > after && live-after >= f.idleFreed
		f.sinceIdle = 0
		f.idleAllocs = f.lastAllocs
		return
	}
	if f.sinceLimit >= f.limitEvery {
		f.setLimit()
	}
}

// servePprof serves net/http/pprof on --pprof-addr until the listener
// closes; it is off by default (profiles show internals).
func servePprof(addr string, logger *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --pprof-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		if err := http.Serve(ln, mux); err != nil && !errors.Is(err, net.ErrClosed) {
			logger.Warn("pprof listener stopped", "err", err)
		}
	}()
	logger.Info("serving pprof", "addr", ln.Addr().String())
	return ln, nil
}
