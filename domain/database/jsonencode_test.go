package database

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// randomData is document data of the kinds Normalize makes, and some it
// does not, now and then at the edges of what appendDataJSON writes.
func randomData(rng *rand.Rand, depth int) map[string]any {
	keys := []string{"title", "n", "tag", "a", "é", "", "<&>", "a\"b", "b\\", "\u2028", "z", "A", "\x01"}
	m := map[string]any{}
	for range rng.IntN(6) {
		m[keys[rng.IntN(len(keys))]] = randomDataValue(rng, depth)
	}
	if rng.IntN(20) == 0 {
		return nil
	}
	return m
}

func randomDataValue(rng *rand.Rand, depth int) any {
	switch rng.IntN(14) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2, 3:
		return []string{"plain", "é ü 𝄞", "", "tab\there", "<b>&amp;</b>", "quote\"", "back\\slash", "line\u2028sep", "\xff\xfe", "ctrl\x7f", "nul\x00"}[rng.IntN(11)]
	case 4:
		return rng.Int64() >> rng.IntN(64)
	case 5:
		return int(rng.Int32())
	case 6:
		return []float64{0, math.Copysign(0, -1), 1, -1.5, 1e20, 1e21, 1e-6, 9.99e-7, 1e-7, 123456789.125, 1e300, 5e-324, math.MaxFloat64,
			math.Inf(1), math.NaN(), 0.1 + 0.2, 100, 1e100}[rng.IntN(18)]
	case 7:
		return math.Float64frombits(rng.Uint64())
	case 8:
		zone := time.FixedZone("x", (rng.IntN(48)-24)*1800)
		return time.Date(1900+rng.IntN(200), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(2)*rng.IntN(1e9), zone)
	case 9:
		if depth > 3 {
			return "deep"
		}
		var l []any
		if rng.IntN(5) > 0 {
			l = []any{}
		}
		for range rng.IntN(4) {
			l = append(l, randomDataValue(rng, depth+1))
		}
		return l
	case 10:
		if depth > 3 {
			return "deep"
		}
		return randomData(rng, depth+1)
	case 11:
		return []string{"typed", "slice"}
	case 12:
		return uint8(7)
	}
	return strings.Repeat("x", rng.IntN(300))
}

// TestEncodeDataByHandAgrees: whatever appendDataJSON writes, encoding/json
// (EncodeData's definition) writes the same bytes, and it writes the
// common data itself.
func TestEncodeDataByHandAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 21))
	byHand := 0
	for i := range 50000 {
		data := randomData(rng, 0)
		want, werr := encodeDataJSON(data)
		got, ok := appendDataJSON(nil, data)
		if !ok {
			continue
		}
		byHand++
		if werr != nil || string(got) != want {
			t.Fatalf("data %d %#v: by hand %s, encoding/json %s (%v)", i, data, got, want, werr)
		}
		if s, err := EncodeData(data); err != nil || s != want {
			t.Fatalf("data %d: EncodeData gives %s (%v), want %s", i, s, err, want)
		}
	}
	if byHand < 5000 {
		t.Fatalf("only %d of 50,000 written by hand: the test does not exercise it", byHand)
	}
	plain := map[string]any{"title": "document number 1", "n": int64(7919), "tag": "t1", "at": time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
		"score": 1.5, "ok": true, "none": nil, "labels": []any{"a", "b"}}
	if _, ok := appendDataJSON(nil, plain); !ok {
		t.Fatalf("%v is not written by hand", plain)
	}
}

func BenchmarkEncodeData(b *testing.B) {
	data := map[string]any{"title": "document number 1", "n": int64(7919), "tag": "t1"}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeDataJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeData(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzEncodeDataByHand: for any JSON object (decoded as encoding/json
// decodes it, plus its numbers as int64 where they fit), what
// appendDataJSON writes is what encoding/json writes.
func FuzzEncodeDataByHand(f *testing.F) {
	for _, s := range []string{`{"title":"a","n":7919,"tag":"t1"}`, `{"a":[1,2.5,-3e-7,1e21,true,null,"é\u2028<&>"],"b":{"c":{}}}`, `{"":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var data map[string]any
		if json.Unmarshal(in, &data) != nil {
			return
		}
		for k, v := range data {
			if x, ok := v.(float64); ok && x == math.Trunc(x) && math.Abs(x) < 1<<62 {
				data[k] = int64(x)
			}
		}
		want, err := encodeDataJSON(data)
		got, ok := appendDataJSON(nil, data)
		if ok && (err != nil || string(got) != want) {
			t.Fatalf("%q: by hand %s, encoding/json %s (%v)", in, got, want, err)
		}
	})
}
