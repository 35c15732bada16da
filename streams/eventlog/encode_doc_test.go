package eventlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// TestEncodeDocumentCreatedAgrees: the hand encoder writes what
// proto.Marshal (deterministic) writes, for random envelopes with every
// field empty, set, or at its edges.
func TestEncodeDocumentCreatedAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 2))
	str := func() string {
		switch r.IntN(6) {
		case 0:
			return ""
		case 1:
			return "é✓ " + strings.Repeat("x", r.IntN(300))
		case 2:
			return strings.Repeat("long", 40+r.IntN(100)) // a two-byte length
		}
		return fmt.Sprintf("s%d", r.Uint64())
	}
	ts := func() *timestamppb.Timestamp {
		switch r.IntN(5) {
		case 0:
			return nil
		case 1:
			return &timestamppb.Timestamp{}
		case 2:
			return &timestamppb.Timestamp{Seconds: -r.Int64N(1 << 40), Nanos: -r.Int32N(1e9)}
		}
		return &timestamppb.Timestamp{Seconds: r.Int64N(1 << 40), Nanos: r.Int32N(1e9)}
	}
	num := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return ^uint64(0) - r.Uint64N(10)
		}
		return r.Uint64N(1 << uint(r.IntN(63)+1))
	}
	for i := range 20_000 {
		env := &eventsv1.Envelope{Id: str(), OccurredAt: ts(), CorrelationId: str()}
		if r.IntN(5) > 0 {
			env.Actor = &eventsv1.Actor{Kind: eventsv1.Actor_Kind(r.IntN(7) - 1), Id: str(), ProjectId: str(), SessionId: str(), Name: str()}
		}
		created := &eventsv1.DocumentCreated{}
		if r.IntN(10) > 0 {
			d := &eventsv1.Document{Id: str(), ProjectId: str(), DatabaseId: str(), CollectionId: str(), CollectionUid: str(),
				DataJson: str(), CreatedAt: ts(), UpdatedAt: ts(), Sequence: num(), SchemaVersion: num(), Version: num()}
			for range r.IntN(4) {
				d.Permissions = append(d.Permissions, str())
			}
			created.Document = d
		}
		env.Payload = &eventsv1.Envelope_DocumentCreated{DocumentCreated: created}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := encodeDocumentCreated(env)
		if !ok {
			t.Fatalf("case %d: not written by hand: %v", i, env)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: %v\nby hand    %x\nproto.Marshal %x", i, env, got, want)
		}
	}
	// What the hand encoder leaves to proto.Marshal, with its error.
	bad := &eventsv1.Envelope{Id: "x", Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{
		Document: &eventsv1.Document{Id: "d", DataJson: "\xff"}}}}
	if _, ok := encodeDocumentCreated(bad); ok {
		t.Error("invalid UTF-8 written by hand")
	}
	if _, err := Encode(bad); err == nil {
		t.Error("Encode accepted invalid UTF-8")
	}
	unknown := &eventsv1.Envelope{Id: "x", Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: &eventsv1.Document{Id: "d"}}}}
	unknown.GetDocumentCreated().GetDocument().ProtoReflect().SetUnknown(protoreflect.RawFields{0x98, 0x06, 0x01}) // field 99, varint 1
	if _, ok := encodeDocumentCreated(unknown); ok {
		t.Error("unknown fields written by hand")
	}
	if b, err := Encode(unknown); err != nil || !bytes.Contains(b, []byte{0x98, 0x06, 0x01}) {
		t.Errorf("Encode of unknown fields = %x, %v", b, err)
	}
	if _, ok := encodeDocumentCreated(&eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentDeleted{}}); ok {
		t.Error("another payload written by hand")
	}
}

// TestEncodeDocumentCreatedKnowsEveryField: the messages the hand encoder
// writes have the fields it knows, and no others.
func TestEncodeDocumentCreatedKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		m    proto.Message
		want []protoreflect.FieldNumber
	}{
		{&eventsv1.Document{}, []protoreflect.FieldNumber{docID, docProjectID, docDatabaseID, docCollectionID, docCollectionUID, docDataJSON,
			docPermissions, docCreatedAt, docUpdatedAt, docSequence, docSchemaVersion, docVersion}},
		{&eventsv1.Actor{}, []protoreflect.FieldNumber{actorKind, actorID, actorProjectID, actorSessionID, actorName}},
		{&eventsv1.DocumentCreated{}, []protoreflect.FieldNumber{createdDocument}},
		{&timestamppb.Timestamp{}, []protoreflect.FieldNumber{tsSeconds, tsNanos}},
	} {
		fs := c.m.ProtoReflect().Descriptor().Fields()
		var got []protoreflect.FieldNumber
		for i := range fs.Len() {
			got = append(got, fs.Get(i).Number())
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s has fields %v; the hand encoder writes %v: teach it the new ones", c.m.ProtoReflect().Descriptor().FullName(), got, c.want)
		}
	}
	// The envelope's fields before its payload.
	fs := (&eventsv1.Envelope{}).ProtoReflect().Descriptor().Fields()
	for i := range fs.Len() {
		f := fs.Get(i)
		if f.ContainingOneof() == nil && f.Number() > envCorrelationID {
			t.Errorf("Envelope has field %s (%d) the hand encoder does not write", f.Name(), f.Number())
		}
	}
	if f := fs.ByNumber(envDocumentCreated); f == nil || f.Message().FullName() != "cairn.events.v1.DocumentCreated" {
		t.Errorf("Envelope field %d is not document_created", envDocumentCreated)
	}
}

// BenchmarkEncodeDocumentCreated: a create's envelope (pbcompare's
// document) by hand and by proto.Marshal, in one run.
func BenchmarkEncodeDocumentCreated(b *testing.B) {
	at := timestamppb.Now()
	env := &eventsv1.Envelope{Id: "01KBXZ8W4Q6M0V7N3R2T1Y5P9C", OccurredAt: at, CorrelationId: "01KBXZ8W4Q6M0V7N3R2T1Y5P9D",
		Actor: &eventsv1.Actor{Kind: eventsv1.Actor_KIND_API_KEY, Id: "key1", ProjectId: "bench"},
		Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: &eventsv1.Document{
			Id: "d12345", ProjectId: "bench", DatabaseId: "main", CollectionId: "items", CollectionUid: "01KBXZ8W4Q6M0V7N3R2T1Y5P9E",
			DataJson: `{"n":96783,"tag":"t5","title":"document number 12345"}`, CreatedAt: at, UpdatedAt: at, SchemaVersion: 3}}}}
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			if _, ok := encodeDocumentCreated(env); !ok {
				b.Fatal("not by hand")
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			if _, err := (proto.MarshalOptions{Deterministic: true}).Marshal(env); err != nil {
				b.Fatal(err)
			}
		}
	})
}
