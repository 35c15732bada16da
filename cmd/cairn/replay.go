package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// replay drops read models and rebuilds them from the streams. It needs the
// server stopped: Badger's directory lock refuses a second opener.
func replayCmd(e *cliEnv) *cobra.Command {
	var cfg config
	var project string
	var all bool
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild read models from the event streams (server stopped)",
		Long: `Drops a project's read models (or every project's and the registry's) and
rebuilds them from the streams, reporting events/s. It opens the data
directory itself, so the server must be stopped. It takes every flag of
'cairn serve' so it finds the same data and NATS.`,
		Example: `  cairn replay --project acme
  cairn replay --all --data-dir /var/lib/cairn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return replay(cmd.Context(), &cfg, project, all, e.stdout, e.stderr)
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "project whose read models to rebuild")
	cmd.Flags().BoolVar(&all, "all", false, "rebuild the system registry and every project")
	cfg.flags(cmd.Flags(), e.getenv)
	return cmd
}

func replay(ctx context.Context, cfg *config, project string, all bool, stdout, stderr io.Writer) error {
	if (project == "") == !all {
		return errors.New("replay: give exactly one of --project ID or --all")
	}
	logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	n, err := openNode(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer n.close()
	if all {
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
	if _, err := n.reads.Project(project); err != nil {
		return fmt.Errorf("replay: project %q: %w", project, err)
	}
	start := time.Now()
	events, err := n.reads.Rebuild(ctx, project)
	if err != nil {
		return fmt.Errorf("replay project %s: %w", project, err)
	}
	report(stdout, "project "+project, events, time.Since(start))
	return nil
}

func report(w io.Writer, what string, events int, d time.Duration) {
	rate := 0.0
	if d > 0 {
		rate = float64(events) / d.Seconds()
	}
	fmt.Fprintf(w, "replayed %s: %d events in %s (%.0f events/s)\n", what, events, d.Round(time.Millisecond), rate)
}
