package mfa

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var codeShape = regexp.MustCompile(`^[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}$`)

func TestNewRecoveryCodes(t *testing.T) {
	for _, n := range []int{0, 1, 10, 16} {
		codes, hashes, err := NewRecoveryCodes(rand.NewChaCha8([32]byte{byte(n)}), n)
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if n == 0 {
			want = RecoveryCodeCount
		}
		if len(codes) != want || len(hashes) != want {
			t.Fatalf("n=%d: %d codes, %d hashes", n, len(codes), len(hashes))
		}
		seen := map[string]bool{}
		for i, c := range codes {
			if !codeShape.MatchString(c) {
				t.Errorf("code %q has the wrong shape", c)
			}
			if seen[c] {
				t.Errorf("code %q twice", c)
			}
			seen[c] = true
			sum := sha256.Sum256([]byte(strings.ReplaceAll(c, "-", "")))
			if !bytes.Equal(hashes[i], sum[:]) {
				t.Errorf("hash %d is not SHA-256 of the code", i)
			}
		}
	}
}

func TestNewRecoveryCodesErrors(t *testing.T) {
	cases := []struct {
		name string
		r    io.Reader
	}{
		{"failing", failingReader{}},
		{"short", bytes.NewReader(make([]byte, 5))},
		// A source that repeats itself would hand out one code twice.
		{"constant", constReader(7)},
		// Only bytes that would bias the modulo: never a symbol.
		{"all rejected", bytes.NewReader(bytes.Repeat([]byte{255}, 1000))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := NewRecoveryCodes(c.r, 3); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func TestDrawCodeRejectsBiasedBytes(t *testing.T) {
	// 248..255 are dropped; 0 → '2', 30 → 'z', 31 → '2' (31 mod 31), 247 → 247 mod 31 = 30 → 'z'.
	src := append(bytes.Repeat([]byte{248, 255}, 10), 0, 30, 31, 247, 1, 2, 3, 4, 5, 6)
	src = append(src, make([]byte, 40)...)
	got, err := drawCode(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if got != "2z2z345678" {
		t.Fatalf("got %q", got)
	}
}

func TestDrawCodeUniform(t *testing.T) {
	counts := map[byte]int{}
	r := rand.NewChaCha8([32]byte{9})
	const draws = 31 * 1000 / recoveryCodeLen
	for range draws {
		c, err := drawCode(r)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(c) {
			counts[c[i]]++
		}
	}
	if len(counts) != len(recoveryAlphabet) {
		t.Fatalf("%d distinct symbols", len(counts))
	}
	for s, n := range counts { // expected ≈1000 each; 6 sigma is ≈190
		if n < 800 || n > 1200 {
			t.Errorf("symbol %q drawn %d times", s, n)
		}
	}
}

func TestUseRecoveryCode(t *testing.T) {
	codes, hashes, err := NewRecoveryCodes(rand.NewChaCha8([32]byte{42}), 10)
	if err != nil {
		t.Fatal(err)
	}
	c3 := codes[3]
	flip := func(s string) string { // same shape, one symbol changed
		b := []byte(s)
		if b[0] == '2' {
			b[0] = '3'
		} else {
			b[0] = '2'
		}
		return string(b)
	}
	cases := []struct {
		name   string
		hashes [][]byte
		code   string
		want   int // index used, or -1
	}{
		{name: "as shown", code: c3, want: 3},
		{name: "first", code: codes[0], want: 0},
		{name: "last", code: codes[9], want: 9},
		{name: "upper case", code: strings.ToUpper(c3), want: 3},
		{name: "no dash", code: strings.ReplaceAll(c3, "-", ""), want: 3},
		{name: "spaces and dashes", code: " " + c3[:2] + " " + c3[2:5] + "--" + c3[6:] + "\t", want: 3},
		{name: "one symbol wrong", code: flip(c3), want: -1},
		{name: "too short", code: c3[:10], want: -1},
		{name: "too long", code: c3 + "a", want: -1},
		{name: "ambiguous symbols", code: "oooo0-11111", want: -1},
		{name: "totp code", code: "123456", want: -1},
		{name: "empty code", code: "", want: -1},
		{name: "non-ascii", code: "ａbcde-fghjk", want: -1},
		{name: "very long", code: strings.Repeat("-", 1000) + c3, want: -1},
		{name: "no hashes", hashes: [][]byte{}, code: c3, want: -1},
		{name: "truncated hash stored", hashes: [][]byte{hashes[3][:16]}, code: c3, want: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := hashes
			if c.hashes != nil {
				in = c.hashes
			}
			before := slices.Clone(in)
			rem, ok := UseRecoveryCode(in, c.code)
			if !slices.EqualFunc(in, before, bytes.Equal) {
				t.Fatal("input hashes changed")
			}
			if c.want < 0 {
				if ok || len(rem) != len(in) {
					t.Fatalf("accepted: %v, %d left", ok, len(rem))
				}
				return
			}
			if !ok {
				t.Fatal("refused")
			}
			want := slices.Delete(slices.Clone(in), c.want, c.want+1)
			if !slices.EqualFunc(rem, want, bytes.Equal) {
				t.Fatal("wrong hashes remain")
			}
		})
	}
}

func TestRecoveryCodesAreSingleUse(t *testing.T) {
	codes, hashes, err := NewRecoveryCodes(rand.NewChaCha8([32]byte{5}), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		var ok bool
		hashes, ok = UseRecoveryCode(hashes, c)
		if !ok || len(hashes) != len(codes)-i-1 {
			t.Fatalf("code %d: %v, %d left", i, ok, len(hashes))
		}
		if _, again := UseRecoveryCode(hashes, c); again {
			t.Fatalf("code %d used twice", i)
		}
	}
	if len(hashes) != 0 {
		t.Fatalf("%d left", len(hashes))
	}
}

func TestHashRecoveryCode(t *testing.T) {
	a := HashRecoveryCode("abcde-fghjk")
	for _, v := range []string{"ABCDE-FGHJK", "abcdefghjk", " abc de-fg hjk "} {
		if !bytes.Equal(HashRecoveryCode(v), a) {
			t.Errorf("%q hashes differently", v)
		}
	}
	for _, v := range []string{"", "abcde", "abcde-fghjl", "abcde-fghjk-2"} {
		if HashRecoveryCode(v) != nil {
			t.Errorf("%q hashed", v)
		}
	}
}
