package api

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"math/rand/v2"
	"testing"
)

// TestFastGzipRoundTrip: what fastGzip's pooled writers write, one payload
// after another, the standard library's gzip and fastGzip's own reader
// read back unchanged.
func TestFastGzipRoundTrip(t *testing.T) {
	c := newFastGzip()
	r := rand.New(rand.NewPCG(1, 9))
	for i := range 200 {
		in := make([]byte, r.IntN(1<<uint(1+i%18)))
		for j := range in {
			in[j] = "abc{}\":,0123456789 documentn"[r.IntN(28)] // JSON-like, compressible
		}
		var out bytes.Buffer
		w, err := c.Compress(&out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		zr, err := stdgzip.NewReader(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("payload %d (%d bytes): %v", i, len(in), err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("payload %d (%d bytes): read back %d bytes, %v", i, len(in), len(got), err)
		}
		dr, err := c.Decompress(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if got, err = io.ReadAll(dr); err != nil || !bytes.Equal(got, in) {
			t.Fatalf("payload %d: Decompress read back %d bytes, %v", i, len(got), err)
		}
		if err := dr.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
