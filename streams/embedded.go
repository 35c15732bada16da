package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultSyncInterval is Cairn's default fsync interval for the embedded
// server: an acknowledged write survives a process crash at once (it is in
// the OS page cache) and a power loss can lose at most this interval.
// nats-server's own default is 2 minutes (DESIGN.md §8). Why 1 s (docs/operations.md,
// Durability): the write rate is the same at 10 ms, 100 ms and 1 s, but
// JetStream fsyncs every stream's index each interval, busy or idle, so
// shorter intervals cost streams/interval fsyncs per second: at 10,000
// projects 100 ms saturated the disk (a restart did not finish in 14
// minutes) where 1 s restarts in 12 s.
const DefaultSyncInterval = time.Second

// RequiredMaxPayload is the NATS max_payload Cairn's documented limits need:
// a site deployment's manifest event (5,000 files with paths of up to
// 1,024 bytes, about 5.6 MB) and a transaction's staged operations
// (MaxTransactionBytes) each travel in one message. nats-server's default
// is 1 MiB; the embedded server is configured with this, and a remote one
// is checked at start (CheckMaxPayload).
const RequiredMaxPayload = 8 << 20

// CheckMaxPayload refuses a NATS connection whose server accepts smaller
// messages than RequiredMaxPayload, naming the setting to change.
func CheckMaxPayload(nc *nats.Conn) error {
	if got := nc.MaxPayload(); got < RequiredMaxPayload {
		return fmt.Errorf("NATS server %s accepts messages of at most %d bytes; Cairn needs %d: set max_payload: 8MB in its configuration", nc.ConnectedServerName(), got, RequiredMaxPayload)
	}
	return nil
}

// EmbeddedConfig configures an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	// Dir is where JetStream stores its files. Required.
	Dir string
	// SyncAlways fsyncs every message before acknowledging it (slow, no
	// group commit); it overrides SyncInterval.
	SyncAlways bool
	// SyncInterval between fsyncs; zero means DefaultSyncInterval.
	SyncInterval time.Duration
	// MaxMemory and MaxStore cap JetStream memory and disk use in bytes;
	// zero means no limit beyond what the machine has.
	MaxMemory, MaxStore int64
	// ServerName names the server in logs and advisories; default "cairn".
	ServerName string
	// Logger receives the server's log lines; nil means slog.Default().
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections;
	// zero means 30s (recovering many streams from disk takes a while).
	ReadyTimeout time.Duration
}

// Embedded is a running in-process nats-server. It opens no TCP port:
// clients connect in-process via Connect.
type Embedded struct {
	srv *server.Server
	log *slog.Logger
}

// StartEmbedded starts nats-server with JetStream storing under cfg.Dir and
// returns once it accepts connections. ctx bounds only the start-up.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: embedded nats: empty data directory", ErrInvalid)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: create data directory: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "nats-server")
	name := cfg.ServerName
	if name == "" {
		name = "cairn"
	}
	opts := &server.Options{
		ServerName:         name,
		DontListen:         true, // in-process connections only; no port to secure
		JetStream:          true,
		StoreDir:           cfg.Dir,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		NoSigs:             true, // signals belong to the host process
		SyncInterval:       cfg.SyncInterval,
		SyncAlways:         cfg.SyncAlways,
		MaxPayload:         RequiredMaxPayload, // 8 MiB: nats-server's largest without a warning
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	// Zero means "use the server default" only when the limit was never set;
	// -1 is the server's spelling of "unlimited".
	if opts.JetStreamMaxMemory == 0 {
		opts.JetStreamMaxMemory = -1
	}
	if opts.JetStreamMaxStore == 0 {
		opts.JetStreamMaxStore = -1
	}

	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: configure: %w", err)
	}
	srv.SetLoggerV2(&slogAdapter{log: log}, false, false, false)
	srv.Start()

	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready after %s", timeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("embedded nats: JetStream failed to start (see server log)")
	}
	log.Info("embedded nats ready", "dir", cfg.Dir, "sync_always", cfg.SyncAlways, "sync_interval", opts.SyncInterval)
	return &Embedded{srv: srv, log: log}, nil
}

// Connect opens an in-process client connection to the server.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(e.srv), nats.Name("cairn")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: connect: %w", err)
	}
	return nc, nil
}

// Server exposes the underlying server for monitoring (Varz, Jsz).
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until its stores are closed, so the
// same directory can be opened again at once.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.log.Info("embedded nats stopped")
}

// slogAdapter routes nats-server's logger to slog. The server's notices are
// mostly start-up chatter, so they go to Debug; warnings and errors keep
// their level. Fatalf must not exit the process (only cmd may decide that).
type slogAdapter struct{ log *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any) {
	a.log.Error(fmt.Sprintf(format, v...), "fatal", true)
}
func (a *slogAdapter) Errorf(format string, v ...any) { a.log.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any) { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any) {}
