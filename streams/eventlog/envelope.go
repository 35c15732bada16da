package eventlog

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Encode marshals an envelope deterministically, so that equal events store
// equal bytes and rebuilt read models compare byte for byte.
func Encode(env *eventsv1.Envelope) ([]byte, error) {
	if b, ok := encodeDocumentCreated(env); ok {
		return b, nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", env.GetId(), err)
	}
	return b, nil
}

// Decode unmarshals a stored envelope. Unknown fields (from newer writers)
// are kept, so a projector never loses data it does not understand yet.
func Decode(data []byte) (*eventsv1.Envelope, error) {
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(data, env); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return env, nil
}
