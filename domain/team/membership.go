package team

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/permission"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// MembershipState is a membership's current state; nil when it does not
// exist.
type MembershipState = *eventsv1.Membership

// RoleOwner is the team role that manages the team.
const RoleOwner = "owner"

// MaxRoles bounds the roles of one membership (as in Appwrite).
const MaxRoles = 100

// MemberID is the membership id of a user added to a team directly, and
// InviteID that of an invitation to an address. They are derived, not
// chosen: a membership is one aggregate per (team, user) or (team,
// lower-cased email), so the write path's expected-sequence check refuses a
// second concurrent membership of the same user or address without a
// cross-aggregate claim. 32 hex digits: a valid resource id and subject
// token.
func MemberID(team, userID string) string { return derivedID(team, "user", userID) }

// InviteID is the membership id of an invitation of email to team.
func InviteID(team, email string) string {
	return derivedID(team, "email", NormalizeEmail(email))
}

func derivedID(team, kind, v string) string {
	sum := sha256.Sum256([]byte("cairn membership\x00" + team + "\x00" + kind + "\x00" + v))
	return hex.EncodeToString(sum[:16])
}

// NormalizeEmail is the form an invited address is stored and compared in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Live reports whether m is a membership of team as it exists now: a
// membership made before its team was deleted stays the last state of its
// own aggregate, but belongs to no team.
func Live(t State, m MembershipState) bool {
	return t != nil && m != nil && m.GetTeamId() == t.GetId() && proto.Equal(m.GetTeamCreatedAt(), t.GetCreatedAt())
}

// MembershipCommand is one of AddMember, Invite, UpdateRoles, Accept,
// Remove.
type MembershipCommand interface{ isMembershipCommand() }

// AddMember adds a user directly: confirmed at once.
type AddMember struct {
	ID        string // MemberID(team, UserID)
	ProjectID string
	UserID    string
	Roles     []string
	Now       time.Time
}

// Invite invites an address: unconfirmed until accepted with the secret
// whose SHA-256 is SecretHash.
type Invite struct {
	ID         string // InviteID(team, Email)
	ProjectID  string
	Email      string
	Roles      []string
	SecretHash []byte
	Now        time.Time
}

// UpdateRoles replaces the roles.
type UpdateRoles struct {
	Roles []string
	Now   time.Time
}

// Accept confirms an invitation for UserID, given the hash of the secret
// the invitee presented.
type Accept struct {
	UserID     string
	SecretHash []byte
	Now        time.Time
}

// Remove deletes the membership (or withdraws the invitation).
type Remove struct{ Now time.Time }

func (AddMember) isMembershipCommand()   {}
func (Invite) isMembershipCommand()      {}
func (UpdateRoles) isMembershipCommand() {}
func (Accept) isMembershipCommand()      {}
func (Remove) isMembershipCommand()      {}

// NormalizeRoles checks team roles (permission's rule for the role part of
// team:<id>/<role>) and returns them sorted without duplicates.
func NormalizeRoles(roles []string) ([]string, error) {
	if len(roles) > MaxRoles {
		return nil, domain.FieldError("roles", "at most %d roles", MaxRoles)
	}
	for _, r := range roles {
		if _, err := permission.ParseRole("team:t/" + r); err != nil || r == "" {
			return nil, domain.FieldError("roles", "team role %q must be 1–32 letters, digits, _ or -", r)
		}
	}
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out), nil
}

func validEmail(e string) bool {
	at := strings.IndexByte(e, '@')
	return len(e) <= 254 && at > 0 && at == strings.LastIndexByte(e, '@') && at < len(e)-1 &&
		!strings.ContainsAny(e, " \t\r\n")
}

// DecideMembership returns the events that follow from cmd given the
// membership's team (nil when it does not exist) and state. A membership
// that is not Live is treated as absent. Returns KindNotFound,
// KindAlreadyExists, KindInvalid (naming the field), KindFailedPrecondition
// (an invitation accepted twice) or KindPermissionDenied (a wrong secret).
func DecideMembership(t State, state MembershipState, cmd MembershipCommand) ([]*eventsv1.Envelope, error) {
	if t == nil {
		return nil, domain.Errorf(domain.KindNotFound, "team not found")
	}
	if !Live(t, state) {
		state = nil
	}
	created := func(m *eventsv1.Membership) []*eventsv1.Envelope {
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_MembershipCreated{MembershipCreated: &eventsv1.MembershipCreated{Membership: m}}}}
	}
	updated := func(m *eventsv1.Membership) []*eventsv1.Envelope {
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_MembershipUpdated{MembershipUpdated: &eventsv1.MembershipUpdated{Membership: m}}}}
	}
	switch c := cmd.(type) {
	case AddMember:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "user %q is already a member of team %q", c.UserID, t.GetId())
		}
		if !domain.ValidResourceID(c.UserID) {
			return nil, domain.FieldError("user_id", "malformed id")
		}
		if c.ID != MemberID(t.GetId(), c.UserID) {
			return nil, domain.Errorf(domain.KindInternal, "membership id %q is not the derived one", c.ID)
		}
		roles, err := NormalizeRoles(c.Roles)
		if err != nil {
			return nil, err
		}
		ts := timestamppb.New(c.Now)
		return created(&eventsv1.Membership{Id: c.ID, ProjectId: c.ProjectID, TeamId: t.GetId(), UserId: c.UserID,
			Roles: roles, Confirmed: true, InvitedAt: ts, JoinedAt: ts, UpdatedAt: ts, TeamCreatedAt: t.GetCreatedAt()}), nil
	case Invite:
		email := NormalizeEmail(c.Email)
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "%q is already invited to team %q", email, t.GetId())
		}
		if !validEmail(email) {
			return nil, domain.FieldError("email", "not an email address")
		}
		if c.ID != InviteID(t.GetId(), email) {
			return nil, domain.Errorf(domain.KindInternal, "membership id %q is not the derived one", c.ID)
		}
		if len(c.SecretHash) != sha256.Size {
			return nil, domain.Errorf(domain.KindInternal, "invite secret hash must be SHA-256")
		}
		roles, err := NormalizeRoles(c.Roles)
		if err != nil {
			return nil, err
		}
		ts := timestamppb.New(c.Now)
		return created(&eventsv1.Membership{Id: c.ID, ProjectId: c.ProjectID, TeamId: t.GetId(), Email: email,
			Roles: roles, InviteSecretHash: c.SecretHash, InvitedAt: ts, UpdatedAt: ts, TeamCreatedAt: t.GetCreatedAt()}), nil
	case UpdateRoles:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "membership not found")
		}
		roles, err := NormalizeRoles(c.Roles)
		if err != nil {
			return nil, err
		}
		if slices.Equal(roles, state.GetRoles()) {
			return nil, nil
		}
		m := proto.CloneOf(state)
		m.Roles = roles
		m.UpdatedAt = timestamppb.New(c.Now)
		return updated(m), nil
	case Accept:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "membership not found")
		}
		if state.GetConfirmed() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "membership already confirmed")
		}
		if !domain.ValidResourceID(c.UserID) {
			return nil, domain.FieldError("user_id", "malformed id")
		}
		if len(state.GetInviteSecretHash()) != sha256.Size || subtle.ConstantTimeCompare(c.SecretHash, state.GetInviteSecretHash()) != 1 {
			return nil, &domain.Error{Kind: domain.KindPermissionDenied, Field: "secret", Message: "does not match the invitation"}
		}
		m := proto.CloneOf(state)
		m.UserId = c.UserID
		m.Confirmed = true
		m.InviteSecretHash = nil
		m.JoinedAt = timestamppb.New(c.Now)
		m.UpdatedAt = m.JoinedAt
		return updated(m), nil
	case Remove:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "membership not found")
		}
		m := proto.CloneOf(state)
		m.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_MembershipDeleted{MembershipDeleted: &eventsv1.MembershipDeleted{Membership: m}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown membership command %T", cmd)
	}
}

// EvolveMembership returns the membership's state after e.
func EvolveMembership(state MembershipState, e *eventsv1.Envelope) MembershipState {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_MembershipCreated:
		return p.MembershipCreated.GetMembership()
	case *eventsv1.Envelope_MembershipUpdated:
		return p.MembershipUpdated.GetMembership()
	case *eventsv1.Envelope_MembershipDeleted:
		return nil
	}
	return state
}

// HasRole reports whether m is confirmed and holds role.
func HasRole(m MembershipState, role string) bool {
	return m != nil && m.GetConfirmed() && slices.Contains(m.GetRoles(), role)
}
