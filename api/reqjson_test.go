package api

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

var getDocumentSeeds = []string{
	`{"projectId":"bench","databaseId":"main","collectionId":"items","documentId":"d42"}`,
	` { "project_id" : "p" , "database_id":"db",` + "\n\t\r" + `"collection_id":"c","document_id":"d","select":["a","b"],"transactionId":"t"} `,
	`{}`, `{"select":[]}`, `{"select":[ ]}`, `{"select":["a",]}`, `{"select":null}`, `{"projectId":null}`,
	`{"projectId":"a","project_id":"b"}`, `{"projectId":"a","projectId":"a"}`, `{"id":"x"}`, `{"projectId":"a\"b"}`,
	`{"projectId":"\u0061"}`, `{"projectId":"é"}`, `{"projectId":1}`, `{"projectId":"a"}x`, `{"projectId":"a",}`,
	`{"projectId":"a"`, `[]`, ``, `{"documentId":"a b"}`, `{"select":["a"],"select":["b"]}`, `{"ProjectId":"a"}`,
}

// checkGetDocumentJSON: whatever decodeGetDocumentJSON reads, protojson
// (as Cairn's codec configures it) reads the same.
func checkGetDocumentJSON(t *testing.T, data []byte) bool {
	t.Helper()
	return readsAsProtojson(t, data, decodeGetDocumentJSON)
}

// readsAsProtojson: whatever decode reads by hand, protojson (as Cairn's
// codec configures it) reads the same; false when decode leaves data to
// protojson.
func readsAsProtojson[T any, M interface {
	*T
	proto.Message
}](t *testing.T, data []byte, decode func([]byte, M) bool) bool {
	t.Helper()
	fast := M(new(T))
	if !decode(data, fast) {
		return false
	}
	slow := M(new(T))
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, slow); err != nil {
		t.Fatalf("%q: read by hand as %v, protojson refuses it: %v", data, fast, err)
	}
	if !proto.Equal(fast, slow) {
		t.Fatalf("%q: read by hand as %v, protojson reads %v", data, fast, slow)
	}
	return true
}

func FuzzGetDocumentRequestJSON(f *testing.F) {
	for _, s := range getDocumentSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkGetDocumentJSON(t, data) })
}

// TestGetDocumentRequestJSONAgrees runs the fuzz check on random
// requests and byte-level mutations of them, and checks that the common
// request is read by hand and a refused one is refused in protojson's
// words.
func TestGetDocumentRequestJSONAgrees(t *testing.T) {
	if !checkGetDocumentJSON(t, []byte(getDocumentSeeds[0])) || !checkGetDocumentJSON(t, []byte(getDocumentSeeds[1])) {
		t.Fatal("the plain request is not read by hand")
	}
	rng := rand.New(rand.NewPCG(19, 4))
	names := []string{"projectId", "project_id", "databaseId", "collectionId", "documentId", "document_id", "select", "transactionId", "id", "Select"}
	values := []string{`"a"`, `"bench-1"`, `""`, `null`, `1`, `"a\"b"`, `"é"`, `["x","y"]`, `[]`, `[null]`, `{}`, `true`}
	read := 0
	for range 20000 {
		var b strings.Builder
		b.WriteString("{")
		for i := range rng.IntN(6) {
			if i > 0 {
				b.WriteString([]string{",", " , ", ",\n"}[rng.IntN(3)])
			}
			b.WriteString(`"` + names[rng.IntN(len(names))] + `":` + values[rng.IntN(len(values))])
		}
		b.WriteString("}")
		data := []byte(b.String())
		data = mutateJSON(rng, data, "{}[]\":, \\a")
		if checkGetDocumentJSON(t, data) {
			read++
		}
	}
	if read < 1000 {
		t.Fatalf("only %d of 20,000 requests read by hand: the test does not exercise the reader", read)
	}

	seedsReadAsCodec[cairnv1.GetDocumentRequest](t, getDocumentSeeds)
}

// mutateJSON changes, drops or adds (from alphabet) one random byte of
// data, a third of the time: requests just off the plain form.
func mutateJSON(rng *rand.Rand, data []byte, alphabet string) []byte {
	if rng.IntN(3) != 0 || len(data) == 0 {
		return data
	}
	i := rng.IntN(len(data))
	switch rng.IntN(3) {
	case 0:
		data[i] = byte(rng.IntN(256))
	case 1:
		data = append(data[:i], data[i+1:]...)
	default:
		data = append(data[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, data[i:]...)...)
	}
	return data
}

// seedsReadAsCodec: through the codec Cairn serves, every seed ends as
// protojson's message or its error, word for word.
func seedsReadAsCodec[T any, M interface {
	*T
	proto.Message
}](t *testing.T, seeds []string) {
	t.Helper()
	codec := connectproto.NewJSONCodec()
	codec.UnmarshalOptions.DiscardUnknown = false
	for _, s := range seeds {
		viaCodec, viaShortcut := M(new(T)), M(new(T))
		want := codec.UnmarshalRead(context.Background(), bytes.NewReader([]byte(s)), viaCodec)
		got := unmarshalRequestJSON(context.Background(), codec, bytes.NewReader([]byte(s)), viaShortcut)
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() || !proto.Equal(viaCodec, viaShortcut) {
			t.Errorf("%q: read as %v (%v), protojson reads %v (%v)", s, viaShortcut, got, viaCodec, want)
		}
	}
}
