package projections

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairn-dev/cairn/streams"
)

// BenchmarkApplyLiveMemory: the throughput cost of cmd/cairn's bounded
// Badger settings. The same document stream (as the write path appends
// it) is applied by a live projector (the create path's, not a rebuild's)
// into a fresh Badger with Badger's own defaults, then with Cairn's
// (cmd/cairn/memory.go: 16 MiB × 3 memtables, 32 MiB block cache, 16 MiB
// index cache, 2 compactors). Run both in one go and compare the ratio.
func BenchmarkApplyLiveMemory(b *testing.B) {
	events := replayEvents(b)
	e := newEnv(b)
	e.createProject("bench") // a live projector follows registered projects only
	docStream(b, e, "bench", events+1)
	stream := streams.ProjectStream("bench")
	for _, bc := range []struct {
		name string
		opts func(badger.Options) badger.Options
	}{
		{"badger-defaults", func(o badger.Options) badger.Options { return o }},
		{"cairn-defaults", serveBadgerOptions},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var took, cpu time.Duration
			i := 0
			for b.Loop() {
				i++
				dir := filepath.Join(e.dir, fmt.Sprintf("%s-%d", bc.name, i))
				db, err := badger.Open(bc.opts(badger.DefaultOptions(dir).WithSyncWrites(false).WithLogger(nil)))
				if err != nil {
					b.Fatal(err)
				}
				p := New(db, e.store, Options{Logger: e.log})
				p.bulkCatchUp = math.MaxUint64 // applied as live writes are
				start, c := time.Now(), processCPU()
				if err := p.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				if err := p.WaitApplied(ctx, stream, uint64(events+1)); err != nil {
					b.Fatal(err)
				}
				cancel()
				took += time.Since(start)
				cpu += processCPU() - c
				p.Close()
				db.Close()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
			}
			total := float64((events + 1) * b.N)
			b.ReportMetric(total/took.Seconds(), "events/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/total, "cpu-µs/event")
			}
		})
	}
}
