//go:build unix

package eventlog_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain/team"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteAllCreate: creates through the whole write path (embedded
// JetStream, projector, Badger), 64 concurrent, with the aggregate read
// first (as before Change.New) and taken as new, in alternating rounds of
// 500, so both meet the same machine; reports each one's creates/s and
// the process's CPU per create (server, projector and callers together).
func BenchmarkWriteAllCreate(b *testing.B) {
	n := newNode(b)
	n.newProject(b, "bench")
	ctx := context.Background()
	var next atomic.Int64
	round := func(isNew bool, count int) (time.Duration, time.Duration) {
		var wg sync.WaitGroup
		var left atomic.Int64
		left.Store(int64(count))
		cpu0, t0 := cpuTime(), time.Now()
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					id := fmt.Sprintf("t%d", next.Add(1))
					_, err := n.log.WriteAll(ctx, eventlog.Meta{}, []eventlog.Change{{
						Agg: eventlog.TeamAggregate("bench", id), New: isNew,
						Decide: func(last *eventsv1.Envelope, _ uint64) ([]*eventsv1.Envelope, error) {
							return team.Decide(team.Evolve(nil, last), team.Create{ID: id, ProjectID: "bench", Name: id, Now: n.log.Now()})
						},
					}})
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(t0), cpuTime() - cpu0
	}
	const per = 500
	var wall, cpu [2]time.Duration
	var ops [2]int
	for i := 0; i < max(b.N, 1); i++ {
		for m := range 2 {
			w, c := round(m == 1, per)
			wall[m], cpu[m], ops[m] = wall[m]+w, cpu[m]+c, ops[m]+per
		}
	}
	for m, name := range []string{"read-first", "new"} {
		b.ReportMetric(float64(ops[m])/wall[m].Seconds(), name+"-creates/s")
		b.ReportMetric(float64(cpu[m].Microseconds())/float64(ops[m]), name+"-cpu-µs/op")
	}
}
