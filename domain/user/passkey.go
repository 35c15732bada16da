package user

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Passkeys (WebAuthn credentials) of a user. The ceremony — challenge,
// origin, relying party, signature — is verified outside the domain (by
// api/passkey); what is decided here is what a verified ceremony may change:
// which credentials a user holds, that a credential belongs to one user of
// a project, and what a signature counter that did not advance means.

// ClaimPasskey is the claim namespace that gives a credential id to at most
// one user of a project. Its values are PasskeyClaim(credential id).
const ClaimPasskey = "passkey"

// FactorPasskey is the factor a passkey proves. A passkey used with user
// verification (a PIN or biometrics on the authenticator) is two factors at
// once, so a session signed in with it is never MFA-pending.
const FactorPasskey = "passkey"

// Limits on passkeys.
const (
	// MaxPasskeys is how many passkeys one user may hold.
	MaxPasskeys = 20
	// MaxPasskeyNameLen is the longest passkey name, in bytes.
	MaxPasskeyNameLen = 64
	// MaxCredentialIDLen is WebAuthn's bound on a credential id.
	MaxCredentialIDLen = 1023
	// DefaultPasskeyName names a passkey registered without a name.
	DefaultPasskeyName = "Passkey"
)

// PasskeyClaim is the claim value of a credential id: base64url, unpadded.
func PasskeyClaim(credentialID []byte) string {
	return base64.RawURLEncoding.EncodeToString(credentialID)
}

// RegisterPasskey adds a verified credential to the user.
type RegisterPasskey struct {
	Passkey *eventsv1.Passkey // id, credential id, public key, rp id, flags...
	Now     time.Time
}

// RemovePasskey deletes one of the user's passkeys.
type RemovePasskey struct {
	ID  string
	Now time.Time
}

// UsePasskey records a verified assertion by the passkey with credential
// id CredentialID: its new signature counter and backup state. Then it
// signs in (Session) or proves the second factor of session ProveSession.
// A counter that did not advance marks the passkey clone-suspected: the
// mark is stored and the use refused.
type UsePasskey struct {
	CredentialID []byte
	SignCount    uint32
	BackedUp     bool
	// Session, when set, creates a session (its factors and provider are
	// set here).
	Session *CreateSession
	// ProveSession, when set, is the MFA-pending session the passkey
	// completes.
	ProveSession string
	Now          time.Time
}

func (RegisterPasskey) isCommand() {}
func (RemovePasskey) isCommand()   {}
func (UsePasskey) isCommand()      {}

// ErrPasskeyRefused is the one answer to a credential the user does not
// hold, or one that may be cloned: no oracle for which.
var ErrPasskeyRefused = domain.Errorf(domain.KindUnauthenticated, "this passkey cannot sign in")

// FindPasskey returns the user's passkey with credential id cid, or nil.
func FindPasskey(u State, cid []byte) *eventsv1.Passkey {
	for _, p := range u.GetPasskeys() {
		if bytes.Equal(p.GetCredentialId(), cid) {
			return p
		}
	}
	return nil
}

func checkPasskeyName(name string) error {
	if len(name) > MaxPasskeyNameLen || !utf8.ValidString(name) || strings.ContainsAny(name, "\r\n\x00") {
		return domain.FieldError("name", "must be valid text of at most %d bytes on one line", MaxPasskeyNameLen)
	}
	return nil
}

func decideRegisterPasskey(state State, c RegisterPasskey) ([]*eventsv1.Envelope, error) {
	if state.GetBlocked() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "the user is blocked")
	}
	pk := proto.CloneOf(c.Passkey)
	if !domain.ValidResourceID(pk.GetId()) {
		return nil, domain.Errorf(domain.KindInternal, "malformed passkey id %q", pk.GetId())
	}
	if n := len(pk.GetCredentialId()); n == 0 || n > MaxCredentialIDLen || len(pk.GetPublicKey()) == 0 || pk.GetRpId() == "" {
		return nil, domain.Errorf(domain.KindInternal, "malformed passkey credential")
	}
	if pk.GetName() == "" {
		pk.Name = DefaultPasskeyName
	}
	if err := checkPasskeyName(pk.GetName()); err != nil {
		return nil, err
	}
	if FindPasskey(state, pk.GetCredentialId()) != nil {
		return nil, domain.FieldError("credential_json", "this passkey is already registered")
	}
	if len(state.GetPasskeys()) >= MaxPasskeys {
		return nil, domain.Errorf(domain.KindResourceExhausted, "a user holds at most %d passkeys: delete one first", MaxPasskeys)
	}
	u := prune(state, c.Now)
	pk.CreatedAt = timestamppb.New(c.Now)
	pk.LastUsedAt = nil
	pk.CloneSuspected = false
	u.Passkeys = append(u.Passkeys, pk)
	u.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{
		{Payload: &eventsv1.Envelope_PasskeyRegistered{PasskeyRegistered: &eventsv1.PasskeyRegistered{User: u, PasskeyId: pk.GetId()}}},
		take(u.GetProjectId(), ClaimPasskey, PasskeyClaim(pk.GetCredentialId()), u.GetId()),
	}, nil
}

func decideRemovePasskey(state State, c RemovePasskey) ([]*eventsv1.Envelope, error) {
	i := slices.IndexFunc(state.GetPasskeys(), func(p *eventsv1.Passkey) bool { return p.GetId() == c.ID })
	if i < 0 {
		return nil, domain.Errorf(domain.KindNotFound, "passkey not found")
	}
	if state.GetPasswordHash() == "" && state.GetEmail() == "" && len(state.GetIdentities()) == 0 && len(state.GetPasskeys()) == 1 {
		return nil, domain.Errorf(domain.KindFailedPrecondition,
			"this is the account's only way to sign in: set an email and password or register another passkey first")
	}
	u := prune(state, c.Now)
	gone := u.Passkeys[i]
	u.Passkeys = slices.Delete(u.Passkeys, i, i+1)
	if u.GetMfa().GetEnabled() && !u.GetMfa().GetTotpVerified() && len(u.Passkeys) == 0 {
		// The last second factor is gone: MFA switches off rather than
		// locking the user out of a factor it no longer has.
		u.Mfa.Enabled = false
		for _, s := range u.Sessions {
			s.MfaPending = false
		}
	}
	u.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{
		{Payload: &eventsv1.Envelope_PasskeyRemoved{PasskeyRemoved: &eventsv1.PasskeyRemoved{User: u, Passkey: gone}}},
		release(u.GetProjectId(), ClaimPasskey, PasskeyClaim(gone.GetCredentialId()), u.GetId()),
	}, nil
}

// counterAdvanced is WebAuthn's clone check (§7.2 step 21): when either
// counter is non-zero the new one must be greater than the stored one.
// Authenticators that keep no counter report 0 every time.
func counterAdvanced(stored, got uint32) bool {
	return (stored == 0 && got == 0) || got > stored
}

func decideUsePasskey(state State, c UsePasskey) ([]*eventsv1.Envelope, error) {
	if state.GetBlocked() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "this account is blocked")
	}
	u := prune(state, c.Now)
	pk := FindPasskey(u, c.CredentialID)
	if pk == nil || pk.GetCloneSuspected() {
		return nil, ErrPasskeyRefused
	}
	u.UpdatedAt = timestamppb.New(c.Now)
	if !counterAdvanced(pk.GetSignCount(), c.SignCount) {
		pk.CloneSuspected = true
		// The mark is stored so every node refuses the passkey from now
		// on; the caller learns only that it cannot sign in.
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_PasskeyUsed{PasskeyUsed: &eventsv1.PasskeyUsed{
			User: u, PasskeyId: pk.GetId(), CloneSuspected: true}}}}, &domain.AfterWrite{Err: ErrPasskeyRefused}
	}
	pk.SignCount = c.SignCount
	pk.BackedUp = c.BackedUp
	pk.LastUsedAt = timestamppb.New(c.Now)
	evs := []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_PasskeyUsed{PasskeyUsed: &eventsv1.PasskeyUsed{User: proto.CloneOf(u), PasskeyId: pk.GetId()}}}}
	switch {
	case c.Session != nil:
		cs := *c.Session
		cs.Now = c.Now
		cs.Session = proto.CloneOf(cs.Session)
		cs.Session.Provider = "passkey"
		cs.Session.Factors = []string{FactorPasskey}
		more, err := decideSession(u, cs)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	case c.ProveSession != "":
		s := FindSession(u, c.ProveSession, c.Now)
		if s == nil {
			return nil, domain.Errorf(domain.KindUnauthenticated, "session not found")
		}
		if !s.GetMfaPending() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "this session has no second factor to prove")
		}
		more, err := Decide(u, ProveFactor{SessionID: c.ProveSession, Factor: FactorPasskey, Mfa: u.GetMfa(), Now: c.Now})
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	}
	return evs, nil
}

// passkeyReleases releases every passkey claim of u (on deletion).
func passkeyReleases(u State) []*eventsv1.Envelope {
	var evs []*eventsv1.Envelope
	for _, p := range u.GetPasskeys() {
		evs = append(evs, release(u.GetProjectId(), ClaimPasskey, PasskeyClaim(p.GetCredentialId()), u.GetId()))
	}
	return evs
}
