package streams

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend measures concurrent single-message appends to one project
// stream, each with an aggregate expectation (one aggregate per goroutine, so
// appends do not conflict), with the embedded server's two sync modes.
func BenchmarkAppend(b *testing.B) {
	for _, always := range []bool{false, true} {
		b.Run(fmt.Sprintf("SyncAlways=%v", always), func(b *testing.B) {
			env := &testEnv{}
			benchStart(b, env, EmbeddedConfig{SyncAlways: always})
			stream := ProjectStream("bench")
			if err := env.store.EnsureProjectStream(context.Background(), "bench", Limits{}); err != nil {
				b.Fatal(err)
			}
			var workers atomic.Int64
			b.SetParallelism(8) // 8 x GOMAXPROCS writers keep the stream busy
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := workers.Add(1)
				ctx := context.Background()
				filter := ProjectSubject("bench", "keys", fmt.Sprint("W", w), ">")
				subj := ProjectSubject("bench", "keys", fmt.Sprint("W", w), "update")
				data := make([]byte, 512)
				var last uint64
				for i := 0; pb.Next(); i++ {
					ack, err := env.store.Append(ctx, Append{
						Stream: stream, ExpectFilter: filter, ExpectSeq: last,
						Msgs: []Msg{{Subject: subj, Data: data, MsgID: fmt.Sprint(w, "-", i)}},
					})
					if err != nil {
						b.Error(err)
						return
					}
					last = ack.Seq
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkAppendBatch measures sequential 3-message atomic batches.
func BenchmarkAppendBatch(b *testing.B) {
	env := &testEnv{}
	benchStart(b, env, EmbeddedConfig{})
	stream := ProjectStream("bench")
	if err := env.store.EnsureProjectStream(context.Background(), "bench", Limits{}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		msgs := []Msg{
			{Subject: ProjectSubject("bench", "a"), MsgID: fmt.Sprint("b", i)},
			{Subject: ProjectSubject("bench", "b")},
			{Subject: ProjectSubject("bench", "c")},
		}
		if _, err := env.store.Append(ctx, Append{Stream: stream, Msgs: msgs}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStart(b *testing.B, env *testEnv, cfg EmbeddedConfig) {
	b.Helper()
	cfg.Dir, cfg.Logger = b.TempDir(), quietLogger()
	emb, err := StartEmbedded(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := emb.Connect()
	if err != nil {
		b.Fatal(err)
	}
	st, err := Open(context.Background(), nc, Options{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	env.emb, env.store = emb, st
	b.Cleanup(func() { nc.Close(); emb.Shutdown() })
}

// BenchmarkSnapshot measures what an online backup does with one stream of
// 100,000 events of 512 bytes: a snapshot to memory and a restore of it
// into a second server, against an ordered read of the same stream (the
// baseline: what an export or a replay reads) in the same run.
func BenchmarkSnapshot(b *testing.B) {
	const events = 100_000
	src, dst := &testEnv{}, &testEnv{}
	benchStart(b, src, EmbeddedConfig{})
	benchStart(b, dst, EmbeddedConfig{})
	ctx := context.Background()
	stream := ProjectStream("bench")
	if err := src.store.EnsureProjectStream(ctx, "bench", Limits{}); err != nil {
		b.Fatal(err)
	}
	js := src.store.JetStream()
	// Random payloads: the snapshot is compressed (s2), and zeros would
	// flatter it.
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range events {
		data := make([]byte, 512)
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		if _, err := js.PublishAsync(ProjectSubject("bench", "docs", fmt.Sprint(i%1000), "update"), data); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	info, err := src.store.StreamInfo(ctx, stream)
	if err != nil || info.LastSeq != events {
		b.Fatalf("stream: %+v %v", info, err)
	}
	mb := float64(info.Bytes) / (1 << 20)
	report := func(b *testing.B) {
		b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(mb*float64(b.N)/b.Elapsed().Seconds(), "MB/s")
	}
	b.Run("ordered-read", func(b *testing.B) {
		stop := fmt.Errorf("done")
		for b.Loop() {
			n := 0
			err := src.store.Subscribe(ctx, stream, 1, 0, func(batch []StoredMsg) error {
				if n += len(batch); n >= events {
					return stop
				}
				return nil
			})
			if err != stop {
				b.Fatal(err)
			}
		}
		report(b)
	})
	var snap bytes.Buffer
	var si SnapshotInfo
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			snap.Reset()
			if si, err = src.store.Snapshot(ctx, stream, &snap); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
		b.ReportMetric(float64(snap.Len())/(1<<20), "snapshot-MB")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if err := dst.store.Restore(ctx, stream, si, bytes.NewReader(snap.Bytes())); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := dst.store.JetStream().DeleteStream(ctx, stream); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		report(b)
	})
}
