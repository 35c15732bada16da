package oauth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestStateSealOpen(t *testing.T) {
	s, err := newSealer(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	st := flowState{ID: "id", Project: "p", Provider: "gh", Verifier: "v", Nonce: "n", RedirectURI: "r", SuccessURL: "s", FailureURL: "f", Expires: 42}
	raw, err := s.seal(st)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.seal(st)
	if raw == again {
		t.Error("two seals of one state are equal: the GCM nonce is not random")
	}
	got, err := s.open(raw, "p", "gh")
	if err != nil || got != st {
		t.Fatalf("open = %+v, %v", got, err)
	}
	// Binding: "p"+"gh" must not equal "pg"+"h".
	if _, err := s.open(raw, "pg", "h"); !errors.Is(err, ErrInvalidState) {
		t.Errorf("binding is ambiguous: %v", err)
	}
	b, _ := base64.RawURLEncoding.DecodeString(raw)
	b[0] = 2
	if _, err := s.open(base64.RawURLEncoding.EncodeToString(b), "p", "gh"); !errors.Is(err, ErrInvalidState) {
		t.Errorf("unknown version: %v", err)
	}
	for i := 1; i < len(b); i += 7 {
		c := append([]byte{stateVersion}, b[1:]...)
		c[i] ^= 0x01
		if _, err := s.open(base64.RawURLEncoding.EncodeToString(c), "p", "gh"); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("bit flip at %d accepted", i)
		}
	}
}

// The longest URLs the API accepts (2,048 bytes each) still fit a state
// that Complete accepts.
func TestStateLongestURLs(t *testing.T) {
	s, _ := newSealer(testKey(1))
	long := "https://app.example/" + strings.Repeat("a", 2048-len("https://app.example/"))
	st := flowState{ID: strings.Repeat("i", 22), Project: strings.Repeat("p", 36), Provider: strings.Repeat("q", 36), Verifier: strings.Repeat("v", 43), Nonce: strings.Repeat("n", 43), RedirectURI: long, SuccessURL: long, FailureURL: long, Expires: 1 << 40}
	raw, err := s.seal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.open(raw, st.Project, st.Provider); err != nil {
		t.Fatalf("a %d-byte state was refused: %v", len(raw), err)
	}
}
