package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cairn-dev/cairn/api"
	"github.com/cairn-dev/cairn/realtime"
	"github.com/cairn-dev/cairn/sites"
	usagemeter "github.com/cairn-dev/cairn/usage"
)

// server is a running node with its API on a listener: what serve runs,
// and what bench starts in-process to measure.
type server struct {
	node     *node
	http     *http.Server
	url      string
	stopping chan struct{}
	hijacked *api.Hijacked
	served   chan error
	// sweeper deletes stored bytes that deletions left; stopSweep ends it.
	stopSweep context.CancelFunc
	swept     chan struct{}
	// metered closes once the usage meter's last flush is done (it stops
	// with the sweeper).
	metered  chan struct{}
	runtimes *runtimes
}

// startServer opens the node, starts its projectors and serves the API on
// cfg.HTTPAddr. cfg.AdminKey must be set.
func startServer(ctx context.Context, cfg *config, logger *slog.Logger) (s *server, err error) {
	return startServerOn(ctx, cfg, logger, nil)
}

// startServerOn is startServer on ln (bound by the caller, which then
// knows the port is free before doing anything else); nil listens on
// cfg.HTTPAddr first. ln is closed if the start fails.
func startServerOn(ctx context.Context, cfg *config, logger *slog.Logger, ln net.Listener) (s *server, err error) {
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	mk, err := masterKey(cfg)
	if err != nil {
		return nil, err
	}
	n, err := openNode(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if err := n.reads.Start(ctx); err != nil {
		return nil, fmt.Errorf("start projections: %w", err)
	}
	s = &server{node: n, stopping: make(chan struct{}), hijacked: &api.Hijacked{}, served: make(chan error, 1)}
	s.url = "http://" + ln.Addr().String()
	proxies, err := cfg.trustedProxies()
	if err != nil {
		return nil, err
	}
	rts, err := openRuntimes(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.runtimes = rts
	bucket, err := n.store.Usage(ctx)
	if err != nil {
		return nil, err
	}
	meter, err := usagemeter.New(bucket, usagemeter.Options{FlushEvery: cfg.UsageFlushEvery, Logger: logger})
	if err != nil {
		return nil, err
	}
	sysMail, err := cfg.systemMail()
	if err != nil {
		return nil, err
	}
	handler, err := api.New(api.Config{SystemMail: sysMail, PublicURL: cmp.Or(cfg.PublicURL, displayAddr(s.url)), Stopping: s.stopping, Hijacked: s.hijacked, Log: n.log, Reads: n.reads, Store: n.store,
		AdminKey: cfg.AdminKey, MasterKey: mk, MaxRequestBytes: cfg.MaxRequestBytes, RequestLogLevel: cfg.requestLogLevel(), Tracer: n.tracerProvider(),
		Connected: n.nc.IsConnected, Logger: logger, Metrics: n.metrics, Blobs: sites.NewObjectBlobs(n.store),
		SitesDomain: cfg.SitesDomain, DNSResolver: cfg.DNSResolver, TrustedProxies: proxies, NoAuthRateLimits: cfg.NoAuthRateLimits, NoFastUnary: cfg.NoFastUnary,
		ProjectRate: cfg.ProjectRate, ProjectBurst: cfg.ProjectBurst, ProjectConcurrency: cfg.ProjectConcurrency,
		Databases: api.DatabaseLimits{MaxQueryLimit: cfg.MaxQueryLimit, MaxQueryScan: cfg.MaxQueryScan, MaxBatchOperations: min(cfg.MaxBatchOperations, 900), MaxTransactionBytes: cfg.MaxTransactionBytes, MaxProjectTransactionBytes: cfg.MaxProjectTransactionBytes},
		Storage:   api.StorageLimits{MaxFileSize: cfg.MaxFileSize, DefaultQuota: cfg.StorageQuota, UploadExpiry: cfg.UploadExpiry},
		Realtime: api.RealtimeLimits{Buffer: cfg.RealtimeBuffer, MaxPerProject: cfg.RealtimeMaxConnections,
			DeliveryRate: cfg.RealtimeDeliveryRate, DeliveryBurst: cfg.RealtimeDeliveryBurst, FanoutWorkers: cfg.RealtimeFanoutWorkers, FanoutShare: cfg.RealtimeFanoutShare},
		Presence: api.PresenceOptions{TTL: cfg.PresenceTTL, PresenceLimits: realtime.PresenceLimits{MaxMembers: cfg.PresenceMaxMembers}},
		Functions: api.FunctionLimits{MaxTimeout: cfg.MaxFunctionTimeout, MaxMemoryBytes: cfg.MaxFunctionMemory, MaxConcurrent: cfg.MaxFunctionConcurrency,
			Retention: cfg.ExecutionRetention, RetentionSweep: cfg.ExecutionRetentionSweep},
		Webhooks: api.WebhookOptions{Allow: splitList(cfg.WebhookAllow), MaxBackoff: cfg.WebhookMaxBackoff, PauseAfter: cfg.WebhookPauseAfter},
		Runtimes: rts, MaxImportBytes: cfg.MaxImportBytes, Meter: meter, OperatorSessionTTL: cfg.OperatorSessionTTL})
	if err != nil {
		return nil, err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// h2c: gRPC clients speak HTTP/2 without TLS on the same port.
	protocols.SetUnencryptedHTTP2(true)
	s.http = &http.Server{Handler: bodyDeadlines(handler, cfg.BodyReadTimeout, cfg.MinBodyRate), Protocols: protocols, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	s.stopSweep, s.swept = stopSweep, make(chan struct{})
	sweeper := &api.StorageSweeper{Log: n.log, Reads: n.reads, Store: n.store, Logger: logger, Every: cfg.SweepEvery,
		Sites: &api.SiteSweeper{Reads: n.reads, Blobs: sites.NewObjectBlobs(n.store), Logger: logger, Grace: cfg.SiteBlobGrace, Store: n.store}}
	go func() {
		defer close(s.swept)
		sweeper.Run(sweepCtx)
	}()
	s.metered = make(chan struct{})
	go func() {
		defer close(s.metered)
		meter.Run(sweepCtx)
	}()
	ln = limitConnsPerAddr(ln, cfg.MaxConnsPerAddr, proxies)
	go func() { s.served <- s.http.Serve(ln) }()
	return s, nil
}

// shutdownBound is how long shutdown may take, whatever NATS or clients do.
const shutdownBound = 30 * time.Second

// closeBound is the part of shutdownBound kept for stopping projectors,
// Badger and NATS after the drain.
const closeBound = 5 * time.Second

// shutdown drains in-flight requests and WebSockets, ends live streams,
// then stops projectors, Badger and NATS, all within shutdownBound: what
// is still running then (a request or a close stuck on an unreachable
// NATS) is abandoned, since the process exits.
func (s *server) shutdown(logger *slog.Logger) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBound-closeBound)
	defer cancel()
	close(s.stopping) // ends live streams; unary requests finish normally
	if err := s.http.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("drain incomplete", "err", err)
	}
	// Shutdown does not wait for WebSockets: they send their close frame
	// (1001 "server stopping") and wait for the client's answer.
	if err := s.hijacked.Wait(ctx); err != nil {
		logger.Warn("drain incomplete", "err", err)
	}
	// Whatever still runs is cut off: its requests' contexts end.
	_ = s.http.Close()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		s.stopSweep()
		<-s.swept
		<-s.metered
		s.runtimes.close(context.Background())
		s.node.close()
	}()
	select {
	case <-closed:
	case <-time.After(max(shutdownBound-time.Since(start), closeBound)):
		logger.Warn("shutdown incomplete: exiting without closing the rest", "after", time.Since(start).Round(time.Millisecond))
	}
}
