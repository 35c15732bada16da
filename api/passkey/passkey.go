// Package passkey runs the WebAuthn ceremonies of a project's end users with
// github.com/go-webauthn/webauthn: it decides the relying party of a
// request (RelyingPartyFor), builds the options a browser hands to
// navigator.credentials, and verifies what the browser returns — the
// challenge, the origin, the relying party id hash, user presence and
// verification, and the signature. It stores nothing: the caller keeps
// the ceremony State between the two calls (single-use, short-lived) and
// hands a verified result to domain/user, which decides what changes.
package passkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// RelyingParty is who a ceremony is for: the relying party id the
// credential is bound to, and the one origin whose pages may run it.
type RelyingParty struct {
	ID     string `json:"id"`
	Origin string `json:"origin"`
	// Name is shown by some authenticators ("Sign in to …").
	Name string `json:"name"`
}

// RelyingPartyFor returns the relying party of a page at origin (a
// normalised scheme://host[:port] the caller has already found allowed for
// project). A site of the project (<site>.<project>.<sitesDomain> and its
// previews) shares the relying party id <project>.<sitesDomain>, so one
// passkey serves every site of the project and no other project's; any
// other origin (an allowed web platform, localhost in development, a
// custom domain) is its own host.
func RelyingPartyFor(origin, project, sitesDomain string) (RelyingParty, error) {
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return RelyingParty{}, domain.FieldError("Origin", "passkeys need the page's http(s) origin")
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		// WebAuthn binds credentials to domain names, never to addresses.
		return RelyingParty{}, domain.FieldError("Origin", "passkeys need a page served from a domain name, not an IP address (use localhost in development)")
	}
	id := host
	if base := strings.ToLower(strings.Trim(sitesDomain, ".")); base != "" {
		if own := project + "." + base; strings.HasSuffix(host, "."+own) {
			id = own
		}
	}
	return RelyingParty{ID: id, Origin: origin, Name: project}, nil
}

func (rp RelyingParty) webauthn() (*webauthn.WebAuthn, error) {
	w, err := webauthn.New(&webauthn.Config{RPID: rp.ID, RPDisplayName: rp.Name, RPOrigins: []string{rp.Origin},
		AttestationPreference: protocol.PreferNoAttestation})
	if err != nil {
		return nil, fmt.Errorf("passkey: relying party %s: %w", rp.ID, err)
	}
	return w, nil
}

// Kind of ceremony; a state begun as one kind never finishes another.
type Kind string

const (
	Register Kind = "register"
	SignIn   Kind = "signin"
	MFA      Kind = "mfa"
)

// State is what a ceremony's first call leaves for its second: kept by the
// caller under Challenge, single-use.
type State struct {
	Kind    Kind                 `json:"kind"`
	Project string               `json:"project"`
	RP      RelyingParty         `json:"rp"`
	UserID  string               `json:"user_id,omitempty"`
	Session webauthn.SessionData `json:"session"`
}

// Challenge is the key the caller keeps the state under: the challenge
// itself (base64url), which the browser's answer carries back.
func (s State) Challenge() string { return s.Session.Challenge }

// account is a user as go-webauthn sees one.
type account struct {
	u     *eventsv1.User
	creds []webauthn.Credential
}

func (a account) WebAuthnID() []byte { return []byte(a.u.GetId()) }
func (a account) WebAuthnName() string {
	if a.u.GetEmail() != "" {
		return a.u.GetEmail()
	}
	return a.u.GetId()
}
func (a account) WebAuthnDisplayName() string {
	if a.u.GetName() != "" {
		return a.u.GetName()
	}
	return a.WebAuthnName()
}
func (a account) WebAuthnCredentials() []webauthn.Credential { return a.creds }

// accountOf adapts u with its passkeys bound to rpID (a credential is
// only ever valid for the relying party it was made for).
func accountOf(u *eventsv1.User, rpID string) account {
	a := account{u: u}
	for _, p := range u.GetPasskeys() {
		if p.GetRpId() != rpID {
			continue
		}
		a.creds = append(a.creds, credentialOf(p))
	}
	return a
}

func credentialOf(p *eventsv1.Passkey) webauthn.Credential {
	c := webauthn.Credential{ID: p.GetCredentialId(), PublicKey: p.GetPublicKey(), AttestationFormat: p.GetAttestationFormat(),
		AttestationType: p.GetAttestationType(),
		Flags:           webauthn.CredentialFlags{UserPresent: true, BackupEligible: p.GetBackupEligible(), BackupState: p.GetBackedUp()},
		Authenticator:   webauthn.Authenticator{AAGUID: p.GetAaguid(), SignCount: p.GetSignCount()}}
	for _, t := range p.GetTransports() {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// Descriptors are the credentials of u at rpID, for an allow or exclude
// list.
func descriptors(u *eventsv1.User, rpID string) []protocol.CredentialDescriptor {
	var out []protocol.CredentialDescriptor
	for _, c := range accountOf(u, rpID).creds {
		out = append(out, c.Descriptor())
	}
	return out
}

// BeginRegistration starts adding a passkey to u: a discoverable
// credential (so it can sign in without an email), user verification
// required, u's passkeys excluded. Returns the options JSON
// (PublicKeyCredentialCreationOptionsJSON) and the state to keep.
func BeginRegistration(rp RelyingParty, project string, u *eventsv1.User) ([]byte, State, error) {
	w, err := rp.webauthn()
	if err != nil {
		return nil, State{}, err
	}
	creation, sd, err := w.BeginRegistration(accountOf(u, rp.ID),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired}),
		webauthn.WithExclusions(descriptors(u, rp.ID)))
	if err != nil {
		return nil, State{}, fmt.Errorf("passkey: begin registration: %w", err)
	}
	opts, err := json.Marshal(creation.Response)
	if err != nil {
		return nil, State{}, fmt.Errorf("passkey: registration options: %w", err)
	}
	return opts, State{Kind: Register, Project: project, RP: rp, UserID: u.GetId(), Session: *sd}, nil
}

// BeginLogin starts a sign-in (Kind SignIn, user verification required)
// or a second-factor proof (Kind MFA, user verification preferred). With u
// nil it is usernameless: the browser offers every passkey it holds for
// the relying party. With allow set, those credential ids are offered (an
// email's user's passkeys, or decoys for an unknown email).
func BeginLogin(rp RelyingParty, project string, kind Kind, userID string, allow [][]byte) ([]byte, State, error) {
	w, err := rp.webauthn()
	if err != nil {
		return nil, State{}, err
	}
	uv := protocol.VerificationRequired
	if kind == MFA {
		uv = protocol.VerificationPreferred
	}
	opts := []webauthn.LoginOption{webauthn.WithUserVerification(uv)}
	if len(allow) > 0 {
		list := make([]protocol.CredentialDescriptor, len(allow))
		for i, id := range allow {
			list[i] = protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: id}
		}
		opts = append(opts, webauthn.WithAllowedCredentials(list))
	}
	assertion, sd, err := w.BeginDiscoverableLogin(opts...)
	if err != nil {
		return nil, State{}, fmt.Errorf("passkey: begin login: %w", err)
	}
	// The allow list is only a hint to the browser: which user may answer
	// is checked against the user handle and the user's own passkeys.
	sd.AllowedCredentialIDs = nil
	out, err := json.Marshal(assertion.Response)
	if err != nil {
		return nil, State{}, fmt.Errorf("passkey: login options: %w", err)
	}
	return out, State{Kind: kind, Project: project, RP: rp, UserID: userID, Session: *sd}, nil
}

// ErrCeremony is the one answer to a browser response that does not
// verify: wrong challenge, origin, relying party, signature, a missing
// user verification. The details go to the log, never to the caller.
var ErrCeremony = domain.Errorf(domain.KindPermissionDenied, "the passkey response did not verify")

// Failed wraps a verification failure with its detail, for the log.
type Failed struct{ Detail string }

func (f *Failed) Error() string { return "passkey: " + f.Detail }
func (f *Failed) Unwrap() error { return ErrCeremony }

func failed(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return &Failed{Detail: pe.Details + ": " + pe.DevInfo}
	}
	return &Failed{Detail: err.Error()}
}

// ChallengeOfRegistration and ChallengeOfAssertion read the challenge a
// browser response carries, to find its State; nothing is verified yet.
// A response that does not parse is an error on field credential_json.
func ChallengeOfRegistration(credentialJSON []byte) (string, error) {
	p, err := protocol.ParseCredentialCreationResponseBytes(credentialJSON)
	if err != nil {
		return "", malformed(err)
	}
	return p.Response.CollectedClientData.Challenge, nil
}

func ChallengeOfAssertion(credentialJSON []byte) (string, error) {
	p, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		return "", malformed(err)
	}
	return p.Response.CollectedClientData.Challenge, nil
}

func malformed(err error) error {
	detail := err.Error()
	var pe *protocol.Error
	if errors.As(err, &pe) {
		detail = pe.Details
	}
	if len(detail) > 200 {
		detail = detail[:200]
	}
	return domain.FieldError("credential_json", "is not a WebAuthn credential response: %s", detail)
}

// FinishRegistration verifies the browser's answer to st for u (the same
// user who began it) and returns the new passkey, without id or name.
func FinishRegistration(st State, u *eventsv1.User, credentialJSON []byte) (*eventsv1.Passkey, error) {
	if st.Kind != Register || st.UserID != u.GetId() {
		return nil, &Failed{Detail: "state of another ceremony or user"}
	}
	w, err := st.RP.webauthn()
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credentialJSON)
	if err != nil {
		return nil, malformed(err)
	}
	c, err := w.CreateCredential(accountOf(u, st.RP.ID), st.Session, parsed)
	if err != nil {
		return nil, failed(err)
	}
	p := &eventsv1.Passkey{CredentialId: c.ID, PublicKey: c.PublicKey, RpId: st.RP.ID, SignCount: c.Authenticator.SignCount,
		Aaguid: c.Authenticator.AAGUID, BackupEligible: c.Flags.BackupEligible, BackedUp: c.Flags.BackupState,
		AttestationFormat: c.AttestationFormat, AttestationType: c.AttestationType}
	for _, t := range c.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	return p, nil
}

// Assertion is a verified sign-in or second-factor proof: who, with which
// credential, and the counter and backup state the authenticator
// reported (domain/user decides what they mean).
type Assertion struct {
	UserID       string
	CredentialID []byte
	SignCount    uint32
	BackedUp     bool
}

// UserHandle returns the user id a browser's assertion names, to look the
// user up before FinishLogin; "" when it names none.
func UserHandle(credentialJSON []byte) string {
	p, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		return ""
	}
	return string(p.Response.UserHandle)
}

// FinishLogin verifies the browser's assertion for st against u, the user
// its user handle names (nil when there is none: refused). For an MFA
// ceremony u must be the user who began it.
func FinishLogin(st State, u *eventsv1.User, credentialJSON []byte) (Assertion, error) {
	if u == nil || (st.UserID != "" && st.UserID != u.GetId()) {
		return Assertion{}, &Failed{Detail: "no such user, or not the user who began"}
	}
	w, err := st.RP.webauthn()
	if err != nil {
		return Assertion{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		return Assertion{}, malformed(err)
	}
	a := accountOf(u, st.RP.ID)
	_, c, err := w.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) {
		if string(handle) != u.GetId() {
			return nil, errors.New("user handle names another user")
		}
		return a, nil
	}, st.Session, parsed)
	if err != nil {
		return Assertion{}, failed(err)
	}
	return Assertion{UserID: u.GetId(), CredentialID: c.ID, SignCount: parsed.Response.AuthenticatorData.Counter,
		BackedUp: parsed.Response.AuthenticatorData.Flags.HasBackupState()}, nil
}

// AAGUID renders an authenticator model id as a UUID.
func AAGUID(b []byte) string {
	id, err := uuid.FromBytes(b)
	if err != nil {
		return uuid.Nil.String()
	}
	return id.String()
}
