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
	logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	n, err := openNode(ctx, &cfg, logger)
	if err != nil {
		return err
	}
	defer n.close()
	if *all {
		// Every project the registry lists once rebuilt, the registry first.
		began, count := time.Now(), 0
		total, err := n.reads.RebuildAll(ctx, func(project string, events int, took time.Duration) {
			if project == "" {
				report(stdout, "system registry", events, took)
				return
			}
			count++
			report(stdout, "project "+project, events, took)
		})
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		report(stdout, fmt.Sprintf("%d projects and the registry", count), total, time.Since(began))
		return nil
	}
	if _, err := n.reads.Project(*project); err != nil {
		return fmt.Errorf("replay: project %q: %w", *project, err)
	}
	start := time.Now()
	events, err := n.reads.Rebuild(ctx, *project)
	if err != nil {
		return fmt.Errorf("replay project %s: %w", *project, err)
	}
	report(stdout, "project "+*project, events, time.Since(start))
	return nil
}

func report(w io.Writer, what string, events int, d time.Duration) {
	rate := 0.0
	if d > 0 {
		rate = float64(events) / d.Seconds()
	}
	fmt.Fprintf(w, "replayed %s: %d events in %s (%.0f events/s)\n", what, events, d.Round(time.Millisecond), rate)
}
