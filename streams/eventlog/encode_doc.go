package eventlog

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// A document's creation is most of what a busy project appends, and
// proto.Marshal's reflection (its size pass above all) was ~4 % of a
// create's CPU. encodeDocumentCreated writes the same bytes by hand:
// fields in number order, zero values left out, as proto.Marshal does for
// these messages (TestEncodeDocumentCreatedAgrees compares them; a field
// added to any of them fails TestEncodeDocumentCreatedKnowsEveryField until
// it is written here too). Anything unusual — unknown fields, invalid
// UTF-8 — goes to proto.Marshal, so its errors stay its own.

// Field numbers of the messages written by hand.
const (
	envID, envOccurredAt, envActor, envCorrelationID = 1, 2, 3, 4
	envDocumentCreated                               = 91
	createdDocument                                  = 1
	actorKind, actorID, actorProjectID               = 1, 2, 3
	actorSessionID, actorName                        = 4, 5
	tsSeconds, tsNanos                               = 1, 2
	docID, docProjectID, docDatabaseID               = 1, 2, 3
	docCollectionID, docCollectionUID, docDataJSON   = 4, 5, 6
	docPermissions, docCreatedAt, docUpdatedAt       = 7, 8, 9
	docSequence, docSchemaVersion, docVersion        = 10, 11, 12
)

// encodeDocumentCreated returns env's encoding when its payload is a
// DocumentCreated it can write by hand; ok is false otherwise.
func encodeDocumentCreated(env *eventsv1.Envelope) (b []byte, ok bool) {
	created := env.GetDocumentCreated()
	if created == nil || !plain(env, created, created.GetDocument(), env.GetActor(), env.GetOccurredAt(),
		created.GetDocument().GetCreatedAt(), created.GetDocument().GetUpdatedAt()) {
		return nil, false
	}
	d := created.GetDocument()
	if !utf8.ValidString(env.GetId()) || !utf8.ValidString(env.GetCorrelationId()) || !validActor(env.GetActor()) || !validDoc(d) {
		return nil, false
	}
	docSize := documentSize(d)
	createdSize := 0
	if d != nil {
		createdSize = sizeMsg(createdDocument, docSize)
	}
	size := sizeString(envID, env.GetId()) + sizeString(envCorrelationID, env.GetCorrelationId()) +
		sizeMsg(envDocumentCreated, createdSize)
	if ts := env.GetOccurredAt(); ts != nil {
		size += sizeMsg(envOccurredAt, timestampSize(ts))
	}
	if a := env.GetActor(); a != nil {
		size += sizeMsg(envActor, actorSize(a))
	}
	b = make([]byte, 0, size)
	b = appendString(b, envID, env.GetId())
	if ts := env.GetOccurredAt(); ts != nil {
		b = appendTimestamp(b, envOccurredAt, ts)
	}
	if a := env.GetActor(); a != nil {
		b = protowire.AppendTag(b, envActor, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(actorSize(a)))
		if k := a.GetKind(); k != 0 {
			b = protowire.AppendTag(b, actorKind, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(int64(k)))
		}
		b = appendString(b, actorID, a.GetId())
		b = appendString(b, actorProjectID, a.GetProjectId())
		b = appendString(b, actorSessionID, a.GetSessionId())
		b = appendString(b, actorName, a.GetName())
	}
	b = appendString(b, envCorrelationID, env.GetCorrelationId())
	b = protowire.AppendTag(b, envDocumentCreated, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(createdSize))
	if d != nil {
		b = protowire.AppendTag(b, createdDocument, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(docSize))
		b = appendString(b, docID, d.GetId())
		b = appendString(b, docProjectID, d.GetProjectId())
		b = appendString(b, docDatabaseID, d.GetDatabaseId())
		b = appendString(b, docCollectionID, d.GetCollectionId())
		b = appendString(b, docCollectionUID, d.GetCollectionUid())
		b = appendString(b, docDataJSON, d.GetDataJson())
		for _, p := range d.GetPermissions() {
			// A repeated string writes every element, empty ones too.
			b = protowire.AppendTag(b, docPermissions, protowire.BytesType)
			b = protowire.AppendString(b, p)
		}
		if ts := d.GetCreatedAt(); ts != nil {
			b = appendTimestamp(b, docCreatedAt, ts)
		}
		if ts := d.GetUpdatedAt(); ts != nil {
			b = appendTimestamp(b, docUpdatedAt, ts)
		}
		b = appendUint(b, docSequence, d.GetSequence())
		b = appendUint(b, docSchemaVersion, d.GetSchemaVersion())
		b = appendUint(b, docVersion, d.GetVersion())
	}
	return b, len(b) == size
}

// plain reports whether none of the messages (nil ones are fine) holds
// unknown fields, which only proto.Marshal writes back.
func plain(ms ...proto.Message) bool {
	for _, m := range ms {
		if r := m.ProtoReflect(); r.IsValid() && len(r.GetUnknown()) > 0 {
			return false
		}
	}
	return true
}

func validActor(a *eventsv1.Actor) bool {
	return utf8.ValidString(a.GetId()) && utf8.ValidString(a.GetProjectId()) && utf8.ValidString(a.GetSessionId()) && utf8.ValidString(a.GetName())
}

func validDoc(d *eventsv1.Document) bool {
	for _, s := range [...]string{d.GetId(), d.GetProjectId(), d.GetDatabaseId(), d.GetCollectionId(), d.GetCollectionUid(), d.GetDataJson()} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, p := range d.GetPermissions() {
		if !utf8.ValidString(p) {
			return false
		}
	}
	return true
}

func documentSize(d *eventsv1.Document) int {
	if d == nil {
		return 0
	}
	n := sizeString(docID, d.GetId()) + sizeString(docProjectID, d.GetProjectId()) + sizeString(docDatabaseID, d.GetDatabaseId()) +
		sizeString(docCollectionID, d.GetCollectionId()) + sizeString(docCollectionUID, d.GetCollectionUid()) +
		sizeString(docDataJSON, d.GetDataJson()) +
		sizeUint(docSequence, d.GetSequence()) + sizeUint(docSchemaVersion, d.GetSchemaVersion()) + sizeUint(docVersion, d.GetVersion())
	for _, p := range d.GetPermissions() {
		n += protowire.SizeTag(docPermissions) + protowire.SizeBytes(len(p))
	}
	if ts := d.GetCreatedAt(); ts != nil {
		n += sizeMsg(docCreatedAt, timestampSize(ts))
	}
	if ts := d.GetUpdatedAt(); ts != nil {
		n += sizeMsg(docUpdatedAt, timestampSize(ts))
	}
	return n
}

func actorSize(a *eventsv1.Actor) int {
	n := sizeString(actorID, a.GetId()) + sizeString(actorProjectID, a.GetProjectId()) +
		sizeString(actorSessionID, a.GetSessionId()) + sizeString(actorName, a.GetName())
	if k := a.GetKind(); k != 0 {
		n += protowire.SizeTag(actorKind) + protowire.SizeVarint(uint64(int64(k)))
	}
	return n
}

func timestampSize(ts *timestamppb.Timestamp) int {
	n := 0
	if s := ts.GetSeconds(); s != 0 {
		n += protowire.SizeTag(tsSeconds) + protowire.SizeVarint(uint64(s))
	}
	if ns := ts.GetNanos(); ns != 0 {
		n += protowire.SizeTag(tsNanos) + protowire.SizeVarint(uint64(int64(ns)))
	}
	return n
}

func appendTimestamp(b []byte, num protowire.Number, ts *timestamppb.Timestamp) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(timestampSize(ts)))
	if s := ts.GetSeconds(); s != 0 {
		b = protowire.AppendTag(b, tsSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s))
	}
	if ns := ts.GetNanos(); ns != 0 {
		b = protowire.AppendTag(b, tsNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(ns)))
	}
	return b
}

func sizeMsg(num protowire.Number, n int) int { return protowire.SizeTag(num) + protowire.SizeBytes(n) }

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func sizeUint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
