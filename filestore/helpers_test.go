package filestore

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/streams"
)

// newObjectStore starts a real embedded JetStream in a temporary directory
// and returns a project's object store on it, as the server provisions it.
func newObjectStore(tb testing.TB) jetstream.ObjectStore {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: tb.TempDir(), Logger: quiet})
	if err != nil {
		tb.Fatalf("start embedded: %v", err)
	}
	tb.Cleanup(emb.Shutdown)
	nc, err := emb.Connect()
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	st, err := streams.Open(ctx, nc, streams.Options{Logger: quiet})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	obs, err := st.ObjectStore(ctx, "p1")
	if err != nil {
		tb.Fatalf("object store: %v", err)
	}
	return obs
}

// objectNames lists the live objects whose name starts with prefix.
func objectNames(tb testing.TB, obs jetstream.ObjectStore, prefix string) []string {
	tb.Helper()
	infos, err := obs.List(context.Background())
	if err != nil && err != jetstream.ErrNoObjectsFound {
		tb.Fatalf("list: %v", err)
	}
	var names []string
	for _, in := range infos {
		if len(in.Name) >= len(prefix) && in.Name[:len(prefix)] == prefix {
			names = append(names, in.Name)
		}
	}
	return names
}
