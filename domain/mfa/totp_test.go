package mfa

import (
	"bytes"
	"encoding/base32"
	"errors"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA-1 seed of RFC 4226 Appendix D and RFC 6238 Appendix B.
var rfcSecret = []byte("12345678901234567890")

func TestHOTPRFC4226(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for c, w := range want {
		if got := hotp(rfcSecret, uint64(c), 6); got != w {
			t.Errorf("counter %d: got %s, want %s", c, got, w)
		}
	}
}

func TestTOTPRFC6238(t *testing.T) {
	cases := []struct {
		unix int64
		step int64
		code string // 8 digits, as in Appendix B
	}{
		{59, 0x1, "94287082"},
		{1111111109, 0x23523EC, "07081804"},
		{1111111111, 0x23523ED, "14050471"},
		{1234567890, 0x273EF07, "89005924"},
		{2000000000, 0x3F940AA, "69279037"},
		{20000000000, 0x27BC86AA, "65353130"},
	}
	for _, c := range cases {
		now := time.Unix(c.unix, 0)
		if s := Step(now); s != c.step {
			t.Errorf("%d: step %x, want %x", c.unix, s, c.step)
		}
		if got := hotp(rfcSecret, uint64(Step(now)), 8); got != c.code {
			t.Errorf("%d: got %s, want %s", c.unix, got, c.code)
		}
		// Six digits are the low six of the eight.
		if got := Code(rfcSecret, Step(now)); got != c.code[2:] {
			t.Errorf("%d: 6-digit %s, want %s", c.unix, got, c.code[2:])
		}
		if step, ok := Verify(rfcSecret, c.code[2:], now, 0); !ok || step != c.step {
			t.Errorf("%d: Verify = %d, %v", c.unix, step, ok)
		}
	}
}

func TestStep(t *testing.T) {
	cases := []struct {
		unix int64
		want int64
	}{{0, 0}, {29, 0}, {30, 1}, {59, 1}, {60, 2}, {-1, -1}, {-30, -1}, {-31, -2}}
	for _, c := range cases {
		if got := Step(time.Unix(c.unix, 0)); got != c.want {
			t.Errorf("Step(%d) = %d, want %d", c.unix, got, c.want)
		}
	}
	// Sub-second precision does not move the step.
	if got := Step(time.Unix(29, 999_999_999)); got != 0 {
		t.Errorf("Step(29.999…) = %d", got)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1111111111, 0) // step 0x23523ED, 1 s into its window
	cur := Step(now)
	code := func(s int64) string { return Code(rfcSecret, s) }
	cases := []struct {
		name     string
		secret   []byte
		code     string
		lastStep int64
		wantStep int64
		wantOK   bool
	}{
		{name: "current", code: code(cur), wantStep: cur, wantOK: true},
		{name: "one step back", code: code(cur - 1), wantStep: cur - 1, wantOK: true},
		{name: "one step ahead", code: code(cur + 1), wantStep: cur + 1, wantOK: true},
		{name: "two steps back", code: code(cur - 2)},
		{name: "two steps ahead", code: code(cur + 2)},
		{name: "replay of the current step", code: code(cur), lastStep: cur},
		{name: "replay of an earlier step", code: code(cur - 1), lastStep: cur - 1},
		{name: "earlier than last step", code: code(cur - 1), lastStep: cur},
		{name: "newer than last step", code: code(cur), lastStep: cur - 1, wantStep: cur, wantOK: true},
		{name: "ahead of last step", code: code(cur + 1), lastStep: cur, wantStep: cur + 1, wantOK: true},
		{name: "last step in the future", code: code(cur + 1), lastStep: cur + 1},
		{name: "wrong code", code: wrong(code(cur), code(cur-1), code(cur+1))},
		{name: "five digits", code: code(cur)[:5]},
		{name: "seven digits", code: code(cur) + "0"},
		{name: "letters", code: "12345a"},
		{name: "spaces", code: " " + code(cur)[1:]},
		{name: "arabic-indic digits", code: "١٢٣٤٥٦"},
		{name: "empty code"},
		{name: "other secret", secret: []byte("another secret of 20"), code: code(cur)},
		{name: "no secret", secret: []byte{}, code: code(cur)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			secret := rfcSecret
			if c.secret != nil {
				secret = c.secret
			}
			step, ok := Verify(secret, c.code, now, c.lastStep)
			if ok != c.wantOK || (ok && step != c.wantStep) {
				t.Fatalf("Verify(%q, last %d) = %d, %v; want %d, %v", c.code, c.lastStep, step, ok, c.wantStep, c.wantOK)
			}
		})
	}
}

// wrong returns a six-digit code equal to none of codes.
func wrong(codes ...string) string {
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !strings.Contains(strings.Join(codes, ","), c) {
			return c
		}
	}
	panic("unreachable")
}

func TestVerifyAcceptedCodeOnceOnly(t *testing.T) {
	secret, _, err := NewSecret(rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 10, 0, time.UTC)
	c := Code(secret, Step(now))
	last, ok := Verify(secret, c, now, 0)
	if !ok {
		t.Fatal("fresh code refused")
	}
	// The same code, later in its validity window, is refused.
	for _, d := range []time.Duration{0, 10 * time.Second, 30 * time.Second, 50 * time.Second} {
		if _, ok := Verify(secret, c, now.Add(d), last); ok {
			t.Fatalf("replay accepted %s later", d)
		}
	}
	// The next step's code is still good.
	if s, ok := Verify(secret, Code(secret, Step(now)+1), now.Add(Period), last); !ok || s != last+1 {
		t.Fatalf("next code: %d, %v", s, ok)
	}
}

func TestIsTOTPCode(t *testing.T) {
	for code, want := range map[string]bool{
		"123456": true, "000000": true, "12345": false, "1234567": false,
		"abcde-fghjk": false, "12345a": false, "": false, "١٢٣٤٥٦": false,
	} {
		if got := IsTOTPCode(code); got != want {
			t.Errorf("IsTOTPCode(%q) = %v", code, got)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestNewSecret(t *testing.T) {
	secret, enc, err := NewSecret(rand.NewChaCha8([32]byte{2}))
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != SecretSize || len(enc) != 32 || strings.ContainsAny(enc, "=abcdefghijklmnopqrstuvwxyz") {
		t.Fatalf("secret %x encoded %q", secret, enc)
	}
	dec, err := base32.StdEncoding.DecodeString(enc)
	if err != nil || !bytes.Equal(dec, secret) {
		t.Fatalf("decoded %x, %v", dec, err)
	}
	other, _, _ := NewSecret(rand.NewChaCha8([32]byte{3}))
	if bytes.Equal(other, secret) {
		t.Fatal("two sources, one secret")
	}
	if _, _, err := NewSecret(failingReader{}); err == nil {
		t.Fatal("no error from a failing reader")
	}
	if _, _, err := NewSecret(bytes.NewReader(make([]byte, SecretSize-1))); err == nil {
		t.Fatal("no error from a short reader")
	}
}

func TestURI(t *testing.T) {
	cases := []struct {
		name, issuer, account string
		wantLabel             string // decoded path after "/"
		wantIssuer            bool
	}{
		{name: "plain", issuer: "Acme", account: "ann@example.com", wantLabel: "Acme:ann@example.com", wantIssuer: true},
		{name: "spaces and colon", issuer: "Acme: Prod", account: "a b@example.com", wantLabel: "Acme: Prod:a b@example.com", wantIssuer: true},
		{name: "no issuer", account: "ann@example.com", wantLabel: "ann@example.com"},
		{name: "slash and question mark", issuer: "A/B?", account: "x&y", wantLabel: "A/B?:x&y", wantIssuer: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := URI(c.issuer, c.account, rfcSecret)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/"+c.wantLabel {
				t.Fatalf("%s: scheme %q host %q path %q", raw, u.Scheme, u.Host, u.Path)
			}
			// The issuer's own colon is encoded, so the first raw colon splits the label.
			if c.issuer != "" && !strings.HasPrefix(u.EscapedPath(), "/"+strings.ReplaceAll(url.PathEscape(c.issuer), ":", "%3A")+":") {
				t.Fatalf("label %q", u.EscapedPath())
			}
			q := u.Query()
			want := map[string]string{"secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "algorithm": "SHA1", "digits": "6", "period": "30"}
			if c.wantIssuer {
				want["issuer"] = c.issuer
			}
			for k, v := range want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			if !c.wantIssuer && q.Has("issuer") {
				t.Errorf("issuer %q without an issuer", q.Get("issuer"))
			}
		})
	}
}
