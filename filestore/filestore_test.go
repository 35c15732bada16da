package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const testPart = 64 << 10 // small parts keep the tests fast

var uidSeq atomic.Int64

// testLayout is a layout with a fresh UID.
func testLayout(t testing.TB, compression string, encrypted bool) Layout {
	t.Helper()
	l := Layout{UID: fmt.Sprintf("01TEST%06d", uidSeq.Add(1)), PartSize: testPart, Compression: compression}
	if encrypted {
		k, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		l.Key = k
	}
	return l
}

// testData is n bytes that are partly compressible, partly random, and
// recognisable: "CAIRN-PLAINTEXT-<line>" lines between random stretches.
func testData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	for line := 0; b.Len() < n; line++ {
		if line%64 == 63 {
			junk := make([]byte, 4096)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			b.Write(junk)
			continue
		}
		fmt.Fprintf(&b, "CAIRN-PLAINTEXT-%08d\n", line)
	}
	return b.Bytes()[:n]
}

// write stores data as chunks of the given sizes (the rest in a last chunk).
func write(t *testing.T, obs jetstream.ObjectStore, l Layout, data []byte, sizes ...int) []Chunk {
	t.Helper()
	h := sha256.New()
	var chunks []Chunk
	off := 0
	for i := 0; off < len(data) || i == 0; i++ {
		n := len(data) - off
		if i < len(sizes) {
			n = min(sizes[i], n)
		}
		ch, err := WriteChunk(context.Background(), obs, l, int64(off), bytes.NewReader(data[off:off+n]), int64(n), h)
		if err != nil {
			t.Fatalf("write chunk at %d: %v", off, err)
		}
		if ch.Offset != int64(off) || ch.Size != int64(n) {
			t.Fatalf("chunk at %d of %d: got %+v", off, n, ch)
		}
		chunks = append(chunks, ch)
		off += n
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("hash fed by WriteChunk differs from the data's")
	}
	return chunks
}

func read(t *testing.T, obs jetstream.ObjectStore, l Layout, chunks []Chunk, start, end int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := ReadRange(context.Background(), obs, l, chunks, start, end, &b); err != nil {
		t.Fatalf("read [%d, %d): %v", start, end, err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	obs := newObjectStore(t)
	sizes := []int{0, 1, testPart - 1, testPart, testPart + 1, 3*testPart + 1}
	chunkings := map[string][]int{
		"one-chunk":    nil,
		"uneven-chunk": {1000, testPart + 5, 7, 2*testPart - 3},
	}
	for _, comp := range []string{"", "gzip", "zstd"} {
		for _, enc := range []bool{false, true} {
			for _, size := range sizes {
				for cname, split := range chunkings {
					name := fmt.Sprintf("%s/enc=%v/%d/%s", cmpName(comp), enc, size, cname)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						l := testLayout(t, comp, enc)
						data := testData(size, uint64(size))
						chunks := write(t, obs, l, data, split...)
						got := read(t, obs, l, chunks, 0, int64(size))
						if sha256.Sum256(got) != sha256.Sum256(data) {
							t.Fatalf("read back %d bytes differ from the %d written", len(got), size)
						}
						n := int64(size)
						ranges := [][2]int64{{0, 0}, {n, n}}
						if n > 0 {
							ranges = append(ranges,
								[2]int64{0, 1},                                       // first byte
								[2]int64{n - 1, n},                                   // last byte
								[2]int64{n - min(n, 1500), n},                        // suffix
								[2]int64{n / 3, n / 3 * 2},                           // middle
								[2]int64{max(0, testPart-10), min(n, 2*testPart+10)}, // across parts
							)
						}
						for _, r := range ranges {
							if r[0] > r[1] {
								continue
							}
							if got := read(t, obs, l, chunks, r[0], r[1]); !bytes.Equal(got, data[r[0]:r[1]]) {
								t.Errorf("range [%d, %d): got %d bytes, not the original's", r[0], r[1], len(got))
							}
						}
					})
				}
			}
		}
	}
}

func cmpName(c string) string {
	if c == "" {
		return "none"
	}
	return c
}

func TestEmptyChunkWritesNothing(t *testing.T) {
	obs := newObjectStore(t)
	l := testLayout(t, "zstd", true)
	ch, err := WriteChunk(context.Background(), obs, l, 0, strings.NewReader(""), 10, nil)
	if err != nil || ch != (Chunk{}) {
		t.Fatalf("got %+v, %v; want a zero chunk", ch, err)
	}
	if names := objectNames(t, obs, "files/"+l.UID+"/"); len(names) != 0 {
		t.Fatalf("objects written: %v", names)
	}
	if got := read(t, obs, l, []Chunk{ch}, 0, 0); len(got) != 0 {
		t.Fatalf("read %d bytes of an empty file", len(got))
	}
}

// storedParts returns the raw stored bytes of every part of l.
func storedParts(t *testing.T, obs jetstream.ObjectStore, l Layout) map[string][]byte {
	t.Helper()
	parts := map[string][]byte{}
	for _, name := range objectNames(t, obs, "files/"+l.UID+"/") {
		b, err := obs.GetBytes(context.Background(), name)
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		parts[name] = b
	}
	return parts
}

func TestEncryptedPartsHideThePlaintext(t *testing.T) {
	obs := newObjectStore(t)
	data := testData(3*testPart+1, 1)
	marker := []byte("CAIRN-PLAINTEXT-")
	for _, enc := range []bool{false, true} {
		l := testLayout(t, "", enc)
		write(t, obs, l, data, testPart+3)
		parts := storedParts(t, obs, l)
		if len(parts) != 4 {
			t.Fatalf("enc=%v: %d parts, want 4", enc, len(parts))
		}
		for name, b := range parts {
			if len(b) < 1024 {
				continue // a few bytes' tail part holds no whole marker
			}
			if got := bytes.Contains(b, marker); got == enc {
				t.Errorf("enc=%v: part %s contains the plaintext: %v", enc, name, got)
			}
		}
	}
}

// replace overwrites a stored object with other bytes.
func replace(t *testing.T, obs jetstream.ObjectStore, name string, b []byte) {
	t.Helper()
	if _, err := obs.PutBytes(context.Background(), name, b); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

func readErr(obs jetstream.ObjectStore, l Layout, chunks []Chunk, start, end int64) error {
	return ReadRange(context.Background(), obs, l, chunks, start, end, io.Discard)
}

func TestTamperedPartIsCorrupt(t *testing.T) {
	obs := newObjectStore(t)
	data := testData(3*testPart+1, 2)
	for _, comp := range []string{"", "gzip", "zstd"} {
		t.Run(cmpName(comp), func(t *testing.T) {
			l := testLayout(t, comp, true)
			chunks := write(t, obs, l, data)
			name := partName(l, chunks[0], 1)
			orig, err := obs.GetBytes(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range []int{0, 5, nonceSize, nonceSize + 1, len(orig) / 2, len(orig) - 1} {
				b := bytes.Clone(orig)
				b[at] ^= 0x01
				replace(t, obs, name, b)
				if err := readErr(obs, l, chunks, testPart+10, testPart+20); !errors.Is(err, ErrCorrupt) {
					t.Errorf("byte %d flipped: got %v, want ErrCorrupt", at, err)
				}
			}
			replace(t, obs, name, orig[:len(orig)-1])
			if err := readErr(obs, l, chunks, 0, int64(len(data))); !errors.Is(err, ErrCorrupt) {
				t.Errorf("truncated: got %v, want ErrCorrupt", err)
			}
			// The parts around it still read.
			if got := read(t, obs, l, chunks, 0, testPart); !bytes.Equal(got, data[:testPart]) {
				t.Error("part 0 reads wrong next to a tampered part 1")
			}
			replace(t, obs, name, orig)
			if got := read(t, obs, l, chunks, 0, int64(len(data))); !bytes.Equal(got, data) {
				t.Error("restored part does not read back")
			}
		})
	}
}

func TestUnencryptedDamageIsCorrupt(t *testing.T) {
	// Without a key nothing authenticates a part, but sizes and compressed
	// formats' checksums still catch damage.
	obs := newObjectStore(t)
	data := testData(2*testPart, 3)
	for _, comp := range []string{"", "gzip", "zstd"} {
		l := testLayout(t, comp, false)
		chunks := write(t, obs, l, data)
		name := partName(l, chunks[0], 0)
		orig, err := obs.GetBytes(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		damaged := map[string][]byte{
			"truncated":    orig[:len(orig)-1],
			"longer":       append(bytes.Clone(orig), 0),
			"unknown-flag": append([]byte{9}, orig[1:]...),
			"empty":        {},
		}
		if orig[0] != flagRaw {
			b := bytes.Clone(orig)
			b[len(b)-2] ^= 0x40 // in the format's trailer checksum
			damaged["flipped"] = b
		}
		for what, b := range damaged {
			replace(t, obs, name, b)
			if err := readErr(obs, l, chunks, 0, 10); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s/%s: got %v, want ErrCorrupt", cmpName(comp), what, err)
			}
		}
	}
}

func TestMovedPartIsCorrupt(t *testing.T) {
	obs := newObjectStore(t)
	ctx := context.Background()
	data := testData(3*testPart, 4)
	l := testLayout(t, "", true)
	chunks := write(t, obs, l, data)
	p0, p1 := partName(l, chunks[0], 0), partName(l, chunks[0], 1)
	b0, err := obs.GetBytes(ctx, p0)
	if err != nil {
		t.Fatal(err)
	}
	b1, err := obs.GetBytes(ctx, p1)
	if err != nil {
		t.Fatal(err)
	}

	// Swapped within the file.
	replace(t, obs, p0, b1)
	replace(t, obs, p1, b0)
	if err := readErr(obs, l, chunks, 0, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("part 1 as part 0: got %v, want ErrCorrupt", err)
	}
	if err := readErr(obs, l, chunks, testPart, testPart+1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("part 0 as part 1: got %v, want ErrCorrupt", err)
	}

	// Moved to another file with the same key, into the same place.
	other := l
	other.UID = l.UID + "X"
	oc := write(t, obs, other, data)
	oc[0].Nonce = chunks[0].Nonce // even with the nonce copied too
	replace(t, obs, partName(other, oc[0], 0), b0)
	if err := readErr(obs, other, oc, 0, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("part of another file: got %v, want ErrCorrupt", err)
	}

	// Moved to another chunk of the same file.
	l2 := testLayout(t, "", true)
	l2.Key = l.Key
	two := write(t, obs, l2, data, testPart)
	replace(t, obs, partName(l2, two[1], 0), b0)
	if err := readErr(obs, l2, two, testPart, testPart+1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("part of another chunk: got %v, want ErrCorrupt", err)
	}
}

func TestCompressionSavesSpace(t *testing.T) {
	obs := newObjectStore(t)
	text := bytes.Repeat([]byte("CAIRN-PLAINTEXT compresses well; "), 4*testPart/33)
	noise := make([]byte, 4*testPart)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	for _, comp := range []string{"gzip", "zstd"} {
		for _, enc := range []bool{false, true} {
			overhead := int64(1) // the flag
			if enc {
				overhead += nonceSize + tagSize
			}
			l := testLayout(t, comp, enc)
			ch := write(t, obs, l, text)[0]
			if ch.Stored > ch.Size/4 {
				t.Errorf("%s/enc=%v: text of %d bytes stored as %d", comp, enc, ch.Size, ch.Stored)
			}
			assertStored(t, obs, l, ch)

			l = testLayout(t, comp, enc)
			ch = write(t, obs, l, noise)[0]
			if want := ch.Size + 4*overhead; ch.Stored != want {
				t.Errorf("%s/enc=%v: random %d bytes stored as %d, want %d (raw)", comp, enc, ch.Size, ch.Stored, want)
			}
			for name, b := range storedParts(t, obs, l) {
				if !enc && b[0] != flagRaw {
					t.Errorf("%s: random part %s has flag %d, want raw", comp, name, b[0])
				}
			}
		}
	}
	l := testLayout(t, "none", false)
	if ch := write(t, obs, l, text)[0]; ch.Stored != ch.Size+4 {
		t.Errorf("none: %d bytes stored as %d", ch.Size, ch.Stored)
	}
}

// assertStored checks Chunk.Stored against the object store.
func assertStored(t *testing.T, obs jetstream.ObjectStore, l Layout, ch Chunk) {
	t.Helper()
	var sum int64
	for _, b := range storedParts(t, obs, l) {
		sum += int64(len(b))
	}
	if sum != ch.Stored {
		t.Errorf("chunk says %d stored bytes, the store holds %d", ch.Stored, sum)
	}
}

func TestTooLargeLeavesNothing(t *testing.T) {
	obs := newObjectStore(t)
	data := testData(5*testPart+3, 5)
	for _, enc := range []bool{false, true} {
		l := testLayout(t, "zstd", enc)
		_, err := WriteChunk(context.Background(), obs, l, 0, bytes.NewReader(data), 3*testPart+1, nil)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
		if names := objectNames(t, obs, "files/"+l.UID+"/"); len(names) != 0 {
			t.Fatalf("parts left after ErrTooLarge: %v", names)
		}
		// Exactly max is fine.
		ch, err := WriteChunk(context.Background(), obs, l, 0, bytes.NewReader(data), int64(len(data)), nil)
		if err != nil || ch.Size != int64(len(data)) {
			t.Fatalf("write of exactly max: %+v, %v", ch, err)
		}
	}
}

// failingReader gives n bytes of data, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	obs := newObjectStore(t)
	data := testData(4*testPart, 6)
	boom := errors.New("client went away")
	l := testLayout(t, "", true)
	_, err := WriteChunk(context.Background(), obs, l, 0, &failingReader{r: bytes.NewReader(data), err: boom}, 1<<30, nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), l.UID) {
		t.Fatalf("got %v, want the reader's error with context", err)
	}
	if names := objectNames(t, obs, "files/"+l.UID+"/"); len(names) != 0 {
		t.Fatalf("parts left after a read error: %v", names)
	}

	// A cancelled context: the parts written before it are removed as well.
	ctx, cancel := context.WithCancel(context.Background())
	cancelling := &cancelAfter{r: bytes.NewReader(data), n: 2*testPart + 5, cancel: cancel}
	l = testLayout(t, "", false)
	if _, err := WriteChunk(ctx, obs, l, 0, cancelling, 1<<30, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if names := objectNames(t, obs, "files/"+l.UID+"/"); len(names) != 0 {
		t.Fatalf("parts left after cancellation: %v", names)
	}
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestRacingWritersDoNotCollide(t *testing.T) {
	obs := newObjectStore(t)
	l := testLayout(t, "", false)
	a, b := testData(testPart+9, 10), testData(testPart+9, 11)
	ca := write(t, obs, l, a)
	cb := write(t, obs, l, b)
	if ca[0].Nonce == cb[0].Nonce {
		t.Fatal("two writes of one range share a nonce")
	}
	if got := read(t, obs, l, ca, 0, int64(len(a))); !bytes.Equal(got, a) {
		t.Error("first writer's chunk was overwritten")
	}
	if got := read(t, obs, l, cb, 0, int64(len(b))); !bytes.Equal(got, b) {
		t.Error("second writer's chunk reads wrong")
	}
}

func TestDelete(t *testing.T) {
	obs := newObjectStore(t)
	l := testLayout(t, "gzip", true)
	data := testData(3*testPart+1, 12)
	chunks := write(t, obs, l, data, testPart/2, 2*testPart)
	keep := testLayout(t, "gzip", true)
	kept := write(t, obs, keep, data)
	if err := Delete(context.Background(), obs, l, chunks); err != nil {
		t.Fatal(err)
	}
	if names := objectNames(t, obs, "files/"+l.UID+"/"); len(names) != 0 {
		t.Fatalf("parts left after Delete: %v", names)
	}
	if err := Delete(context.Background(), obs, l, chunks); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := readErr(obs, l, chunks, 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after Delete: got %v, want ErrNotFound", err)
	}
	if got := read(t, obs, keep, kept, 0, int64(len(data))); !bytes.Equal(got, data) {
		t.Fatal("Delete of one file touched another")
	}
}

func TestReadRangeRejectsBadArguments(t *testing.T) {
	obs := newObjectStore(t)
	l := testLayout(t, "", false)
	chunks := write(t, obs, l, testData(100, 13), 40)
	cases := map[string]struct {
		chunks     []Chunk
		start, end int64
	}{
		"negative start":   {chunks, -1, 5},
		"end before start": {chunks, 5, 4},
		"end past size":    {chunks, 0, 101},
		"gap":              {[]Chunk{chunks[1]}, 0, 1},
		"overlap":          {[]Chunk{chunks[0], chunks[0]}, 0, 1},
		"bad nonce":        {[]Chunk{{Offset: 0, Size: 100, Nonce: "../../x"}}, 0, 1},
	}
	for name, c := range cases {
		if err := readErr(obs, l, c.chunks, c.start, c.end); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, bad := range []Layout{{UID: ""}, {UID: "a/b"}, {UID: "x", Compression: "lz4"}, {UID: "x", Key: []byte("short")}, {UID: "x", PartSize: -1}} {
		if _, err := WriteChunk(context.Background(), obs, bad, 0, strings.NewReader("x"), 1, nil); err == nil {
			t.Errorf("layout %+v accepted", bad)
		}
	}
}

// cancellingWriter cancels a context at its first write.
type cancellingWriter struct{ cancel func() }

func (c cancellingWriter) Write(p []byte) (int, error) {
	c.cancel()
	return len(p), nil
}

func TestReadRangeStopsWhenCancelled(t *testing.T) {
	obs := newObjectStore(t)
	l := testLayout(t, "", false)
	data := testData(20*testPart, 15)
	chunks := write(t, obs, l, data)
	ctx, cancel := context.WithCancel(context.Background())
	started := time.Now()
	err := ReadRange(ctx, obs, l, chunks, 0, int64(len(data)), cancellingWriter{cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(started); d > time.Second {
		t.Fatalf("ReadRange took %v to notice the cancel", d)
	}
}
