package usage_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/usage"
)

// clock is a settable time for the meters.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// TestMetersAddUp: two nodes (two meters on one bucket, as two Cairn
// processes on one NATS) publish their own keys; a reader sums them per
// day, a realtime connection across midnight is split between the days,
// and a repeated flush changes nothing.
func TestMetersAddUp(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	emb, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	store, err := streams.Open(ctx, nc, streams.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)}
	a, err := usage.New(kv, usage.Options{Now: clk.now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := usage.New(kv, usage.Options{Now: clk.now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	a.Download("p1", 1000)
	b.Download("p1", 234)
	b.Site("p1", 50)
	a.Delivered("p1")
	a.Download("p2", 7) // another project: not in p1's figures
	conn := a.Open("p1")
	clk.set(clk.now().Add(30 * time.Second))
	if err := a.Flush(ctx); err != nil { // accrues the open connection's first 30 s
		t.Fatal(err)
	}
	clk.set(clk.now().Add(90 * time.Second)) // 00:01:00 on March 2
	conn.Close()
	b.Delivered("p1")
	b.Delivered("p1")
	for _, m := range []*usage.Meter{a, b, a} {
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := usage.Read(ctx, kv, "p1", "2026-03-01", "2026-03-02")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]usage.Counts{
		"2026-03-01": {DownloadBytes: 1234, SiteBytes: 50, RealtimeDeliveries: 1, RealtimeConnectionMs: 60_000},
		"2026-03-02": {RealtimeDeliveries: 2, RealtimeConnectionMs: 60_000},
	}
	if len(got) != len(want) || got["2026-03-01"] != want["2026-03-01"] || got["2026-03-02"] != want["2026-03-02"] {
		t.Fatalf("summed counts:\n got %+v\nwant %+v", got, want)
	}
	if only, err := usage.Read(ctx, kv, "p1", "2026-03-02", "2026-03-02"); err != nil || len(only) != 1 {
		t.Fatalf("one day: %+v %v", only, err)
	}
	if err := store.PurgeUsage(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if gone, err := usage.Read(ctx, kv, "p1", "2026-03-01", "2026-03-02"); err != nil || len(gone) != 0 {
		t.Fatalf("after purge: %+v %v", gone, err)
	}
	if p2, err := usage.Read(ctx, kv, "p2", "2026-03-01", "2026-03-01"); err != nil || p2["2026-03-01"].DownloadBytes != 7 {
		t.Fatalf("p2 after p1's purge: %+v %v", p2, err)
	}
}
