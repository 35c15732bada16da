package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// With -alternate each server takes each load in turn for alternateWarmUp,
// not counted, and then alternateWindow, counted, its calls in flight at
// the end finishing uncounted during the next server's warm-up
// (steadyLoad). Counting windows from their start to their drain instead
// made PocketBase's list cost 2.2× the CPU per call it costs under steady
// load (7.3 against 3.3 ms with 500 ms windows, 4.5 ms with 2 s ones);
// with steadyLoad it costs the same (3.2 ms). Creates have no warm-up:
// they are a count, which a fast server could finish inside it (2,000
// documents: Cairn's whole create load went uncounted).
const (
	alternateWarmUp = 500 * time.Millisecond
	alternateWindow = time.Second
)

// measureAlternating runs every target at once and gives them the same
// loads in turn, a window each, the order rotating every round: all meet the same load from the rest of the
// machine, whose speed here drifts by 20–25 % over minutes (the same
// binary, run twice a minute apart: 44 against 55 µs of CPU per get).
// Memory is then measured one server after the other, as without it.
func measureAlternating(ctx context.Context, ts []target, c config) ([]*result, error) {
	rs := make([]*result, len(ts))
	ids := make([][]string, len(ts))
	clients := make([]*http.Client, len(ts))
	for i, t := range ts {
		log.Printf("%s: starting", t.name())
		if err := t.start(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name(), err)
		}
		defer t.stop()
		if err := t.setup(ctx); err != nil {
			return nil, fmt.Errorf("%s: setup: %w", t.name(), err)
		}
		rs[i], ids[i] = &result{name: t.name()}, make([]string, c.docs)
		hc, closeClient := newClient(c.clients, c.leanClient)
		defer closeClient()
		clients[i] = hc
	}
	tag := func(i int) string { return "t" + strconv.Itoa(i%c.tags) }
	// each runs fn for every target, in an order that rotates with round.
	each := func(round int, fn func(i int, t target) error) error {
		for k := range ts {
			i := (k + round) % len(ts)
			if err := fn(i, ts[i]); err != nil {
				return fmt.Errorf("%s: %w", ts[i].name(), err)
			}
		}
		return nil
	}
	// turns gives every target windows of fn in turn until done says all
	// of its operations were made (or, for reads, for -duration).
	turns := func(what string, warm time.Duration, into func(*result) *figure, fn func(i int, t target) func(*http.Client, int) error, done func(i int, next int64, counted time.Duration) bool) error {
		log.Printf("%s: windows of %s after %s not counted, in turns", what, alternateWindow, warm)
		next := make([]atomic.Int64, len(ts))
		waits := make([]func() error, len(ts))
		counted := make([]time.Duration, len(ts))
		for round := 0; ; round++ {
			more := false
			if err := each(round, func(i int, t target) error {
				if done(i, next[i].Load(), counted[i]) {
					return nil
				}
				more = true
				if waits[i] != nil {
					if err := waits[i](); err != nil {
						return err
					}
				}
				var f figure
				f, waits[i] = steadyLoad(ctx, clients[i], t.pid(), c.clients, &next[i], warm, alternateWindow, fn(i, t))
				into(rs[i]).merge(f)
				counted[i] += alternateWindow
				return nil
			}); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if !more {
				break
			}
		}
		for i, wait := range waits {
			if wait != nil {
				if err := wait(); err != nil {
					return fmt.Errorf("%s: %s: %w", what, ts[i].name(), err)
				}
			}
		}
		return nil
	}
	reads := func(what string, into func(*result) *figure, fn func(i int, t target) func(*http.Client, int) error) error {
		return turns(what, alternateWarmUp, into, fn, func(_ int, _ int64, counted time.Duration) bool { return counted >= c.duration })
	}
	// queries are reads that skip the targets without them (the floor).
	queries := func(what string, into func(*result) *figure, fn func(i int, t target) func(*http.Client, int) error) error {
		return turns(what, alternateWarmUp, into, fn, func(i int, _ int64, counted time.Duration) bool { return !lists(ts[i]) || counted >= c.duration })
	}
	if err := turns(fmt.Sprintf("creating %d documents", c.docs), 0, func(r *result) *figure { return &r.create }, func(i int, t target) func(*http.Client, int) error {
		return func(hc *http.Client, j int) error {
			if j >= c.docs {
				return errDone
			}
			id, err := t.create(ctx, hc, j, tag(j))
			ids[i][j] = id
			return err
		}
	}, func(_ int, next int64, _ time.Duration) bool { return next >= int64(c.docs) }); err != nil {
		return nil, err
	}
	if err := reads("get by id", func(r *result) *figure { return &r.get }, func(i int, t target) func(*http.Client, int) error {
		return func(hc *http.Client, j int) error { return t.get(ctx, hc, ids[i][(j*7919)%len(ids[i])]) }
	}); err != nil {
		return nil, err
	}
	list := func(i int, t target) func(*http.Client, int) error {
		return func(hc *http.Client, j int) error { return t.list(ctx, hc, tag(j), j%checkEvery == 0) }
	}
	if err := queries("list (index on tag only)", func(r *result) *figure { return &r.list }, list); err != nil {
		return nil, err
	}
	for _, t := range ts {
		if err := t.coverSort(ctx); err != nil {
			return nil, fmt.Errorf("%s: covering index: %w", t.name(), err)
		}
	}
	if err := queries("list (index on tag, n desc)", func(r *result) *figure { return &r.cover }, list); err != nil {
		return nil, err
	}
	for i, t := range ts {
		if err := measureMemory(ctx, t, c, rs[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name(), err)
		}
	}
	return rs, nil
}
