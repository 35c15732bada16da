package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/streams"
)

// BenchmarkPresenceJoinSeen: from a Join on one connection until another
// connection watching the channel is delivered the join — on the same
// node, and on another node (its own NATS connection to the shared
// server). Each op is a join then a leave, both waited for; ns/op is the
// join's latency alone (join-ns/op). The baseline is the same round trip
// of a bare KV put to a bare KV watcher on the same bucket, in the same run.
func BenchmarkPresenceJoinSeen(b *testing.B) {
	emb := startPresenceServer(b)
	a := startPresenceNode(b, emb, 30*time.Second, PresenceLimits{})
	other := startPresenceNode(b, emb, 30*time.Second, PresenceLimits{})
	const ch = "teams.t"
	for _, bc := range []struct {
		name    string
		watcher *presenceNode
	}{{"one node", a}, {"two nodes", other}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			seen := make(chan PresenceDelivery, 16)
			w := bc.watcher.p.Conn("p", "w", func(d PresenceDelivery) { seen <- d })
			defer w.Close()
			if err := w.Watch(ctx, ch); err != nil {
				b.Fatal(err)
			}
			<-seen // the sync
			joiner := a.p.Conn("p", "u", func(PresenceDelivery) {})
			defer joiner.Close()
			payload := json.RawMessage(`{"status":"online"}`)
			var joins time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if err := joiner.Join(ctx, ch, payload); err != nil {
					b.Fatal(err)
				}
				for d := <-seen; d.Action != PresenceJoin; d = <-seen {
				}
				joins += time.Since(start)
				if err := joiner.Leave(ctx, ch); err != nil {
					b.Fatal(err)
				}
				for d := <-seen; d.Action != PresenceLeave; d = <-seen {
				}
			}
			b.ReportMetric(float64(joins.Nanoseconds())/float64(b.N), "join-ns/op")
		})
	}
	b.Run("baseline bare KV put to watcher", func(b *testing.B) {
		ctx := context.Background()
		js, err := jetstream.New(other.nc)
		if err != nil {
			b.Fatal(err)
		}
		kv, err := js.KeyValue(ctx, streams.PresenceBucket)
		if err != nil {
			b.Fatal(err)
		}
		w, err := kv.Watch(ctx, "bare.x.*", jetstream.UpdatesOnly())
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = w.Stop() }()
		pub, err := jetstream.New(a.nc)
		if err != nil {
			b.Fatal(err)
		}
		pkv, err := pub.KeyValue(ctx, streams.PresenceBucket)
		if err != nil {
			b.Fatal(err)
		}
		var puts time.Duration
		for b.Loop() {
			start := time.Now()
			if _, err := pkv.Put(ctx, "bare.x.m", []byte(`{"status":"online"}`)); err != nil {
				b.Fatal(err)
			}
			<-w.Updates()
			puts += time.Since(start)
			if err := pkv.Purge(ctx, "bare.x.m"); err != nil {
				b.Fatal(err)
			}
			<-w.Updates()
		}
		b.ReportMetric(float64(puts.Nanoseconds())/float64(b.N), "join-ns/op")
	})
}

// BenchmarkPresenceMemberCost: what 1,000 members of one channel cost —
// the bucket's bytes per member (NATS, in memory) and this process's heap
// per member (two nodes' trackers and the embedded server's memory store,
// all in this process) — with a 64-byte payload.
func BenchmarkPresenceMemberCost(b *testing.B) {
	const n = 1000
	for b.Loop() {
		func() {
			emb := startPresenceServer(b)
			a := startPresenceNode(b, emb, 30*time.Second, PresenceLimits{MaxPerConn: 1})
			other := startPresenceNode(b, emb, 30*time.Second, PresenceLimits{})
			ctx := context.Background()
			const ch = "databases.db.collections.c.documents"
			seen := make(chan PresenceDelivery, n+1)
			w := other.p.Conn("p", "w", func(d PresenceDelivery) { seen <- d })
			if err := w.Watch(ctx, ch); err != nil {
				b.Fatal(err)
			}
			<-seen
			payload := json.RawMessage(fmt.Sprintf(`{"status":"online","cursor":%q}`, "0123456789012345678901234567890123456"))
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			conns := make([]*PresenceConn, n)
			for i := range conns {
				conns[i] = a.p.Conn("p", fmt.Sprint("user", i), func(PresenceDelivery) {})
				if err := conns[i].Join(ctx, ch, payload); err != nil {
					b.Fatal(err)
				}
			}
			for range n {
				<-seen
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			js, _ := jetstream.New(a.nc)
			kv, err := js.KeyValue(ctx, streams.PresenceBucket)
			if err != nil {
				b.Fatal(err)
			}
			st, err := kv.Status(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Bytes())/n, "kv-bytes/member")
			b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/n, "heap-bytes/member")
			b.ReportMetric(float64(len(payload)), "payload-bytes")
			for _, c := range conns {
				c.Close()
			}
			w.Close()
		}()
	}
}
