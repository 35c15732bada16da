package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/api"
)

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	cfg.flags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	if cfg.AdminKey == "" {
		key, created, err := secretFile(filepath.Join(cfg.DataDir, "admin.key"), "cak_")
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(stdout, "Generated the operator key (shown once; also in %s, mode 0600):\n\n  CAIRN_ADMIN_KEY=%s\n\n",
				filepath.Join(cfg.DataDir, "admin.key"), key)
		}
		cfg.AdminKey = key
	}
	mk, err := masterKey(&cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := openNode(ctx, &cfg, logger)
	if err != nil {
		return err
	}
	defer n.close()
	if err := n.reads.Start(ctx); err != nil {
		return err
	}
	stopping := make(chan struct{})
	handler, err := api.New(api.Config{Stopping: stopping, Log: n.log, Reads: n.reads, Store: n.store, AdminKey: cfg.AdminKey,
		MasterKey: mk, MaxRequestBytes: cfg.MaxRequestBytes, Connected: n.nc.IsConnected, Logger: logger})
	if err != nil {
		return err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// h2c: gRPC clients speak HTTP/2 without TLS on the same port.
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	nats := "embedded"
	if cfg.NATSURL != "" {
		nats = cfg.NATSURL
	}
	logger.Info("cairn serving", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "nats", nats,
		"sync", cfg.Sync, "startup", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "cairn listening on %s\n", displayAddr(ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go reportCaughtUp(ctx, logger, n, start)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	close(stopping) // ends live streams; unary requests finish normally
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("drain incomplete", "err", err)
	}
	return nil
}

func displayAddr(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "[::]:") {
		return "http://localhost:" + strings.TrimPrefix(s, "[::]:")
	}
	return "http://" + s
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
