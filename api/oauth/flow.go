package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/cairn-dev/cairn/domain"
)

// Config configures a Flow. Only MasterKey is required.
type Config struct {
	// MasterKey is the instance's master key (at least 32 bytes); the state
	// key is derived from it with HKDF-SHA256.
	MasterKey []byte
	// HTTPClient makes every request to providers. Default: a client with a
	// 10-second timeout. Every request also carries the caller's context.
	HTTPClient *http.Client
	// Timeout bounds one Begin or Complete call, all requests included.
	// Default 30 seconds.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock for state expiry and ID-token expiry. Default time.Now.
	Now func() time.Time
	// StateTTL is how long a sign-in may take; default and maximum
	// MaxStateTTL.
	StateTTL time.Duration
	// DiscoveryTTL is how long an issuer's discovery document (and the
	// key set fetched through it) is reused; default one hour.
	DiscoveryTTL time.Duration
	// MaxIssuers bounds the discovery cache; default 1,024.
	MaxIssuers int
	// GitHub overrides GitHub's endpoints (tests, GitHub Enterprise).
	GitHub GitHubEndpoints
	// Seen, when set, is called with a state's random ID once the state has
	// been authenticated and must record it and report whether it had been
	// recorded before (for example a create-only key with a TTL of
	// MaxStateTTL). It is optional: the authorization code is already
	// single-use at the provider.
	Seen func(stateID string) bool
}

// Flow runs OAuth2 / OIDC sign-ins. It is safe for concurrent use and
// holds no per-sign-in state: any Flow built with the same master key can
// complete a sign-in another began.
type Flow struct {
	cfg    Config
	sealer *sealer
	disc   *discoveryCache
	log    *slog.Logger
}

// New returns a Flow.
func New(cfg Config) (*Flow, error) {
	s, err := newSealer(cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StateTTL <= 0 || cfg.StateTTL > MaxStateTTL {
		cfg.StateTTL = MaxStateTTL
	}
	if cfg.DiscoveryTTL <= 0 {
		cfg.DiscoveryTTL = time.Hour
	}
	if cfg.MaxIssuers <= 0 {
		cfg.MaxIssuers = 1024
	}
	cfg.GitHub = cfg.GitHub.withDefaults()
	cfg.MasterKey = nil // the derived key is all we keep
	return &Flow{
		cfg:    cfg,
		sealer: s,
		disc:   newDiscoveryCache(cfg.DiscoveryTTL, cfg.MaxIssuers),
		log:    cfg.Logger,
	}, nil
}

// BeginParams describes one sign-in to start.
type BeginParams struct {
	// Project is the project signing in; the state is bound to it.
	Project string
	// RedirectURI is Cairn's callback URL for this project and provider, as
	// registered with the provider.
	RedirectURI string
	// SuccessURL and FailureURL are the app's URLs; both must pass
	// CheckRedirect against AllowedOrigins.
	SuccessURL string
	FailureURL string
	// AllowedOrigins are the project's allowed origins (platforms). Empty
	// allows nothing.
	AllowedOrigins []string
	// Now is the start time; zero means the Flow's clock.
	Now time.Time
}

// Start is where to send the browser.
type Start struct {
	// URL is the provider's authorization URL, with state, PKCE challenge
	// and (for OIDC) nonce.
	URL string
	// State is the sealed state carried in URL.
	State     string
	ExpiresAt time.Time
}

// Begin starts a sign-in with provider p: it checks the success and
// failure URLs, generates a PKCE verifier (S256) and, for OIDC kinds, a
// nonce, and seals them into the state.
//
// State format: base64url(0x01 ‖ 12-byte random GCM nonce ‖ AES-256-GCM
// ciphertext ‖ tag), the plaintext a JSON object {i: random ID, p: project,
// pr: provider ID, v: PKCE verifier, n: OIDC nonce, r: redirect URI,
// s: success URL, f: failure URL, e: expiry (Unix seconds)}, the additional
// data "cairn/oauth/state/v1\0<project>\0<provider>", the key
// HKDF-SHA256(master key, info "cairn/oauth/state/v1").
//
// Errors: a *domain.Error (KindInvalid) naming success_url or failure_url
// when one is refused; otherwise a wrapped error (bad provider
// configuration, ErrDiscovery).
func (f *Flow) Begin(ctx context.Context, p Provider, bp BeginParams) (Start, error) {
	if err := p.validate(); err != nil {
		return Start{}, err
	}
	if bp.Project == "" {
		return Start{}, errors.New("oauth begin: empty project")
	}
	if u, err := url.Parse(bp.RedirectURI); err != nil || !u.IsAbs() || u.Host == "" {
		return Start{}, fmt.Errorf("oauth begin: redirect uri %q is not an absolute URL", bp.RedirectURI)
	}
	if err := CheckRedirect(bp.SuccessURL, bp.AllowedOrigins); err != nil {
		return Start{}, domain.FieldError("success_url", "%s", err.Error())
	}
	if err := CheckRedirect(bp.FailureURL, bp.AllowedOrigins); err != nil {
		return Start{}, domain.FieldError("failure_url", "%s", err.Error())
	}
	now := bp.Now
	if now.IsZero() {
		now = f.cfg.Now()
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	oc, _, err := f.oauthConfig(ctx, p, bp.RedirectURI)
	if err != nil {
		return Start{}, fmt.Errorf("oauth begin for provider %q: %w", p.ID, err)
	}
	id, err := randomString(16)
	if err != nil {
		return Start{}, fmt.Errorf("oauth begin: %w", err)
	}
	st := flowState{
		ID:          id,
		Project:     bp.Project,
		Provider:    p.ID,
		Verifier:    oauth2.GenerateVerifier(),
		RedirectURI: bp.RedirectURI,
		SuccessURL:  bp.SuccessURL,
		FailureURL:  bp.FailureURL,
		Expires:     now.Add(f.cfg.StateTTL).Unix(),
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(st.Verifier)}
	if p.isOIDC() {
		if st.Nonce, err = randomString(32); err != nil {
			return Start{}, fmt.Errorf("oauth begin: %w", err)
		}
		opts = append(opts, oidc.Nonce(st.Nonce))
	}
	sealed, err := f.sealer.seal(st)
	if err != nil {
		return Start{}, err
	}
	return Start{
		URL:       oc.AuthCodeURL(sealed, opts...),
		State:     sealed,
		ExpiresAt: time.Unix(st.Expires, 0),
	}, nil
}

// Identity is who the provider says signed in.
type Identity struct {
	ProviderID string
	// Subject is the provider's stable ID ("sub", or GitHub's numeric id).
	Subject string
	// Email may be empty when the provider shares none.
	Email string
	// EmailVerified is the provider's assertion that the user controls
	// Email (OIDC email_verified; GitHub's verified flag on the primary
	// email).
	EmailVerified bool
	Name          string
}

// Result is a completed sign-in.
type Result struct {
	Identity   Identity
	SuccessURL string
	FailureURL string
}

// Complete finishes a sign-in on Cairn's callback for project and provider
// p, with the callback's query.
//
// Errors: a wrapped ErrInvalidState when the state does not open for this
// project and provider (no failure URL is trustworthy then); otherwise a
// *CallbackError carrying the sealed failure URL and wrapping
// ErrStateExpired, ErrStateReplayed, ErrProviderDenied, ErrExchange,
// ErrIDToken, ErrUserInfo or ErrDiscovery.
func (f *Flow) Complete(ctx context.Context, p Provider, project string, query url.Values) (Result, error) {
	if err := p.validate(); err != nil {
		return Result{}, err
	}
	st, err := f.sealer.open(query.Get("state"), project, p.ID)
	if err != nil {
		return Result{}, fmt.Errorf("oauth callback for project %q provider %q: %w", project, p.ID, err)
	}
	fail := func(code, desc string, err error) (Result, error) {
		f.log.WarnContext(ctx, "oauth sign-in failed", "project", project, "provider", p.ID, "code", code, "err", err)
		return Result{}, &CallbackError{FailureURL: st.FailureURL, Code: code, Description: desc, Err: err}
	}
	if !f.cfg.Now().Before(time.Unix(st.Expires, 0)) {
		return fail("state_expired", "", fmt.Errorf("%w at %s", ErrStateExpired, time.Unix(st.Expires, 0).UTC().Format(time.RFC3339)))
	}
	if f.cfg.Seen != nil && f.cfg.Seen(st.ID) {
		return fail("state_replayed", "", ErrStateReplayed)
	}
	if e := query.Get("error"); e != "" {
		code, desc := sanitizeCode(e), sanitizeText(query.Get("error_description"))
		return fail(code, desc, fmt.Errorf("%w: %s", ErrProviderDenied, code))
	}
	code := query.Get("code")
	if code == "" {
		return fail("invalid_request", "", fmt.Errorf("%w: callback has no code", ErrExchange))
	}

	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	oc, op, err := f.oauthConfig(ctx, p, st.RedirectURI)
	if err != nil {
		return fail("server_error", "", err)
	}
	tok, err := oc.Exchange(f.clientContext(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return fail("server_error", "", fmt.Errorf("%w with provider %q: %w", ErrExchange, p.ID, err))
	}
	var id Identity
	if p.isOIDC() {
		id, err = f.oidcIdentity(ctx, p, op, tok, st.Nonce)
	} else {
		id, err = f.githubIdentity(ctx, tok)
	}
	if err != nil {
		return fail("server_error", "", err)
	}
	id.ProviderID = p.ID
	return Result{Identity: id, SuccessURL: st.SuccessURL, FailureURL: st.FailureURL}, nil
}

// oauthConfig returns the oauth2 configuration for p and, for OIDC kinds,
// the discovered provider.
func (f *Flow) oauthConfig(ctx context.Context, p Provider, redirectURI string) (*oauth2.Config, *oidc.Provider, error) {
	oc := &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  redirectURI,
		Scopes:       p.scopes(),
	}
	if !p.isOIDC() {
		oc.Endpoint = oauth2.Endpoint{
			AuthURL:   f.cfg.GitHub.AuthURL,
			TokenURL:  f.cfg.GitHub.TokenURL,
			AuthStyle: oauth2.AuthStyleInParams,
		}
		return oc, nil, nil
	}
	op, err := f.disc.get(ctx, p.issuer(), f.cfg.HTTPClient, f.cfg.Now())
	if err != nil {
		return nil, nil, err
	}
	oc.Endpoint = op.Endpoint()
	return oc, op, nil
}

// clientContext carries the injected HTTP client to oauth2 and go-oidc.
func (f *Flow) clientContext(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.cfg.HTTPClient)
	return oidc.ClientContext(ctx, f.cfg.HTTPClient)
}

// idClaims are the ID-token claims Cairn reads.
type idClaims struct {
	Email             string       `json:"email"`
	EmailVerified     flexibleBool `json:"email_verified"`
	Name              string       `json:"name"`
	PreferredUsername string       `json:"preferred_username"`
	AuthorizedParty   string       `json:"azp"`
}

func (f *Flow) oidcIdentity(ctx context.Context, p Provider, op *oidc.Provider, tok *oauth2.Token, nonce string) (Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: provider %q returned no id_token", ErrIDToken, p.ID)
	}
	v := op.Verifier(&oidc.Config{ClientID: p.ClientID, Now: f.cfg.Now})
	idt, err := v.Verify(f.clientContext(ctx), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w from provider %q: %w", ErrIDToken, p.ID, err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w from provider %q: nonce does not match the sign-in's", ErrIDToken, p.ID)
	}
	if idt.Subject == "" {
		return Identity{}, fmt.Errorf("%w from provider %q: empty subject", ErrIDToken, p.ID)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("%w from provider %q: claims: %w", ErrIDToken, p.ID, err)
	}
	// OIDC Core §3.1.3.7: with several audiences, azp must name this client.
	if len(idt.Audience) > 1 && c.AuthorizedParty != p.ClientID {
		return Identity{}, fmt.Errorf("%w from provider %q: several audiences and azp %q is not this client", ErrIDToken, p.ID, c.AuthorizedParty)
	}
	id := Identity{Subject: idt.Subject, Email: c.Email, EmailVerified: bool(c.EmailVerified), Name: c.Name}
	if id.Name == "" {
		id.Name = c.PreferredUsername
	}
	// Some providers put the email only in userinfo.
	if id.Email == "" && op.UserInfoEndpoint() != "" {
		ui, err := op.UserInfo(f.clientContext(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("%w from provider %q: %w", ErrUserInfo, p.ID, err)
		}
		if ui.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("%w from provider %q: userinfo subject differs from the id token's", ErrUserInfo, p.ID)
		}
		id.Email, id.EmailVerified = ui.Email, ui.EmailVerified
	}
	id.Email = strings.TrimSpace(id.Email)
	if id.Email == "" {
		id.EmailVerified = false
	}
	return id, nil
}

// flexibleBool accepts true, false, "true" and "false": some providers send
// email_verified as a string.
type flexibleBool bool

func (b *flexibleBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null":
		*b = false
	default:
		return fmt.Errorf("invalid boolean %s", data)
	}
	return nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sanitizeCode keeps a provider's error code to [a-z0-9_] (RFC 6749 codes
// are of that form) so it cannot smuggle anything into the failure URL's
// meaning.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		return "server_error"
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return "server_error"
		}
	}
	return s
}

// sanitizeText keeps printable ASCII, at most 200 bytes.
func sanitizeText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 200 {
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return b.String()
}
