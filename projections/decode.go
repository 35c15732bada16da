package projections

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Field numbers decodeEnvelope reads (a test checks them against the
// descriptors).
const (
	envFieldDocumentUpdated = 92 // Envelope.document_updated
	docUpdatedFieldBefore   = 2  // DocumentUpdated.before
)

// decodeEnvelope is proto.Unmarshal of a stored envelope, except that a
// DocumentUpdated comes without its before: the previous state, as big as
// the document itself, which no read model reads (applyDocument reads the
// stored state instead). Decoding it was a fifth of replaying an update.
// The shortcut is taken only for the encoding every writer produces (the
// payload once, as the last field); anything else is decoded whole.
func decodeEnvelope(b []byte) (*eventsv1.Envelope, error) {
	env := &eventsv1.Envelope{}
	start, value, ok := lastBytesField(b, envFieldDocumentUpdated)
	if !ok {
		return env, proto.Unmarshal(b, env)
	}
	if err := proto.Unmarshal(b[:start], env); err != nil {
		return nil, err
	}
	du := &eventsv1.DocumentUpdated{}
	if err := proto.Unmarshal(withoutField(value, docUpdatedFieldBefore), du); err != nil {
		return nil, err
	}
	env.Payload = &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: du}
	return env, nil
}

// decodeBulk is decodeEnvelope for a bulk run: a document event's document
// comes undecoded (readRawDocEvent) where its encoding allows, the
// envelope then without payload, and with nothing but its id where
// envelopeID reads it.
func decodeBulk(b []byte) (*eventsv1.Envelope, *rawDoc, error) {
	header, doc, ok := readRawDocEvent(b)
	if !ok {
		env, err := decodeEnvelope(b)
		return env, nil, err
	}
	// Of the envelope a bulk run reads only the id (the checkpoint's).
	if id, ok := envelopeID(header); ok {
		return &eventsv1.Envelope{Id: id}, &doc, nil
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(header, env); err != nil {
		return nil, nil, err
	}
	env.Payload = nil // an earlier payload field the document's replaces
	return env, &doc, nil
}

// lastBytesField reports whether field num occurs in b exactly once, as
// its last field and length-delimited, and returns where that field's tag
// starts and its value.
func lastBytesField(b []byte, num protowire.Number) (start int, value []byte, ok bool) {
	off := 0
	found := false
	for off < len(b) {
		n, typ, tl := protowire.ConsumeTag(b[off:])
		if tl < 0 {
			return 0, nil, false
		}
		vl := protowire.ConsumeFieldValue(n, typ, b[off+tl:])
		if vl < 0 || found {
			return 0, nil, false // malformed, or something follows the field
		}
		if n == num {
			if typ != protowire.BytesType {
				return 0, nil, false
			}
			v, m := protowire.ConsumeBytes(b[off+tl:])
			if m < 0 {
				return 0, nil, false
			}
			start, value, found = off, v, true
		}
		off += tl + vl
	}
	return start, value, found
}

// withoutField returns b with every occurrence of field num left out; b
// itself when it has none. Malformed input is returned as is, for
// proto.Unmarshal to report.
func withoutField(b []byte, num protowire.Number) []byte {
	var out []byte
	off, kept := 0, 0 // b[kept:off] is pending to be copied
	for off < len(b) {
		n, typ, tl := protowire.ConsumeTag(b[off:])
		if tl < 0 {
			return b
		}
		vl := protowire.ConsumeFieldValue(n, typ, b[off+tl:])
		if vl < 0 {
			return b
		}
		if n == num {
			if out == nil {
				out = make([]byte, 0, len(b))
			}
			out = append(out, b[kept:off]...)
			kept = off + tl + vl
		}
		off += tl + vl
	}
	if out == nil {
		return b
	}
	return append(out, b[kept:]...)
}
