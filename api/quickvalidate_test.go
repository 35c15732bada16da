package api

import (
	"math/rand/v2"
	"strings"
	"testing"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestQuickValidatorRulesUnchanged fails when GetDocumentRequest's fields
// or rules change: getDocumentValid checks them by hand and must learn
// the change first.
func TestQuickValidatorRulesUnchanged(t *testing.T) {
	project := &validatepb.FieldRules{Type: &validatepb.FieldRules_String_{String_: &validatepb.StringRules{Pattern: proto.String(`^[a-z0-9][a-z0-9-]{0,35}$`)}}}
	resource := &validatepb.FieldRules{Type: &validatepb.FieldRules_String_{String_: &validatepb.StringRules{Pattern: proto.String(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,35}$`)}}}
	want := map[protoreflect.Name]*validatepb.FieldRules{
		"project_id": project, "database_id": resource, "collection_id": resource, "document_id": resource,
		"select":         {Type: &validatepb.FieldRules_Repeated{Repeated: &validatepb.RepeatedRules{MaxItems: proto.Uint64(100)}}},
		"transaction_id": {Type: &validatepb.FieldRules_String_{String_: &validatepb.StringRules{MaxLen: proto.Uint64(36)}}},
	}
	md := (&cairnv1.GetDocumentRequest{}).ProtoReflect().Descriptor()
	if md.Fields().Len() != len(want) || md.Oneofs().Len() != 0 || proto.HasExtension(md.Options(), validatepb.E_Message) {
		t.Fatalf("GetDocumentRequest's fields or message rules changed: update getDocumentValid (quickvalidate.go)")
	}
	for name, rules := range want {
		fd := md.Fields().ByName(name)
		if fd == nil {
			t.Fatalf("GetDocumentRequest has no field %s any more: update getDocumentValid", name)
		}
		got, _ := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules)
		if !proto.Equal(got, rules) {
			t.Fatalf("the rules of GetDocumentRequest.%s are now %v, getDocumentValid checks %v: update it", name, got, rules)
		}
	}
}

// TestQuickValidatorAgrees: for random requests near the rules' edges,
// the shortcut passes only what protovalidate passes, and every answer of
// quickValidator is protovalidate's own.
func TestQuickValidatorAgrees(t *testing.T) {
	full, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	quick := quickValidator{full}
	rng := rand.New(rand.NewPCG(19, 8))
	const alphabet = "abcz09AZ-_.é/ \n"
	id := func() string {
		var b strings.Builder
		n := rng.IntN(40)
		if rng.IntN(3) == 0 {
			n = 35 + rng.IntN(3)
		}
		for range n {
			if rng.IntN(20) == 0 {
				b.WriteString(string([]rune(alphabet)[rng.IntN(len([]rune(alphabet)))]))
			} else {
				b.WriteByte("abcxyz0189"[rng.IntN(10)])
			}
		}
		return b.String()
	}
	shortcuts := 0
	for i := range 20000 {
		m := &cairnv1.GetDocumentRequest{ProjectId: id(), DatabaseId: id(), CollectionId: id(), DocumentId: id()}
		if rng.IntN(10) == 0 {
			m.Select = make([]string, 98+rng.IntN(4))
		}
		if rng.IntN(4) == 0 {
			m.TransactionId = strings.Repeat("é", rng.IntN(20)) + strings.Repeat("t", rng.IntN(40))
		}
		want := full.Validate(m)
		if getDocumentValid(m) {
			shortcuts++
			if want != nil {
				t.Fatalf("request %d %v: the shortcut passes it, protovalidate says %v", i, m, want)
			}
		}
		got := quick.Validate(m)
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Fatalf("request %d %v: quickValidator says %v, protovalidate %v", i, m, got, want)
		}
	}
	if shortcuts < 1000 {
		t.Fatalf("only %d of 20,000 requests took the shortcut: the test does not exercise it", shortcuts)
	}
}
