package api

import (
	"math/rand/v2"
	"strings"
	"testing"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestQuickListRulesUnchanged fails when the fields or rules of
// ListDocumentsRequest, Filter or Order change: listDocumentsValid checks
// them by hand and must learn the change first.
func TestQuickListRulesUnchanged(t *testing.T) {
	str := func(r *validatepb.StringRules) *validatepb.FieldRules {
		return &validatepb.FieldRules{Type: &validatepb.FieldRules_String_{String_: r}}
	}
	items := func(n uint64) *validatepb.FieldRules {
		return &validatepb.FieldRules{Type: &validatepb.FieldRules_Repeated{Repeated: &validatepb.RepeatedRules{MaxItems: proto.Uint64(n)}}}
	}
	gte0 := &validatepb.FieldRules{Type: &validatepb.FieldRules_Int32{Int32: &validatepb.Int32Rules{GreaterThan: &validatepb.Int32Rules_Gte{Gte: 0}}}}
	resource := str(&validatepb.StringRules{Pattern: proto.String(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,35}$`)})
	for _, c := range []struct {
		msg  proto.Message
		want map[protoreflect.Name]*validatepb.FieldRules
	}{
		{&cairnv1.ListDocumentsRequest{}, map[protoreflect.Name]*validatepb.FieldRules{
			"project_id": str(&validatepb.StringRules{Pattern: proto.String(`^[a-z0-9][a-z0-9-]{0,35}$`)}), "database_id": resource, "collection_id": resource,
			"filters": items(100), "select": items(100), "orders": items(8), "limit": gte0, "offset": gte0,
			"cursor_after": str(&validatepb.StringRules{MaxLen: proto.Uint64(36)}), "cursor_before": str(&validatepb.StringRules{MaxLen: proto.Uint64(36)}),
			"total": nil, "explain": nil,
		}},
		{&cairnv1.Filter{}, map[protoreflect.Name]*validatepb.FieldRules{
			"op":        {Type: &validatepb.FieldRules_Enum{Enum: &validatepb.EnumRules{DefinedOnly: proto.Bool(true), NotIn: []int32{0}}}},
			"attribute": str(&validatepb.StringRules{MaxLen: proto.Uint64(64)}), "values": items(100), "filters": items(100),
		}},
		{&cairnv1.Order{}, map[protoreflect.Name]*validatepb.FieldRules{
			"attribute": str(&validatepb.StringRules{MinLen: proto.Uint64(1), MaxLen: proto.Uint64(64)}), "desc": nil, "seed": nil,
		}},
	} {
		md := c.msg.ProtoReflect().Descriptor()
		// total is proto3 optional: its synthetic oneof is the only one.
		oneofs := 0
		for i := range md.Oneofs().Len() {
			if !md.Oneofs().Get(i).IsSynthetic() {
				oneofs++
			}
		}
		if md.Fields().Len() != len(c.want) || oneofs != 0 || proto.HasExtension(md.Options(), validatepb.E_Message) {
			t.Fatalf("%s's fields or message rules changed: update listDocumentsValid (quickvalidate.go)", md.FullName())
		}
		for name, rules := range c.want {
			fd := md.Fields().ByName(name)
			if fd == nil {
				t.Fatalf("%s has no field %s any more: update listDocumentsValid", md.FullName(), name)
			}
			got, _ := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules)
			if rules == nil && got != nil || rules != nil && !proto.Equal(got, rules) {
				t.Fatalf("the rules of %s.%s are now %v, listDocumentsValid checks %v: update it", md.FullName(), name, got, rules)
			}
		}
	}
}

// TestQuickListValidatorAgrees: for random ListDocuments requests near the
// rules' edges, the shortcut passes only what protovalidate passes, and
// every answer of quickValidator is protovalidate's own.
func TestQuickListValidatorAgrees(t *testing.T) {
	full, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	quick := quickValidator{full}
	rng := rand.New(rand.NewPCG(19, 9))
	text := func(max int) string {
		var b strings.Builder
		n := rng.IntN(max + 4)
		if rng.IntN(3) == 0 {
			n = max - 1 + rng.IntN(3)
		}
		for range n {
			if rng.IntN(20) == 0 {
				b.WriteString(string([]rune("abcz09AZ-_.é/ \n")[rng.IntN(15)]))
			} else {
				b.WriteByte("abcxyz0189"[rng.IntN(10)])
			}
		}
		return b.String()
	}
	var filters func(depth int) []*cairnv1.Filter
	filters = func(depth int) []*cairnv1.Filter {
		n := rng.IntN(3)
		if rng.IntN(30) == 0 {
			n = 99 + rng.IntN(3)
		}
		out := make([]*cairnv1.Filter, n)
		for i := range out {
			f := &cairnv1.Filter{Op: cairnv1.Operator(rng.IntN(40)), Attribute: text(64)}
			if rng.IntN(4) > 0 {
				f.Op = cairnv1.Operator_OPERATOR_EQUAL
			}
			for range rng.IntN(3) {
				f.Values = append(f.Values, structpb.NewStringValue("v"))
			}
			if rng.IntN(30) == 0 {
				f.Values = make([]*structpb.Value, 99+rng.IntN(3))
				for j := range f.Values {
					f.Values[j] = structpb.NewNumberValue(float64(j))
				}
			}
			if depth < 2 && rng.IntN(5) == 0 {
				f.Filters = filters(depth + 1)
			}
			out[i] = f
		}
		return out
	}
	shortcuts := 0
	for i := range 20000 {
		m := &cairnv1.ListDocumentsRequest{ProjectId: text(36), DatabaseId: text(36), CollectionId: text(36), Filters: filters(0),
			Limit: int32(rng.IntN(60) - 5), Offset: int32(rng.IntN(60) - 5), CursorAfter: text(36), CursorBefore: text(36), Explain: rng.IntN(2) == 0}
		if rng.IntN(3) > 0 {
			m.ProjectId, m.DatabaseId, m.CollectionId = "bench", "main", "items"
		}
		if rng.IntN(2) == 0 {
			m.Total = proto.Bool(rng.IntN(2) == 0)
		}
		if rng.IntN(10) == 0 {
			m.Select = make([]string, 98+rng.IntN(4))
		}
		for range rng.IntN(10) {
			m.Orders = append(m.Orders, &cairnv1.Order{Attribute: text(64), Desc: rng.IntN(2) == 0, Seed: rng.Uint64()})
		}
		want := full.Validate(m)
		if listDocumentsValid(m) {
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
	if shortcuts < 500 {
		t.Fatalf("only %d of 20,000 requests took the shortcut: the test does not exercise it", shortcuts)
	}
	t.Logf("%d of 20,000 requests took the shortcut", shortcuts)
}
