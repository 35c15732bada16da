package filestore

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// writeConcurrency is how many parts are put at once: one put waits on
// round trips for most of its time, and a few in flight bring a chunk's
// throughput close to one object store put of the same bytes while memory
// stays a few parts.
const writeConcurrency = 4

// cleanupTimeout bounds the best-effort deletion of a failed write's parts,
// which runs even when the write's context is already cancelled.
const cleanupTimeout = 30 * time.Second

// WriteChunk reads r to EOF and stores it as the parts of a chunk starting at
// file offset offset. r may hold at most max bytes; more is ErrTooLarge. h,
// if not nil, is fed every plaintext byte in order, so the caller can keep a
// digest over the whole file. Memory is a few parts whatever the chunk's size.
// On any error the parts written so far are deleted (best effort). A reader
// with no bytes gives a chunk of Size 0 and writes nothing.
func WriteChunk(ctx context.Context, obs jetstream.ObjectStore, l Layout, offset int64, r io.Reader, max int64, h hash.Hash) (Chunk, error) {
	l, err := l.check()
	if err != nil {
		return Chunk{}, err
	}
	if offset < 0 {
		return Chunk{}, fmt.Errorf("filestore: write chunk of %s: negative offset %d", l.UID, offset)
	}
	c, err := newCodec(l)
	if err != nil {
		return Chunk{}, err
	}
	nonce, err := newNonce()
	if err != nil {
		return Chunk{}, err
	}
	ch := Chunk{Offset: offset, Nonce: nonce}
	id := ch // what names the parts, for the puts to read while ch.Size grows
	if max < 0 {
		max = 0
	}
	if max > math.MaxInt64-offset {
		max = math.MaxInt64 - offset // a file's end fits an int64
	}
	if max < math.MaxInt64 {
		r = io.LimitReader(r, max+1) // one byte more than allowed tells "too large"
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(writeConcurrency)
	var stored atomic.Int64
	var parts int64 // parts handed to a put, which cleanup deletes
	var readErr error
	size := int(l.PartSize)
	for gctx.Err() == nil {
		buf := getBuf(bufCap(l.PartSize))
		n, err := io.ReadFull(r, (*buf)[head:head+size])
		last := err != nil
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			err = nil
		case err != nil:
			err = fmt.Errorf("read: %w", err)
		}
		if err == nil && ch.Size+int64(n) > max {
			err = fmt.Errorf("%w: a chunk may hold at most %d bytes", ErrTooLarge, max)
		}
		if err != nil || n == 0 {
			putBuf(buf)
			readErr = err
			break
		}
		if h != nil {
			h.Write((*buf)[head : head+n])
		}
		ch.Size += int64(n)
		k := parts
		parts++
		g.Go(func() error {
			defer putBuf(buf)
			var spare []byte
			if c.flag != flagRaw {
				sp := getBuf(bufCap(l.PartSize))
				defer putBuf(sp)
				spare = *sp
			}
			data, err := c.seal(*buf, spare, n, partAAD(l, id, k))
			if err != nil {
				return err
			}
			name := partName(l, id, k)
			if _, err := obs.PutBytes(gctx, name, data); err != nil {
				return fmt.Errorf("put %s: %w", name, err)
			}
			stored.Add(int64(len(data)))
			return nil
		})
		if last {
			break
		}
	}
	err = errors.Join(readErr, g.Wait())
	if err == nil {
		err = ctx.Err() // the loop also stops when ctx ends between parts
	}
	if err != nil {
		ch.Size = parts * l.PartSize // cover every part that may exist
		deleteParts(ctx, obs, l, ch)
		return Chunk{}, fmt.Errorf("filestore: write chunk at %d of %s: %w", offset, l.UID, err)
	}
	ch.Stored = stored.Load()
	if ch.Size == 0 {
		return Chunk{Offset: offset}, nil
	}
	return ch, nil
}

// deleteParts removes what a failed write may have left, on a context of
// its own because the write's one may be what failed.
func deleteParts(ctx context.Context, obs jetstream.ObjectStore, l Layout, ch Chunk) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = Delete(ctx, obs, l, []Chunk{ch})
}

// deleteConcurrency is how many parts Delete removes at once; each removal
// is a few round trips.
const deleteConcurrency = 8

// Delete removes every part of chunks. Parts already missing are not an
// error, so a retried or concurrent delete succeeds; a part that could not
// be removed does not stop the others.
func Delete(ctx context.Context, obs jetstream.ObjectStore, l Layout, chunks []Chunk) error {
	l, err := l.check()
	if err != nil {
		return err
	}
	var g errgroup.Group // not WithContext: one failure must not stop the rest
	g.SetLimit(deleteConcurrency)
	for _, ch := range chunks {
		if ch.Size <= 0 {
			continue
		}
		if !validNonce(ch.Nonce) {
			return fmt.Errorf("filestore: delete %s: chunk at %d has invalid nonce %q", l.UID, ch.Offset, ch.Nonce)
		}
		for k := range numParts(ch.Size, l.PartSize) {
			if ctx.Err() != nil {
				break
			}
			name := partName(l, ch, k)
			g.Go(func() error {
				if err := obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
					return fmt.Errorf("filestore: delete %s: %w", name, err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: delete %s: %w", l.UID, err)
	}
	return nil
}
