package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/api"
	"github.com/cairn-dev/cairn/projections"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// node is one Cairn process's storage: NATS (embedded or remote), the
// stream store, Badger read models and the write path.
type node struct {
	embedded *streams.Embedded
	nc       *nats.Conn
	store    *streams.Store
	db       *badger.DB
	reads    *projections.Projections
	log      *eventlog.Log
	metrics  *api.Metrics
	// tracer is nil when --otlp-endpoint is empty; close flushes it.
	tracer *sdktrace.TracerProvider
}

// openNode connects to (or starts) NATS and opens Badger. Projectors are
// not started: serve starts them, replay rebuilds instead.
func openNode(ctx context.Context, cfg *config, logger *slog.Logger) (n *node, err error) {
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("--replicas: want 0 (auto) to 5, got %d", cfg.Replicas)
	}
	natsOpts, insecure, err := cfg.natsOptions()
	if err != nil {
		return nil, err
	}
	if insecure {
		logger.Warn("connecting to a non-loopback NATS without credentials (--nats-insecure): anyone who reaches it can read and write every project's events",
			"nats", redactedNATSURL(cfg.NATSURL))
	}
	n = &node{}
	// "return nil, err" clears n before this runs: close the node built so far.
	partial := n
	defer func() {
		if err != nil {
			partial.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.NATSURL == "" {
		always, interval, serr := cfg.syncMode()
		if serr != nil {
			return nil, serr
		}
		n.embedded, err = streams.StartEmbedded(ctx, streams.EmbeddedConfig{
			Dir: filepath.Join(cfg.DataDir, "nats"), SyncAlways: always, SyncInterval: interval,
			Logger: logger,
		})
		if err != nil {
			return nil, err
		}
		n.nc, err = n.embedded.Connect(nats.Name("cairn"))
	} else {
		opts := append([]nats.Option{nats.Name("cairn"), nats.MaxReconnects(-1),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { logger.Warn("NATS disconnected", "err", err) }),
			// Permission violations come back asynchronously: log them, they
			// mean the server's permissions for Cairn's user are too narrow.
			nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
				if sub != nil {
					logger.Error("NATS error", "subject", sub.Subject, "err", err)
					return
				}
				logger.Error("NATS error", "err", err)
			}),
		}, natsOpts...)
		n.nc, err = nats.Connect(cfg.NATSURL, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if err := streams.CheckMaxPayload(n.nc); err != nil {
		return nil, err
	}
	n.store, err = streams.Open(ctx, n.nc, streams.Options{Logger: logger, Replicas: replicas(cfg, n.nc)})
	if err != nil {
		return nil, err
	}
	// Read models are rebuilt from the streams, so Badger need not fsync.
	opts := badger.DefaultOptions(filepath.Join(cfg.DataDir, "badger")).
		WithSyncWrites(false).WithLogger(badgerLogger{logger.With("component", "badger")})
	opts = cfg.badgerOptions(opts)
	n.db, err = badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open read models (is another cairn using %s?): %w", cfg.DataDir, err)
	}
	if n.tracer, err = newTracerProvider(cfg.OTLPEndpoint); err != nil {
		return nil, err
	}
	n.reads = projections.New(n.db, n.store, projections.Options{Logger: logger, Tracer: n.tracerProvider(),
		WebhookDeliveryRecords: cfg.WebhookDeliveryRecords, RankingCacheBytes: cmp.Or(cfg.ListCache, -1),
		DocumentCacheBytes: cmp.Or(cfg.DocumentCache, -1)})
	n.metrics = api.NewMetrics(api.MetricsSources{
		NATSConnected:  n.nc.IsConnected,
		NATSReconnects: func() uint64 { return n.nc.Stats().Reconnects },
		Lag: func() []api.StreamLag {
			lag := n.reads.Lag()
			out := make([]api.StreamLag, 0, len(lag))
			for stream, l := range lag {
				out = append(out, api.StreamLag{Stream: stream, Applied: l.Applied, Last: l.Last})
			}
			return out
		},
		ProjectLabels: cfg.MetricsProjectLabels,
	})
	// Notifications of new events are lost while disconnected: look at every
	// stream again once back.
	n.nc.SetReconnectHandler(func(c *nats.Conn) {
		logger.Info("NATS reconnected", "url", c.ConnectedUrl())
		n.reads.RequestSweep()
	})
	n.log = eventlog.New(n.store, n.reads, eventlog.Options{Logger: logger, OnAppend: n.metrics.ObserveAppend, Tracer: n.tracerProvider()})
	return n, nil
}

// replicas resolves --replicas 0 (auto): R3 where the cluster can hold it.
func replicas(cfg *config, nc *nats.Conn) int {
	if cfg.Replicas > 0 {
		return cfg.Replicas
	}
	if cfg.NATSURL != "" && nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

// close stops everything in dependency order; safe on a partial node.
func (n *node) close() {
	if n.reads != nil {
		_ = n.reads.Close()
	}
	if n.db != nil {
		_ = n.db.Close()
	}
	if n.nc != nil {
		_ = n.nc.Drain()
	}
	if n.embedded != nil {
		n.embedded.Shutdown()
	}
	if n.tracer != nil {
		// Flushes the spans still batched (bounded: the collector may be gone).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.tracer.Shutdown(ctx)
		cancel()
	}
}

// tracerProvider is the node's tracer provider, nil (an interface without
// a value) when not tracing, so the parts below skip their spans.
func (n *node) tracerProvider() trace.TracerProvider {
	if n.tracer == nil {
		return nil
	}
	return n.tracer
}

// masterKey returns the instance master key from config or the data dir.
func masterKey(cfg *config) ([]byte, error) {
	s := cfg.MasterKey
	if s == "" {
		var err error
		if s, _, err = secretFile(filepath.Join(cfg.DataDir, "master.key"), ""); err != nil {
			return nil, err
		}
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("master key must be 64 hex characters")
	}
	return b, nil
}

// badgerLogger sends Badger's logs to slog, demoting its chatty info lines.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(fmt.Sprintf(f, a...)) }
