package filestore

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// benchChunk is the chunk size of the write benchmarks: what a client
// uploading in 5 MiB requests sends (Appwrite's chunk size).
const benchChunk = 5 << 20

// benchFileSize is the file size of BenchmarkThroughput:
// CAIRN_BENCH_FILE_MB MiB, 64 by default so that a plain -bench run is quick.
func benchFileSize(b *testing.B) int64 {
	mb := int64(64)
	if s := os.Getenv("CAIRN_BENCH_FILE_MB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("CAIRN_BENCH_FILE_MB=%q: want a positive number", s)
		}
		mb = n
	}
	return mb << 20
}

// writeFile writes size bytes as chunks of benchChunk.
func writeFile(b *testing.B, obs jetstream.ObjectStore, l Layout, size int64) []Chunk {
	var chunks []Chunk
	for off := int64(0); off < size; off += benchChunk {
		n := min(benchChunk, size-off)
		ch, err := WriteChunk(context.Background(), obs, l, off, &patternReader{n: n}, n, nil)
		if err != nil {
			b.Fatal(err)
		}
		chunks = append(chunks, ch)
	}
	return chunks
}

// BenchmarkThroughput compares WriteChunk and ReadRange with one raw object
// store put and get of the same file on an embedded server, in MB/s.
func BenchmarkThroughput(b *testing.B) {
	size := benchFileSize(b)
	ctx := context.Background()
	obs := newObjectStore(b)

	b.Run("raw-put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "raw"}, &patternReader{n: size}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-get", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			res, err := obs.Get(ctx, "raw")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, res); err != nil {
				b.Fatal(err)
			}
			res.Close()
		}
	})
	if err := obs.Delete(ctx, "raw"); err != nil {
		b.Fatal(err)
	}

	for _, enc := range []bool{false, true} {
		suffix := ""
		l := Layout{UID: "01BENCH", Compression: "none"}
		if enc {
			suffix = "-encrypted"
			l.UID += "ENC"
			l.Key, _ = NewKey()
		}
		var chunks []Chunk
		b.Run("write"+suffix, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if chunks != nil {
					b.StopTimer()
					if err := Delete(ctx, obs, l, chunks); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				chunks = writeFile(b, obs, l, size)
			}
		})
		if chunks == nil {
			chunks = writeFile(b, obs, l, size)
		}
		b.Run("read"+suffix, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if err := ReadRange(ctx, obs, l, chunks, 0, size, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
		if err := Delete(ctx, obs, l, chunks); err != nil {
			b.Fatal(err)
		}
	}
}
