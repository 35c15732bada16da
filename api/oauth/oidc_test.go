package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/cairn-dev/cairn/domain"
)

const (
	testCallback = "https://cairn.example/v1/oauth2/callback"
	testSuccess  = "https://app.example/done"
	testFailure  = "https://app.example/failed?x=1"
)

var testOrigins = []string{"https://app.example"}

func testKey(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

// startIdP runs mockoidc on loopback; mw, when set, wraps its handlers.
func startIdP(t *testing.T, mw func(http.Handler) http.Handler) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if mw != nil {
		if err := m.AddMiddleware(mw); err != nil {
			t.Fatal(err)
		}
	}
	ln := listen(t)
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func newFlow(t *testing.T, cfg Config) *Flow {
	t.Helper()
	if cfg.MasterKey == nil {
		cfg.MasterKey = testKey(7)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func idpProvider(m *mockoidc.MockOIDC) Provider {
	return OIDC("my-idp", m.Issuer(), m.ClientID, m.ClientSecret)
}

func beginParams(project string) BeginParams {
	return BeginParams{Project: project, RedirectURI: testCallback, SuccessURL: testSuccess, FailureURL: testFailure, AllowedOrigins: testOrigins}
}

// authorize plays the browser: it GETs the authorization URL without
// following the provider's redirect back to Cairn, and returns the
// callback's query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testCallback {
		t.Fatalf("provider redirected to %q, want the callback", got)
	}
	return loc.Query()
}

func TestOIDCFullFlow(t *testing.T) {
	m := startIdP(t, nil)
	f := newFlow(t, Config{})
	p := idpProvider(m)
	ctx := context.Background()

	start, err := f.Begin(ctx, p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(start.URL)
	q := au.Query()
	for k, want := range map[string]string{"code_challenge_method": "S256", "response_type": "code", "client_id": m.ClientID, "redirect_uri": testCallback, "state": start.State} {
		if q.Get(k) != want {
			t.Errorf("authorization URL %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("nonce") == "" || q.Get("code_challenge") == "" {
		t.Errorf("authorization URL lacks nonce or code_challenge: %s", start.URL)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(start.State)
	if strings.Contains(string(raw), "app.example") || strings.Contains(string(raw), "proj-a") {
		t.Error("state is not encrypted")
	}

	cb := authorize(t, start.URL)
	res, err := f.Complete(ctx, p, "proj-a", cb)
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{ProviderID: "my-idp", Subject: "1234567890", Email: "jane.doe@example.com", EmailVerified: true, Name: "jane.doe"}
	if res.Identity != want {
		t.Errorf("identity = %+v, want %+v", res.Identity, want)
	}
	if res.SuccessURL != testSuccess || res.FailureURL != testFailure {
		t.Errorf("urls = %q, %q", res.SuccessURL, res.FailureURL)
	}

	// The same callback again: the code is single-use at the provider.
	_, err = f.Complete(ctx, p, "proj-a", cb)
	if !errors.Is(err, ErrExchange) {
		t.Errorf("replayed callback: err = %v, want ErrExchange", err)
	}
}

func TestOIDCUnverifiedEmail(t *testing.T) {
	m := startIdP(t, nil)
	m.QueueUser(&mockoidc.MockUser{Subject: "u-2", Email: "bob@example.com", EmailVerified: false})
	f := newFlow(t, Config{})
	p := idpProvider(m)
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Complete(context.Background(), p, "proj-a", authorize(t, start.URL))
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Subject != "u-2" || res.Identity.Email != "bob@example.com" || res.Identity.EmailVerified {
		t.Errorf("identity = %+v", res.Identity)
	}
}

// TestOIDCStateRefused covers states that must not open: each case gets a
// genuine callback and then changes one thing.
func TestOIDCStateRefused(t *testing.T) {
	m := startIdP(t, nil)
	p := idpProvider(m)
	other := p
	other.ID = "other-idp"

	cases := []struct {
		name    string
		flow    *Flow
		p       Provider
		project string
		mutate  func(url.Values)
	}{
		{name: "tampered", p: p, project: "proj-a", mutate: func(q url.Values) {
			s := []byte(q.Get("state"))
			i := len(s) / 2
			if s[i] == 'A' {
				s[i] = 'B'
			} else {
				s[i] = 'A'
			}
			q.Set("state", string(s))
		}},
		{name: "truncated", p: p, project: "proj-a", mutate: func(q url.Values) { q.Set("state", q.Get("state")[:20]) }},
		{name: "missing", p: p, project: "proj-a", mutate: func(q url.Values) { q.Del("state") }},
		{name: "garbage", p: p, project: "proj-a", mutate: func(q url.Values) { q.Set("state", "!!not-base64!!") }},
		{name: "too long", p: p, project: "proj-a", mutate: func(q url.Values) { q.Set("state", strings.Repeat("A", 17000)) }},
		{name: "other project", p: p, project: "proj-b"},
		{name: "other provider", p: other, project: "proj-a"},
		{name: "other master key", flow: newFlow(t, Config{MasterKey: testKey(8)}), p: p, project: "proj-a"},
	}
	f := newFlow(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
			if err != nil {
				t.Fatal(err)
			}
			q := authorize(t, start.URL)
			if tc.mutate != nil {
				tc.mutate(q)
			}
			cf := f
			if tc.flow != nil {
				cf = tc.flow
			}
			_, err = cf.Complete(context.Background(), tc.p, tc.project, q)
			if !errors.Is(err, ErrInvalidState) {
				t.Fatalf("err = %v, want ErrInvalidState", err)
			}
			if _, ok := errors.AsType[*CallbackError](err); ok {
				t.Error("an unauthenticated state must not yield a failure URL")
			}
		})
	}
}

func TestOIDCStateExpired(t *testing.T) {
	m := startIdP(t, nil)
	p := idpProvider(m)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFlow(t, Config{Now: clock})
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	if d := start.ExpiresAt.Sub(now); d > MaxStateTTL || d < MaxStateTTL-time.Second {
		t.Errorf("state lifetime %v, want %v", d, MaxStateTTL)
	}
	q := authorize(t, start.URL)
	mu.Lock()
	now = now.Add(MaxStateTTL + time.Second)
	mu.Unlock()
	_, err = f.Complete(context.Background(), p, "proj-a", q)
	ce, ok := errors.AsType[*CallbackError](err)
	if !ok || !errors.Is(err, ErrStateExpired) || ce.FailureURL != testFailure || ce.Code != "state_expired" {
		t.Fatalf("err = %#v, want CallbackError(state_expired) with the failure URL", err)
	}
}

func TestOIDCProviderError(t *testing.T) {
	m := startIdP(t, nil)
	p := idpProvider(m)
	f := newFlow(t, Config{})
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ code, wantCode string }{
		{"access_denied", "access_denied"},
		{"<script>", "server_error"},
	} {
		q := url.Values{"state": {start.State}, "error": {tc.code}, "error_description": {"The user said no\x00"}}
		_, err = f.Complete(context.Background(), p, "proj-a", q)
		ce, ok := errors.AsType[*CallbackError](err)
		if !ok || !errors.Is(err, ErrProviderDenied) {
			t.Fatalf("err = %v, want CallbackError wrapping ErrProviderDenied", err)
		}
		if ce.Code != tc.wantCode || ce.FailureURL != testFailure || ce.Description != "The user said no" {
			t.Errorf("callback error = %+v", ce)
		}
	}
	// No code and no error.
	_, err = f.Complete(context.Background(), p, "proj-a", url.Values{"state": {start.State}})
	if ce, ok := errors.AsType[*CallbackError](err); !ok || ce.Code != "invalid_request" {
		t.Errorf("err = %v, want invalid_request", err)
	}
}

func TestOIDCSeenHook(t *testing.T) {
	m := startIdP(t, nil)
	p := idpProvider(m)
	var mu sync.Mutex
	seen := map[string]bool{}
	f := newFlow(t, Config{Seen: func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		was := seen[id]
		seen[id] = true
		return was
	}})
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	q := authorize(t, start.URL)
	if _, err := f.Complete(context.Background(), p, "proj-a", q); err != nil {
		t.Fatal(err)
	}
	_, err = f.Complete(context.Background(), p, "proj-a", q)
	if !errors.Is(err, ErrStateReplayed) {
		t.Fatalf("err = %v, want ErrStateReplayed", err)
	}
}

// A nonce other than the one sealed in the state (an ID token minted for
// another sign-in) is refused.
func TestOIDCWrongNonce(t *testing.T) {
	m := startIdP(t, nil)
	p := idpProvider(m)
	f := newFlow(t, Config{})
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(start.URL)
	q := au.Query()
	q.Set("nonce", "attacker-nonce")
	au.RawQuery = q.Encode()
	_, err = f.Complete(context.Background(), p, "proj-a", authorize(t, au.String()))
	if !errors.Is(err, ErrIDToken) || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("err = %v, want ErrIDToken about the nonce", err)
	}
}

// An ID token whose audience is another client is refused: the provider
// here accepts any client_id but always issues tokens for its own.
func TestOIDCWrongAudience(t *testing.T) {
	var m *mockoidc.MockOIDC
	m = startIdP(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err == nil && r.Form.Get("client_id") != "" {
				r.Form.Set("client_id", m.ClientID)
			}
			next.ServeHTTP(w, r)
		})
	})
	p := OIDC("my-idp", m.Issuer(), "someone-else", m.ClientSecret)
	f := newFlow(t, Config{})
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Complete(context.Background(), p, "proj-a", authorize(t, start.URL))
	if !errors.Is(err, ErrIDToken) || !strings.Contains(err.Error(), "audience") {
		t.Fatalf("err = %v, want ErrIDToken about the audience", err)
	}
}

// An expired ID token is refused (the Flow's clock is past the token's exp
// but the state, begun at the same instant, is fresh).
func TestOIDCExpiredIDToken(t *testing.T) {
	m := startIdP(t, nil)
	p := idpProvider(m)
	later := time.Now().Add(m.AccessTTL + time.Hour)
	f := newFlow(t, Config{Now: func() time.Time { return later }})
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Complete(context.Background(), p, "proj-a", authorize(t, start.URL))
	if !errors.Is(err, ErrIDToken) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v, want ErrIDToken about expiry", err)
	}
}

// A code obtained in one sign-in cannot be completed with the state of
// another: the PKCE verifier does not match.
func TestOIDCCodeInjection(t *testing.T) {
	m := startIdP(t, nil)
	p := idpProvider(m)
	f := newFlow(t, Config{})
	victim, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	q := authorize(t, attacker.URL)
	q.Set("state", victim.State)
	_, err = f.Complete(context.Background(), p, "proj-a", q)
	if !errors.Is(err, ErrExchange) {
		t.Fatalf("err = %v, want ErrExchange", err)
	}
}

func TestDiscoveryCached(t *testing.T) {
	var hits atomic.Int32
	m := startIdP(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == mockoidc.DiscoveryEndpoint {
				hits.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	p := idpProvider(m)
	var mu sync.Mutex
	now := time.Now()
	f := newFlow(t, Config{DiscoveryTTL: time.Minute, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	for range 3 {
		if _, err := f.Begin(context.Background(), p, beginParams("proj-a")); err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("discovery fetched %d times, want 1", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, err := f.Begin(context.Background(), p, beginParams("proj-a")); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("discovery fetched %d times after the TTL, want 2", n)
	}
}

func TestDiscoveryFailure(t *testing.T) {
	f := newFlow(t, Config{})
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err := f.Begin(context.Background(), OIDC("x", "http://"+addr+"/oidc", "c", "s"), beginParams("proj-a"))
	if !errors.Is(err, ErrDiscovery) {
		t.Fatalf("err = %v, want ErrDiscovery", err)
	}
}

func TestBeginRefusesRedirects(t *testing.T) {
	m := startIdP(t, nil)
	f := newFlow(t, Config{})
	for _, tc := range []struct {
		field string
		edit  func(*BeginParams)
	}{
		{"success_url", func(b *BeginParams) { b.SuccessURL = "https://evil.example/x" }},
		{"failure_url", func(b *BeginParams) { b.FailureURL = "javascript:alert(1)" }},
		{"success_url", func(b *BeginParams) { b.AllowedOrigins = nil }},
	} {
		bp := beginParams("proj-a")
		tc.edit(&bp)
		_, err := f.Begin(context.Background(), idpProvider(m), bp)
		de, ok := errors.AsType[*domain.Error](err)
		if !ok || de.Kind != domain.KindInvalid || de.Field != tc.field {
			t.Errorf("err = %v, want invalid %s", err, tc.field)
		}
	}
}

func TestBeginBadProvider(t *testing.T) {
	f := newFlow(t, Config{})
	for _, p := range []Provider{
		{ID: "", Kind: KindGitHub, ClientID: "c"},
		{ID: "x", Kind: KindGitHub},
		{ID: "x", Kind: KindOIDC, ClientID: "c"},
		{ID: "x", Kind: "saml", ClientID: "c"},
	} {
		if _, err := f.Begin(context.Background(), p, beginParams("proj-a")); err == nil {
			t.Errorf("provider %+v accepted", p)
		}
	}
}

func TestNewNeedsKey(t *testing.T) {
	if _, err := New(Config{MasterKey: make([]byte, 16)}); err == nil {
		t.Error("a 16-byte master key was accepted")
	}
}

func TestDiscoveryCacheBounded(t *testing.T) {
	m1, m2 := startIdP(t, nil), startIdP(t, nil)
	f := newFlow(t, Config{MaxIssuers: 1})
	for _, m := range []*mockoidc.MockOIDC{m1, m2, m1} {
		if _, err := f.Begin(context.Background(), idpProvider(m), beginParams("proj-a")); err != nil {
			t.Fatal(err)
		}
		if n := f.disc.len(); n != 1 {
			t.Fatalf("cache holds %d issuers, want 1", n)
		}
	}
}

// Concurrent sign-ins share one discovery fetch and the cache is safe
// under the race detector.
func TestConcurrentBegin(t *testing.T) {
	var hits atomic.Int32
	m := startIdP(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == mockoidc.DiscoveryEndpoint {
				hits.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	f := newFlow(t, Config{})
	var wg sync.WaitGroup
	states := make([]string, 16)
	for i := range states {
		wg.Go(func() {
			s, err := f.Begin(context.Background(), idpProvider(m), beginParams("proj-a"))
			if err != nil {
				t.Error(err)
				return
			}
			states[i] = s.State
		})
	}
	wg.Wait()
	if n := hits.Load(); n < 1 || n > 16 {
		t.Errorf("discovery fetched %d times", n)
	}
	seen := map[string]bool{}
	for _, s := range states {
		if seen[s] {
			t.Fatal("two sign-ins got the same state")
		}
		seen[s] = true
	}
}
