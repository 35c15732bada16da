package database

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
)

func indexSchema() *Schema {
	return &Schema{
		Attributes: []Attribute{
			{Key: "title", Type: TypeString, Size: 100, Status: StatusAvailable},
			{Key: "age", Type: TypeInteger, Status: StatusAvailable},
			{Key: "email", Type: TypeEmail, Status: StatusAvailable},
			{Key: "tags", Type: TypeString, Size: 10, Array: true, Status: StatusAvailable},
			{Key: "pending", Type: TypeBoolean, Status: StatusProcessing},
			{Key: "broken", Type: TypeBoolean, Status: StatusFailed},
			{Key: "a1", Type: TypeBoolean, Status: StatusAvailable},
			{Key: "a2", Type: TypeBoolean, Status: StatusAvailable},
			{Key: "a3", Type: TypeBoolean, Status: StatusAvailable},
			{Key: "a4", Type: TypeBoolean, Status: StatusAvailable},
			{Key: "a5", Type: TypeBoolean, Status: StatusAvailable},
			{Key: "a6", Type: TypeBoolean, Status: StatusAvailable},
		},
		Indexes: []Index{{Key: "existing", Type: IndexKey, Attributes: []string{"age"}, Desc: []bool{false}}},
	}
}

func TestValidateIndexAccepts(t *testing.T) {
	eight := []string{"title", "age", "a1", "a2", "a3", "a4", "a5", "a6"}
	tests := []struct {
		name string
		in   Index
		want Index
	}{
		{"key", Index{Key: "byAge", Type: IndexKey, Attributes: []string{"age"}},
			Index{Key: "byAge", Type: IndexKey, Attributes: []string{"age"}, Desc: []bool{false}}},
		{"unique with desc", Index{Key: "u", Type: IndexUnique, Attributes: []string{"email", "age"}, Desc: []bool{false, true}},
			Index{Key: "u", Type: IndexUnique, Attributes: []string{"email", "age"}, Desc: []bool{false, true}}},
		{"system attributes", Index{Key: "sys", Type: IndexKey, Attributes: []string{AttrCreatedAt, AttrID, AttrUpdatedAt, AttrSequence}},
			Index{Key: "sys", Type: IndexKey, Attributes: []string{AttrCreatedAt, AttrID, AttrUpdatedAt, AttrSequence}, Desc: make([]bool, 4)}},
		{"unique on $id", Index{Key: "uid", Type: IndexUnique, Attributes: []string{AttrID}},
			Index{Key: "uid", Type: IndexUnique, Attributes: []string{AttrID}, Desc: []bool{false}}},
		{"fulltext", Index{Key: "ft", Type: IndexFulltext, Attributes: []string{"title"}},
			Index{Key: "ft", Type: IndexFulltext, Attributes: []string{"title"}, Desc: []bool{false}}},
		{"eight attributes", Index{Key: "wide", Type: IndexKey, Attributes: eight},
			Index{Key: "wide", Type: IndexKey, Attributes: eight, Desc: make([]bool, 8)}},
		{"status uid kept", Index{Key: "k", Type: IndexKey, Attributes: []string{"age"}, Status: StatusProcessing, UID: "01J", CreatedSeq: 4},
			Index{Key: "k", Type: IndexKey, Attributes: []string{"age"}, Desc: []bool{false}, Status: StatusProcessing, UID: "01J", CreatedSeq: 4}},
		{"key may equal an attribute key", Index{Key: "age", Type: IndexKey, Attributes: []string{"age"}},
			Index{Key: "age", Type: IndexKey, Attributes: []string{"age"}, Desc: []bool{false}}},
	}
	for _, tt := range tests {
		ix := tt.in
		if err := ValidateIndex(indexSchema(), &ix); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(ix, tt.want) {
			t.Errorf("%s: normalized to %+v, want %+v", tt.name, ix, tt.want)
		}
	}
}

func TestValidateIndexRejects(t *testing.T) {
	nine := []string{"title", "age", "a1", "a2", "a3", "a4", "a5", "a6", "email"}
	tests := []struct {
		name  string
		in    Index
		kind  domain.Kind
		field string
		msg   string
	}{
		{"bad key", Index{Key: "by-age", Type: IndexKey, Attributes: []string{"age"}}, domain.KindInvalid, "key", "must start with a letter"},
		{"system key", Index{Key: "$id", Type: IndexKey, Attributes: []string{"age"}}, domain.KindInvalid, "key", "must start with a letter"},
		{"long key", Index{Key: strings.Repeat("k", 37), Type: IndexKey, Attributes: []string{"age"}}, domain.KindInvalid, "key", "must start with a letter"},
		{"existing key", Index{Key: "existing", Type: IndexKey, Attributes: []string{"age"}}, domain.KindAlreadyExists, "key", `index "existing" already exists`},
		{"unknown type", Index{Key: "k", Type: "spatial", Attributes: []string{"age"}}, domain.KindInvalid, "type", `unknown index type "spatial"`},
		{"no attributes", Index{Key: "k", Type: IndexKey}, domain.KindInvalid, "attributes", "between 1 and 8 attributes; got 0"},
		{"nine attributes", Index{Key: "k", Type: IndexKey, Attributes: nine}, domain.KindInvalid, "attributes", "got 9"},
		{"unknown attribute", Index{Key: "k", Type: IndexKey, Attributes: []string{"nope"}}, domain.KindInvalid, "attributes", `unknown attribute "nope"`},
		{"unknown system attribute", Index{Key: "k", Type: IndexKey, Attributes: []string{"$permissions"}}, domain.KindInvalid, "attributes", `unknown attribute "$permissions"`},
		{"twice", Index{Key: "k", Type: IndexKey, Attributes: []string{"age", "title", "age"}}, domain.KindInvalid, "attributes", `attribute "age" appears twice`},
		{"processing", Index{Key: "k", Type: IndexKey, Attributes: []string{"pending"}}, domain.KindInvalid, "attributes", `attribute "pending" is not available (status processing)`},
		{"failed", Index{Key: "k", Type: IndexUnique, Attributes: []string{"broken"}}, domain.KindInvalid, "attributes", "status failed"},
		{"array", Index{Key: "k", Type: IndexKey, Attributes: []string{"tags"}}, domain.KindInvalid, "attributes", `attribute "tags" is an array; arrays cannot be indexed`},
		{"fulltext two", Index{Key: "k", Type: IndexFulltext, Attributes: []string{"title", "email"}}, domain.KindInvalid, "attributes", "a fulltext index covers exactly one attribute; got 2"},
		{"fulltext none", Index{Key: "k", Type: IndexFulltext}, domain.KindInvalid, "attributes", "exactly one attribute; got 0"},
		{"fulltext email", Index{Key: "k", Type: IndexFulltext, Attributes: []string{"email"}}, domain.KindInvalid, "attributes", `a fulltext index covers a string attribute; "email" is email`},
		{"fulltext integer", Index{Key: "k", Type: IndexFulltext, Attributes: []string{"age"}}, domain.KindInvalid, "attributes", `"age" is integer`},
		{"fulltext system", Index{Key: "k", Type: IndexFulltext, Attributes: []string{AttrID}}, domain.KindInvalid, "attributes", `cannot cover system attribute "$id"`},
		{"fulltext array", Index{Key: "k", Type: IndexFulltext, Attributes: []string{"tags"}}, domain.KindInvalid, "attributes", "arrays cannot be indexed"},
		{"desc too short", Index{Key: "k", Type: IndexKey, Attributes: []string{"age", "title"}, Desc: []bool{true}}, domain.KindInvalid, "orders", "2 attributes, 1 orders"},
		{"desc empty not nil", Index{Key: "k", Type: IndexKey, Attributes: []string{"age"}, Desc: []bool{}}, domain.KindInvalid, "orders", "1 attributes, 0 orders"},
	}
	for _, tt := range tests {
		ix := tt.in
		checkError(t, tt.name, ValidateIndex(indexSchema(), &ix), tt.kind, tt.field, tt.msg)
	}
}

func TestValidateIndexLimit(t *testing.T) {
	s := indexSchema()
	s.Indexes = nil
	for i := range MaxIndexes {
		ix := Index{Key: fmt.Sprintf("i%d", i), Type: IndexKey, Attributes: []string{"age"}}
		if err := ValidateIndex(s, &ix); err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
		s.Indexes = append(s.Indexes, ix)
	}
	ix := Index{Key: "one_more", Type: IndexKey, Attributes: []string{"age"}}
	checkError(t, "limit", ValidateIndex(s, &ix), domain.KindResourceExhausted, "", "at most 64 indexes")
}
