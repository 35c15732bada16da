package api

import (
	"bytes"
	"context"
	"io"
	"sync"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// sharedEncodings remembers the encodings of messages that many streams
// send at once — a realtime event goes to every subscriber with the same
// channels as the very same message (rtClient.response) — so each is
// encoded once per codec instead of once per subscriber. Bounded: the
// oldest entries go first.
type sharedEncodings struct {
	mu    sync.Mutex
	m     map[sharedKey][]byte
	order []sharedKey
	next  int
}

type sharedKey struct {
	msg   *cairnv1.SubscribeResponse
	codec string
}

const sharedEncodingsSize = 4096

func newSharedEncodings() *sharedEncodings {
	return &sharedEncodings{m: make(map[sharedKey][]byte, sharedEncodingsSize), order: make([]sharedKey, sharedEncodingsSize)}
}

func (e *sharedEncodings) encode(ctx context.Context, c connect.Codec, dst io.Writer, msg any) error {
	m, ok := msg.(*cairnv1.SubscribeResponse)
	if !ok || m.GetEvent() == nil {
		return c.MarshalWrite(ctx, dst, msg)
	}
	k := sharedKey{m, c.Name()}
	e.mu.Lock()
	b, hit := e.m[k]
	e.mu.Unlock()
	if !hit {
		var buf bytes.Buffer
		if err := c.MarshalWrite(ctx, &buf, msg); err != nil {
			return err
		}
		b = buf.Bytes()
		e.mu.Lock()
		if old := e.order[e.next]; old.msg != nil {
			delete(e.m, old)
		}
		e.order[e.next], e.m[k] = k, b
		e.next = (e.next + 1) % len(e.order)
		e.mu.Unlock()
	}
	_, err := dst.Write(b)
	return err
}

// sharedBinary and sharedJSON are Connect's protobuf codecs with shared
// encodings of realtime events; both write document answers themselves
// (appendAnswerProto, appendAnswerJSON).
type sharedBinary struct {
	*connectproto.BinaryCodec
	enc *sharedEncodings
}

func (c sharedBinary) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	if buffered, ok := dst.(interface{ AvailableBuffer() []byte }); ok {
		// Document answers are written by hand (docproto.go), as their
		// JSON is.
		if b, ok := appendAnswerProto(buffered.AvailableBuffer(), msg); ok {
			_, err := dst.Write(b)
			return err
		}
	}
	return c.enc.encode(ctx, c.BinaryCodec, dst, msg)
}

type sharedJSON struct {
	*connectproto.JSONCodec
	enc *sharedEncodings
}

func (c sharedJSON) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	if buffered, ok := dst.(interface{ AvailableBuffer() []byte }); ok {
		// Document answers are written by hand (docjson.go), straight
		// into the response buffer, as connectproto does with protojson.
		if b, ok := appendAnswerJSON(buffered.AvailableBuffer(), msg); ok {
			_, err := dst.Write(b)
			return err
		}
	}
	return c.enc.encode(ctx, c.JSONCodec, dst, msg)
}

func (c sharedJSON) UnmarshalRead(ctx context.Context, src io.Reader, msg any) error {
	return unmarshalRequestJSON(ctx, c.JSONCodec, src, msg)
}
