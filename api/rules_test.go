package api

import (
	"testing"
)

// A procedure without a rule is refused at runtime; this makes the omission
// fail here instead.
func TestEveryProcedureHasARule(t *testing.T) {
	s := &Server{}
	server, err := s.connectServer()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for spec := range server.Specs() {
		n++
		if _, ok := ruleFor(spec.Procedure); !ok {
			t.Errorf("%s has no access rule", spec.Procedure)
		}
	}
	if n < 15 {
		t.Fatalf("only %d procedures registered", n)
	}
}

func TestKeyTokenRoundTrip(t *testing.T) {
	tok := keyToken("acme-1", "01JABCDEFGHJKMNPQRSTVWXYZ0", make([]byte, 32))
	p, k, ok := parseKeyToken(tok)
	if !ok || p != "acme-1" || k != "01JABCDEFGHJKMNPQRSTVWXYZ0" {
		t.Fatalf("round trip failed: %q → %q %q %v", tok, p, k, ok)
	}
	for _, bad := range []string{"", "ck_", "ck_a_b", "ck_Acme_k_" + string(make([]byte, 64)), "cak_x", tok + "0", "ck_a_b_c_" + tok[len(tok)-64:]} {
		if _, _, ok := parseKeyToken(bad); ok {
			t.Errorf("accepted malformed token %q", bad)
		}
	}
}
