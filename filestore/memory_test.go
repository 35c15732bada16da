package filestore

import (
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// patternReader generates n bytes without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		x := uint64(p.off + int64(i))
		b[i] = byte(x ^ x>>8 ^ x>>19) // varied enough not to be one repeated part
	}
	p.off += int64(len(b))
	return len(b), nil
}

// heapPeak runs f and returns the peak growth of the heap in use, sampled
// every millisecond, over what it was before. The collector runs often
// meanwhile, so that the heap in use is what is live rather than garbage
// waiting for the next cycle.
func heapPeak(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	<-done
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// TestMemoryIsBoundedByParts streams 64 MiB through WriteChunk and
// ReadRange. A write holds a few parts, far below the file's size. A read is
// measured against one raw object store get of the same bytes, because the
// embedded server in this process caches what it reads and the client
// buffers its pushed messages, both counted in the same heap.
func TestMemoryIsBoundedByParts(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB")
	}
	ctx := context.Background()
	obs := newObjectStore(t)
	const size = 64 << 20
	const writeBound = 32 << 20
	const readSlack = 16 << 20
	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }

	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "raw"}, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	var err error
	rawGet := heapPeak(func() {
		var res jetstream.ObjectResult
		if res, err = obs.Get(ctx, "raw"); err == nil {
			_, err = io.Copy(io.Discard, res)
			res.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("raw get of %d MiB grew the heap by at most %.1f MiB", size>>20, mib(rawGet))

	for _, enc := range []bool{false, true} {
		l := testLayout(t, "", enc)
		l.PartSize = DefaultPartSize
		h := sha256.New()
		var ch Chunk
		grew := heapPeak(func() {
			ch, err = WriteChunk(ctx, obs, l, 0, &patternReader{n: size}, size, h)
		})
		if err != nil || ch.Size != size {
			t.Fatalf("write: %+v, %v", ch, err)
		}
		t.Logf("enc=%v: WriteChunk of %d MiB grew the heap by at most %.1f MiB", enc, size>>20, mib(grew))
		if grew > writeBound {
			t.Errorf("enc=%v: WriteChunk of %d MiB grew the heap by %.1f MiB, want < %d", enc, size>>20, mib(grew), writeBound>>20)
		}

		check := sha256.New()
		grew = heapPeak(func() {
			err = ReadRange(ctx, obs, l, []Chunk{ch}, 0, size, check)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("enc=%v: ReadRange of %d MiB grew the heap by at most %.1f MiB", enc, size>>20, mib(grew))
		if grew > rawGet+readSlack {
			t.Errorf("enc=%v: ReadRange of %d MiB grew the heap by %.1f MiB, a raw get by %.1f", enc, size>>20, mib(grew), mib(rawGet))
		}
		if string(check.Sum(nil)) != string(h.Sum(nil)) {
			t.Fatal("read back differs")
		}
	}
}
