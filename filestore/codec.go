package filestore

import (
	"bytes"
	"compress/gzip"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A stored part is [flag | payload], and when encrypted
// [nonce | AES-GCM(flag | payload)]. The flag says how payload encodes the
// plaintext, so a part that does not compress is stored raw whatever the
// layout asks, and reading never depends on the layout's compression.
const (
	flagRaw  byte = 0
	flagGzip byte = 1
	flagZstd byte = 2

	nonceSize = 12
	tagSize   = 16
	// head is the room in front of a part's plaintext in its buffer for the
	// nonce and the flag, so that a raw part is sealed in place, uncopied.
	head = nonceSize + 1
)

// codec seals and opens the parts of one file.
type codec struct {
	flag byte        // the compression the layout asks for
	aead cipher.AEAD // nil: not encrypted
}

func newCodec(l Layout) (codec, error) {
	c := codec{flag: flagRaw}
	switch l.Compression {
	case compressionGzip:
		c.flag = flagGzip
	case compressionZstd:
		c.flag = flagZstd
	}
	if l.Key != nil {
		block, err := aes.NewCipher(l.Key)
		if err != nil {
			return codec{}, fmt.Errorf("filestore: key: %w", err)
		}
		if c.aead, err = cipher.NewGCM(block); err != nil {
			return codec{}, fmt.Errorf("filestore: key: %w", err)
		}
	}
	return c, nil
}

// bufCap is the capacity of a buffer for a part of partSize plaintext
// bytes: the head, the plaintext, the GCM tag, and slack so that zstd's
// worst case on incompressible data (a few bytes per 128 KiB block) is
// found out without reallocating.
func bufCap(partSize int64) int {
	return int(head + partSize + partSize/512 + 64 + tagSize)
}

// bufPool holds part buffers, so that streaming a file reuses a few of them
// instead of allocating a part's worth for every part.
var bufPool sync.Pool // of *[]byte

func getBuf(n int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

func putBuf(p *[]byte) { bufPool.Put(p) }

// seal encodes the plaintext b[head:head+n] for storage and returns the
// stored bytes, which alias b or spare. spare has b's capacity; it takes the
// compressed form and may be nil when the codec does not compress.
func (c codec) seal(b, spare []byte, n int, aad []byte) ([]byte, error) {
	out, flag := b[:head+n], flagRaw
	if c.flag != flagRaw && n > 0 {
		if z, ok := compress(c.flag, spare[:head], b[head:head+n]); ok {
			out, flag = z, c.flag
		}
	}
	out[nonceSize] = flag
	if c.aead == nil {
		return out[nonceSize:], nil
	}
	if _, err := rand.Read(out[:nonceSize]); err != nil {
		return nil, fmt.Errorf("filestore: nonce: %w", err)
	}
	sealed := c.aead.Seal(out[nonceSize:nonceSize], out[:nonceSize], out[nonceSize:], aad)
	return out[:nonceSize+len(sealed)], nil
}

// open decodes stored bytes to their plaintext, which aliases stored or out.
// want is the plaintext size the caller expects. Anything that does not authenticate, decode or have the
// expected size is ErrCorrupt.
func (c codec) open(stored, out []byte, want int, aad []byte) ([]byte, error) {
	body := stored
	if c.aead != nil {
		if len(stored) < nonceSize+tagSize+1 {
			return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(stored))
		}
		var err error
		body, err = c.aead.Open(stored[nonceSize:nonceSize], stored[:nonceSize], stored[nonceSize:], aad)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if len(body) < 1 {
		return nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	flag, payload := body[0], body[1:]
	switch flag {
	case flagRaw:
		if want >= 0 && len(payload) != want {
			return nil, fmt.Errorf("%w: %d bytes, want %d", ErrCorrupt, len(payload), want)
		}
		return payload, nil
	case flagGzip, flagZstd:
		plain, err := decompress(flag, payload, out, want)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return plain, nil
	default:
		return nil, fmt.Errorf("%w: unknown flag %d", ErrCorrupt, flag)
	}
}

// Compressors are expensive to create and hold sizeable state, so they are
// pooled. Encoders and decoders run with concurrency 1: parts are already
// processed in parallel, and a synchronous zstd decoder owns no goroutine, so
// one the pool drops leaks nothing.
var (
	gzipWriters sync.Pool // of *gzip.Writer
	gzipReaders sync.Pool // of *gzip.Reader
	zstdWriters sync.Pool // of *zstd.Encoder
	zstdReaders sync.Pool // of *zstd.Decoder
)

// errNoGain stops a compression whose output would not be smaller.
var errNoGain = errors.New("compressed form is not smaller")

// boundedAppender appends to b until it would exceed limit.
type boundedAppender struct {
	b     []byte
	limit int
}

func (a *boundedAppender) Write(p []byte) (int, error) {
	if len(a.b)+len(p) > a.limit {
		return 0, errNoGain
	}
	a.b = append(a.b, p...)
	return len(p), nil
}

// compress appends plain's compressed form to dst; ok is false when that is
// not smaller than plain.
func compress(flag byte, dst, plain []byte) (out []byte, ok bool) {
	limit := len(dst) + len(plain) - 1
	switch flag {
	case flagGzip:
		w, _ := gzipWriters.Get().(*gzip.Writer)
		a := &boundedAppender{b: dst, limit: limit}
		if w == nil {
			w, _ = gzip.NewWriterLevel(a, gzip.DefaultCompression)
		} else {
			w.Reset(a)
		}
		_, err := w.Write(plain)
		if err == nil {
			err = w.Close()
		}
		w.Reset(io.Discard) // drop a's buffer
		gzipWriters.Put(w)
		return a.b, err == nil
	case flagZstd:
		e, _ := zstdWriters.Get().(*zstd.Encoder)
		if e == nil {
			var err error
			if e, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1)); err != nil {
				return nil, false
			}
		}
		out = e.EncodeAll(plain, dst)
		zstdWriters.Put(e)
		return out, len(out) <= limit
	}
	return nil, false
}

// decompress decodes payload into out (or a new buffer when want < 0),
// insisting on exactly want bytes; reading to the end also checks the
// format's own checksum.
func decompress(flag byte, payload, out []byte, want int) ([]byte, error) {
	src := bytes.NewReader(payload)
	var r io.Reader
	switch flag {
	case flagGzip:
		g, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if g == nil {
			g, err = gzip.NewReader(src)
		} else {
			err = g.Reset(src)
		}
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer gzipReaders.Put(g)
		r = g
	case flagZstd:
		d, _ := zstdReaders.Get().(*zstd.Decoder)
		if d == nil {
			var err error
			d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(2*maxPartSize))
			if err != nil {
				return nil, fmt.Errorf("zstd: %w", err)
			}
		}
		if err := d.Reset(src); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer func() {
			_ = d.Reset(nil) // drop src
			zstdReaders.Put(d)
		}()
		r = d
	}
	if cap(out) < want {
		out = make([]byte, want) // a compressed part in a layout without compression
	}
	out = out[:want]
	if n, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("%d bytes of %d: %w", n, want, err)
	}
	var one [1]byte
	switch n, err := io.ReadFull(r, one[:]); {
	case n > 0:
		return nil, fmt.Errorf("more than %d bytes", want)
	case err != io.EOF:
		return nil, fmt.Errorf("after %d bytes: %w", want, err)
	}
	return out, nil
}
