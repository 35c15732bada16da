// Package jwt issues and verifies the short-lived JWTs that let server code
// act as a user (AccountService.CreateJWT), and publishes each project's
// JWKS (/v1/projects/{p}/jwks.json).
//
// Keys are Ed25519 (JWS alg "EdDSA", RFC 8037) and are derived, never
// stored: a project's signing seed for key generation g is
// HKDF-SHA256(master key, salt, "project=<p>" NUL "generation=<g>"). Every
// node holding the instance master key derives the same keys; rotating a
// project's key is incrementing its generation, and the previous
// generation's key stays published and accepted so tokens in flight keep
// verifying until they expire (at most MaxTTL).
//
// It reads no clock and no environment: times come in as arguments. It
// must never log or return key material.
package jwt

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/cairn-dev/cairn/domain"
)

const (
	// DefaultTTL is a token's lifetime when the caller asks for none.
	DefaultTTL = 900 * time.Second
	// MaxTTL is the longest lifetime a token may have.
	MaxTTL = 3600 * time.Second
	// Alg is the only JWS algorithm issued or accepted.
	Alg = "EdDSA"

	// hkdfSalt separates these keys from anything else derived from the
	// master key. It is a stored name: never change it (every JWT in flight
	// and every JWKS a client cached would stop matching).
	hkdfSalt = "cairn/v1/project-jwt-signing-key"
	// minMasterKey is the shortest master key accepted, in bytes.
	minMasterKey = 32
)

// ErrInvalidToken is returned (wrapped, with the reason) for every token
// that does not verify. Callers answer Unauthenticated and show no reason.
var ErrInvalidToken = errors.New("jwt: invalid token")

// Claims are what a token says: who (sub), through which session (sid),
// and when. Project, issuer and audience are implied by the project the
// token is signed for.
type Claims struct {
	UserID    string    // "sub"
	SessionID string    // "sid"; empty when the token is not tied to a session
	ID        string    // "jti"; Sign draws one when empty
	IssuedAt  time.Time // "iat"; set by Sign
	ExpiresAt time.Time // "exp"; set by Sign
}

// Issuer signs and verifies project JWTs. Set the exported fields, then use
// it by pointer; it is safe for concurrent use.
type Issuer struct {
	// MasterKey is the instance master key (at least 32 bytes).
	MasterKey []byte
	// BaseURL is the instance's public URL, without a trailing slash; a
	// project's tokens are issued by BaseURL + "/v1/projects/<p>".
	BaseURL string
	// Leeway is the clock skew tolerated between nodes when checking exp,
	// iat and nbf. Zero tolerates none.
	Leeway time.Duration

	keys sync.Map // keyRef → *key
}

type keyRef struct {
	project    string
	generation int
}

type key struct {
	private ed25519.PrivateKey
	public  ed25519.PublicKey
	kid     string
}

// tokenClaims is the JSON payload.
type tokenClaims struct {
	gojwt.RegisteredClaims
	SessionID string `json:"sid,omitempty"`
}

// IssuerURL returns the "iss" of a project's tokens.
func (i *Issuer) IssuerURL(project string) string {
	return i.BaseURL + "/v1/projects/" + project
}

// Sign issues a token for project with generation's key. ttl 0 means
// DefaultTTL; a ttl above MaxTTL or below zero is refused. claims.UserID is
// required. It returns the token and its expiry (now + ttl, in whole
// seconds, as the "exp" claim says).
func (i *Issuer) Sign(project string, generation int, claims Claims, now time.Time, ttl time.Duration) (token string, expiresAt time.Time, err error) {
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < 0 || ttl > MaxTTL:
		return "", time.Time{}, domain.FieldError("ttl_seconds", "must be between 0 and %d", int(MaxTTL/time.Second))
	}
	if claims.UserID == "" {
		return "", time.Time{}, errors.New("jwt: sign: no user id")
	}
	k, err := i.key(project, generation)
	if err != nil {
		return "", time.Time{}, err
	}
	if claims.ID == "" {
		claims.ID = rand.Text()
	}
	iat := now.Truncate(time.Second)
	exp := iat.Add(ttl)
	t := gojwt.NewWithClaims(gojwt.SigningMethodEdDSA, tokenClaims{
		RegisteredClaims: gojwt.RegisteredClaims{
			Issuer:    i.IssuerURL(project),
			Subject:   claims.UserID,
			Audience:  gojwt.ClaimStrings{project},
			ExpiresAt: gojwt.NewNumericDate(exp),
			IssuedAt:  gojwt.NewNumericDate(iat),
			ID:        claims.ID,
		},
		SessionID: claims.SessionID,
	})
	t.Header["kid"] = k.kid
	signed, err := t.SignedString(k.private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("jwt: sign: %w", err)
	}
	return signed, exp, nil
}

// Verify checks a token for project whose current key generation is
// generation, at now. It accepts only alg EdDSA, a kid of the current or
// previous generation, this project's issuer and audience, a subject, and
// an unexpired exp (iat not in the future). Any failure wraps
// ErrInvalidToken; an unusable configuration is another error.
func (i *Issuer) Verify(project string, generation int, token string, now time.Time) (Claims, error) {
	keys, err := i.published(project, generation)
	if err != nil {
		return Claims{}, err
	}
	var tc tokenClaims
	_, err = gojwt.ParseWithClaims(token, &tc, func(t *gojwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if k.kid == kid {
				return k.public, nil
			}
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	},
		gojwt.WithValidMethods([]string{Alg}),
		gojwt.WithIssuer(i.IssuerURL(project)),
		gojwt.WithAudience(project),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithLeeway(i.Leeway),
		gojwt.WithTimeFunc(func() time.Time { return now }),
		gojwt.WithStrictDecoding(),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if tc.Subject == "" || tc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: no sub or iat", ErrInvalidToken)
	}
	return Claims{
		UserID:    tc.Subject,
		SessionID: tc.SessionID,
		ID:        tc.ID,
		IssuedAt:  tc.IssuedAt.Time,
		ExpiresAt: tc.ExpiresAt.Time,
	}, nil
}

// JWK is one public key as RFC 7517 and RFC 8037 (OKP, Ed25519) write it.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKSet is a JWK Set (RFC 7517 §5).
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the JSON JWK Set of project's verification keys: the current
// generation's first, then the previous one's (when generation > 0). Serve
// it as application/json; it changes only when the generation does.
func (i *Issuer) JWKS(project string, generation int) ([]byte, error) {
	keys, err := i.published(project, generation)
	if err != nil {
		return nil, err
	}
	set := JWKSet{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk(k.public, k.kid))
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwt: jwks: %w", err)
	}
	return b, nil
}

// KeyID returns the kid of project's key of one generation.
func (i *Issuer) KeyID(project string, generation int) (string, error) {
	k, err := i.key(project, generation)
	if err != nil {
		return "", err
	}
	return k.kid, nil
}

func jwk(pub ed25519.PublicKey, kid string) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Use: "sig", Alg: Alg}
}

// published returns the keys a token of this generation may be signed
// with: the current one, and the previous one during a rotation.
func (i *Issuer) published(project string, generation int) ([]*key, error) {
	cur, err := i.key(project, generation)
	if err != nil {
		return nil, err
	}
	if generation == 0 {
		return []*key{cur}, nil
	}
	prev, err := i.key(project, generation-1)
	if err != nil {
		return nil, err
	}
	return []*key{cur, prev}, nil
}

// key derives (once, then caches) project's key of one generation.
func (i *Issuer) key(project string, generation int) (*key, error) {
	ref := keyRef{project, generation}
	if k, ok := i.keys.Load(ref); ok {
		return k.(*key), nil
	}
	if len(i.MasterKey) < minMasterKey {
		return nil, fmt.Errorf("jwt: master key is %d bytes, want at least %d", len(i.MasterKey), minMasterKey)
	}
	if project == "" || generation < 0 {
		return nil, fmt.Errorf("jwt: no key for project %q generation %d", project, generation)
	}
	info := "project=" + project + "\x00generation=" + strconv.Itoa(generation)
	seed, err := hkdf.Key(sha256.New, i.MasterKey, []byte(hkdfSalt), info, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("jwt: derive key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	k := &key{private: priv, public: pub, kid: kidOf(pub)}
	actual, _ := i.keys.LoadOrStore(ref, k)
	return actual.(*key), nil
}

// kidOf is the first 96 bits of the key's RFC 7638 JWK thumbprint
// (SHA-256 of {"crv","kty","x"} in that order), base64url: 16 characters,
// and any JOSE library can recompute its prefix from the JWKS.
func kidOf(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
