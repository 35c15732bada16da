package api

import (
	"math/rand/v2"
	"strings"
	"testing"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

var listDocumentsSeeds = []string{
	// pbcompare's list, as Cairn's TypeScript client words it too.
	`{"projectId":"bench","databaseId":"main","collectionId":"items","filters":[{"op":"OPERATOR_EQUAL","attribute":"tag","values":["t3"]}],"orders":[{"attribute":"n","desc":true}],"limit":25,"total":false}`,
	` { "project_id" : "p" , "database_id":"db",` + "\n\t\r" + `"collection_id":"c","select":["a","b"],"offset":0,"cursor_after":"x","cursorBefore":"y","explain":true,` +
		`"filters":[{"op":"OPERATOR_OR","filters":[{"op":"OPERATOR_LESS_THAN","attribute":"n","values":[-12, 0, 7, true, false, null, "s"]}]}],"orders":[{"attribute":"$random","seed":123}]} `,
	`{}`, `{"filters":[]}`, `{"orders":[{}]}`, `{"filters":[{}]}`, `{"limit":-1}`, `{"limit":1.5}`, `{"limit":1e2}`, `{"limit":"25"}`, `{"limit":025}`,
	`{"limit":2147483648}`, `{"limit":999999999}`, `{"total":null}`, `{"total":tru}`, `{"total":truex}`, `{"explain":false}`,
	`{"filters":[{"op":"OPERATOR_NOPE"}]}`, `{"filters":[{"op":3}]}`, `{"filters":[{"op":"OPERATOR_EQUAL","op":"OPERATOR_EQUAL"}]}`,
	`{"filters":[{"values":[1.5]}]}`, `{"filters":[{"values":[-]}]}`, `{"filters":[{"values":[- 1]}]}`, `{"filters":[{"values":[-0]}]}`,
	`{"filters":[{"values":[{}]}]}`, `{"filters":[{"values":[[]]}]}`, `{"filters":[{"values":[1234567890123456]}]}`, `{"filters":[{"values":[nul]}]}`,
	`{"orders":[{"seed":-1}]}`, `{"orders":[{"seed":"1"}]}`, `{"orders":[{"desc":1}]}`, `{"orders":[{"attribute":"a","x":1}]}`,
	`{"projectId":"a","project_id":"b"}`, `{"select":["a",]}`, `{"filters":[{"attribute":"a"},]}`, `{"projectId":"\u0061"}`, `{"projectId":"é"}`,
	`{"filters":[{"filters":[{"filters":[{"filters":[{"filters":[{"filters":[{"filters":[{"filters":[{"filters":[{"filters":[]}]}]}]}]}]}]}]}]}]}`,
	`{"limit":25}x`, `{"limit":25`, `[]`, ``,
}

// checkListDocumentsJSON: whatever decodeListDocumentsJSON reads, protojson
// (as Cairn's codec configures it) reads the same.
func checkListDocumentsJSON(t *testing.T, data []byte) bool {
	t.Helper()
	return readsAsProtojson(t, data, decodeListDocumentsJSON)
}

func FuzzListDocumentsRequestJSON(f *testing.F) {
	for _, s := range listDocumentsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkListDocumentsJSON(t, data) })
}

// TestListDocumentsRequestJSONAgrees runs the fuzz check on the seeds and
// on random requests and byte-level mutations of them, checks that the
// common request is read by hand, and that through the codec every seed
// ends as protojson's message or error.
func TestListDocumentsRequestJSONAgrees(t *testing.T) {
	if !checkListDocumentsJSON(t, []byte(listDocumentsSeeds[0])) || !checkListDocumentsJSON(t, []byte(listDocumentsSeeds[1])) {
		t.Fatal("the plain request is not read by hand")
	}
	for _, s := range listDocumentsSeeds {
		checkListDocumentsJSON(t, []byte(s))
	}
	rng := rand.New(rand.NewPCG(19, 5))
	scalars := []string{`"a"`, `"tag"`, `""`, `null`, `0`, `1`, `-3`, `25`, `1.5`, `"a\"b"`, `"é"`, `true`, `false`, `"OPERATOR_EQUAL"`, `"OPERATOR_IS_NULL"`, `"OPERATOR_X"`, `7`}
	var value func(depth int) string
	value = func(depth int) string {
		switch n := rng.IntN(10); {
		case n < 5 || depth > 3:
			return scalars[rng.IntN(len(scalars))]
		case n < 8:
			var b strings.Builder
			b.WriteString("[")
			for i := range rng.IntN(4) {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(value(depth + 1))
			}
			return b.String() + "]"
		default:
			names := []string{"op", "attribute", "values", "filters", "desc", "seed", "x"}
			var b strings.Builder
			b.WriteString("{")
			for i := range rng.IntN(4) {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(`"` + names[rng.IntN(len(names))] + `":` + value(depth+1))
			}
			return b.String() + "}"
		}
	}
	names := []string{"projectId", "project_id", "databaseId", "collectionId", "filters", "filters", "orders", "orders", "select",
		"limit", "offset", "cursorAfter", "cursor_before", "total", "explain", "id"}
	read := 0
	for range 30000 {
		var b strings.Builder
		b.WriteString("{")
		for i := range rng.IntN(6) {
			if i > 0 {
				b.WriteString([]string{",", " , ", ",\n"}[rng.IntN(3)])
			}
			name := names[rng.IntN(len(names))]
			v := value(0)
			switch {
			case (name == "filters" || name == "orders") && rng.IntN(2) == 0:
				// Mostly well formed: an array of objects.
				keys := []string{"op", "attribute", "values", "filters"}
				if name == "orders" {
					keys = []string{"attribute", "desc", "seed"}
				}
				var a strings.Builder
				a.WriteString("[")
				for j := range rng.IntN(3) {
					if j > 0 {
						a.WriteString(",")
					}
					a.WriteString("{")
					for k := range rng.IntN(4) {
						if k > 0 {
							a.WriteString(",")
						}
						key := keys[rng.IntN(len(keys))]
						kv := scalars[rng.IntN(len(scalars))]
						if key == "values" || key == "filters" {
							kv = value(1)
						}
						a.WriteString(`"` + key + `":` + kv)
					}
					a.WriteString("}")
				}
				v = a.String() + "]"
			}
			b.WriteString(`"` + name + `":` + v)
		}
		b.WriteString("}")
		data := []byte(b.String())
		data = mutateJSON(rng, data, "{}[]\":, \\a-0")
		if checkListDocumentsJSON(t, data) {
			read++
		}
	}
	if read < 1000 {
		t.Fatalf("only %d of 30,000 requests read by hand: the test does not exercise the reader", read)
	}
	t.Logf("%d of 30,000 random requests read by hand", read)

	seedsReadAsCodec[cairnv1.ListDocumentsRequest](t, listDocumentsSeeds)
}
