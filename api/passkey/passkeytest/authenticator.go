// Package passkeytest is a software WebAuthn authenticator for tests: ES256
// keys, "none" attestation, assertions signed by hand. It takes the
// options JSON a relying party hands to navigator.credentials and answers
// with the JSON a browser's PublicKeyCredential.toJSON() would, at the
// origin the test says the page is on. Only for tests: it keeps its keys
// in memory and verifies nothing.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"
)

// Credential is one key pair the authenticator holds.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Key        *ecdsa.PrivateKey
	// Counter is the signature counter; each assertion adds one first.
	// Tests set it to replay an old value (a cloned key).
	Counter uint32
}

// Authenticator holds credentials. Its zero value is not usable: New.
type Authenticator struct {
	Creds []*Credential
	// NoUserVerification answers without the UV flag (a security key
	// without a PIN).
	NoUserVerification bool
	// NoCounter keeps every counter at 0 (as synced passkeys do).
	NoCounter bool
}

// New returns an empty authenticator.
func New() *Authenticator { return &Authenticator{} }

var b64 = base64.RawURLEncoding

type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	ExcludeCredentials []struct {
		ID string `json:"id"`
	} `json:"excludeCredentials"`
}

type requestOptions struct {
	Challenge        string `json:"challenge"`
	RPID             string `json:"rpId"`
	AllowCredentials []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func (a *Authenticator) flags() byte {
	if a.NoUserVerification {
		return flagUP
	}
	return flagUP | flagUV
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// Create answers creation options (PublicKeyCredentialCreationOptionsJSON)
// as a browser on origin would: a new credential, and its
// RegistrationResponseJSON.
func (a *Authenticator) Create(optionsJSON []byte, origin string) (*Credential, []byte, error) {
	var o creationOptions
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, nil, fmt.Errorf("passkeytest: creation options: %w", err)
	}
	user, err := b64.DecodeString(o.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("passkeytest: user id: %w", err)
	}
	for _, ex := range o.ExcludeCredentials {
		for _, c := range a.Creds {
			if ex.ID == b64.EncodeToString(c.ID) {
				return nil, nil, errors.New("passkeytest: InvalidStateError: a credential of this authenticator is excluded")
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, nil, err
	}
	c := &Credential{ID: id, RPID: o.RP.ID, UserHandle: user, Key: key}
	ecdh, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	raw := ecdh.Bytes() // 0x04 || X || Y
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
	if err != nil {
		return nil, nil, err
	}
	rpHash := sha256.Sum256([]byte(o.RP.ID))
	auth := append(rpHash[:], a.flags()|flagAT, 0, 0, 0, 0)
	auth = append(auth, make([]byte, 16)...) // AAGUID: none
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(id)))
	auth = append(auth, id...)
	auth = append(auth, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(map[string]any{"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(clientData("webauthn.create", o.Challenge, origin)),
			"attestationObject": b64.EncodeToString(att), "transports": []string{"internal"}}})
	if err != nil {
		return nil, nil, err
	}
	a.Creds = append(a.Creds, c)
	return c, out, nil
}

// Get answers request options (PublicKeyCredentialRequestOptionsJSON) as a
// browser on origin would, with the first credential for the options'
// relying party that the allow list (if any) names: an
// AuthenticationResponseJSON.
func (a *Authenticator) Get(optionsJSON []byte, origin string) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, fmt.Errorf("passkeytest: request options: %w", err)
	}
	for _, c := range a.Creds {
		if c.RPID != o.RPID {
			continue
		}
		if len(o.AllowCredentials) > 0 && !slices.ContainsFunc(o.AllowCredentials, func(d struct {
			ID string `json:"id"`
		}) bool {
			return d.ID == b64.EncodeToString(c.ID)
		}) {
			continue
		}
		return a.Assert(c, o.RPID, o.Challenge, origin)
	}
	return nil, errors.New("passkeytest: NotAllowedError: no credential for this relying party")
}

// Assert signs an assertion with c for rpID and challenge at origin,
// whatever the options said: for tests that forge or replay.
func (a *Authenticator) Assert(c *Credential, rpID, challenge, origin string) ([]byte, error) {
	if !a.NoCounter {
		c.Counter++
	}
	rpHash := sha256.Sum256([]byte(rpID))
	auth := binary.BigEndian.AppendUint32(append(rpHash[:], a.flags()), c.Counter)
	cd := clientData("webauthn.get", challenge, origin)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(slices.Clone(auth), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(auth),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(c.UserHandle)}})
}

// Challenge reads the challenge of options JSON (creation or request).
func Challenge(optionsJSON []byte) string {
	var o struct {
		Challenge string `json:"challenge"`
	}
	_ = json.Unmarshal(optionsJSON, &o)
	return o.Challenge
}
