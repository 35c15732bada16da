package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
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
	if r.create, err = load(ctx, c.clients, c.docs, 0, func(hc *http.Client, i int) error {
		id, err := t.create(ctx, hc, i, tag(i))
		ids[i] = id
		return err
	}); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	log.Printf("%s: get by id for %s", t.name(), c.duration)
	if r.get, err = load(ctx, c.clients, 0, c.duration, func(hc *http.Client, i int) error {
		return t.get(ctx, hc, ids[(i*7919)%len(ids)])
	}); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	log.Printf("%s: list (index on tag only) for %s", t.name(), c.duration)
	stop := profileCPU(ctx, t, c, "list")
	r.list, err = load(ctx, c.clients, 0, c.duration, func(hc *http.Client, i int) error {
		return t.list(ctx, hc, tag(i))
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
	r.cover, err = load(ctx, c.clients, 0, c.duration, func(hc *http.Client, i int) error {
		return t.list(ctx, hc, tag(i))
	})
	if err := stop(); err != nil {
		return nil, err
	}
	if err != nil {
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
		if hp, ok := t.(interface {
			writeHeapProfile(context.Context, string) error
		}); ok && c.heapProfile != "" {
			if err := hp.writeHeapProfile(ctx, c.heapProfile); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// profileCPU starts saving t's CPU profile over the next load (when
// -cpu-profile asks and t serves one) and returns a function that waits
// for it.
func profileCPU(ctx context.Context, t target, c config, phase string) func() error {
	cp, ok := t.(interface {
		writeCPUProfile(context.Context, time.Duration, string) error
	})
	if !ok || c.cpuProfile == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- cp.writeCPUProfile(ctx, c.duration, c.cpuProfile+"-"+phase+".pb.gz") }()
	return func() error { return <-done }
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

func printResults(w io.Writer, c config, rs []*result) {
	fmt.Fprintf(w, "\n%d clients, HTTP/1.1 keep-alive, JSON; %d documents {title, n, tag}, %d tags (a list matches %d); reads for %s each\n\n",
		c.clients, c.docs, c.tags, c.docs/c.tags, c.duration)
	fmt.Fprintf(w, "%-34s", "")
	for _, r := range rs {
		fmt.Fprintf(w, "%-28s", r.name)
	}
	if len(rs) == 2 {
		fmt.Fprintf(w, "%s/%s", rs[0].name, rs[1].name)
	}
	fmt.Fprintln(w)
	row := func(label string, f func(*result) figure) {
		fmt.Fprintf(w, "%-34s", label)
		for _, r := range rs {
			x := f(r)
			fmt.Fprintf(w, "%-28s", fmt.Sprintf("%8.0f/s p99 %s", x.rate(), x.p99.Round(100*time.Microsecond)))
		}
		if len(rs) == 2 {
			fmt.Fprintf(w, "%.2f×", f(rs[0]).rate()/f(rs[1]).rate())
		}
		fmt.Fprintln(w)
	}
	row("create", func(r *result) figure { return r.create })
	row("get by id", func(r *result) figure { return r.get })
	row("list 25, tag =, sort n desc (tag)", func(r *result) figure { return r.list })
	row("same, index (tag, n desc)", func(r *result) figure { return r.cover })
	if len(rs) > 0 && rs[0].rssDocs > 0 {
		fmt.Fprintf(w, "%-34s", fmt.Sprintf("RSS after %d docs (peak)", rs[0].rssDocs))
		for _, r := range rs {
			fmt.Fprintf(w, "%-28s", fmt.Sprintf("%d MiB (%d)", r.rssKiB/1024, r.hwmKiB/1024))
		}
		if len(rs) == 2 && rs[1].rssKiB > 0 {
			fmt.Fprintf(w, "%.2f×", float64(rs[0].rssKiB)/float64(rs[1].rssKiB))
		}
		fmt.Fprintln(w)
	}
}
