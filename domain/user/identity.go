package user

import (
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// ClaimIdentity is the claim namespace that links one account at an
// OAuth2/OIDC provider to at most one user of a project. Its values are
// IdentityClaim(provider, subject).
const ClaimIdentity = "identity"

// MaxSubjectLen bounds a provider's subject (OIDC allows 255 ASCII
// characters).
const MaxSubjectLen = 255

// IdentityClaim is the claim value of an identity: "<provider_id>:<subject>".
// Provider ids contain no colon, so the value is unambiguous.
func IdentityClaim(providerID, subject string) string { return providerID + ":" + subject }

// LinkIdentity links an account at an OAuth2/OIDC provider to the user. A
// user holds at most one identity per provider; linking the one it already
// holds changes nothing.
type LinkIdentity struct {
	Identity *eventsv1.Identity // provider id, subject, email
	Now      time.Time
}

// UnlinkIdentity removes the user's identity at ProviderID. The user's last
// way to sign in (no password and no other identity) cannot be removed.
type UnlinkIdentity struct {
	ProviderID string
	Now        time.Time
}

func (LinkIdentity) isCommand()   {}
func (UnlinkIdentity) isCommand() {}

// ErrLastSignIn is the answer to removing a user's only way to sign in.
var ErrLastSignIn = domain.Errorf(domain.KindFailedPrecondition,
	"this is the account's only way to sign in: set a password, link another provider or register a passkey first")

// checkIdentity validates an identity as the OAuth flow reports it.
func checkIdentity(id *eventsv1.Identity) error {
	if !domain.ValidProjectID(id.GetProviderId()) { // same form as project ids
		return domain.FieldError("provider_id", "malformed provider id %q", id.GetProviderId())
	}
	if s := id.GetSubject(); s == "" || len(s) > MaxSubjectLen || !utf8.ValidString(s) {
		return domain.FieldError("subject", "must be 1 to %d bytes of text", MaxSubjectLen)
	}
	if len(id.GetEmail()) > MaxEmailLen {
		return domain.FieldError("email", "must be at most %d bytes", MaxEmailLen)
	}
	return nil
}

// FindIdentity returns the user's identity at providerID, or nil.
func FindIdentity(u State, providerID string) *eventsv1.Identity {
	for _, i := range u.GetIdentities() {
		if i.GetProviderId() == providerID {
			return i
		}
	}
	return nil
}

func decideLink(state State, c LinkIdentity) ([]*eventsv1.Envelope, error) {
	if state.GetBlocked() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "the user is blocked")
	}
	if err := checkIdentity(c.Identity); err != nil {
		return nil, err
	}
	if have := FindIdentity(state, c.Identity.GetProviderId()); have != nil {
		if have.GetSubject() == c.Identity.GetSubject() {
			return nil, nil
		}
		return nil, domain.Errorf(domain.KindFailedPrecondition,
			"the user is already linked to another account at provider %q", c.Identity.GetProviderId())
	}
	u := prune(state, c.Now)
	id := proto.CloneOf(c.Identity)
	id.CreatedAt = timestamppb.New(c.Now)
	u.Identities = append(u.Identities, id)
	u.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{
		{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: u, Change: "identities"}}},
		take(u.GetProjectId(), ClaimIdentity, IdentityClaim(id.GetProviderId(), id.GetSubject()), u.GetId()),
	}, nil
}

func decideUnlink(state State, c UnlinkIdentity) ([]*eventsv1.Envelope, error) {
	have := FindIdentity(state, c.ProviderID)
	if have == nil {
		return nil, domain.Errorf(domain.KindNotFound, "no identity at provider %q", c.ProviderID)
	}
	if state.GetPasswordHash() == "" && len(state.GetIdentities()) == 1 && len(state.GetPasskeys()) == 0 {
		return nil, ErrLastSignIn
	}
	u := prune(state, c.Now)
	u.Identities = slices.DeleteFunc(u.Identities, func(i *eventsv1.Identity) bool { return i.GetProviderId() == c.ProviderID })
	u.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{
		{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: u, Change: "identities"}}},
		release(u.GetProjectId(), ClaimIdentity, IdentityClaim(have.GetProviderId(), have.GetSubject()), u.GetId()),
	}, nil
}

// identityReleases releases every identity claim of u (on deletion).
func identityReleases(u State) []*eventsv1.Envelope {
	var evs []*eventsv1.Envelope
	for _, i := range u.GetIdentities() {
		evs = append(evs, release(u.GetProjectId(), ClaimIdentity, IdentityClaim(i.GetProviderId(), i.GetSubject()), u.GetId()))
	}
	return evs
}
