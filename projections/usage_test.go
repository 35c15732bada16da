package projections

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain/database"
)

// TestDayOfIsTheUTCDate: dayOf tells two times apart exactly when their
// UTC dates (what dailyKey formats) differ, before the epoch too.
func TestDayOfIsTheUTCDate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 100_000 {
		a := time.Unix(r.Int64N(1<<34)-1<<33, r.Int64N(1e9)).In(time.FixedZone("x", 3600*(i%25-12)))
		b := a.Add(time.Duration(r.Int64N(3*86400e9) - 86400e9))
		if i%7 == 0 { // around midnight
			b = time.Unix(a.Unix()-a.Unix()%86400, 0).Add(time.Duration(r.Int64N(2e9) - 1e9))
		}
		sameDate := a.UTC().Format(dayLayout) == b.UTC().Format(dayLayout)
		if (dayOf(a) == dayOf(b)) != sameDate {
			t.Fatalf("dayOf(%v) = %d, dayOf(%v) = %d; same UTC date: %v", a, dayOf(a), b, dayOf(b), sameDate)
		}
	}
}

// TestKeysAreTheirPrefixes: documentKey and collectionKey, built by hand
// in one allocation, are their prefixes and the id (the layout).
func TestKeysAreTheirPrefixes(t *testing.T) {
	for _, c := range [][3]string{{"p1", "main", "doc-1"}, {"a-very-long-project-id-0123456789abc", "db_2", "x"}, {"p", "", ""}} {
		if got, want := string(documentKey(c[0], c[1], c[2])), documentsPrefix(c[0], c[1])+c[2]; got != want {
			t.Errorf("documentKey%q = %q, want %q", c, got, want)
		}
		if got, want := string(collectionKey(c[0], c[1], c[2])), collectionsPrefix(c[0], c[1])+c[2]; got != want {
			t.Errorf("collectionKey%q = %q, want %q", c, got, want)
		}
	}
}

// TestAllIndexKeysInOneBuffer: allIndexKeys, which writes every index's
// keys into one buffer, returns what indexKeys gives index by index, each
// key capped at its length (a caller appending to one must not overwrite
// the next).
func TestAllIndexKeysInOneBuffer(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	indexes := append(append([]database.Index(nil), implicitIndexes...),
		database.Index{Key: "by_tag", Type: database.IndexKey, Attributes: []string{"tag"}, Desc: []bool{false}, UID: "ix-tag-0123456789"},
		database.Index{Key: "by_tag_n", Type: database.IndexKey, Attributes: []string{"tag", "n"}, Desc: []bool{false, true}, UID: "ix2"},
		database.Index{Key: "text", Type: database.IndexFulltext, Attributes: []string{"title"}, Desc: []bool{false}, UID: "ix-ft"},
		database.Index{Key: "title", Type: database.IndexUnique, Attributes: []string{"title"}, Desc: []bool{false}, UID: strings.Repeat("u", 70)})
	for i, c := range []struct {
		project, coll string
		fields        map[string]any
	}{
		{"p1", "c1", map[string]any{"tag": "t1", "n": int64(7), "title": "hello big world"}},
		{strings.Repeat("a", 36), strings.Repeat("c", 40), map[string]any{"tag": strings.Repeat("x", 300), "title": strings.Repeat("word ", 60)}},
		{"p", "c", map[string]any{}},
	} {
		c.fields[database.AttrID] = fmt.Sprintf("doc-%d", i)
		c.fields[database.AttrCreatedAt], c.fields[database.AttrUpdatedAt] = at, at
		c.fields[database.AttrSequence] = int64(40 + i)
		var want [][]byte
		for _, ix := range indexes {
			ks, err := indexKeys(c.project, c.coll, ix, c.fields, uint64(40+i))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ks...)
		}
		got, err := allIndexKeys(c.project, c.coll, indexes, c.fields, uint64(40+i))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("case %d: %d keys, want %d", i, len(got), len(want))
		}
		for j := range want {
			if !bytes.Equal(got[j], want[j]) || cap(got[j]) != len(got[j]) {
				t.Errorf("case %d key %d: %q (cap %d), want %q", i, j, got[j], cap(got[j]), want[j])
			}
		}
	}
}
