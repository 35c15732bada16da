package main

import (
	"context"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/spf13/pflag"
)

// parseServeFlags parses args (and env) the way cairn serve does.
func parseServeFlags(t *testing.T, env map[string]string, args ...string) *config {
	t.Helper()
	var cfg config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// TestMemoryFlags: the defaults reach Badger's options, env twins and
// flags override them, and a setting Badger or Cairn cannot work with is
// refused at start with the flag named.
func TestMemoryFlags(t *testing.T) {
	cfg := parseServeFlags(t, nil)
	if err := cfg.checkMemory(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	opts := cfg.badgerOptions(badger.DefaultOptions(""))
	if opts.MemTableSize != 16<<20 || opts.NumMemtables != 3 || opts.BlockCacheSize != 32<<20 || opts.IndexCacheSize != 16<<20 || opts.NumCompactors != 2 {
		t.Fatalf("default Badger options: memtable %d × %d, block cache %d, index cache %d, compactors %d",
			opts.MemTableSize, opts.NumMemtables, opts.BlockCacheSize, opts.IndexCacheSize, opts.NumCompactors)
	}
	if cfg.MemoryLimit != defaultMemoryLimit {
		t.Fatalf("default memory limit %d", cfg.MemoryLimit)
	}
	if cfg := parseServeFlags(t, map[string]string{"GOMEMLIMIT": "1GiB"}); cfg.MemoryLimit != 0 {
		t.Fatalf("with GOMEMLIMIT set the memory limit floor is %d, want 0 (the runtime's own)", cfg.MemoryLimit)
	}
	if cfg.GCPercent != defaultGCPercent {
		t.Fatalf("default GC percent %d", cfg.GCPercent)
	}
	if cfg := parseServeFlags(t, map[string]string{"GOGC": "200"}); cfg.GCPercent != 0 {
		t.Fatalf("with GOGC set the GC percent is %d, want 0 (the runtime's own)", cfg.GCPercent)
	}

	cfg = parseServeFlags(t, map[string]string{"CAIRN_BADGER_MEMTABLE": "67108864", "CAIRN_BADGER_BLOCK_CACHE": "1048576"},
		"--badger-memtables", "5", "--badger-index-cache", "-1")
	opts = cfg.badgerOptions(badger.DefaultOptions(""))
	if opts.MemTableSize != 64<<20 || opts.NumMemtables != 5 || opts.BlockCacheSize != 1<<20 || opts.IndexCacheSize != 0 {
		t.Fatalf("overridden Badger options: memtable %d × %d, block cache %d, index cache %d",
			opts.MemTableSize, opts.NumMemtables, opts.BlockCacheSize, opts.IndexCacheSize)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--badger-memtable", "1048576"}, "--badger-memtable: at least"},
		{[]string{"--max-request-bytes", "4194304"}, "too small for --max-request-bytes"},
		{[]string{"--badger-block-cache", "-5"}, "--badger-block-cache"},
		{[]string{"--badger-index-cache", "-2"}, "--badger-index-cache"},
		{[]string{"--memory-limit", "-1"}, "--memory-limit"},
		{[]string{"--gc-percent", "-1"}, "--gc-percent"},
	} {
		err := parseServeFlags(t, nil, tc.args...).checkMemory()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestFollowMemoryLimit: the collector's GOGC is the one asked for, the
// runtime's soft limit is at least the floor and at least the live heap
// grown by twice that percentage, and both are put back when the server
// stops.
func TestFollowMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	before := debug.SetGCPercent(-1)
	debug.SetGCPercent(before)
	defer debug.SetGCPercent(before)
	ctx, cancel := context.WithCancel(context.Background())
	const floor = 1 << 20 // below any live heap: the limit follows the heap
	followMemoryLimit(ctx, floor, 30)
	if got := debug.SetGCPercent(-1); got != 30 {
		t.Fatalf("GC percent %d, want 30", got)
	}
	debug.SetGCPercent(30)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	live := int64(sample[0].Value.Uint64())
	// Other tests' collections may move the live heap between the two
	// reads: allow a little.
	if got := debug.SetMemoryLimit(-1); got < live*150/100 || got == math.MaxInt64 {
		t.Fatalf("memory limit %d, want about 1.6 × the live heap %d", got, live)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) != math.MaxInt64 {
		if time.Now().After(deadline) {
			t.Fatalf("memory limit still %d after the server stopped", debug.SetMemoryLimit(-1))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := debug.SetGCPercent(-1); got != before {
		t.Fatalf("GC percent %d after the server stopped, want %d back", got, before)
	}
	debug.SetGCPercent(before)
}

// TestIdleCollection: a heap that stops allocating is collected when its
// quiet spell reaches idleAfter (freeing what died, and the memory limit
// follows the smaller live heap), again idleLate later (a little work in
// between does not put that off), again while such a late one frees
// idleFreed, and no more; a busy heap is never
// collected by the follower, nor a quiet one that allocated little since
// the last idle collection. The runtime is the real one; only the
// collections are counted.
func TestIdleCollection(t *testing.T) {
	if os.Getenv("CAIRN_IDLE_COLLECTION_CHILD") == "" {
		// Alone in a process of its own: servers the package's other
		// tests leave behind allocate and collect while they wind down,
		// and the follower rightly calls that heap busy.
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleCollection$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CAIRN_IDLE_COLLECTION_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("TestIdleCollection in its own process: %v\n%s", err, out)
		}
		return
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	collections := 0
	// A floor above the test's heap: a limit at twice its live part would
	// itself start collections (the freed 32 MiB is not yet returned).
	f := &heapFollower{floor: 256 << 20, pct: 50, collect: func() { collections++; runtime.GC() },
		limitEvery: time.Hour, idleEvery: time.Second, idleAfter: 2 * time.Second, idleLate: 4 * time.Second,
		idleAlloc: 1 << 20, idleGarbage: 8 << 20, idleFreed: 4 << 20}
	live := func() int64 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return int64(s[0].Value.Uint64())
	}
	// 32 MiB live at a collection, then garbage: what the runtime's own
	// figures still count as live until the next one.
	held := make([]byte, 32<<20)
	for i := range held {
		held[i] = byte(i)
	}
	late := make([]byte, 16<<20) // still held at the first idle collection
	for i := range late {
		late[i] = byte(i)
	}
	runtime.GC()
	before := live()
	runtime.KeepAlive(held)
	held = nil
	f.setLimit()
	busy := func(n int) {
		for range n {
			b := make([]byte, 2<<20)
			runtime.KeepAlive(b)
			f.tick()
		}
	}
	quiet := func(n int) {
		for range n {
			f.tick()
		}
	}
	want := func(n int, when string) {
		t.Helper()
		if collections != n {
			t.Fatalf("%d idle collections %s, want %d", collections, when, n)
		}
	}
	busy(10)
	want(0, "of a busy heap")
	quiet(1)
	want(0, "after 1 s quiet")
	quiet(1)
	want(1, "after 2 s quiet")
	after := live()
	if after > before-24<<20 {
		t.Fatalf("live heap %d after the idle collection, %d before: the 32 MiB that died is still counted", after, before)
	}
	if got := debug.SetMemoryLimit(-1); got != max(f.floor, after*2) {
		t.Fatalf("memory limit %d after the idle collection, want max(floor, 2 × live %d)", got, after)
	}
	// Background work lets go of 16 MiB after the first collection: the
	// late one frees it, so another late one follows; that one frees
	// nothing, so no more.
	runtime.KeepAlive(late)
	late = nil
	quiet(2)
	busy(1) // a probe
	quiet(1)
	want(1, "4 s after the first but 1 s quiet")
	quiet(1)
	want(3, "4 s after the first and 2 s quiet (two collections)")
	quiet(3)
	want(3, "3 s after the late one")
	quiet(1)
	want(5, "4 s after a late one that freed 16 MiB")
	quiet(20)
	want(5, "in a long quiet spell, after a late one that freed nothing")
	// A little work, then quiet again: too little allocated to collect.
	busy(1)
	quiet(10)
	want(5, "after only 2 MiB allocated since the last idle collection")
	busy(5)
	quiet(2)
	want(6, "after 10 MiB more and a quiet spell")
}

// BenchmarkIdleCollection: the CPU one collection costs
// with a live heap shaped like Cairn's after 60,000 documents (about
// 60 MB: a third in pointer-free buffers such as memtable arenas and
// block caches, the rest in small objects with pointers, as in JetStream's
// subject index and message ids).
func BenchmarkIdleCollection(b *testing.B) {
	type node struct {
		key  string
		next *node
		val  [4]uint64 // the size of a small record
	}
	buffers := make([][]byte, 20)
	for i := range buffers {
		buffers[i] = make([]byte, 1<<20)
	}
	index := make(map[int]*node, 400_000)
	var prev *node
	for i := range 400_000 {
		n := &node{key: strconv.Itoa(i), next: prev, val: [4]uint64{uint64(i)}}
		index[i], prev = n, n
	}
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	cpu := processCPU(b)
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(s[0].Value.Uint64())/(1<<20), "live-MiB")
	runtime.KeepAlive(buffers)
	runtime.KeepAlive(index)
}
