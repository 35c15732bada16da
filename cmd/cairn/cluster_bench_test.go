package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestClusterBench measures, on the loopback NATS cluster with two Cairn
// nodes, the write rate and latency of UpdateKey with R1 and with R3
// streams (64 concurrent writers, each on its own key, half on each node),
// and cross-node read-your-writes: a write on node 1, then GetKey on node 2
// with the write's Cairn-Min-Seq. It is a measurement, not a test, so it runs
// only when asked:
//
//	CAIRN_CLUSTER_BENCH=1 go test -run TestClusterBench -v ./cmd/cairn
func TestClusterBench(t *testing.T) {
	if os.Getenv("CAIRN_CLUSTER_BENCH") == "" {
		t.Skip("set CAIRN_CLUSTER_BENCH=1 to measure the cluster")
	}
	dur := 5 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CAIRN_CLUSTER_BENCH_DURATION")); err == nil && d > 0 {
		dur = d
	}
	for _, r := range []int{1, 3} {
		t.Run(fmt.Sprintf("R%d", r), func(t *testing.T) {
			h := newClusterHarness(t, r)
			h.startNode(t, 0, nil)
			h.startNode(t, 1, nil)
			project := fmt.Sprintf("bench-r%d", r)
			const writers = 64
			keyIDs, _ := clusterProject(t, h, project, writers)

			// Write rate and latency.
			var mu sync.Mutex
			var lat []time.Duration
			errs := 0
			var wg sync.WaitGroup
			start := time.Now()
			for w := range writers {
				c := h.node(w % 2)
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine []time.Duration
					bad := 0
					for i := 0; time.Since(start) < dur; i++ {
						name := fmt.Sprintf("b-%d-%d", w, i)
						t0 := time.Now()
						op, _ := as(context.Background(), testAdminKey)
						if _, err := c.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: project, KeyId: keyIDs[w], Name: &name}); err != nil {
							bad++
							continue
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					errs += bad
					mu.Unlock()
				}()
			}
			wg.Wait()
			took := time.Since(start)
			slices.Sort(lat)
			t.Logf("R%d UpdateKey, %d concurrent over 2 nodes: %d writes in %s = %.0f/s; p50 %s p99 %s max %s; %d errors",
				r, writers, len(lat), took.Round(time.Millisecond), float64(len(lat))/took.Seconds(),
				pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(time.Microsecond), errs)

			// Cross-node read-your-writes.
			n1, n2 := h.node(0), h.node(1)
			var read, total []time.Duration
			for i := range 500 {
				name := fmt.Sprintf("ryw-%d", i)
				t0 := time.Now()
				op, info := as(context.Background(), testAdminKey)
				if _, err := n1.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: project, KeyId: keyIDs[0], Name: &name}); err != nil {
					t.Fatal(err)
				}
				t1 := time.Now()
				op, _ = minSeq(context.Background(), seqOf(t, info))
				res, err := n2.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: project, KeyId: keyIDs[0]})
				if err != nil {
					t.Fatal(err)
				}
				if res.GetKey().GetName() != name {
					t.Fatalf("node 2 served %q after Cairn-Min-Seq of %q", res.GetKey().GetName(), name)
				}
				read = append(read, time.Since(t1))
				total = append(total, time.Since(t0))
			}
			slices.Sort(read)
			slices.Sort(total)
			t.Logf("R%d cross-node read-your-writes (write on node 1 acknowledged → GetKey with Cairn-Min-Seq on node 2 returns): p50 %s p99 %s; write+read p50 %s p99 %s",
				r, pct(read, 50), pct(read, 99), pct(total, 50), pct(total, 99))
		})
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)].Round(time.Microsecond)
}
