package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// readAhead is how many parts ReadRange has in flight: fetching the next
// parts while one is written hides the round trips of each get, at a memory
// cost of a few parts.
const readAhead = 4

// partRef is one part a range read needs and what of it goes out.
type partRef struct {
	ch     Chunk
	k      int64
	want   int // plaintext bytes of the part
	lo, hi int // the part's plaintext bytes in the range
}

// fetch is a part being got and opened.
type fetch struct {
	done       chan struct{}
	ref        partRef
	buf, spare *[]byte
	plain      []byte
	err        error
}

func (f *fetch) release() {
	if f.buf != nil {
		putBuf(f.buf)
	}
	if f.spare != nil {
		putBuf(f.spare)
	}
	f.buf, f.spare, f.plain = nil, nil, nil
}

// ReadRange writes the plaintext bytes [start, end) of the file made of
// chunks (sorted by Offset and contiguous from 0) to w. It fetches only the
// parts that overlap the range, a few ahead of the one being written, and
// authenticates and decompresses each. A damaged, tampered or moved part is
// ErrCorrupt; a missing one ErrNotFound.
func ReadRange(ctx context.Context, obs jetstream.ObjectStore, l Layout, chunks []Chunk, start, end int64, w io.Writer) error {
	l, err := l.check()
	if err != nil {
		return err
	}
	c, err := newCodec(l)
	if err != nil {
		return err
	}
	var total int64
	for i, ch := range chunks {
		if ch.Offset != total || ch.Size < 0 {
			return fmt.Errorf("filestore: read %s: chunk %d is [%d, +%d), want it to start at %d", l.UID, i, ch.Offset, ch.Size, total)
		}
		if ch.Size > 0 && !validNonce(ch.Nonce) {
			return fmt.Errorf("filestore: read %s: chunk %d has invalid nonce %q", l.UID, i, ch.Nonce)
		}
		total += ch.Size
	}
	if start < 0 || end < start || end > total {
		return fmt.Errorf("filestore: read %s: range [%d, %d) outside [0, %d)", l.UID, start, end, total)
	}
	next := parts(l, chunks, start, end)

	ctx, cancel := context.WithCancel(ctx)
	var queue []*fetch
	defer func() {
		cancel()
		// A get notices the cancel only at its next message or read
		// deadline; the fetches still running give their buffers back in
		// the background so that ReadRange returns at once.
		if pending := queue; len(pending) > 0 {
			go func() {
				for _, f := range pending {
					<-f.done
					f.release()
				}
			}()
		}
	}()
	for {
		for len(queue) < readAhead {
			ref, ok := next()
			if !ok {
				break
			}
			f := &fetch{done: make(chan struct{}), ref: ref}
			queue = append(queue, f)
			go func() {
				defer close(f.done)
				f.err = f.get(ctx, obs, l, c)
			}()
		}
		if len(queue) == 0 {
			return nil
		}
		f := queue[0]
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("filestore: read %s: %w", l.UID, ctx.Err())
		}
		queue = queue[1:]
		if f.err != nil {
			f.release()
			return fmt.Errorf("filestore: read %s: %w", l.UID, f.err)
		}
		_, err := w.Write(f.plain[f.ref.lo:f.ref.hi])
		f.release()
		if err != nil {
			return fmt.Errorf("filestore: read %s: write: %w", l.UID, err)
		}
	}
}

// parts returns an iterator over the parts of chunks that overlap
// [start, end); it yields nothing for an empty range.
func parts(l Layout, chunks []Chunk, start, end int64) func() (partRef, bool) {
	ci, k := 0, int64(0)
	for ci < len(chunks) && chunks[ci].Offset+chunks[ci].Size <= start {
		ci++
	}
	if ci < len(chunks) {
		k = (start - chunks[ci].Offset) / l.PartSize
	}
	return func() (partRef, bool) {
		for ci < len(chunks) && k*l.PartSize >= chunks[ci].Size {
			ci, k = ci+1, 0
		}
		if ci == len(chunks) {
			return partRef{}, false
		}
		ch := chunks[ci]
		from := ch.Offset + k*l.PartSize
		if from >= end {
			return partRef{}, false
		}
		want := min(l.PartSize, ch.Size-k*l.PartSize)
		ref := partRef{
			ch: ch, k: k, want: int(want),
			lo: int(max(start, from) - from),
			hi: int(min(end, from+want) - from),
		}
		k++
		return ref, true
	}
}

// get fetches and opens f's part into pooled buffers.
func (f *fetch) get(ctx context.Context, obs jetstream.ObjectStore, l Layout, c codec) error {
	name := partName(l, f.ref.ch, f.ref.k)
	res, err := obs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("part %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	// A part is never bigger than its buffer; refuse before reading one that is.
	if info.Size > uint64(bufCap(l.PartSize)) {
		return fmt.Errorf("part %s: %w: %d bytes", name, ErrCorrupt, info.Size)
	}
	f.buf = getBuf(int(info.Size))
	if _, err := io.ReadFull(res, *f.buf); err != nil {
		return fmt.Errorf("get %s: %w", name, storeErr(err))
	}
	// Reading to the end is what checks the object store's digest.
	var one [1]byte
	switch n, err := io.ReadFull(res, one[:]); {
	case n > 0:
		return fmt.Errorf("part %s: %w: longer than its %d bytes", name, ErrCorrupt, info.Size)
	case err != io.EOF:
		return fmt.Errorf("get %s: %w", name, storeErr(err))
	}
	var out []byte // raw parts open in place
	if c.flag != flagRaw {
		f.spare = getBuf(int(l.PartSize))
		out = *f.spare
	}
	f.plain, err = c.open(*f.buf, out, f.ref.want, partAAD(l, f.ref.ch, f.ref.k))
	if err != nil {
		return fmt.Errorf("part %s: %w", name, err)
	}
	return nil
}

// storeErr turns the object store's digest mismatch into ErrCorrupt.
func storeErr(err error) error {
	if errors.Is(err, jetstream.ErrDigestMismatch) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}
