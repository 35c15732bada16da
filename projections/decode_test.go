package projections

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func TestDecodeEnvelopeFieldNumbers(t *testing.T) {
	env := (&eventsv1.Envelope{}).ProtoReflect().Descriptor()
	if n := env.Fields().ByName("document_updated").Number(); n != envFieldDocumentUpdated {
		t.Errorf("Envelope.document_updated is field %d, decodeEnvelope reads %d", n, envFieldDocumentUpdated)
	}
	du := (&eventsv1.DocumentUpdated{}).ProtoReflect().Descriptor()
	if n := du.Fields().ByName("before").Number(); n != docUpdatedFieldBefore {
		t.Errorf("DocumentUpdated.before is field %d, decodeEnvelope skips %d", n, docUpdatedFieldBefore)
	}
}

// TestDecodeEnvelope: decodeEnvelope equals proto.Unmarshal but for a
// DocumentUpdated's before, whatever the encoding, and skips the before
// in the usual one.
func TestDecodeEnvelope(t *testing.T) {
	doc := func(data string) *eventsv1.Document {
		return &eventsv1.Document{Id: "d1", ProjectId: "p", DatabaseId: "db", CollectionId: "c", CollectionUid: "u", DataJson: data,
			Permissions: []string{`read("any")`}, CreatedAt: timestamppb.New(timestamppb.Now().AsTime()), Sequence: 7}
	}
	updated := &eventsv1.Envelope{Id: "01A", CorrelationId: "corr", Actor: &eventsv1.Actor{Id: "u1"},
		Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: doc(`{"a":2}`), Before: doc(`{"a":1}`), Change: "update"}}}
	created := &eventsv1.Envelope{Id: "01B", Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: doc(`{}`)}}}
	marshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	up, cr := marshal(updated), marshal(created)
	// The same payload twice (the last wins), a payload after it, and the
	// envelope's id after it: each decoded whole.
	twice := append(append([]byte(nil), up...), up[len(marshal(&eventsv1.Envelope{Id: "01A", CorrelationId: "corr", Actor: &eventsv1.Actor{Id: "u1"}})):]...)
	then := append(append([]byte(nil), up...), cr...)
	idAfter := protowire.AppendString(protowire.AppendTag(append([]byte(nil), up...), 1, protowire.BytesType), "01Z")
	for name, b := range map[string][]byte{"updated": up, "created": cr, "twice": twice, "created after": then, "id after": idAfter} {
		want := &eventsv1.Envelope{}
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatal(err)
		}
		if du := want.GetDocumentUpdated(); du != nil {
			du.Before = nil
		}
		got, err := decodeEnvelope(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if du := got.GetDocumentUpdated(); du != nil {
			if name == "updated" && du.Before != nil {
				t.Error("the usual encoding was decoded whole")
			}
			du.Before = nil // decoded whole otherwise
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: decodeEnvelope = %v, want %v", name, got, want)
		}
	}
	if _, err := decodeEnvelope(up[:len(up)-3]); err == nil {
		t.Error("a truncated envelope decoded")
	}
}

// TestJSONObject: a bulk rebuild stops on the data a live projector's
// DecodeData stops on, and on nothing else.
func TestJSONObject(t *testing.T) {
	schema := &database.Schema{}
	for _, data := range []string{"", `{}`, ` {"a":1}`, `{"a":1} trailing`, `null`, `[1]`, `"x"`, `{"a":`, `nonsense`, `1`} {
		_, err := schema.DecodeData(data, 0)
		if got := jsonObject(data); got != (err == nil) {
			t.Errorf("jsonObject(%q) = %v, DecodeData error %v", data, got, err)
		}
	}
}
