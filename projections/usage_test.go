package projections

import (
	"math/rand/v2"
	"testing"
	"time"
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
