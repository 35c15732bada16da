package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// figure is one load's outcome.
type figure struct {
	ops      int
	elapsed  time.Duration
	p50, p99 time.Duration
	// cpu is the server process's CPU time (user + system) during the load:
	// per operation it does not depend on how busy the machine is.
	cpu time.Duration
	// loadCPU is this process's (the load generator's) CPU time during the
	// load: when it and the server share cores (or, pinned, when it fills
	// its own), the throughput ratio shows it as much as the servers.
	loadCPU time.Duration
	lat     []time.Duration // every operation's latency, sorted
}

// merge adds g, another window of the same load, to f.
func (f *figure) merge(g figure) {
	f.ops += g.ops
	f.elapsed += g.elapsed
	f.cpu += g.cpu
	f.loadCPU += g.loadCPU
	f.lat = append(f.lat, g.lat...)
	slices.Sort(f.lat)
	f.percentiles()
}

func (f *figure) percentiles() {
	if len(f.lat) > 0 {
		f.p50, f.p99 = f.lat[len(f.lat)/2], f.lat[len(f.lat)*99/100]
	}
}

func (f figure) cpuPerOp() time.Duration {
	if f.ops == 0 {
		return 0
	}
	return f.cpu / time.Duration(f.ops)
}

func (f figure) loadCPUPerOp() time.Duration {
	if f.ops == 0 {
		return 0
	}
	return f.loadCPU / time.Duration(f.ops)
}

func (f figure) rate() float64 { return float64(f.ops) / f.elapsed.Seconds() }

// result is one server's figures, in the order measured.
type result struct {
	name                     string
	create, get, list, cover figure
	rssKiB, hwmKiB           int
	loadRSSKiB               int           // mean while the documents after the read loads were created
	lateRSSKiB               int           // mean lateAfter after the writes
	restCPU                  time.Duration // the server's CPU time from the end of the writes to the late reading
	rssDocs                  int
}

// newClient is an HTTP client with room for clients keep-alive
// connections to one server (net/http's, or with lean leanTransport);
// close closes them.
func newClient(clients int, lean bool) (hc *http.Client, close func()) {
	if lean {
		tr := newLeanTransport(clients)
		return &http.Client{Transport: tr}, tr.closeIdle
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: time.Minute}, tr.CloseIdleConnections
}

// load runs fn from clients goroutines, each with its own keep-alive
// connection (a new client's), for n operations in all (n > 0) or for d.
// The first error ends it.
func load(ctx context.Context, clients int, lean bool, n int, d time.Duration, fn func(hc *http.Client, i int) error) (figure, error) {
	hc, closeClient := newClient(clients, lean)
	defer closeClient()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if n <= 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if n > 0 && i >= n {
					return
				}
				t := time.Now()
				if err := fn(hc, i); err != nil {
					if ctx.Err() != nil {
						return
					}
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t))
			}
		}()
	}
	wg.Wait()
	f := figure{ops: len(lat), elapsed: time.Since(start)}
	if first != nil {
		return f, first
	}
	slices.Sort(lat)
	f.lat = lat
	f.percentiles()
	return f, nil
}

// cpuTime is a process's CPU time so far (user + system), from /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after its ")".
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, /proc's unit of CPU time: 100 on Linux.
const clockTicks = 100

// loadCPU is load that also records the server's CPU time during it.
func loadCPU(ctx context.Context, pid, clients int, lean bool, n int, d time.Duration, fn func(hc *http.Client, i int) error) (figure, error) {
	before, self := cpuTime(pid), cpuTime(os.Getpid())
	f, err := load(ctx, clients, lean, n, d, fn)
	f.cpu, f.loadCPU = cpuTime(pid)-before, cpuTime(os.Getpid())-self
	return f, err
}

func measure(ctx context.Context, t target, c config) (*result, error) {
	log.Printf("%s: starting", t.name())
	if err := t.start(ctx); err != nil {
		return nil, err
	}
	defer t.stop()
	if err := t.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	r := &result{name: t.name()}
	tag := func(i int) string { return "t" + strconv.Itoa(i%c.tags) }
	ids := make([]string, c.docs)
	var err error
	log.Printf("%s: creating %d documents with %d clients", t.name(), c.docs, c.clients)
	// The create load is a count, not a time: its profiles cover its first
	// -duration (make -docs large enough to outlast it).
	stopCreate := profileCPU(ctx, t, c, "create")
	if r.create, err = loadCPU(ctx, t.pid(), c.clients, c.leanClient, c.docs, 0, func(hc *http.Client, i int) error {
		id, err := t.create(ctx, hc, i, tag(i))
		ids[i] = id
		return err
	}); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if err := stopCreate(); err != nil {
		return nil, err
	}
	log.Printf("%s: get by id for %s", t.name(), c.duration)
	stopGet := profileCPU(ctx, t, c, "get")
	r.get, err = loadCPU(ctx, t.pid(), c.clients, c.leanClient, 0, c.duration, func(hc *http.Client, i int) error {
		return t.get(ctx, hc, ids[(i*7919)%len(ids)])
	})
	if err := stopGet(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if !lists(t) {
		return r, measureMemory(ctx, t, c, r)
	}
	log.Printf("%s: list (index on tag only) for %s", t.name(), c.duration)
	stop := profileCPU(ctx, t, c, "list")
	r.list, err = loadCPU(ctx, t.pid(), c.clients, c.leanClient, 0, c.duration, func(hc *http.Client, i int) error {
		return t.list(ctx, hc, tag(i), i%checkEvery == 0)
	})
	if err := stop(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if err := t.coverSort(ctx); err != nil {
		return nil, fmt.Errorf("covering index: %w", err)
	}
	log.Printf("%s: list (index on tag, n desc) for %s", t.name(), c.duration)
	stop = profileCPU(ctx, t, c, "cover")
	r.cover, err = loadCPU(ctx, t.pid(), c.clients, c.leanClient, 0, c.duration, func(hc *http.Client, i int) error {
		return t.list(ctx, hc, tag(i), i%checkEvery == 0)
	})
	if err := stop(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("list with a covering index: %w", err)
	}
	if err := measureMemory(ctx, t, c, r); err != nil {
		return nil, err
	}
	return r, nil
}

// measureMemory creates documents up to -rss-docs and reads t's resident
// set after them (2–7 s, and 20 s), into r.
func measureMemory(ctx context.Context, t target, c config, r *result) error {
	tag := func(i int) string { return "t" + strconv.Itoa(i%c.tags) }
	if more := c.rssDocs - c.docs; c.rssDocs > 0 {
		if more > 0 {
			log.Printf("%s: creating %d more documents", t.name(), more)
			stop := sampleRSS(t.pid())
			if hp, ok := t.(heapProfiler); ok && c.heapProfile != "" {
				// What is live while writing: the profile as of the last
				// collection, halfway through.
				go func() {
					time.Sleep(r.create.elapsed * time.Duration(more) / time.Duration(2*c.docs))
					if err := hp.writeHeapProfile(ctx, profilePath(c.heapProfile, t.name(), "-load"), false); err != nil {
						log.Printf("%s: heap profile while writing: %v", t.name(), err)
					}
				}()
			}
			_, err := load(ctx, c.clients, c.leanClient, more, 0, func(hc *http.Client, i int) error {
				_, err := t.create(ctx, hc, c.docs+i, tag(i))
				return err
			})
			r.loadRSSKiB = stop()
			if err != nil {
				return fmt.Errorf("create for memory: %w", err)
			}
		}
		rested, restCPU := time.Now(), cpuTime(t.pid())
		time.Sleep(2 * time.Second) // let background work (compaction, checkpoints) settle
		r.rssDocs = max(c.rssDocs, c.docs)
		// One reading depends on whether the collector happened to run just
		// before it (±20 %): the mean of several over a few seconds at rest.
		var sum, lo, hi int
		for i := range rssSamples {
			if i > 0 {
				time.Sleep(rssEvery)
			}
			rss, hwm, err := memory(t.pid(), i == 0)
			if err != nil {
				return err
			}
			sum, r.hwmKiB = sum+rss, hwm
			if i == 0 || rss < lo {
				lo = rss
			}
			hi = max(hi, rss)
		}
		r.rssKiB = sum / rssSamples
		log.Printf("%s RSS over %s: mean %d MiB, min %d, max %d", t.name(), rssEvery*(rssSamples-1), r.rssKiB/1024, lo/1024, hi/1024)
		logMappings(t.name(), t.pid())
		if ms, ok := t.(interface{ logMemStats(context.Context) error }); ok {
			if err := ms.logMemStats(ctx); err != nil {
				return err
			}
		}
		if hp, ok := t.(heapProfiler); ok && c.heapProfile != "" {
			// What was live at the last collection before the end of
			// that reading (no collection forced: the next one would move).
			if err := hp.writeHeapProfile(ctx, profilePath(c.heapProfile, t.name(), "-early"), false); err != nil {
				return err
			}
		}
		// A server at rest for longer: what its collector and scavenger
		// (or SQLite's) hand back after the first seconds.
		time.Sleep(time.Until(rested.Add(lateAfter)))
		sum = 0
		for i := range lateSamples {
			if i > 0 {
				time.Sleep(rssEvery)
			}
			rss, _, err := memory(t.pid(), false)
			if err != nil {
				return err
			}
			sum += rss
		}
		r.lateRSSKiB, r.restCPU = sum/lateSamples, cpuTime(t.pid())-restCPU
		log.Printf("%s RSS %s after the writes: mean %d MiB; CPU since the writes %s", t.name(), lateAfter, r.lateRSSKiB/1024, r.restCPU)
		logMappings(t.name(), t.pid())
		if ms, ok := t.(interface{ logMemStats(context.Context) error }); ok {
			if err := ms.logMemStats(ctx); err != nil {
				return err
			}
		}
		if hp, ok := t.(heapProfiler); ok && c.heapProfile != "" {
			if err := hp.writeHeapProfile(ctx, profilePath(c.heapProfile, t.name(), ""), true); err != nil {
				return err
			}
		}
	}
	return nil
}

// heapProfiler is a target that can save its heap profile.
type heapProfiler interface {
	writeHeapProfile(ctx context.Context, path string, gc bool) error
}

// profilePath is where target's heap profile goes: base, with the
// target's name (unless "cairn") and suffix before ".pb.gz".
func profilePath(base, target, suffix string) string {
	if target != "cairn" {
		suffix = "-" + target + suffix
	}
	return strings.TrimSuffix(base, ".pb.gz") + suffix + ".pb.gz"
}

// profileCPU starts saving t's CPU profile over the next load (when
// -cpu-profile asks and t serves one) and returns a function that waits
// for it.
func profileCPU(ctx context.Context, t target, c config, phase string) func() error {
	cp, ok := t.(interface {
		writeCPUProfile(context.Context, time.Duration, string) error
		writeAllocProfile(context.Context, time.Duration, string) error
	})
	if !ok || c.cpuProfile == "" {
		return func() error { return nil }
	}
	done := make(chan error, 2)
	go func() { done <- cp.writeCPUProfile(ctx, c.duration, profilePath(c.cpuProfile, t.name(), "-"+phase)) }()
	// The allocations over the same window, beside it.
	go func() {
		done <- cp.writeAllocProfile(ctx, c.duration, profilePath(c.cpuProfile, t.name(), "-"+phase+"-allocs"))
	}()
	return func() error { return errors.Join(<-done, <-done) }
}

// sampleRSS reads a process's resident set every 250 ms until the
// returned function is called, which returns the mean in KiB: the
// footprint while writing, over many collection cycles.
func sampleRSS(pid int) (stop func() int) {
	done := make(chan struct{})
	mean := make(chan int)
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var sum, n int
		for {
			select {
			case <-done:
				if n == 0 { // a load shorter than one tick
					sum, _, _ = memory(pid, false)
					n = 1
				}
				mean <- sum / n
				return
			case <-t.C:
				if rss, _, err := memory(pid, false); err == nil {
					sum, n = sum+rss, n+1
				}
			}
		}
	}()
	return func() int { close(done); return <-mean }
}

// checkEvery: the list loads decode one answer in this many and check it
// (every answer's status is checked). Decoding each 25-document answer
// cost the load generator more CPU than Cairn spent answering it (161
// against 93 µs, pinned): the generator, not the server, set the rate.
const checkEvery = 16

// RSS is read rssSamples times, rssEvery apart.
const (
	rssSamples = 11
	rssEvery   = 500 * time.Millisecond
	// The later reading: lateSamples from lateAfter after the writes.
	lateAfter   = 20 * time.Second
	lateSamples = 5
)

// memory reads a process's resident set and its peak from /proc, in KiB,
// and logs its anonymous and file-backed parts if asked.
func memory(pid int, logParts bool) (rss, hwm int, err error) {

	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		case "RssAnon", "RssFile":
			if !logParts {
				continue
			}
			// Anonymous (heaps) against file-backed (mapped files): which
			// setting to look at.
			log.Printf("pid %d %s %d MiB", pid, k, n/1024)
		}
	}
	return rss, hwm, nil
}

// logMappings logs where a process's resident memory is, from
// /proc/<pid>/smaps: anonymous memory (heaps, stacks) against each kind of
// mapped file (the executable, Badger's memtable logs, tables and value
// logs, JetStream's files).
func logMappings(name string, pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		log.Printf("%s smaps: %v", name, err)
		return
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	kib := map[string]int{}
	what := ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") || strings.Contains(f[0], "-") { // a mapping's header line
			what = "anonymous"
			if len(f) >= 6 {
				switch p := f[5]; {
				case p == exe:
					what = "executable"
				case strings.HasPrefix(p, "["):
					what = p
				default:
					what = filepath.Ext(p)
					if strings.Contains(p, "/nats/") {
						what = "nats " + what
					}
				}
			}
			continue
		}
		if f[0] == "Rss:" && len(f) >= 2 {
			n, _ := strconv.Atoi(f[1])
			kib[what] += n
		}
	}
	var parts []string
	for k, v := range kib {
		if v >= 1024 {
			parts = append(parts, fmt.Sprintf("%s %d MiB", k, v/1024))
		}
	}
	slices.Sort(parts)
	log.Printf("%s resident by mapping: %s", name, strings.Join(parts, ", "))
}

func printResults(w io.Writer, c config, rs []*result) {
	pinned := ""
	if c.pin {
		pinned = fmt.Sprintf("; servers pinned to CPU %d, clients to CPU %d", pinServerCPU, pinLoadCPU)
	}
	fmt.Fprintf(w, "\n%d clients, HTTP/1.1 keep-alive, JSON; %d documents {title, n, tag}, %d tags (a list matches %d); reads for %s each; cpu = the server's CPU time per operation, load = the load generator's%s\n\n",
		c.clients, c.docs, c.tags, c.docs/c.tags, c.duration, pinned)
	// Ratios are against PocketBase (or, with -only, the last server run).
	last := rs[len(rs)-1]
	if i := slices.IndexFunc(rs, func(r *result) bool { return r.name == "pocketbase" }); i >= 0 {
		last = rs[i]
	}
	var others []*result
	for _, r := range rs {
		if r != last {
			others = append(others, r)
		}
	}
	fmt.Fprintf(w, "%-34s", "")
	for _, r := range rs {
		fmt.Fprintf(w, "%-48s", r.name)
	}
	for _, r := range others {
		fmt.Fprintf(w, "%-20s", r.name+"/"+last.name)
	}
	fmt.Fprintln(w)
	row := func(label string, f func(*result) figure) {
		fmt.Fprintf(w, "%-34s", label)
		for _, r := range rs {
			x := f(r)
			if x.ops == 0 { // not measured (the floor's lists)
				fmt.Fprintf(w, "%-48s", "–")
				continue
			}
			fmt.Fprintf(w, "%-48s", fmt.Sprintf("%6.0f/s p99 %-9s cpu %s load %s", x.rate(), x.p99.Round(time.Millisecond), x.cpuPerOp().Round(time.Microsecond), x.loadCPUPerOp().Round(time.Microsecond)))
		}
		for _, r := range others {
			if f(r).ops == 0 || f(last).ops == 0 {
				fmt.Fprintf(w, "%-20s", "–")
				continue
			}
			fmt.Fprintf(w, "%-20s", fmt.Sprintf("%.2f×", f(r).rate()/f(last).rate()))
		}
		fmt.Fprintln(w)
	}
	row("create", func(r *result) figure { return r.create })
	row("get by id", func(r *result) figure { return r.get })
	row("list 25, tag =, sort n desc (tag)", func(r *result) figure { return r.list })
	row("same, index (tag, n desc)", func(r *result) figure { return r.cover })
	if rs[0].rssDocs > 0 {
		fmt.Fprintf(w, "%-34s", fmt.Sprintf("RSS after %d docs (peak)", rs[0].rssDocs))
		for _, r := range rs {
			fmt.Fprintf(w, "%-48s", fmt.Sprintf("%d MiB (%d)", r.rssKiB/1024, r.hwmKiB/1024))
		}
		for _, r := range others {
			if last.rssKiB > 0 {
				fmt.Fprintf(w, "%-20s", fmt.Sprintf("%.2f×", float64(r.rssKiB)/float64(last.rssKiB)))
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%-34s", fmt.Sprintf("same, %s at rest (CPU)", lateAfter))
		for _, r := range rs {
			fmt.Fprintf(w, "%-48s", fmt.Sprintf("%d MiB (%s)", r.lateRSSKiB/1024, r.restCPU))
		}
		for _, r := range others {
			if last.lateRSSKiB > 0 {
				fmt.Fprintf(w, "%-20s", fmt.Sprintf("%.2f×", float64(r.lateRSSKiB)/float64(last.lateRSSKiB)))
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%-34s", "RSS mean while creating them")
		for _, r := range rs {
			fmt.Fprintf(w, "%-48s", fmt.Sprintf("%d MiB", r.loadRSSKiB/1024))
		}
		for _, r := range others {
			if last.loadRSSKiB > 0 {
				fmt.Fprintf(w, "%-20s", fmt.Sprintf("%.2f×", float64(r.loadRSSKiB)/float64(last.loadRSSKiB)))
			}
		}
		fmt.Fprintln(w)
	}
}

// steadyLoad runs fn from clients goroutines through hc, the operations
// numbered from next on, and counts only what happens between
// warm and warm+d after its start: operations completed then, the server's
// (pid) and this process's CPU time then. It returns at warm+d without
// waiting for the calls still in flight — they finish during whatever
// comes next, which only a warm-up should follow — and a wait for them.
// fn's i runs from next; an fn that sees i past its last operation returns
// errDone, which ends that goroutine.
func steadyLoad(ctx context.Context, hc *http.Client, pid, clients int, next *atomic.Int64, warm, d time.Duration, fn func(hc *http.Client, i int) error) (figure, func() error) {
	var counting, stopped atomic.Bool
	var mu sync.Mutex
	var lat []time.Duration
	var first error
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				t := time.Now()
				err := fn(hc, i)
				if errors.Is(err, errDone) {
					return
				}
				if err != nil {
					mu.Lock()
					if first == nil && !stopped.Load() {
						first = err
					}
					mu.Unlock()
					return
				}
				if counting.Load() {
					mu.Lock()
					lat = append(lat, time.Since(t))
					mu.Unlock()
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	sleep := func(d time.Duration) {
		select {
		case <-allDone: // the last operation came before the end
		case <-time.After(d):
		}
	}
	sleep(warm)
	mu.Lock()
	lat = lat[:0]
	counting.Store(true)
	mu.Unlock()
	start, cpu0, self0 := time.Now(), cpuTime(pid), cpuTime(os.Getpid())
	sleep(d)
	mu.Lock()
	counting.Store(false)
	f := figure{ops: len(lat), elapsed: time.Since(start), cpu: cpuTime(pid) - cpu0, loadCPU: cpuTime(os.Getpid()) - self0, lat: slices.Clone(lat)}
	mu.Unlock()
	stopped.Store(true)
	slices.Sort(f.lat)
	f.percentiles()
	return f, func() error {
		<-allDone
		mu.Lock()
		defer mu.Unlock()
		return first
	}
}

// errDone is what a steadyLoad operation past the last returns.
var errDone = errors.New("no more operations")
