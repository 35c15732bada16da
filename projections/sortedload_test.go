package projections

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortedOrderIsKeyOrder: sortedOrder puts random keys in bytes.Compare's
// order: keys sharing long prefixes, keys that are prefixes of others,
// keys ending in zeros, keys shorter than the common prefix plus 24 bytes,
// an empty key, runs of one, keys that tie in their first 24 bytes after
// the common prefix.
func TestSortedOrderIsKeyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 19))
	alphabet := []byte{0, 1, 2, 'a', 'b', 0xff}
	var order []abbrev
	for round := range 2000 {
		prefix := []byte("p/bench/ix/01COLLUID/")[:r.IntN(22)]
		n := 1 + r.IntN(60)
		ents := make([]sortedEntry, n)
		for i := range ents {
			k := append([]byte(nil), prefix...)
			for range r.IntN(40) {
				k = append(k, alphabet[r.IntN(len(alphabet))])
			}
			if i > 0 && r.IntN(5) == 0 { // a prefix of another, or it plus zeros
				o := ents[r.IntN(i)].key
				k = append(append([]byte(nil), o[:r.IntN(len(o)+1)]...), make([]byte, r.IntN(3))...)
			}
			ents[i] = sortedEntry{key: k}
		}
		order = sortedOrder(ents, order)
		if len(order) != n {
			t.Fatalf("round %d: %d of %d entries ordered", round, len(order), n)
		}
		want := slices.Clone(ents)
		slices.SortStableFunc(want, func(a, b sortedEntry) int { return bytes.Compare(a.key, b.key) })
		seen := make([]bool, n)
		for i, o := range order {
			if seen[o.i] {
				t.Fatalf("round %d: entry %d twice", round, o.i)
			}
			seen[o.i] = true
			if !bytes.Equal(ents[o.i].key, want[i].key) {
				t.Fatalf("round %d: place %d holds %q, want %q", round, i, ents[o.i].key, want[i].key)
			}
		}
	}
}
