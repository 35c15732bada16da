package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// stateVersion is the first byte of every sealed state; a new key or format
// takes a new version, and old ones are refused after MaxStateTTL.
const stateVersion byte = 1

// stateKeyInfo is the HKDF info that separates the state key from every
// other key derived from the master key. Never change it.
const stateKeyInfo = "cairn/oauth/state/v1"

// MaxStateTTL bounds how long a sign-in may take between Begin and Complete.
const MaxStateTTL = 10 * time.Minute

// flowState is what a sealed state carries. Field names are short because
// the state travels in URLs; they are part of the format.
type flowState struct {
	ID          string `json:"i"`
	Project     string `json:"p"`
	Provider    string `json:"pr"`
	Verifier    string `json:"v"`
	Nonce       string `json:"n,omitempty"`
	RedirectURI string `json:"r"`
	SuccessURL  string `json:"s"`
	FailureURL  string `json:"f"`
	Expires     int64  `json:"e"`
}

// sealer seals and opens states with AES-256-GCM.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(masterKey []byte) (*sealer, error) {
	if len(masterKey) < 32 {
		return nil, fmt.Errorf("oauth state key: master key has %d bytes, need at least 32", len(masterKey))
	}
	key, err := hkdf.Key(sha256.New, masterKey, nil, stateKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("oauth state key: derive: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("oauth state key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("oauth state key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// binding is the additional authenticated data: a state opens only for the
// project and provider it was sealed for.
func binding(project, provider string) []byte {
	b := make([]byte, 0, len(stateKeyInfo)+len(project)+len(provider)+2)
	b = append(b, stateKeyInfo...)
	b = append(b, 0)
	b = append(b, project...)
	b = append(b, 0)
	return append(b, provider...)
}

// seal returns base64url(version ‖ 12-byte GCM nonce ‖ ciphertext ‖ tag).
func (s *sealer) seal(st flowState) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("seal oauth state: %w", err)
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = stateVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return "", fmt.Errorf("seal oauth state: nonce: %w", err)
	}
	out = s.aead.Seal(out, out[1:1+s.aead.NonceSize()], plain, binding(st.Project, st.Provider))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open authenticates and decrypts a state for the given project and
// provider. It does not check expiry.
func (s *sealer) open(raw, project, provider string) (flowState, error) {
	var st flowState
	if raw == "" {
		return st, fmt.Errorf("%w: missing", ErrInvalidState)
	}
	if len(raw) > maxStateLen {
		return st, fmt.Errorf("%w: too long", ErrInvalidState)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return st, fmt.Errorf("%w: not base64url", ErrInvalidState)
	}
	ns := s.aead.NonceSize()
	if len(b) < 1+ns+s.aead.Overhead() {
		return st, fmt.Errorf("%w: too short", ErrInvalidState)
	}
	if b[0] != stateVersion {
		return st, fmt.Errorf("%w: unknown version %d", ErrInvalidState, b[0])
	}
	plain, err := s.aead.Open(nil, b[1:1+ns], b[1+ns:], binding(project, provider))
	if err != nil {
		// Tampered, sealed with another key, or minted for another
		// project or provider: indistinguishable on purpose.
		return st, fmt.Errorf("%w: not sealed by this instance for project %q and provider %q", ErrInvalidState, project, provider)
	}
	if err := json.Unmarshal(plain, &st); err != nil {
		return st, fmt.Errorf("%w: payload: %v", ErrInvalidState, err)
	}
	// Defence in depth: the binding already proved these.
	if st.Project != project || st.Provider != provider {
		return st, errors.Join(ErrInvalidState, errors.New("project or provider mismatch"))
	}
	return st, nil
}

// maxStateLen bounds the state parameter accepted on a callback: three URLs
// (callback, success, failure) of at most 2,048 bytes each plus the rest,
// sealed and base64url-encoded, stay well under it. Typical states are
// about 400 bytes.
const maxStateLen = 16 << 10
