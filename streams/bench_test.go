package streams

import (
	"context"
	"fmt"
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
