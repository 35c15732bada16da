package api

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

var createDocumentSeeds = []string{
	`{"collectionId":"items","databaseId":"main","document":{"data":{"n":7919,"tag":"t1","title":"document number 1"},"documentId":"d1"},"projectId":"bench"}`,
	` { "project_id" : "p" , "database_id":"db",` + "\n\t\r" + `"collection_id":"c","document":{"document_id":"unique()","data":{"a":[1,2.5,-3e2,true,false,null,"x",{"b":{}},[]],"é":"ü€𝄞"},"permissions":{"values":["read(\"any\")"]}}} `,
	`{}`, `{"document":{}}`, `{"document":null}`, `{"document":{"data":null}}`, `{"document":{"data":{}}}`,
	`{"document":{"data":{"a":1,"a":2}}}`, `{"document":{"data":{"a":01}}}`, `{"document":{"data":{"a":1.}}}`,
	`{"document":{"data":{"a":-}}}`, `{"document":{"data":{"a":1e400}}}`, `{"document":{"data":{"a":1e-400}}}`,
	`{"document":{"data":{"a":"\u0041"}}}`, `{"document":{"data":{"a":"\xff"}}}`, `{"document":{"data":{"a":tru}}}`,
	`{"document":{"data":{"a":truex}}}`, `{"document":{"data":{"a":nul}}}`, `{"document":{"data":{"a":[1,]}}}`,
	`{"document":{"data":{"a":1}},"document":{}}`, `{"document":{"documentId":"","documentId":"x"}}`,
	`{"document":{"permissions":{}}}`, `{"document":{"permissions":{"values":[]}}}`, `{"document":{"permissions":null}}`,
	`{"document":{"permissions":{"values":["a"],"values":[]}}}`, `{"projectId":"a","project_id":"a"}`,
	`{"projectId":""}`, `{"projectId":"","projectId":"a"}`, `{"document":{"data":{"a":1}}`, `{"document":{"data":{"a":-0}}}`,
	`{"document":{"data":{"a":1E+2,"b":0.5e-3,"c":123456789012345678901234567890}}}`, `{"Document":{}}`, `[]`, ``,
	`{"document":{"data":{"a":"line\nbreak"}}}`, `{"document":{"data":{"":1}}}`, `{"document":{"data":{"a":"\u2028"}}}`,
	`{"document":{"data":{"a":"\ud834\udd1e"}}}`, `{"document":{"data":{"a\"b":"\/\b\f\n\r\t\\\u00e9"}}}`,
}

// checkCreateDocumentJSON: whatever decodeCreateDocumentJSON reads,
// protojson (as Cairn's codec configures it) reads the same.
func checkCreateDocumentJSON(t *testing.T, data []byte) bool {
	t.Helper()
	return readsAsProtojson(t, data, decodeCreateDocumentJSON)
}

func FuzzCreateDocumentRequestJSON(f *testing.F) {
	for _, s := range createDocumentSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkCreateDocumentJSON(t, data) })
}

// randomJSONValue is a random JSON value for a document's data, now and
// then at the edges of what the hand reader takes.
func randomJSONValue(rng *rand.Rand, depth int) string {
	switch n := rng.IntN(12); {
	case n < 3:
		return `"` + []string{"t1", "document number 5", "é ü", "", "a b\tc", "𝄞", "\\u0041", "x\\\"y", "\\ud834\\udd1e", "\\ud800", "\\/\\b\\f\\n\\r\\t\\\\", "\\x", "\\u00e9\\u20AC", "\\u12"}[rng.IntN(14)] + `"`
	case n < 6:
		return []string{"0", "-0", "7919", "-12.5", "1e3", "2.5E-3", "1e400", "01", "1.", "123456789012345678901234567890", "-", ".5"}[rng.IntN(12)]
	case n < 8:
		return []string{"true", "false", "null", "nul", "True"}[rng.IntN(5)]
	case n < 10 && depth < 4:
		var b strings.Builder
		b.WriteString("[")
		for i := range rng.IntN(4) {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(randomJSONValue(rng, depth+1))
		}
		b.WriteString("]")
		return b.String()
	case depth < 4:
		return randomJSONObject(rng, depth+1)
	}
	return `"leaf"`
}

func randomJSONObject(rng *rand.Rand, depth int) string {
	keys := []string{"title", "n", "tag", "a", "é", "", "a\\u0062", "title"}
	var b strings.Builder
	b.WriteString("{")
	for i := range rng.IntN(5) {
		if i > 0 {
			b.WriteString([]string{",", " , ", ",\n"}[rng.IntN(3)])
		}
		b.WriteString(`"` + keys[rng.IntN(len(keys))] + `":` + randomJSONValue(rng, depth))
	}
	b.WriteString("}")
	return b.String()
}

// randomCreateDocumentJSON is a random CreateDocument request body,
// mostly well formed.
func randomCreateDocumentJSON(rng *rand.Rand) []byte {
	names := []string{"projectId", "project_id", "databaseId", "collectionId", "collection_id", "document", "id", "Document"}
	ids := []string{`"a"`, `"bench-1"`, `""`, `null`, `1`, `"a\"b"`, `"é"`, `"unique()"`, `["x"]`}
	var b strings.Builder
	b.WriteString("{")
	for i := range rng.IntN(6) {
		if i > 0 {
			b.WriteString(",")
		}
		name := names[rng.IntN(len(names))]
		b.WriteString(`"` + name + `":`)
		if name != "document" {
			b.WriteString(ids[rng.IntN(len(ids))])
			continue
		}
		b.WriteString("{")
		for j := range rng.IntN(4) {
			if j > 0 {
				b.WriteString(",")
			}
			switch rng.IntN(5) {
			case 0:
				b.WriteString(`"documentId":` + ids[rng.IntN(len(ids))])
			case 1:
				b.WriteString(`"permissions":{"values":["read(\"any\")","update(\"users\")"]}`)
			case 2:
				b.WriteString(`"permissions":` + []string{`{}`, `null`, `{"values":[]}`, `{"values":null}`, `{"values":["x"],"values":[]}`}[rng.IntN(5)])
			default:
				b.WriteString(`"data":` + randomJSONObject(rng, 0))
			}
		}
		b.WriteString("}")
	}
	b.WriteString("}")
	data := []byte(b.String())
	return mutateJSON(rng, data, "{}[]\":, \\a0e-.")
}

// TestCreateDocumentRequestJSONAgrees runs the fuzz check on random
// requests and byte-level mutations of them, and checks that the common
// request is read by hand and a refused one is refused in protojson's
// words, through the codec Cairn serves.
func TestCreateDocumentRequestJSONAgrees(t *testing.T) {
	if !checkCreateDocumentJSON(t, []byte(createDocumentSeeds[0])) || !checkCreateDocumentJSON(t, []byte(createDocumentSeeds[1])) {
		t.Fatal("the plain request is not read by hand")
	}
	rng := rand.New(rand.NewPCG(19, 2))
	read := 0
	for range 30000 {
		if checkCreateDocumentJSON(t, randomCreateDocumentJSON(rng)) {
			read++
		}
	}
	if read < 1000 {
		t.Fatalf("only %d of 30,000 requests read by hand: the test does not exercise the reader", read)
	}

	seedsReadAsCodec[cairnv1.CreateDocumentRequest](t, createDocumentSeeds)
}

// TestCreateDocumentValidatorRulesUnchanged fails when the fields or rules
// of CreateDocumentRequest, DocumentInput or Permissions change:
// createDocumentValid checks them by hand and must learn the change first.
func TestCreateDocumentValidatorRulesUnchanged(t *testing.T) {
	str := func(pattern string) *validatepb.FieldRules {
		return &validatepb.FieldRules{Type: &validatepb.FieldRules_String_{String_: &validatepb.StringRules{Pattern: proto.String(pattern)}}}
	}
	resource := str(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,35}$`)
	for _, c := range []struct {
		msg  proto.Message
		want map[protoreflect.Name]*validatepb.FieldRules
	}{
		{&cairnv1.CreateDocumentRequest{}, map[protoreflect.Name]*validatepb.FieldRules{
			"project_id": str(`^[a-z0-9][a-z0-9-]{0,35}$`), "database_id": resource, "collection_id": resource,
			"document": {Required: proto.Bool(true)}}},
		{&cairnv1.DocumentInput{}, map[protoreflect.Name]*validatepb.FieldRules{
			"document_id": str(`^(|unique\(\)|[a-zA-Z0-9][a-zA-Z0-9_-]{0,35})$`), "data": nil, "permissions": nil}},
		{&cairnv1.Permissions{}, map[protoreflect.Name]*validatepb.FieldRules{
			"values": {Type: &validatepb.FieldRules_Repeated{Repeated: &validatepb.RepeatedRules{MaxItems: proto.Uint64(100)}}}}},
	} {
		md := c.msg.ProtoReflect().Descriptor()
		if md.Fields().Len() != len(c.want) || md.Oneofs().Len() != 0 || proto.HasExtension(md.Options(), validatepb.E_Message) {
			t.Fatalf("%s's fields or message rules changed: update createDocumentValid (quickvalidate.go) and decodeCreateDocumentJSON", md.Name())
		}
		for name, rules := range c.want {
			fd := md.Fields().ByName(name)
			if fd == nil {
				t.Fatalf("%s has no field %s any more: update createDocumentValid", md.Name(), name)
			}
			got, _ := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules)
			if rules == nil && got != nil || rules != nil && !proto.Equal(got, rules) {
				t.Fatalf("the rules of %s.%s are now %v, createDocumentValid checks %v: update it", md.Name(), name, got, rules)
			}
		}
	}
}

// TestCreateDocumentValidatorAgrees: for random requests near the rules'
// edges, the shortcut passes only what protovalidate passes, and every
// answer of quickValidator is protovalidate's own.
func TestCreateDocumentValidatorAgrees(t *testing.T) {
	full, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	quick := quickValidator{full}
	rng := rand.New(rand.NewPCG(19, 9))
	const alphabet = "abcz09AZ-_.é/ \n()"
	id := func() string {
		switch rng.IntN(12) {
		case 0:
			return ""
		case 1:
			return "unique()"
		case 2:
			return "unique"
		}
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
		m := &cairnv1.CreateDocumentRequest{ProjectId: id(), DatabaseId: id(), CollectionId: id()}
		if rng.IntN(8) != 0 {
			m.Document = &cairnv1.DocumentInput{DocumentId: id()}
			if rng.IntN(4) == 0 {
				m.Document.Permissions = &cairnv1.Permissions{Values: make([]string, 98+rng.IntN(4))}
				for j := range m.Document.Permissions.Values {
					m.Document.Permissions.Values[j] = "p" + strconv.Itoa(j)
				}
			}
		}
		want := full.Validate(m)
		if createDocumentValid(m) {
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

// BenchmarkCreateDocumentRequest reads and validates pbcompare's create
// request the old way (protojson, protovalidate) and the new (by hand,
// the quick check), over the same bytes.
func BenchmarkCreateDocumentRequest(b *testing.B) {
	body := []byte(createDocumentSeeds[0])
	full, err := protovalidate.New()
	if err != nil {
		b.Fatal(err)
	}
	codec := connectproto.NewJSONCodec()
	codec.UnmarshalOptions.DiscardUnknown = false
	ctx := context.Background()
	for _, c := range []struct {
		name string
		read func(*cairnv1.CreateDocumentRequest) error
		v    protovalidate.Validator
	}{
		{"protojson+protovalidate", func(m *cairnv1.CreateDocumentRequest) error {
			return codec.UnmarshalRead(ctx, bytes.NewReader(body), m)
		}, full},
		{"hand+quick", func(m *cairnv1.CreateDocumentRequest) error {
			return unmarshalRequestJSON(ctx, codec, bytes.NewReader(body), m)
		}, quickValidator{full}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m cairnv1.CreateDocumentRequest
				if err := c.read(&m); err != nil {
					b.Fatal(err)
				}
				if err := c.v.Validate(&m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
