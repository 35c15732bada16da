package jwt

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/cairn-dev/cairn/domain"
)

var (
	t0     = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	master = bytes.Repeat([]byte{0x5a}, 32)
)

func newIssuer() *Issuer { return &Issuer{MasterKey: master, BaseURL: "https://cairn.example"} }

func sign(t *testing.T, i *Issuer, project string, gen int) string {
	t.Helper()
	tok, _, err := i.Sign(project, gen, Claims{UserID: "u1", SessionID: "s1"}, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	i := newIssuer()
	tok, exp, err := i.Sign("p1", 0, Claims{UserID: "u1", SessionID: "s1", ID: "j1"}, t0.Add(400*time.Millisecond), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(DefaultTTL)) {
		t.Fatalf("expires %s", exp)
	}
	got, err := i.Verify("p1", 0, tok, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{UserID: "u1", SessionID: "s1", ID: "j1", IssuedAt: t0, ExpiresAt: t0.Add(DefaultTTL)}
	if got.UserID != want.UserID || got.SessionID != want.SessionID || got.ID != want.ID ||
		!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	// The payload says what the API documents.
	var payload map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	if payload["iss"] != "https://cairn.example/v1/projects/p1" || payload["sub"] != "u1" || payload["sid"] != "s1" ||
		payload["jti"] != "j1" || payload["aud"].([]any)[0] != "p1" || payload["exp"].(float64) != float64(t0.Add(DefaultTTL).Unix()) {
		t.Fatalf("payload %v", payload)
	}
	var header map[string]any
	raw, _ = base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	_ = json.Unmarshal(raw, &header)
	kid, _ := i.KeyID("p1", 0)
	if header["alg"] != "EdDSA" || header["kid"] != kid || header["typ"] != "JWT" {
		t.Fatalf("header %v", header)
	}
}

func TestSignDrawsDistinctIDs(t *testing.T) {
	i := newIssuer()
	a, _ := i.Verify("p1", 0, sign(t, i, "p1", 0), t0)
	b, _ := i.Verify("p1", 0, sign(t, i, "p1", 0), t0)
	if a.ID == "" || a.ID == b.ID {
		t.Fatalf("jti %q, %q", a.ID, b.ID)
	}
}

func TestSignTTL(t *testing.T) {
	i := newIssuer()
	cases := []struct {
		ttl     time.Duration
		want    time.Duration
		wantErr bool
	}{
		{0, DefaultTTL, false},
		{time.Second, time.Second, false},
		{MaxTTL, MaxTTL, false},
		{MaxTTL + time.Second, 0, true},
		{-time.Second, 0, true},
	}
	for _, c := range cases {
		_, exp, err := i.Sign("p1", 0, Claims{UserID: "u1"}, t0, c.ttl)
		if c.wantErr {
			if domain.KindOf(err) != domain.KindInvalid {
				t.Errorf("ttl %s: err %v", c.ttl, err)
			}
			continue
		}
		if err != nil || !exp.Equal(t0.Add(c.want)) {
			t.Errorf("ttl %s: exp %s, err %v", c.ttl, exp, err)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	cases := []struct {
		name    string
		i       *Issuer
		project string
		gen     int
		claims  Claims
	}{
		{"no user", newIssuer(), "p1", 0, Claims{}},
		{"short master key", &Issuer{MasterKey: make([]byte, 31)}, "p1", 0, Claims{UserID: "u1"}},
		{"no master key", &Issuer{}, "p1", 0, Claims{UserID: "u1"}},
		{"no project", newIssuer(), "", 0, Claims{UserID: "u1"}},
		{"negative generation", newIssuer(), "p1", -1, Claims{UserID: "u1"}},
	}
	for _, c := range cases {
		if _, _, err := c.i.Sign(c.project, c.gen, c.claims, t0, 0); err == nil {
			t.Errorf("%s: signed", c.name)
		}
	}
}

// forge signs arbitrary claims and header with project p's real key.
func forge(t *testing.T, i *Issuer, p string, gen int, claims gojwt.Claims, edit func(*gojwt.Token)) string {
	t.Helper()
	k, err := i.key(p, gen)
	if err != nil {
		t.Fatal(err)
	}
	tok := gojwt.NewWithClaims(gojwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = k.kid
	if edit != nil {
		edit(tok)
	}
	s, err := tok.SignedString(k.private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(p string) tokenClaims {
	return tokenClaims{RegisteredClaims: gojwt.RegisteredClaims{
		Issuer: "https://cairn.example/v1/projects/" + p, Subject: "u1", Audience: gojwt.ClaimStrings{p},
		IssuedAt: gojwt.NewNumericDate(t0), ExpiresAt: gojwt.NewNumericDate(t0.Add(time.Hour)), ID: "j",
	}}
}

func TestVerifyRefuses(t *testing.T) {
	i := newIssuer()
	good := sign(t, i, "p1", 0)
	parts := strings.Split(good, ".")
	k1, _ := i.key("p1", 0)
	kid1 := k1.kid

	// alg "none", with the right kid.
	none := gojwt.NewWithClaims(gojwt.SigningMethodNone, validClaims("p1"))
	none.Header["kid"] = kid1
	noneTok, err := none.SignedString(gojwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	// HS256 keyed with the public key, raw and as published: the classic confusion.
	hmacWith := func(secret []byte) string {
		h := gojwt.NewWithClaims(gojwt.SigningMethodHS256, validClaims("p1"))
		h.Header["kid"] = kid1
		s, err := h.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubX := base64.RawURLEncoding.EncodeToString(k1.public)
	jwks, _ := i.JWKS("p1", 0)
	// A stranger's Ed25519 key under our kid.
	_, strangerKey, _ := ed25519.GenerateKey(nil)
	stranger := gojwt.NewWithClaims(gojwt.SigningMethodEdDSA, validClaims("p1"))
	stranger.Header["kid"] = kid1
	strangerTok, _ := stranger.SignedString(strangerKey)

	// Replace the payload, keep the signature.
	otherPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://cairn.example/v1/projects/p1","sub":"admin","aud":["p1"],"exp":9999999999,"iat":1700000000}`))
	sig := []byte(parts[2])
	sig[5] ^= 0x01

	cases := []struct {
		name    string
		project string
		gen     int
		token   string
		now     time.Time
	}{
		{name: "other project", project: "p2", token: good, now: t0},
		{name: "other project's key, this project's aud", project: "p2", token: forge(t, i, "p2", 0, validClaims("p1"), nil), now: t0},
		{name: "this project's key, other aud", project: "p1", token: forge(t, i, "p1", 0, func() tokenClaims { c := validClaims("p1"); c.Audience = gojwt.ClaimStrings{"p2"}; return c }(), nil), now: t0},
		{name: "this project's key, other iss", project: "p1", token: forge(t, i, "p1", 0, func() tokenClaims {
			c := validClaims("p1")
			c.Issuer = "https://cairn.example/v1/projects/p2"
			return c
		}(), nil), now: t0},
		{name: "no sub", project: "p1", token: forge(t, i, "p1", 0, func() tokenClaims { c := validClaims("p1"); c.Subject = ""; return c }(), nil), now: t0},
		{name: "no exp", project: "p1", token: forge(t, i, "p1", 0, func() tokenClaims { c := validClaims("p1"); c.ExpiresAt = nil; return c }(), nil), now: t0},
		{name: "no iat", project: "p1", token: forge(t, i, "p1", 0, func() tokenClaims { c := validClaims("p1"); c.IssuedAt = nil; return c }(), nil), now: t0},
		{name: "not yet valid", project: "p1", token: forge(t, i, "p1", 0, func() tokenClaims {
			c := validClaims("p1")
			c.NotBefore = gojwt.NewNumericDate(t0.Add(time.Minute))
			return c
		}(), nil), now: t0},
		{name: "expired", project: "p1", token: good, now: t0.Add(DefaultTTL)},
		{name: "long expired", project: "p1", token: good, now: t0.Add(24 * time.Hour)},
		{name: "issued in the future", project: "p1", token: good, now: t0.Add(-2 * time.Second)},
		{name: "tampered payload", project: "p1", token: parts[0] + "." + otherPayload + "." + parts[2], now: t0},
		{name: "tampered signature", project: "p1", token: parts[0] + "." + parts[1] + "." + string(sig), now: t0},
		{name: "no signature", project: "p1", token: parts[0] + "." + parts[1] + ".", now: t0},
		{name: "alg none", project: "p1", token: noneTok, now: t0},
		{name: "HS256 keyed with public key", project: "p1", token: hmacWith(k1.public), now: t0},
		{name: "HS256 keyed with x", project: "p1", token: hmacWith([]byte(pubX)), now: t0},
		{name: "HS256 keyed with the JWKS", project: "p1", token: hmacWith(jwks), now: t0},
		{name: "stranger's key", project: "p1", token: strangerTok, now: t0},
		{name: "unknown kid", project: "p1", token: forge(t, i, "p1", 0, validClaims("p1"), func(tk *gojwt.Token) { tk.Header["kid"] = "nope" }), now: t0},
		{name: "no kid", project: "p1", token: forge(t, i, "p1", 0, validClaims("p1"), func(tk *gojwt.Token) { delete(tk.Header, "kid") }), now: t0},
		{name: "kid of a later generation", project: "p1", gen: 0, token: sign(t, i, "p1", 1), now: t0},
		{name: "kid two generations back", project: "p1", gen: 2, token: good, now: t0},
		{name: "other master key", project: "p1", token: sign(t, &Issuer{MasterKey: bytes.Repeat([]byte{1}, 32), BaseURL: "https://cairn.example"}, "p1", 0), now: t0},
		{name: "other base URL", project: "p1", token: sign(t, &Issuer{MasterKey: master, BaseURL: "https://evil.example"}, "p1", 0), now: t0},
		{name: "garbage", project: "p1", token: "not.a.jwt", now: t0},
		{name: "empty", project: "p1", token: "", now: t0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := i.Verify(c.project, c.gen, c.token, c.now)
			t.Log(err)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", got, err)
			}
		})
	}
}

func TestVerifyEdges(t *testing.T) {
	i := newIssuer()
	good := sign(t, i, "p1", 0)
	if _, err := i.Verify("p1", 0, good, t0.Add(DefaultTTL-time.Second)); err != nil {
		t.Fatalf("last second refused: %v", err)
	}
	lenient := &Issuer{MasterKey: master, BaseURL: "https://cairn.example", Leeway: 5 * time.Second}
	if _, err := lenient.Verify("p1", 0, good, t0.Add(-2*time.Second)); err != nil {
		t.Fatalf("skew within leeway refused: %v", err)
	}
	if _, err := lenient.Verify("p1", 0, good, t0.Add(DefaultTTL+2*time.Second)); err != nil {
		t.Fatalf("expiry within leeway refused: %v", err)
	}
	if _, err := (&Issuer{MasterKey: []byte("short")}).Verify("p1", 0, good, t0); err == nil || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("bad configuration: %v", err)
	}
}

func TestDeterministicKeys(t *testing.T) {
	a, b := newIssuer(), newIssuer()
	ja, _ := a.JWKS("p1", 3)
	jb, _ := b.JWKS("p1", 3)
	if !bytes.Equal(ja, jb) {
		t.Fatal("two nodes, two JWKS")
	}
	// A token from one node verifies on another.
	if _, err := b.Verify("p1", 0, sign(t, a, "p1", 0), t0); err != nil {
		t.Fatal(err)
	}
	kids := map[string]string{}
	for _, ref := range []struct {
		p string
		g int
	}{{"p1", 0}, {"p1", 1}, {"p2", 0}, {"p1-", 0}, {"p10", 0}} {
		kid, err := a.KeyID(ref.p, ref.g)
		if err != nil {
			t.Fatal(err)
		}
		if len(kid) != 16 {
			t.Fatalf("kid %q", kid)
		}
		if prev, dup := kids[kid]; dup {
			t.Fatalf("%s/%d shares a kid with %s", ref.p, ref.g, prev)
		}
		kids[kid] = ref.p
	}
	other := &Issuer{MasterKey: bytes.Repeat([]byte{1}, 32)}
	if k1, _ := a.KeyID("p1", 0); func() bool { k2, _ := other.KeyID("p1", 0); return k1 == k2 }() {
		t.Fatal("master key does not change the key")
	}
}

func TestRotation(t *testing.T) {
	i := newIssuer()
	old := sign(t, i, "p1", 0)
	oldKid, _ := i.KeyID("p1", 0)

	// Generation 1: new tokens use the new key, tokens in flight still verify.
	fresh := sign(t, i, "p1", 1)
	newKid, _ := i.KeyID("p1", 1)
	if oldKid == newKid || headerKid(t, fresh) != newKid || headerKid(t, old) != oldKid {
		t.Fatalf("kids: old %s new %s", oldKid, newKid)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := i.Verify("p1", 1, tok, t0); err != nil {
			t.Fatalf("generation 1: %v", err)
		}
	}
	var set JWKSet
	raw, _ := i.JWKS("p1", 1)
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0].Kid != newKid || set.Keys[1].Kid != oldKid {
		t.Fatalf("jwks %s", raw)
	}
	// Generation 2: the oldest key is gone.
	if _, err := i.Verify("p1", 2, old, t0); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("generation 0 token at generation 2: %v", err)
	}
	if _, err := i.Verify("p1", 2, fresh, t0); err != nil {
		t.Fatal(err)
	}
	raw, _ = i.JWKS("p1", 0)
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("generation 0 jwks %s", raw)
	}
}

func headerKid(t *testing.T, tok string) string {
	t.Helper()
	var h struct{ Kid string }
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestInteropGoJose verifies tokens with nothing but the published JWKS and
// an independent JOSE library, as a customer's server would.
func TestInteropGoJose(t *testing.T) {
	i := newIssuer()
	old := sign(t, i, "p1", 0)
	fresh := sign(t, i, "p1", 1)
	raw, err := i.JWKS("p1", 1)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("go-jose cannot read the JWKS: %v", err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() || k.Algorithm != "EdDSA" || k.Use != "sig" {
			t.Fatalf("key %+v", k)
		}
		if _, ok := k.Key.(ed25519.PublicKey); !ok {
			t.Fatalf("key type %T", k.Key)
		}
		// kid is a prefix of the RFC 7638 thumbprint.
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil || base64.RawURLEncoding.EncodeToString(tp[:12]) != k.KeyID {
			t.Fatalf("kid %s is not the thumbprint's prefix (%v)", k.KeyID, err)
		}
	}
	for _, tok := range []string{old, fresh} {
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			t.Fatalf("kid %q matches %d keys", jws.Signatures[0].Header.KeyID, len(keys))
		}
		payload, err := jws.Verify(keys[0])
		if err != nil {
			t.Fatalf("go-jose refuses the signature: %v", err)
		}
		var c struct {
			Iss, Sub, Sid string
			Aud           []string
			Exp           int64
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		if c.Iss != "https://cairn.example/v1/projects/p1" || c.Sub != "u1" || c.Sid != "s1" || len(c.Aud) != 1 || c.Aud[0] != "p1" || c.Exp != t0.Add(DefaultTTL).Unix() {
			t.Fatalf("claims %+v", c)
		}
	}
	// A tampered token fails go-jose too.
	parts := strings.Split(fresh, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2]
	jws, err := jose.ParseSignedCompact(forged, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(set.Key(jws.Signatures[0].Header.KeyID)[0]); err == nil {
		t.Fatal("go-jose accepts a tampered token")
	}
}

func BenchmarkSign(b *testing.B) {
	i := newIssuer()
	for b.Loop() {
		if _, _, err := i.Sign("p1", 0, Claims{UserID: "u1", SessionID: "s1"}, t0, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	i := newIssuer()
	tok, _, _ := i.Sign("p1", 0, Claims{UserID: "u1", SessionID: "s1"}, t0, 0)
	for b.Loop() {
		if _, err := i.Verify("p1", 0, tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}
