package projections

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func TestRawDocFieldNumbers(t *testing.T) {
	check := func(m proto.Message, name string, want protowire.Number) {
		t.Helper()
		f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
		if f == nil || f.Number() != want {
			t.Errorf("%s.%s: readRawDocEvent reads field %d, descriptor %v", m.ProtoReflect().Descriptor().Name(), name, want, f)
		}
	}
	env := &eventsv1.Envelope{}
	check(env, "id", envFieldID)
	check(env, "occurred_at", envFieldOccurredAt)
	check(env, "actor", envFieldActor)
	check(env, "correlation_id", envFieldCorrelationID)
	check(&eventsv1.Actor{}, "kind", 1)
	for i, name := range []string{"id", "project_id", "session_id", "name"} {
		check(&eventsv1.Actor{}, name, protowire.Number(2+i))
	}
	if n := (&eventsv1.Actor{}).ProtoReflect().Descriptor().Fields().Len(); n != 5 {
		t.Errorf("Actor has %d fields; envelopeID knows 5", n)
	}
	check(env, "document_created", envFieldDocumentCreated)
	check(env, "document_updated", envFieldDocumentUpdated)
	check(env, "document_deleted", envFieldDocumentDeleted)
	check(&eventsv1.DocumentCreated{}, "document", payloadFieldDocument)
	check(&eventsv1.DocumentUpdated{}, "document", payloadFieldDocument)
	check(&eventsv1.DocumentDeleted{}, "document", payloadFieldDocument)
	check(&eventsv1.DocumentUpdated{}, "change", docUpdatedFieldChange)
	d := &eventsv1.Document{}
	for name, num := range map[string]protowire.Number{"id": docFieldID, "project_id": docFieldProjectID, "database_id": docFieldDatabaseID,
		"collection_id": docFieldCollectionID, "collection_uid": docFieldCollectionUID, "data_json": docFieldData,
		"permissions": docFieldPermissions, "created_at": docFieldCreatedAt, "updated_at": docFieldUpdatedAt,
		"sequence": docFieldSequence, "schema_version": docFieldSchemaVersion, "version": docFieldVersion} {
		check(d, name, num)
	}
	// A field readRawDoc does not know would be dropped from the stored
	// state: every field of Document must be one it reads.
	if n := d.ProtoReflect().Descriptor().Fields().Len(); n != 12 {
		t.Errorf("Document has %d fields; readRawDoc knows 12", n)
	}
}

// randomDoc is a document with each field set or left empty at random.
func randomDoc(r *rand.Rand) *eventsv1.Document {
	str := func() string {
		const chars = "ab\"\\é€😀{}:,0 "
		rs := []rune(chars)
		var sb strings.Builder
		for range r.IntN(4) * r.IntN(20) {
			sb.WriteRune(rs[r.IntN(len(rs))])
		}
		return sb.String()
	}
	num := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Uint64()
		}
		return r.Uint64N(300)
	}
	ts := func() *timestamppb.Timestamp {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return &timestamppb.Timestamp{} // present, empty
		case 2:
			return &timestamppb.Timestamp{Seconds: -r.Int64N(1 << 40), Nanos: -r.Int32N(1e9)}
		}
		return &timestamppb.Timestamp{Seconds: r.Int64N(1 << 40), Nanos: r.Int32N(1e9)}
	}
	d := &eventsv1.Document{Id: str(), ProjectId: str(), DatabaseId: str(), CollectionId: str(), CollectionUid: str(),
		DataJson: str(), CreatedAt: ts(), UpdatedAt: ts(), Sequence: num(), SchemaVersion: num(), Version: num()}
	for range r.IntN(4) {
		d.Permissions = append(d.Permissions, str())
	}
	return d
}

// storedWith is what applyDocument stores: marshal(d) with the read
// model's sequence and version.
func storedWith(t testing.TB, d *eventsv1.Document, seq, version uint64) []byte {
	d = proto.Clone(d).(*eventsv1.Document)
	d.Sequence, d.Version = seq, version
	b, err := marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRawDocEqualsMarshal: for every document proto.Marshal encodes,
// readRawDoc reads it and stores exactly the bytes marshal would.
func TestRawDocEqualsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for range 3000 {
		d := randomDoc(r)
		b, err := proto.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := readRawDoc(b)
		if !ok {
			t.Fatalf("readRawDoc refused proto.Marshal's encoding of %v", d)
		}
		if raw.id != d.Id || raw.projectID != d.ProjectId || raw.databaseID != d.DatabaseId || raw.collectionID != d.CollectionId ||
			raw.collectionUID != d.CollectionUid || raw.data != d.DataJson || raw.seq != d.Sequence || raw.schemaVersion != d.SchemaVersion {
			t.Fatalf("readRawDoc(%v) = %+v", d, raw)
		}
		seq, version := r.Uint64N(1<<20)*uint64(r.IntN(2)), r.Uint64()
		if got, want := raw.stored(seq, version), storedWith(t, d, seq, version); !bytes.Equal(got, want) {
			t.Fatalf("stored(%d, %d) of %v:\n got %x\nwant %x", seq, version, d, got, want)
		}
		// And in an event, any of the three.
		var env *eventsv1.Envelope
		switch r.IntN(3) {
		case 0:
			env = &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}}
		case 1:
			env = &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: d, Before: randomDoc(r), Change: "update"}}}
		default:
			env = &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentDeleted{DocumentDeleted: &eventsv1.DocumentDeleted{Document: d}}}
		}
		env.Id, env.CorrelationId, env.OccurredAt = "01EV", "corr", timestamppb.Now()
		env.Actor = &eventsv1.Actor{Kind: eventsv1.Actor_KIND_API_KEY, Id: "u1", ProjectId: "p", SessionId: "s", Name: "é"}
		eb, err := proto.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		checkRawDocEvent(t, eb, true)
		if header, _, _ := readRawDocEvent(eb); true {
			if id, ok := envelopeID(header); !ok || id != "01EV" {
				t.Fatalf("envelopeID of a marshalled header = %q, %v", id, ok)
			}
		}
	}
}

// checkRawDocEvent fails when readRawDocEvent reads b differently from
// decodeEnvelope, or (when want) does not read it.
func checkRawDocEvent(t *testing.T, b []byte, want bool) {
	t.Helper()
	header, raw, ok := readRawDocEvent(b)
	if !ok {
		if want {
			t.Fatalf("readRawDocEvent refused %x", b)
		}
		return
	}
	full, err := decodeEnvelope(b)
	if err != nil {
		t.Fatalf("readRawDocEvent read %x; decodeEnvelope: %v", b, err)
	}
	var d *eventsv1.Document
	switch pl := full.GetPayload().(type) {
	case *eventsv1.Envelope_DocumentCreated:
		d = pl.DocumentCreated.GetDocument()
	case *eventsv1.Envelope_DocumentUpdated:
		d = pl.DocumentUpdated.GetDocument()
	case *eventsv1.Envelope_DocumentDeleted:
		d = pl.DocumentDeleted.GetDocument()
	default:
		t.Fatalf("readRawDocEvent read %x; decodeEnvelope gives payload %T", b, pl)
	}
	if raw.deleted != (full.GetDocumentDeleted() != nil) {
		t.Fatalf("readRawDocEvent(%x): deleted %v, payload %T", b, raw.deleted, full.GetPayload())
	}
	if got, want := raw.stored(5, 9), storedWith(t, d, 5, 9); !bytes.Equal(got, want) {
		t.Fatalf("readRawDocEvent(%x) stores %x, want %x", b, got, want)
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(header, env); err != nil {
		t.Fatalf("header of %x: %v", b, err)
	}
	env.Payload, full.Payload = nil, nil
	if !proto.Equal(env, full) {
		t.Fatalf("header of %x decodes to %v, want %v", b, env, full)
	}
	checkEnvelopeID(t, header)
}

// checkEnvelopeID fails when envelopeID reads b and proto.Unmarshal does
// not, or finds another id.
func checkEnvelopeID(t *testing.T, b []byte) {
	t.Helper()
	id, ok := envelopeID(b)
	if !ok {
		return
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(b, env); err != nil || env.GetId() != id || env.GetPayload() != nil {
		t.Fatalf("envelopeID(%x) = %q; proto.Unmarshal: %v, %v", b, id, env, err)
	}
}

// FuzzRawDoc: whatever readRawDoc and readRawDocEvent accept, proto reads
// the same way, and the stored bytes are marshal's.
func FuzzRawDoc(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, env := range []*eventsv1.Envelope{
		{Id: "01EV", OccurredAt: timestamppb.Now(), CorrelationId: "c", Actor: &eventsv1.Actor{Kind: eventsv1.Actor_KIND_USER, Id: "u", ProjectId: "p", SessionId: "s", Name: "n"}},
		{Id: "é", Actor: &eventsv1.Actor{}},
	} {
		b, _ := proto.Marshal(env)
		f.Add(b)
	}
	for range 20 {
		d := randomDoc(r)
		b, _ := proto.Marshal(d)
		f.Add(b)
		eb, _ := proto.Marshal(&eventsv1.Envelope{Id: "01EV", Payload: &eventsv1.Envelope_DocumentUpdated{
			DocumentUpdated: &eventsv1.DocumentUpdated{Document: d, Before: d, Change: "update"}}})
		f.Add(eb)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if raw, ok := readRawDoc(b); ok {
			d := &eventsv1.Document{}
			if err := proto.Unmarshal(b, d); err != nil {
				t.Fatalf("readRawDoc read %x; proto.Unmarshal: %v", b, err)
			}
			if got, want := raw.stored(3, 4), storedWith(t, d, 3, 4); !bytes.Equal(got, want) {
				t.Fatalf("readRawDoc(%x) stores %x, want %x", b, got, want)
			}
		}
		checkRawDocEvent(t, b, false)
		checkEnvelopeID(t, b)
	})
}

// TestRawDocRefuses: encodings proto reads but marshal would not write are
// left to the decoder.
func TestRawDocRefuses(t *testing.T) {
	d := &eventsv1.Document{Id: "d1", ProjectId: "p", DataJson: `{}`, Permissions: []string{"a", "b"},
		CreatedAt: timestamppb.New(timestamppb.Now().AsTime()), Sequence: 4, SchemaVersion: 2}
	b, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	for name, enc := range map[string][]byte{
		"field out of order":  protowire.AppendString(tag(bytes.Clone(b), docFieldID, protowire.BytesType), "d2"),
		"unknown field":       protowire.AppendVarint(tag(bytes.Clone(b), 99, protowire.VarintType), 1),
		"empty string":        protowire.AppendString(tag(nil, docFieldID, protowire.BytesType), ""),
		"zero varint":         protowire.AppendVarint(tag(nil, docFieldSequence, protowire.VarintType), 0),
		"long varint":         append(tag(nil, docFieldSequence, protowire.VarintType), 0x81, 0x00),
		"invalid UTF-8":       protowire.AppendString(tag(nil, docFieldID, protowire.BytesType), "\xff"),
		"wrong wire type":     protowire.AppendVarint(tag(nil, docFieldID, protowire.VarintType), 1),
		"timestamp unordered": protowire.AppendBytes(tag(nil, docFieldCreatedAt, protowire.BytesType), []byte{0x10, 0x01, 0x08, 0x01}),
		"long tag":            append([]byte{0x88, 0x00}, 0x01), // field 1, varint, in two bytes
	} {
		if _, ok := readRawDoc(enc); ok {
			t.Errorf("%s: readRawDoc read %x", name, enc)
		}
	}
	for name, env := range map[string]*eventsv1.Envelope{
		"payload in the header": {Id: "01EV", Payload: &eventsv1.Envelope_ProjectCreated{ProjectCreated: &eventsv1.ProjectCreated{}}},
		"invalid UTF-8 name":    {Id: "01EV", Actor: &eventsv1.Actor{Name: "\xff"}},
	} {
		b, err := proto.MarshalOptions{}.Marshal(env)
		if err != nil {
			b = protowire.AppendString(protowire.AppendTag(nil, envFieldActor, protowire.BytesType),
				string(protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), "\xff")))
		}
		if id, ok := envelopeID(b); ok {
			t.Errorf("%s: envelopeID read %x (id %q)", name, b, id)
		}
	}
	twice, _ := proto.Marshal(&eventsv1.DocumentCreated{Document: d})
	twice = append(twice, twice...) // two documents merge
	env := protowire.AppendBytes(tag(nil, envFieldDocumentCreated, protowire.BytesType), twice)
	if _, _, ok := readRawDocEvent(env); ok {
		t.Error("readRawDocEvent read a payload with two documents")
	}
	one, _ := proto.Marshal(&eventsv1.DocumentCreated{Document: d})
	env = protowire.AppendBytes(tag(nil, envFieldDocumentCreated, protowire.BytesType), one)
	env = append(env, env...) // the payload twice merges too
	if _, _, ok := readRawDocEvent(env); ok {
		t.Error("readRawDocEvent read an envelope with the payload twice")
	}
}
