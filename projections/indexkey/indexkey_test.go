package indexkey

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// kinds are the value types Append supports; gen draws values of one kind.
var kinds = []string{"string", "int64", "float64", "bool", "time"}

var (
	edgeStrings = []string{
		"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "\xff", "\xff\xff", "\xff\x00",
		"a", "a\x00", "a\x00b", "a\x01", "a\xff", "ab", "abc", "b", "Z",
		"é", "e\u0301", "€", "😀", "\uffff", "\U0010ffff", "日本", "日本語",
	}
	edgeInts   = []int64{math.MinInt64, math.MinInt64 + 1, -1 << 32, -256, -1, 0, 1, 255, 256, 1 << 53, math.MaxInt64 - 1, math.MaxInt64}
	edgeFloats = []float64{
		-math.MaxFloat64, -1e300, -1.5, -1, -math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0,
		math.SmallestNonzeroFloat64, 0x1p-1022, 1, 1.5, 1e300, math.MaxFloat64,
	}
	edgeTimes = []time.Time{
		time.UnixMilli(math.MinInt64).UTC(),
		time.Date(-4000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1677, 9, 21, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.UnixMilli(0).UTC(),
		time.UnixMilli(1).UTC(),
		time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC), // past the UnixNano range
		time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.UnixMilli(math.MaxInt64).UTC(),
	}
)

var strPieces = []string{"\x00", "\x01", "\xff", "\xfe", "a", "b", "é", "€", "😀", "\x00\xff"}

// gen returns a random value of kind, edge cases about a third of the time.
func gen(r *rand.Rand, kind string) any {
	edge := r.IntN(3) == 0
	switch kind {
	case "string":
		if edge {
			return edgeStrings[r.IntN(len(edgeStrings))]
		}
		var sb strings.Builder
		for n := r.IntN(6); n > 0; n-- {
			if r.IntN(4) == 0 {
				sb.WriteByte(byte(r.Uint32()))
			} else {
				sb.WriteString(strPieces[r.IntN(len(strPieces))])
			}
		}
		return sb.String()
	case "int64":
		if edge {
			return edgeInts[r.IntN(len(edgeInts))]
		}
		if r.IntN(2) == 0 {
			return r.Int64N(21) - 10 // small: ties and neighbours
		}
		return int64(r.Uint64())
	case "float64":
		if edge {
			return edgeFloats[r.IntN(len(edgeFloats))]
		}
		switch r.IntN(3) {
		case 0:
			return float64(r.IntN(9)-4) / 2
		case 1:
			return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		}
		for { // any finite bit pattern, subnormals included
			f := math.Float64frombits(r.Uint64())
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f
			}
		}
	case "bool":
		return r.IntN(2) == 0
	case "time":
		if edge {
			return edgeTimes[r.IntN(len(edgeTimes))]
		}
		if r.IntN(2) == 0 {
			return time.UnixMilli(1_700_000_000_000 + r.Int64N(5)).UTC()
		}
		return time.UnixMilli(int64(r.Uint64())).UTC()
	}
	panic("unknown kind " + kind)
}

// compare is the reference order: nil first, then the natural order of the
// value's type (Unicode code point order for strings = bytewise for UTF-8).
func compare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case int64:
		return cmp.Compare(x, b.(int64))
	case float64:
		return cmp.Compare(x, b.(float64)) // -0 == 0
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case y:
			return -1
		}
		return 1
	case time.Time:
		return x.Compare(b.(time.Time))
	}
	panic("unknown type")
}

func enc(t testing.TB, v any, desc bool) []byte {
	t.Helper()
	b, err := Append(nil, v, desc)
	if err != nil {
		t.Fatalf("Append(%#v): %v", v, err)
	}
	return b
}

func sign(n int) int { return cmp.Compare(n, 0) }

// checkPair asserts order and prefix-freeness of the encodings of a and b,
// ascending and descending.
func checkPair(t testing.TB, a, b any) {
	t.Helper()
	want := compare(a, b)
	for _, desc := range []bool{false, true} {
		ea, eb := enc(t, a, desc), enc(t, b, desc)
		got := bytes.Compare(ea, eb)
		if desc {
			got = -got
		}
		if sign(got) != want {
			t.Fatalf("desc=%v: %#v vs %#v: bytes compare %d, values compare %d\n% x\n% x", desc, a, b, got, want, ea, eb)
		}
		if want != 0 && (bytes.HasPrefix(ea, eb) || bytes.HasPrefix(eb, ea)) {
			t.Fatalf("desc=%v: %#v and %#v: one encoding is a prefix of the other\n% x\n% x", desc, a, b, ea, eb)
		}
	}
}

// seeds: a fixed one so failures reproduce, and a fresh one (logged) so
// repeated runs explore more.
func seeds(t *testing.T) []uint64 {
	s := rand.Uint64()
	t.Logf("random seed %d", s)
	return []uint64{1, s}
}

func TestEdgePairs(t *testing.T) {
	var vals [][]any
	var ss, is, fs, ts []any
	for _, v := range edgeStrings {
		ss = append(ss, v)
	}
	for _, v := range edgeInts {
		is = append(is, v)
	}
	for _, v := range edgeFloats {
		fs = append(fs, v)
	}
	for _, v := range edgeTimes {
		ts = append(ts, v)
	}
	vals = append(vals, ss, is, fs, ts, []any{false, true})
	for _, vs := range vals {
		vs = append(vs, nil)
		for _, a := range vs {
			for _, b := range vs {
				checkPair(t, a, b)
			}
		}
	}
}

func TestRandomPairs(t *testing.T) {
	for _, seed := range seeds(t) {
		r := rand.New(rand.NewPCG(seed, 0))
		for _, kind := range kinds {
			for range 20000 {
				a, b := gen(r, kind), gen(r, kind)
				if r.IntN(20) == 0 {
					a = nil
				}
				checkPair(t, a, b)
				checkPair(t, a, a)
			}
		}
	}
}

func TestNil(t *testing.T) {
	for _, kind := range kinds {
		v := gen(rand.New(rand.NewPCG(2, 0)), kind)
		if bytes.Compare(enc(t, nil, false), enc(t, v, false)) >= 0 {
			t.Errorf("asc: nil does not sort before %#v", v)
		}
		if bytes.Compare(enc(t, nil, true), enc(t, v, true)) <= 0 {
			t.Errorf("desc: nil does not sort after %#v", v)
		}
	}
	if got := enc(t, nil, false); !bytes.Equal(got, []byte{nullTag}) {
		t.Errorf("nil encodes as % x", got)
	}
}

func TestNegativeZero(t *testing.T) {
	if a, b := enc(t, math.Copysign(0, -1), false), enc(t, 0.0, false); !bytes.Equal(a, b) {
		t.Errorf("-0 encodes as % x, +0 as % x", a, b)
	}
}

func TestTimeLocation(t *testing.T) {
	utc := time.Date(2024, 2, 29, 23, 30, 0, 123e6, time.UTC)
	other := utc.In(time.FixedZone("x", 5*3600))
	if a, b := enc(t, utc, false), enc(t, other, false); !bytes.Equal(a, b) {
		t.Errorf("same instant, different location: % x vs % x", a, b)
	}
}

func TestErrors(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := Append(nil, f, false); !errors.Is(err, ErrNotFinite) {
			t.Errorf("Append(%v): err %v, want ErrNotFinite", f, err)
		}
	}
	for _, c := range []struct {
		v    any
		name string
	}{
		{[]any{"a"}, "[]interface {}"},
		{1, "int"},
		{float32(1), "float32"},
		{int32(1), "int32"},
		{uint64(1), "uint64"},
		{[]byte("a"), "[]uint8"},
		{map[string]any{}, "map[string]interface {}"},
		{&struct{}{}, "*struct {}"},
	} {
		dst := []byte("k/")
		got, err := Append(dst, c.v, false)
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("Append(%T): err %v, want one naming %s", c.v, err, c.name)
		}
		if !bytes.Equal(got, dst) {
			t.Errorf("Append(%T) on error returned % x, want dst unchanged", c.v, got)
		}
	}
}

// column is one column of a composite index key.
type column struct {
	kind string
	desc bool
}

// TestTuples checks that composite keys of 1-3 mixed asc/desc columns sort
// in tuple order, and that a key of leading columns is a prefix of the
// full key (so prefix scans select equal leading values).
func TestTuples(t *testing.T) {
	for _, seed := range seeds(t) {
		r := rand.New(rand.NewPCG(seed, 1))
		for range 500 {
			cols := make([]column, 1+r.IntN(3))
			for i := range cols {
				cols[i] = column{kinds[r.IntN(len(kinds))], r.IntN(2) == 0}
			}
			// A small pool per column so tuples often tie on leading columns.
			pools := make([][]any, len(cols))
			for i, c := range cols {
				pools[i] = []any{nil}
				for range 4 {
					pools[i] = append(pools[i], gen(r, c.kind))
				}
			}
			tuple := func() []any {
				tu := make([]any, len(cols))
				for i := range cols {
					tu[i] = pools[i][r.IntN(len(pools[i]))]
				}
				return tu
			}
			key := func(tu []any) []byte {
				var k []byte
				for i, v := range tu {
					var err error
					k, err = Append(k, v, cols[i].desc)
					if err != nil {
						t.Fatal(err)
					}
				}
				return k
			}
			for range 50 {
				a, b := tuple(), tuple()
				want := 0
				for i := range cols {
					if c := compare(a[i], b[i]); c != 0 {
						want = c
						if cols[i].desc {
							want = -c
						}
						break
					}
				}
				ka, kb := key(a), key(b)
				if got := sign(bytes.Compare(ka, kb)); got != want {
					t.Fatalf("columns %v: %#v vs %#v: keys compare %d, tuples %d\n% x\n% x", cols, a, b, got, want, ka, kb)
				}
				for n := range len(a) {
					if p := key(a[:n]); !bytes.HasPrefix(ka, p) {
						t.Fatalf("key of %#v is not a prefix of key of %#v", a[:n], a)
					}
				}
			}
		}
	}
}

func TestAppendSeq(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 0))
	for range 10000 {
		a, b := r.Uint64(), r.Uint64()
		if r.IntN(2) == 0 {
			b = a + uint64(r.IntN(3)) - 1
		}
		ea, eb := AppendSeq([]byte("p"), a), AppendSeq([]byte("p"), b)
		if len(ea) != 9 || sign(bytes.Compare(ea, eb)) != cmp.Compare(a, b) {
			t.Fatalf("AppendSeq %d vs %d: % x vs % x", a, b, ea, eb)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0xff}, nil},
		{[]byte{0xff, 0xff}, nil},
		{[]byte{0x00}, []byte{0x01}},
		{[]byte("ab"), []byte("ac")},
		{[]byte{1, 0xfe}, []byte{1, 0xff}},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{1, 2, 0xff, 0xff}, []byte{1, 3}},
	} {
		in := bytes.Clone(c.in)
		if got := PrefixEnd(c.in); !bytes.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("PrefixEnd(% x) = % x, want % x", c.in, got, c.want)
		}
		if !bytes.Equal(in, c.in) {
			t.Errorf("PrefixEnd modified its argument")
		}
	}

	// Property, over a small alphabet so prefixes and 0xFF runs are common:
	// every key with the prefix is below the end; every key at or above the
	// prefix without it is at or above the end.
	r := rand.New(rand.NewPCG(4, 0))
	alpha := []byte{0x00, 0x01, 0xfe, 0xff}
	rnd := func(max int) []byte {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		return b
	}
	for range 20000 {
		p, k := rnd(4), rnd(6)
		if r.IntN(2) == 0 {
			k = append(bytes.Clone(p), k...)
		}
		end := PrefixEnd(p)
		switch {
		case bytes.HasPrefix(k, p):
			if end != nil && bytes.Compare(k, end) >= 0 {
				t.Fatalf("key % x has prefix % x but is not below end % x", k, p, end)
			}
		case bytes.Compare(k, p) > 0:
			if end == nil {
				t.Fatalf("prefix % x has no end but key % x above it lacks the prefix", p, k)
			}
			if bytes.Compare(k, end) < 0 {
				t.Fatalf("key % x lacks prefix % x but is below end % x", k, p, end)
			}
		}
	}
}

// FuzzStringOrder checks on arbitrary byte strings that string encodings
// keep bytewise order (inverted when descending), are prefix-free, and
// keep tuple order when followed by a second column.
func FuzzStringOrder(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"", "\x00"}, {"a", "a\x00"}, {"a\x00", "a\x01"}, {"\x00\xff", "\x00"},
		{"\xff", "\xff\x00"}, {"é", "e"}, {"😀", "\uffff"}, {"ab", "a"},
	} {
		f.Add([]byte(s[0]), []byte(s[1]), false)
		f.Add([]byte(s[0]), []byte(s[1]), true)
	}
	f.Fuzz(func(t *testing.T, a, b []byte, desc bool) {
		sa, sb := string(a), string(b)
		checkPair(t, sa, sb)
		// (sa, 1) vs (sb, 0): the first column decides unless equal.
		ka, _ := Append(enc(t, sa, desc), int64(1), false)
		kb, _ := Append(enc(t, sb, desc), int64(0), false)
		want := strings.Compare(sa, sb)
		if desc {
			want = -want
		}
		if want == 0 {
			want = 1
		}
		if got := sign(bytes.Compare(ka, kb)); got != want {
			t.Fatalf("desc=%v: (%q,1) vs (%q,0): keys compare %d, want %d", desc, sa, sb, got, want)
		}
	})
}

// BenchmarkAppend builds a typical key: string asc, int64 desc, datetime
// asc and the sequence tie-breaker, reusing the buffer.
func BenchmarkAppend(b *testing.B) {
	name := "customer-42/order"
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := append(buf[:0], "idx/"...)
		k, _ = Append(k, name, false)
		k, _ = Append(k, int64(i), true)
		k, _ = Append(k, at, false)
		buf = AppendSeq(k, uint64(i))
	}
}
