package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkRealtime measures realtime on one in-process node, over Connect
// streams (HTTP/2, many streams per connection): the latency from a
// CreateDocument call's start to each subscriber's receipt, at 1,000 and
// 10,000 subscribers of one collection under a steady write load, the
// deliveries per second, and the catch-up rate of a client resuming after
// 10,000 missed events. One run per invocation: -benchtime=1x.
//
//	go test ./cmd/cairn -run '^$' -bench Realtime -benchtime=1x
func BenchmarkRealtime(b *testing.B) {
	for _, tc := range []struct {
		subs int
		rate int // documents per second
	}{{1, 100}, {1000, 10}, {1000, 20}, {1000, 100}, {10000, 2}, {10000, 20}} {
		b.Run(fmt.Sprintf("subs=%d/rate=%d", tc.subs, tc.rate), func(b *testing.B) {
			benchRealtimeFanout(b, tc.subs, tc.rate, 5*time.Second)
		})
	}
	b.Run("resume=10000", benchRealtimeResume)
}

func benchRealtimeFanout(b *testing.B, subs, rate int, dur time.Duration) {
	in := startInstance(b, b.TempDir(), "--log-level", "error")
	const p = "bench"
	key := newProjectWithKey(b, in, p, rtScopes...)
	k, _ := as(context.Background(), key)
	benchCollection(b, in, k, p)
	writes := rate * int(dur/time.Second)

	// Open the subscribers, 64 at a time; each records its latencies.
	lat := make([][]time.Duration, subs)
	var got, ended atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := make(chan struct{}, subs)
	opened := time.Now()
	sem := make(chan struct{}, 64)
	for i := range subs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, _ := as(ctx, key)
			st, err := in.realtime().Subscribe(sctx, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"databases.main.collections.posts.documents"}})
			if err != nil {
				<-sem
				b.Error(err)
				return
			}
			defer st.Close()
			l := make([]time.Duration, 0, writes)
			defer func() { lat[i] = l }()
			for {
				m, err := st.Receive()
				if err != nil {
					if ctx.Err() == nil {
						ended.Add(1)
					}
					return
				}
				if m.GetState().GetStatus() == cairnv1.ConnectionStatus_CONNECTION_STATUS_LIVE {
					<-sem
					live <- struct{}{}
				}
				if e := m.GetEvent(); e != nil {
					sent, _ := strconv.ParseInt(e.GetPayload().GetFields()["data"].GetStructValue().GetFields()["title"].GetStringValue(), 10, 64)
					l = append(l, time.Duration(time.Now().UnixNano()-sent))
					if got.Add(1) == int64(subs*writes) {
						close(done)
					}
				}
			}
		}()
	}
	for range subs {
		select {
		case <-live:
		case <-time.After(2 * time.Minute):
			b.Fatalf("subscribers not live after 2 minutes")
		}
	}
	b.Logf("%d subscribers live in %v", subs, time.Since(opened))

	// The steady load: one CreateDocument every 1/rate s, its start time
	// in the document.
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	var wwg sync.WaitGroup
	for i := range writes {
		<-tick.C
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			wk, _ := as(context.Background(), key)
			sent := strconv.FormatInt(time.Now().UnixNano(), 10)
			if _, err := in.databases().CreateDocument(wk, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
				Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", i), Data: data(b, map[string]any{"title": sent})}}); err != nil {
				b.Error(err)
			}
		}()
	}
	tick.Stop()
	wwg.Wait()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Logf("only %d of %d deliveries within a minute (%d subscribers cut off)", got.Load(), subs*writes, ended.Load())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	q := func(f float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(f*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(ended.Load()), "cut-off")
}

func benchCollection(b testing.TB, in *instance, k context.Context, p string) {
	b.Helper()
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "main"}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Name: "posts",
		Permissions: []string{`read("any")`}}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Attribute: &cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64, Required: true}}); err != nil {
		b.Fatal(err)
	}
}

// benchRealtimeResume: 10,000 events written while the client is away; it
// resumes and the catch-up rate is measured to its last event.
func benchRealtimeResume(b *testing.B) {
	in := startInstance(b, b.TempDir(), "--log-level", "error")
	const p = "bench"
	key := newProjectWithKey(b, in, p, rtScopes...)
	k, _ := as(context.Background(), key)
	benchCollection(b, in, k, p)
	first := in.subscribe(b, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents"}})
	var after uint64
	for {
		m := first.next(b, 5*time.Second)
		if m.GetState().GetStatus() == cairnv1.ConnectionStatus_CONNECTION_STATUS_LIVE {
			after = m.GetState().GetSequence()
			break
		}
	}
	first.cancel()
	const missed = 10000
	for n := 0; n < missed; n += 100 {
		docs := make([]*cairnv1.DocumentInput, 100)
		for i := range docs {
			docs[i] = &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", n+i), Data: data(b, map[string]any{"title": "missed"})}
		}
		if _, err := in.databases().CreateDocuments(k, &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Documents: docs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	again := in.subscribe(b, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents"}, AfterSequence: after})
	again.events(b, missed)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(missed/elapsed.Seconds(), "catch-up-events/s")
	// And over a WebSocket.
	start = time.Now()
	ws := in.socket(b, key, fmt.Sprintf("project=%s&channels=documents&after=%d", p, after))
	ws.events(b, missed)
	b.ReportMetric(missed/time.Since(start).Seconds(), "ws-catch-up-events/s")
}
