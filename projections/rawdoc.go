package projections

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Document events in a bulk run, read without decoding their document.
//
// A document's stored state is its event's Document with the read model's
// sequence and version set. Decoding it into a message and encoding it
// again was about a tenth of a rebuild's CPU (the envelope decode, with its
// strings, timestamps and permissions, and the marshal). Where the event
// encodes the document the way proto.Marshal does — fields in number order,
// each once but the permissions, no default values, shortest varints, valid
// UTF-8 — marshal(d) is those very bytes with the fields from sequence (10)
// on written anew, so the bulk run stores that (rawDoc.stored), reading
// only what it needs. Anything else is decoded as before. Every writer of
// Cairn encodes with proto.Marshal; TestRawDocEqualsMarshal and
// FuzzRawDoc check the equality.

// Field numbers readRawDocEvent reads (a test checks them against the
// descriptors).
const (
	envFieldDocumentCreated = 91 // Envelope.document_created
	envFieldDocumentDeleted = 93 // Envelope.document_deleted
	payloadFieldDocument    = 1  // DocumentCreated/Updated/Deleted.document
	docUpdatedFieldChange   = 3  // DocumentUpdated.change

	envFieldID            = 1
	envFieldOccurredAt    = 2
	envFieldActor         = 3
	envFieldCorrelationID = 4

	docFieldProjectID     = 2
	docFieldDatabaseID    = 3
	docFieldCollectionID  = 4
	docFieldCollectionUID = 5
	docFieldPermissions   = 7
	docFieldVersion       = 12
)

// rawDoc is a document event's Document in proto.Marshal's encoding.
type rawDoc struct {
	enc  []byte // the event's encoding of the document
	tail int    // where its fields from sequence on begin
	// What applying it reads.
	id, projectID, databaseID, collectionID, collectionUID string
	data                                                   string
	seq, schemaVersion                                     uint64
	deleted                                                bool
}

// stored returns the document's stored state: marshal(d) with d.Sequence
// and d.Version set to seq and version.
func (r *rawDoc) stored(seq, version uint64) []byte {
	b := make([]byte, 0, r.tail+3*(1+protowire.SizeVarint(^uint64(0))))
	b = append(b, r.enc[:r.tail]...)
	for _, f := range [...]struct {
		num protowire.Number
		v   uint64
	}{{docFieldSequence, seq}, {docFieldSchemaVersion, r.schemaVersion}, {docFieldVersion, version}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, f.v)
		}
	}
	return b
}

// readRawDocEvent reads an envelope whose payload is a document's create,
// update or delete in proto.Marshal's encoding, as the last field and
// once: it returns the envelope without it (the header, for proto.Unmarshal)
// and the document. ok is false for any other envelope or encoding.
func readRawDocEvent(b []byte) (header []byte, doc rawDoc, ok bool) {
	num, start, payload, ok := lastField(b)
	if !ok || num != envFieldDocumentCreated && num != envFieldDocumentUpdated && num != envFieldDocumentDeleted {
		return nil, rawDoc{}, false
	}
	var enc []byte
	found := false
	for len(payload) > 0 {
		n, typ, tl := protowire.ConsumeTag(payload)
		if tl < 0 || typ != protowire.BytesType {
			return nil, rawDoc{}, false
		}
		v, vl := protowire.ConsumeBytes(payload[tl:])
		if vl < 0 {
			return nil, rawDoc{}, false
		}
		switch {
		case n == payloadFieldDocument && !found:
			enc, found = v, true
		case num == envFieldDocumentUpdated && n == docUpdatedFieldBefore:
			// Not read (decodeEnvelope leaves it out too).
		case num == envFieldDocumentUpdated && n == docUpdatedFieldChange:
			if !utf8.Valid(v) {
				return nil, rawDoc{}, false
			}
		default:
			return nil, rawDoc{}, false
		}
		payload = payload[tl+vl:]
	}
	if !found {
		return nil, rawDoc{}, false
	}
	if doc, ok = readRawDoc(enc); !ok {
		return nil, rawDoc{}, false
	}
	doc.deleted = num == envFieldDocumentDeleted
	return b[:start], doc, true
}

// envelopeID returns the id of an envelope header (an Envelope without
// payload: id, occurred_at, actor, correlation_id), having checked what
// proto.Unmarshal would check of the rest (wire format, UTF-8 strings)
// without building it. ok is false for anything else, such as a field it
// does not know; proto.Unmarshal decides then.
func envelopeID(b []byte) (id string, ok bool) {
	var raw []byte
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 || typ != protowire.BytesType {
			return "", false
		}
		v, vl := protowire.ConsumeBytes(b[tl:])
		if vl < 0 {
			return "", false
		}
		switch num {
		case envFieldID, envFieldCorrelationID:
			if !utf8.Valid(v) {
				return "", false
			}
			if num == envFieldID {
				raw = v
			}
		case envFieldOccurredAt:
			if !fieldsAre(v, func(protowire.Number, []byte) bool { return false }, 1, 2) {
				return "", false
			}
		case envFieldActor:
			// kind (an enum), then id, project_id, session_id, name.
			if !fieldsAre(v, func(_ protowire.Number, s []byte) bool { return utf8.Valid(s) }, 1) {
				return "", false
			}
		default:
			return "", false
		}
		b = b[tl+vl:]
	}
	return string(raw), true
}

// fieldsAre reports whether b holds only varint fields of the numbers
// varints lists and length-delimited fields the others, each of which str
// accepts.
func fieldsAre(b []byte, str func(protowire.Number, []byte) bool, varints ...protowire.Number) bool {
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return false
		}
		isVarint := false
		for _, n := range varints {
			isVarint = isVarint || n == num
		}
		var n int
		switch {
		case isVarint && typ == protowire.VarintType:
			_, n = protowire.ConsumeVarint(b[tl:])
		case !isVarint && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b[tl:])
			if n >= 0 && !str(num, v) {
				return false
			}
		default:
			return false
		}
		if n < 0 {
			return false
		}
		b = b[tl+n:]
	}
	return true
}

// lastField returns the last field of b when it is length-delimited and,
// for a document event, its number occurs nowhere before it (the messages
// would merge): its number, where its tag starts and its value.
func lastField(b []byte) (num protowire.Number, start int, value []byte, ok bool) {
	var seen [envFieldDocumentDeleted - envFieldDocumentCreated + 1]bool // the numbers that matter here
	for off := 0; off < len(b); {
		n, typ, tl := protowire.ConsumeTag(b[off:])
		if tl < 0 {
			return 0, 0, nil, false
		}
		vl := protowire.ConsumeFieldValue(n, typ, b[off+tl:])
		if vl < 0 {
			return 0, 0, nil, false
		}
		docEvent := n >= envFieldDocumentCreated && n <= envFieldDocumentDeleted
		if off+tl+vl == len(b) {
			if typ != protowire.BytesType || docEvent && seen[n-envFieldDocumentCreated] {
				return 0, 0, nil, false
			}
			v, _ := protowire.ConsumeBytes(b[off+tl:])
			return n, off, v, true
		}
		if docEvent {
			seen[n-envFieldDocumentCreated] = true
		}
		off += tl + vl
	}
	return 0, 0, nil, false
}

// readRawDoc reads a Document encoded as proto.Marshal encodes one; ok is
// false for any other encoding (proto.Unmarshal may still read it).
func readRawDoc(b []byte) (rawDoc, bool) {
	d := rawDoc{enc: b, tail: -1}
	// One copy for all the strings read: they are substrings of it.
	s := string(b)
	last := protowire.Number(0)
	for off := 0; off < len(b); {
		num, typ, tl := protowire.ConsumeTag(b[off:])
		if tl < 0 || tl != protowire.SizeTag(num) || num < last || num == last && num != docFieldPermissions {
			return rawDoc{}, false
		}
		last = num
		if num >= docFieldSequence && d.tail < 0 {
			d.tail = off
		}
		rest := b[off+tl:]
		var n int
		switch num {
		case docFieldID, docFieldProjectID, docFieldDatabaseID, docFieldCollectionID, docFieldCollectionUID, docFieldData, docFieldPermissions:
			v, ok := shortestBytes(typ, rest)
			// proto3 leaves an empty string out, but not a permission.
			if !ok || len(v) == 0 && num != docFieldPermissions || !utf8.Valid(v) {
				return rawDoc{}, false
			}
			n = protowire.SizeBytes(len(v))
			sv := s[off+tl+n-len(v) : off+tl+n]
			switch num {
			case docFieldID:
				d.id = sv
			case docFieldProjectID:
				d.projectID = sv
			case docFieldDatabaseID:
				d.databaseID = sv
			case docFieldCollectionID:
				d.collectionID = sv
			case docFieldCollectionUID:
				d.collectionUID = sv
			case docFieldData:
				d.data = sv
			}
		case docFieldCreatedAt, docFieldUpdatedAt:
			v, ok := shortestBytes(typ, rest)
			if !ok || !marshalledTimestamp(v) {
				return rawDoc{}, false
			}
			n = protowire.SizeBytes(len(v))
		case docFieldSequence, docFieldSchemaVersion, docFieldVersion:
			x, ok := shortestVarint(typ, rest)
			if !ok || x == 0 {
				return rawDoc{}, false
			}
			switch num {
			case docFieldSequence:
				d.seq = x
			case docFieldSchemaVersion:
				d.schemaVersion = x
			}
			n = protowire.SizeVarint(x)
		default:
			return rawDoc{}, false
		}
		off += tl + n
	}
	if d.tail < 0 {
		d.tail = len(b)
	}
	return d, true
}

// marshalledTimestamp reports whether b is a google.protobuf.Timestamp as
// proto.Marshal encodes one: seconds (int64), then nanos (int32), each
// left out when zero.
func marshalledTimestamp(b []byte) bool {
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 || tl != protowire.SizeTag(num) || num <= last || num > 2 {
			return false
		}
		last = num
		x, ok := shortestVarint(typ, b[tl:])
		// nanos is an int32: a negative one is sign-extended to 64 bits.
		if !ok || x == 0 || num == 2 && uint64(int64(int32(x))) != x {
			return false
		}
		b = b[tl+protowire.SizeVarint(x):]
	}
	return true
}

// shortestBytes reads a length-delimited value whose length is written in
// the fewest bytes.
func shortestBytes(typ protowire.Type, b []byte) ([]byte, bool) {
	if typ != protowire.BytesType {
		return nil, false
	}
	v, n := protowire.ConsumeBytes(b)
	return v, n >= 0 && n == protowire.SizeBytes(len(v))
}

// shortestVarint reads a varint written in the fewest bytes.
func shortestVarint(typ protowire.Type, b []byte) (uint64, bool) {
	if typ != protowire.VarintType {
		return 0, false
	}
	x, n := protowire.ConsumeVarint(b)
	return x, n >= 0 && n == protowire.SizeVarint(x)
}
