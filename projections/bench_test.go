package projections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

const benchEvents = 50_000

// benchStream fills PROJECT_bench with benchEvents key updates over 1,000
// keys, published asynchronously (the write path's speed is not measured).
func benchStream(b *testing.B) *env {
	b.Helper()
	e := newEnv(b)
	ctx := context.Background()
	if err := e.store.EnsureProjectStream(ctx, "bench", streams.Limits{}); err != nil {
		b.Fatal(err)
	}
	js := e.store.JetStream()
	t0 := time.Unix(1_700_000_000, 0)
	for i := range benchEvents {
		k := key("bench", fmt.Sprintf("key%04d", i%1000), fmt.Sprintf("name %d", i))
		k.UpdatedAt = timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond))
		ev := &eventsv1.Envelope{Id: fmt.Sprintf("01BENCH%019d", i), OccurredAt: k.UpdatedAt,
			Actor:   &eventsv1.Actor{Kind: eventsv1.Actor_KIND_API_KEY, Id: "admin", ProjectId: "bench"},
			Payload: &eventsv1.Envelope_KeyUpdated{KeyUpdated: &eventsv1.KeyUpdated{Key: k}}}
		data, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		m := nats.NewMsg(streams.ProjectSubject("bench", "keys", k.Id, "update"))
		m.Data = data
		m.Header.Set(streams.HeaderMsgID, ev.Id)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("async publish did not complete")
	}
	info, err := e.store.StreamInfo(ctx, streams.ProjectStream("bench"))
	if err != nil || info.LastSeq != benchEvents {
		b.Fatalf("stream has %d messages (%v), want %d", info.LastSeq, err, benchEvents)
	}
	return e
}

// BenchmarkRebuild is `cairn replay` of one project: drop, then decode and
// apply every event in batched transactions.
func BenchmarkRebuild(b *testing.B) {
	e := benchStream(b)
	p := New(e.db, e.store, Options{Logger: e.log})
	defer p.Close()
	ctx := context.Background()
	for b.Loop() {
		n, err := p.Rebuild(ctx, "bench")
		if err != nil || n != benchEvents {
			b.Fatalf("Rebuild = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkOrderedRead only reads the same stream through the ordered
// consumer, in the projector's batches: the ceiling for BenchmarkRebuild.
func BenchmarkOrderedRead(b *testing.B) {
	e := benchStream(b)
	ctx := context.Background()
	stop := errors.New("done")
	for b.Loop() {
		n := 0
		err := e.store.Subscribe(ctx, streams.ProjectStream("bench"), 1, DefaultBatch, func(batch []streams.StoredMsg) error {
			n += len(batch)
			if n >= benchEvents {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			b.Fatalf("Subscribe: %v after %d", err, n)
		}
	}
	b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
}
