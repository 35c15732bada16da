package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newLogger logs at level in format: "json", "text", or "" for text on a
// terminal (a person reads it) and JSON elsewhere (a collector parses it).
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want json or text, got %q", format)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func serveCmd(e *cliEnv) *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server (embedded NATS and Badger under --data-dir by default)",
		Long: `Runs Cairn: the API, the console, sites and functions on one port. With no
flags it starts an embedded NATS JetStream and Badger under ./cairn_data and
generates the operator key there on the first start. Every flag has an
environment variable of the same meaning (flags win); docs/configuration.md
lists them all.`,
		Example: `  cairn serve
  cairn serve --http-addr :9000 --data-dir /var/lib/cairn --sync always
  CAIRN_NATS_URL=nats://n1:4222 CAIRN_NATS_CREDS=cairn.creds cairn serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), &cfg, cmd.Flags(), e.stdout, e.stderr)
		},
	}
	cfg.flags(cmd.Flags(), e.getenv)
	cmd.Flags().SortFlags = false
	return cmd
}

func serve(ctx context.Context, cfg *config, fs *pflag.FlagSet, stdout, stderr io.Writer) error {
	format := cfg.LogFormat
	if format == "" && isTerminal(stderr) {
		format = "text" // decided on the file itself: logOutput wraps it
	}
	out, closeLog := logOutput(stderr)
	defer closeLog()
	logger, err := newLogger(out, cfg.LogLevel, format)
	if err != nil {
		return err
	}
	// A bad or unsafe NATS setting, a data directory Cairn cannot write or
	// a port in use fails at once, with its cause, before anything is
	// generated or started.
	if _, _, err := cfg.natsOptions(); err != nil {
		return err
	}
	if err := checkDataDir(cfg.DataDir, cfg.NATSURL == ""); err != nil {
		return err
	}
	if err := cfg.checkMemory(); err != nil {
		return err
	}
	followMemoryLimit(ctx, cfg.MemoryLimit, cfg.GCPercent)
	if cfg.PprofAddr != "" {
		pln, err := servePprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer pln.Close()
	}
	// Shorter than a few minutes signs people out mid-task; longer than a
	// month keeps a lost laptop's session working.
	if cfg.OperatorSessionTTL < 5*time.Minute || cfg.OperatorSessionTTL > 720*time.Hour {
		return fmt.Errorf("--operator-session-ttl: want between 5m and 720h, got %s", cfg.OperatorSessionTTL)
	}
	if _, err := cfg.systemMail(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on --http-addr %s: %w", cfg.HTTPAddr, err)
	}
	adminKeySource := "--admin-key"
	if !fs.Changed("admin-key") {
		adminKeySource = "CAIRN_ADMIN_KEY"
	}
	if cfg.AdminKey == "" {
		adminKeySource = filepath.Join(cfg.DataDir, "admin.key")
		key, created, err := secretFile(adminKeySource, "cak_")
		if err != nil {
			ln.Close()
			return err
		}
		if created {
			fmt.Fprintf(stdout, "Generated the operator key (shown once; also in %s, mode 0600):\n\n  CAIRN_ADMIN_KEY=%s\n\n",
				filepath.Join(cfg.DataDir, "admin.key"), key)
		}
		cfg.AdminKey = key
	}
	if err := checkAdminKey(cfg.AdminKey, adminKeySource); err != nil {
		ln.Close()
		return err
	}
	start := time.Now()
	srv, err := startServerOn(ctx, cfg, logger, ln)
	if err != nil {
		return err
	}
	nats := "embedded"
	if cfg.NATSURL != "" {
		nats = redactedNATSURL(cfg.NATSURL)
	}
	logger.Info("cairn serving", "addr", srv.url, "data_dir", cfg.DataDir, "nats", nats,
		"sync", cfg.Sync, "startup", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "cairn listening on %s\n", displayAddr(srv.url))
	go reportCaughtUp(ctx, logger, srv.node, start)
	select {
	case err := <-srv.served:
		srv.node.close()
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining requests")
	srv.shutdown(logger)
	return nil
}

// checkDataDir makes sure Cairn can write the data directory and, where
// they exist, the stores in it (embedded NATS's too when it runs one), by
// creating and removing a file in each: otherwise the embedded NATS only
// reports "not ready" after its 30 s start timeout.
func checkDataDir(dir string, embedded bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	dirs := []string{dir, filepath.Join(dir, "badger")}
	if embedded {
		dirs = append(dirs, filepath.Join(dir, "nats"), filepath.Join(dir, "nats", "jetstream"))
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) && d != dir {
			continue // created on first start
		}
		f, err := os.CreateTemp(d, ".cairn-probe-*")
		if err != nil {
			return fmt.Errorf("data dir %s is not writable: %w", d, err)
		}
		f.Close()
		if err := os.Remove(f.Name()); err != nil {
			return fmt.Errorf("data dir %s: %w", d, err)
		}
	}
	return nil
}

// displayAddr shows a wildcard listener as localhost, which a newcomer can
// paste into curl.
func displayAddr(url string) string {
	if port, ok := strings.CutPrefix(url, "http://[::]:"); ok {
		return "http://localhost:" + port
	}
	return url
}

// reportCaughtUp logs once when the read models have caught up with the
// streams, the moment /readyz turns 200.
func reportCaughtUp(ctx context.Context, logger *slog.Logger, n *node, start time.Time) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !n.reads.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	logger.Info("read models caught up: ready", "after", time.Since(start).Round(time.Millisecond))
}
