package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// replay drops read models and rebuilds them from the streams. It needs the
// server stopped: Badger's directory lock refuses a second opener.
func replay(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	cfg.flags(fs, getenv)
	project := fs.String("project", "", "project whose read models to rebuild")
	all := fs.Bool("all", false, "rebuild the system registry and every project")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*project == "") == !*all {
		return errors.New("replay: give exactly one of --project ID or --all")
	}
	logger, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	n, err := openNode(ctx, &cfg, logger)
	if err != nil {
		return err
	}
	defer n.close()
	targets := []string{*project}
	if *all {
		// The registry first: it says which projects exist.
		start := time.Now()
		events, err := n.reads.Rebuild(ctx, "")
		if err != nil {
			return fmt.Errorf("replay system registry: %w", err)
		}
		report(stdout, "system registry", events, time.Since(start))
		ps, err := n.reads.ListProjects("", 1<<30)
		if err != nil {
			return err
		}
		targets = targets[:0]
		for _, p := range ps {
			targets = append(targets, p.GetId())
		}
	} else if _, err := n.reads.Project(*project); err != nil {
		return fmt.Errorf("replay: project %q: %w", *project, err)
	}
	total, began := 0, time.Now()
	for _, id := range targets {
		start := time.Now()
		events, err := n.reads.Rebuild(ctx, id)
		if err != nil {
			return fmt.Errorf("replay project %s: %w", id, err)
		}
		total += events
		report(stdout, "project "+id, events, time.Since(start))
	}
	if len(targets) > 1 {
		report(stdout, fmt.Sprintf("%d projects", len(targets)), total, time.Since(began))
	}
	return nil
}

func report(w io.Writer, what string, events int, d time.Duration) {
	rate := 0.0
	if d > 0 {
		rate = float64(events) / d.Seconds()
	}
	fmt.Fprintf(w, "replayed %s: %d events in %s (%.0f events/s)\n", what, events, d.Round(time.Millisecond), rate)
}
