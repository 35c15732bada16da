package database

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// checkFastJSON fails when fastJSON accepts b and disagrees with
// encoding/json, or when decodeJSON's result or error differs from it.
func checkFastJSON(t testing.TB, raw []byte) {
	b := string(raw)
	want, werr := decodeJSONStd(b)
	if v, ok := fastJSON(b); ok && (werr != nil || !reflect.DeepEqual(v, want)) {
		t.Fatalf("fastJSON(%q) = %#v, encoding/json: %#v, %v", b, v, want, werr)
	}
	got, gerr := decodeJSON(b)
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() || !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeJSON(%q) = %#v, %v; encoding/json: %#v, %v", b, got, gerr, want, werr)
	}
	// PlainObject says yes exactly to the objects fastJSON reads whole.
	if po, fo := PlainObject(b), fastObject(b); po != fo || po && werr != nil {
		t.Fatalf("PlainObject(%q) = %v; fastJSON reads an object: %v (encoding/json: %v)", b, po, fo, werr)
	}
	// fastJSONOnly is fastJSON's object less the members keep rejects.
	keep := func(k string) bool { return len(k)%2 == 0 }
	full, fok := fastJSON(b)
	fm, isMap := full.(map[string]any)
	m, ok := fastJSONOnly(b, keep)
	if ok != (fok && isMap) {
		t.Fatalf("fastJSONOnly(%q) ok = %v; fastJSON %v, object %v", b, ok, fok, isMap)
	}
	if ok {
		kept := map[string]any{}
		for k, v := range fm {
			if keep(k) {
				kept[k] = v
			}
		}
		if !reflect.DeepEqual(m, kept) {
			t.Fatalf("fastJSONOnly(%q) = %#v, want %#v", b, m, kept)
		}
	}
}

// fastObject reports whether fastJSON reads b whole as an object.
func fastObject(b string) bool {
	v, ok := fastJSON(b)
	_, isMap := v.(map[string]any)
	return ok && isMap
}

var fastJSONSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `-12E+4`, `true`, `false`, `null`, ` {"a" : [1, "x", null, true, {"b": []}] } `,
	`{"a":1,"a":2}`, `{"s":"\"\\\/\b\f\n\r\t\u00e9\u20ac\ud83d\ude00"}`, `"é€😀"`, `{"a":1}x`, `{"a":1} {"b":2}`, `01`, `-`, `1.`, `.5`,
	`1e`, `"\ud800"`, `"\udc00\ud800"`, `"\ud83dx"`, "\"\xff\"", "\"a\x01\"", `"\x"`, `"\u12g4"`, `{"a" 1}`, `{"a":1,}`, `[1,]`,
	`{,}`, `tru`, `nul`, `[` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 201), `{"title":"document number 1","n":37,"tag":"t1"}`,
}

// TestFastJSONAgreesWithEncodingJSON compares the two decoders on edge
// cases, on random documents and on random mutations of them.
func TestFastJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range fastJSONSeeds {
		checkFastJSON(t, []byte(s))
	}
	r := rand.New(rand.NewPCG(7, 11))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.IntN(8); {
		case k == 0 && depth < 4:
			m := map[string]any{}
			for range r.IntN(5) {
				m[randString(r)] = gen(depth + 1)
			}
			return m
		case k == 1 && depth < 4:
			a := []any{}
			for range r.IntN(5) {
				a = append(a, gen(depth+1))
			}
			return a
		case k == 2:
			return r.NormFloat64() * 1e6
		case k == 3:
			return r.Int64() >> r.IntN(60)
		case k == 4:
			return r.IntN(2) == 0
		case k == 5:
			return nil
		}
		return randString(r)
	}
	const mutations = "{}[],:\"\\ue0-+.1x\x00\xff "
	for range 5000 {
		b, err := json.Marshal(gen(0))
		if err != nil {
			t.Fatal(err)
		}
		checkFastJSON(t, b)
		for range 3 {
			m := []byte(string(b))
			switch i := r.IntN(len(m)); r.IntN(3) {
			case 0:
				m[i] = mutations[r.IntN(len(mutations))]
			case 1:
				m = append(m[:i], m[i+1:]...)
			default:
				m = append(m[:i], append([]byte{mutations[r.IntN(len(mutations))]}, m[i:]...)...)
			}
			checkFastJSON(t, m)
		}
	}
}

func randString(r *rand.Rand) string {
	const chars = "ab \"\\/\n\t\x01é€😀\u2028<>&"
	rs := []rune(chars)
	var sb strings.Builder
	for range r.IntN(8) {
		sb.WriteRune(rs[r.IntN(len(rs))])
	}
	return sb.String()
}

func FuzzFastJSON(f *testing.F) {
	for _, s := range fastJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkFastJSON(t, b) })
}

func BenchmarkDecodeJSON(b *testing.B) {
	doc := []byte(`{"title":"document number 42 of the get benchmark","n":554,"tag":"t2","labels":["l1","m3"],"score":12.5,"flag":true}`)
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSONStd(string(doc)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSON(string(doc)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
