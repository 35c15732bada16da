package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"
)

// alternateWindow is how long each server takes the read load in turn
// with -alternate.
const alternateWindow = 500 * time.Millisecond

// measureAlternating runs every target at once and gives them the same
// loads in turn, a chunk of creates or a window of reads each, the order
// rotating every round: all meet the same load from the rest of the
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
		hc, closeClient := newClient(c.clients)
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
	log.Printf("creating %d documents in each, %d clients, in turns", c.docs, c.clients)
	chunk := max(c.docs/20, c.clients)
	for round, from := 0, 0; from < c.docs; round, from = round+1, from+chunk {
		n := min(chunk, c.docs-from)
		if err := each(round, func(i int, t target) error {
			f, err := loadCPUWith(ctx, clients[i], t.pid(), c.clients, n, 0, func(hc *http.Client, j int) error {
				id, err := t.create(ctx, hc, from+j, tag(from+j))
				ids[i][from+j] = id
				return err
			})
			rs[i].create.merge(f)
			return err
		}); err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
	}
	reads := func(what string, into func(*result) *figure, fn func(i int, t target) func(*http.Client, int) error) error {
		log.Printf("%s for %s each, in windows of %s", what, c.duration, alternateWindow)
		for round := 0; time.Duration(round)*alternateWindow < c.duration; round++ {
			if err := each(round, func(i int, t target) error {
				f, err := loadCPUWith(ctx, clients[i], t.pid(), c.clients, 0, alternateWindow, fn(i, t))
				into(rs[i]).merge(f)
				return err
			}); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		return nil
	}
	if err := reads("get by id", func(r *result) *figure { return &r.get }, func(i int, t target) func(*http.Client, int) error {
		return func(hc *http.Client, j int) error { return t.get(ctx, hc, ids[i][(j*7919)%len(ids[i])]) }
	}); err != nil {
		return nil, err
	}
	list := func(i int, t target) func(*http.Client, int) error {
		return func(hc *http.Client, j int) error { return t.list(ctx, hc, tag(j), j%checkEvery == 0) }
	}
	if err := reads("list (index on tag only)", func(r *result) *figure { return &r.list }, list); err != nil {
		return nil, err
	}
	for _, t := range ts {
		if err := t.coverSort(ctx); err != nil {
			return nil, fmt.Errorf("%s: covering index: %w", t.name(), err)
		}
	}
	if err := reads("list (index on tag, n desc)", func(r *result) *figure { return &r.cover }, list); err != nil {
		return nil, err
	}
	for i, t := range ts {
		if err := measureMemory(ctx, t, c, rs[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name(), err)
		}
	}
	return rs, nil
}
