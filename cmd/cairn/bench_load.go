package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sample is the outcome of one measured load.
type sample struct {
	ops      int // successful operations
	errs     int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // of successful operations, sorted
}

func (s sample) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}

// pct returns the p-th percentile latency (0 < p <= 1).
func (s sample) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(float64(len(s.lat))*p+0.5) - 1
	return s.lat[min(max(i, 0), len(s.lat)-1)]
}

// opFunc is one operation of a load; seq is unique across the whole bench
// run, so operations can derive distinct names from it.
type opFunc func(ctx context.Context, worker int, seq uint64) error

// drive runs op from conc workers for dur, or until ops operations were
// started when ops > 0.
func drive(ctx context.Context, conc int, dur time.Duration, ops int, seq *atomic.Uint64, op opFunc) sample {
	var (
		wg       sync.WaitGroup
		started  atomic.Int64
		errMu    sync.Mutex
		firstErr error
	)
	lats := make([][]time.Duration, conc)
	errs := make([]int, conc)
	start := time.Now()
	deadline := start.Add(dur)
	for w := range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				if ops > 0 {
					if started.Add(1) > int64(ops) {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				t0 := time.Now()
				err := op(ctx, w, seq.Add(1))
				if err != nil {
					errs[w]++
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	s := sample{elapsed: time.Since(start), firstErr: firstErr}
	for w := range conc {
		s.errs += errs[w]
		s.lat = append(s.lat, lats[w]...)
	}
	slices.Sort(s.lat)
	s.ops = len(s.lat)
	return s
}

// measure warms up, then runs the measured load under the CPU profiler when
// one is asked for. A load with no successful operation is an error: its
// figures would be meaningless.
func (r *benchRun) measure(ctx context.Context, profile string, conc int, op opFunc) (sample, error) {
	if r.o.warmup > 0 && r.o.ops == 0 {
		drive(ctx, conc, r.o.warmup, 0, &r.seq, op)
	}
	var s sample
	err := r.profiled(profile, func() error {
		s = drive(ctx, conc, r.o.duration, r.o.ops, &r.seq, op)
		return nil
	})
	if err != nil {
		return s, err
	}
	if err := ctx.Err(); err != nil {
		return s, err
	}
	if s.ops == 0 && s.firstErr != nil {
		return s, fmt.Errorf("%s: every operation failed: %w", profile, s.firstErr)
	}
	return s, nil
}

// profiled runs fn under a CPU profile written to <prefix>.<name>.pprof
// when --cpuprofile is set.
func (r *benchRun) profiled(name string, fn func() error) error {
	if r.o.cpuprofile == "" {
		return fn()
	}
	path := r.o.cpuprofile + "." + name + ".pprof"
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	ferr := fn()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return fmt.Errorf("cpu profile %s: %w", path, err)
	}
	r.profiles = append(r.profiles, path)
	return ferr
}
