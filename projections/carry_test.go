package projections

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// TestCarriedAgreesWithDocument: for random documents (small, large,
// nested, escaped, repeated and missing members, old schema versions),
// the fields an index entry's carried members give equal the document's
// own for every attribute the entry covers, and an entry that does not
// carry an attribute says so.
func TestCarriedAgreesWithDocument(t *testing.T) {
	c := &eventsv1.Collection{Id: "c", Uid: "cu", Version: 1, Attributes: []*eventsv1.Attribute{
		{Key: "tag", Type: string(database.TypeString), Size: 100, Status: string(database.StatusAvailable)},
		{Key: "n", Type: string(database.TypeInteger), IntMin: -1 << 40, IntMax: 1 << 40, Status: string(database.StatusAvailable)},
		{Key: "late", Type: string(database.TypeInteger), IntMin: -100, IntMax: 100, DefaultJson: "7", CreatedVersion: 50, Status: string(database.StatusAvailable)},
		{Key: "f", Type: string(database.TypeFloat), Status: string(database.StatusAvailable)},
		{Key: "ok", Type: string(database.TypeBoolean), Status: string(database.StatusAvailable)},
		{Key: "list", Type: string(database.TypeString), Size: 100, Array: true, Status: string(database.StatusAvailable)},
	}}
	schema, err := database.SchemaOf(c)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	vals := []string{`"t1"`, `"` + strings.Repeat("x", 60) + `"`, `"a\"b\\u00e9"`, `12`, `-3`, `1e3`, `2.5`, `true`, `null`,
		`["a","b"]`, `["` + strings.Repeat("y", 50) + `"]`, `{"x":[1,{"y":2}]}`, `""`}
	keys := []string{"tag", "n", "late", "f", "ok", "list", "other"}
	names := append([]string{database.AttrID, database.AttrSequence, database.AttrCreatedAt}, keys...)
	carriedSome, bare := 0, 0
	for i := range 3000 {
		var parts []string
		for _, k := range keys {
			if r.IntN(3) == 0 {
				continue
			}
			parts = append(parts, fmt.Sprintf(`%q:%s`, k, vals[r.IntN(len(vals))]))
			if r.IntN(40) == 0 {
				parts = append(parts, fmt.Sprintf(`%q : %s`, k, vals[r.IntN(len(vals))])) // repeated
			}
		}
		data := "{" + strings.Join(parts, ",") + "}"
		if r.IntN(10) == 0 {
			data = " " + strings.ReplaceAll(data, ",", " ,\n ") + " "
		}
		d := &eventsv1.Document{Id: fmt.Sprintf("d%d", i), DataJson: data, Sequence: uint64(i + 1), SchemaVersion: uint64(r.IntN(100)),
			CreatedAt: timestamppb.New(time.Unix(int64(r.IntN(1<<40))-1<<39, int64(r.IntN(1e9)))), UpdatedAt: timestamppb.Now()}
		whole, err := Fields(schema, d)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		id, carry, ok := parseEntryValue(string(entryValue(headOf(d))))
		if !ok || id != d.GetId() {
			t.Fatalf("%s: parse: %q %v", data, id, ok)
		}
		if len(carry.data) == 0 {
			bare++
			continue
		}
		carriedSome++
		for _, name := range names {
			want, wok := whole[name]
			if !carry.covers([]string{name}) {
				if !strings.Contains(data, `"`+name+`"`) {
					t.Errorf("%s: %s is not covered but absent", data, name)
				}
				continue
			}
			keep := func(k string) bool { return k == name }
			got, err := fieldsOfCarried(schema, id, d.GetSequence(), carry, keep, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", data, err)
			}
			if g, gok := got[name]; gok != wok || !reflect.DeepEqual(g, want) {
				t.Errorf("%s: %s = %#v, the document has %#v", data, name, g, want)
			}
			only, err := fieldsOfCarriedOnly(schema, id, d.GetSequence(), carry, []string{name}, nil)
			if err != nil {
				t.Fatalf("%s: %v", data, err)
			}
			if g, gok := only[name]; gok != wok || !reflect.DeepEqual(g, want) {
				t.Errorf("%s: %s alone = %#v, the document has %#v", data, name, g, want)
			}
		}
		if carry.covers([]string{database.AttrUpdatedAt}) {
			t.Errorf("%s: $updatedAt covered", data)
		}
	}
	if carriedSome < 2000 || bare == 0 {
		t.Errorf("%d documents carried, %d bare: the cases are not exercised", carriedSome, bare)
	}
}

// TestEntryValueBare: documents whose data is not read plainly, or too
// big, carry nothing; their entries are the bare id, as before.
func TestEntryValueBare(t *testing.T) {
	many := make([]string, maxMembers+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%d":1`, i)
	}
	for _, data := range []string{``, `[]`, `{"a":1,"a":2}`, `{"a\u0062":1}`, `{"a":1`, `{` + strings.Join(many, ",") + `}`,
		`{"a":"` + strings.Repeat("z", 40) + `","b":"` + strings.Repeat("z", 40) + `","c":"` + strings.Repeat("z", 40) + `","d":"` +
			strings.Repeat("z", 40) + `","e":"` + strings.Repeat("z", 40) + `","f":"` + strings.Repeat("z", 40) + `"}`} {
		if v := entryValue(docHead{id: "doc1", data: data}); string(v) != "doc1" {
			t.Errorf("%s: value %q", data, v)
		}
	}
	if v := entryValue(docHead{id: "doc1", data: `{}`}); v[0] != carryMark {
		t.Errorf("empty object: value %q", v)
	}
}
