package main

import (
	"context"
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
}

func (f figure) cpuPerOp() time.Duration {
	if f.ops == 0 {
		return 0
	}
	return f.cpu / time.Duration(f.ops)
}

func (f figure) rate() float64 { return float64(f.ops) / f.elapsed.Seconds() }

// result is one server's figures, in the order measured.
type result struct {
	name                     string
	create, get, list, cover figure
	rssKiB, hwmKiB           int
	rssDocs                  int
}

// load runs fn from clients goroutines, each with its own keep-alive
// connection, for n operations in all (n > 0) or for d. The first error
// ends it.
func load(ctx context.Context, clients, n int, d time.Duration, fn func(hc *http.Client, i int) error) (figure, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
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
	if len(lat) > 0 {
		f.p50, f.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
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
func loadCPU(ctx context.Context, pid, clients, n int, d time.Duration, fn func(hc *http.Client, i int) error) (figure, error) {
	before := cpuTime(pid)
	f, err := load(ctx, clients, n, d, fn)
	f.cpu = cpuTime(pid) - before
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
	if r.create, err = loadCPU(ctx, t.pid(), c.clients, c.docs, 0, func(hc *http.Client, i int) error {
		id, err := t.create(ctx, hc, i, tag(i))
		ids[i] = id
		return err
	}); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	log.Printf("%s: get by id for %s", t.name(), c.duration)
	if r.get, err = loadCPU(ctx, t.pid(), c.clients, 0, c.duration, func(hc *http.Client, i int) error {
		return t.get(ctx, hc, ids[(i*7919)%len(ids)])
	}); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	log.Printf("%s: list (index on tag only) for %s", t.name(), c.duration)
	if r.list, err = loadCPU(ctx, t.pid(), c.clients, 0, c.duration, func(hc *http.Client, i int) error {
		return t.list(ctx, hc, tag(i))
	}); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if err := t.coverSort(ctx); err != nil {
		return nil, fmt.Errorf("covering index: %w", err)
	}
	log.Printf("%s: list (index on tag, n desc) for %s", t.name(), c.duration)
	if r.cover, err = loadCPU(ctx, t.pid(), c.clients, 0, c.duration, func(hc *http.Client, i int) error {
		return t.list(ctx, hc, tag(i))
	}); err != nil {
		return nil, fmt.Errorf("list with a covering index: %w", err)
	}
	if more := c.rssDocs - c.docs; c.rssDocs > 0 {
		if more > 0 {
			log.Printf("%s: creating %d more documents", t.name(), more)
			if _, err := load(ctx, c.clients, more, 0, func(hc *http.Client, i int) error {
				_, err := t.create(ctx, hc, c.docs+i, tag(i))
				return err
			}); err != nil {
				return nil, fmt.Errorf("create for memory: %w", err)
			}
		}
		time.Sleep(2 * time.Second) // let background work (compaction, checkpoints) settle
		r.rssDocs = max(c.rssDocs, c.docs)
		if r.rssKiB, r.hwmKiB, err = memory(t.pid()); err != nil {
			return nil, err
		}
		logMappings(t.name(), t.pid())
		if ms, ok := t.(interface{ logMemStats(context.Context) error }); ok {
			if err := ms.logMemStats(ctx); err != nil {
				return nil, err
			}
		}
		if hp, ok := t.(interface {
			writeHeapProfile(context.Context, string) error
		}); ok && c.heapProfile != "" {
			path := c.heapProfile
			if t.name() != "cairn" {
				path = strings.TrimSuffix(path, ".pb.gz") + "-" + t.name() + ".pb.gz"
			}
			if err := hp.writeHeapProfile(ctx, path); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// memory reads a process's resident set and its peak from /proc, in KiB.
func memory(pid int) (rss, hwm int, err error) {
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
	fmt.Fprintf(w, "\n%d clients, HTTP/1.1 keep-alive, JSON; %d documents {title, n, tag}, %d tags (a list matches %d); reads for %s each; cpu = the server's CPU time per operation\n\n",
		c.clients, c.docs, c.tags, c.docs/c.tags, c.duration)
	// Ratios are against the last server run (PocketBase, unless -only).
	var others []*result
	if len(rs) > 1 {
		others = rs[:len(rs)-1]
	}
	last := rs[len(rs)-1]
	fmt.Fprintf(w, "%-34s", "")
	for _, r := range rs {
		fmt.Fprintf(w, "%-38s", r.name)
	}
	for _, r := range others {
		fmt.Fprintf(w, "%-20s", r.name+"/"+last.name)
	}
	fmt.Fprintln(w)
	row := func(label string, f func(*result) figure) {
		fmt.Fprintf(w, "%-34s", label)
		for _, r := range rs {
			x := f(r)
			fmt.Fprintf(w, "%-38s", fmt.Sprintf("%6.0f/s p99 %-9s cpu %s", x.rate(), x.p99.Round(time.Millisecond), x.cpuPerOp().Round(time.Microsecond)))
		}
		for _, r := range others {
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
			fmt.Fprintf(w, "%-38s", fmt.Sprintf("%d MiB (%d)", r.rssKiB/1024, r.hwmKiB/1024))
		}
		for _, r := range others {
			if last.rssKiB > 0 {
				fmt.Fprintf(w, "%-20s", fmt.Sprintf("%.2f×", float64(r.rssKiB)/float64(last.rssKiB)))
			}
		}
		fmt.Fprintln(w)
	}
}
