// Package operator decides the lifecycle of operator accounts: people who
// sign in to the console and act on projects through a role (owner,
// developer, viewer) or as instance administrators. Pure: time, ids,
// password hashes and session secrets come in the commands.
package operator

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// State is an account's current state; nil when it does not exist.
type State = *eventsv1.Operator

// MaxSessions bounds an account's live sessions: the oldest end first.
const MaxSessions = 20

// NormalizeEmail is the form an email is stored and looked up in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ID is the account id of an email: derived, so that one email is one
// aggregate and the log's concurrency check keeps emails unique.
func ID(email string) string {
	sum := sha256.Sum256([]byte("cairn operator\x00" + NormalizeEmail(email)))
	return hex.EncodeToString(sum[:16])
}

// Command is one of Create, Update, Delete, SignIn, EndSessions, SetMfa,
// Invite, Accept, RevokeInvitation.
type Command interface{ isCommand() }

// Create adds an account.
type Create struct {
	Email, Name  string
	PasswordHash string
	Admin        bool
	Roles        []*eventsv1.OperatorRole
	Now          time.Time
}

// Update changes the fields that are set. A new password ends every
// session: whoever knew the old one is signed out.
type Update struct {
	Name         *string
	PasswordHash *string
	Admin        *bool
	Roles        *[]*eventsv1.OperatorRole
	// KeepSession, with a new password, is the one session that stays: the
	// account changing its own password is not signed out.
	KeepSession string
	Now         time.Time
}

// SetMfa replaces the account's second factor (enrolment, verification, a
// spent code, removal). EndSessions also ends every session: an
// administrator's reset is for a lost or stolen authenticator.
type SetMfa struct {
	Mfa         *eventsv1.Mfa
	EndSessions bool
	Now         time.Time
}

// Invite invites an email. With no account, it makes a pending one (no
// password) holding the invitation, replacing an earlier link; with an
// account, it adds the roles (and the administrator flag when set) at once.
type Invite struct {
	Email, Name string
	Admin       bool
	Roles       []*eventsv1.OperatorRole
	SecretHash  []byte
	ExpiresAt   time.Time
	InvitedBy   string
	Now         time.Time
}

// Accept takes a pending account's invitation: its secret must match and
// not have expired; the password is set and the invitation is spent.
type Accept struct {
	SecretHash   []byte
	PasswordHash string
	Name         *string
	Now          time.Time
}

// RevokeInvitation removes a pending account.
type RevokeInvitation struct{ Now time.Time }

// ErrNoInvitation answers every invitation that is missing, spent,
// revoked or whose secret does not match: a guesser learns nothing.
var ErrNoInvitation = domain.Errorf(domain.KindNotFound, "invitation not found: it was used, revoked or replaced by a newer one")

// Pending reports whether the account is an invitation nobody accepted.
func Pending(o State) bool { return o.GetInvitation() != nil }

// Delete removes the account and ends its sessions.
type Delete struct{ Now time.Time }

// SignIn opens a session; expired ones are dropped, and beyond MaxSessions
// the oldest.
type SignIn struct {
	// Mfa, when set, is the account's second factor with the code this
	// sign-in used spent.
	Mfa        *eventsv1.Mfa
	SessionID  string
	SecretHash []byte
	ExpiresAt  time.Time
	Now        time.Time
}

// EndSessions ends the named sessions, or all of them when IDs is nil.
type EndSessions struct {
	IDs []string
	Now time.Time
}

func (Create) isCommand()           {}
func (Update) isCommand()           {}
func (Delete) isCommand()           {}
func (SignIn) isCommand()           {}
func (EndSessions) isCommand()      {}
func (SetMfa) isCommand()           {}
func (Invite) isCommand()           {}
func (Accept) isCommand()           {}
func (RevokeInvitation) isCommand() {}

// Decide returns the events that follow from cmd given state. Returns
// KindAlreadyExists when creating an existing account, KindNotFound when
// acting on a missing one, KindInvalid naming the field for bad roles.
func Decide(state State, cmd Command) ([]*eventsv1.Envelope, error) {
	switch cmd.(type) {
	case Create, Invite:
	case Accept:
		if state == nil {
			return nil, ErrNoInvitation
		}
	default:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "operator account not found")
		}
	}
	switch c := cmd.(type) {
	case Invite:
		return decideInvite(state, c)
	case Accept:
		if !Pending(state) || subtle.ConstantTimeCompare(state.GetInvitation().GetSecretHash(), c.SecretHash) != 1 {
			return nil, ErrNoInvitation
		}
		if !state.GetInvitation().GetExpiresAt().AsTime().After(c.Now) {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "the invitation expired: ask for a new one")
		}
		if c.PasswordHash == "" {
			return nil, domain.FieldError("password", "required")
		}
		o := proto.CloneOf(state)
		o.Invitation = nil
		o.PasswordHash = c.PasswordHash
		if c.Name != nil {
			o.Name = *c.Name
		}
		o.UpdatedAt = timestamppb.New(c.Now)
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorInvitationAccepted{OperatorInvitationAccepted: &eventsv1.OperatorInvitationAccepted{Operator: o}}}), nil
	case RevokeInvitation:
		if !Pending(state) {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "the account accepted its invitation: delete the account instead")
		}
		o := proto.CloneOf(state)
		o.UpdatedAt = timestamppb.New(c.Now)
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorInvitationRevoked{OperatorInvitationRevoked: &eventsv1.OperatorInvitationRevoked{Operator: o}}}), nil
	case Create:
		if state != nil {
			return nil, &domain.Error{Kind: domain.KindAlreadyExists, Field: "email", Message: "an operator account with this email exists"}
		}
		email := NormalizeEmail(c.Email)
		if email == "" || !strings.Contains(email, "@") {
			return nil, domain.FieldError("email", "must be an email address")
		}
		if c.PasswordHash == "" {
			return nil, domain.FieldError("password", "required")
		}
		roles, err := checkRoles("roles", c.Roles)
		if err != nil {
			return nil, err
		}
		ts := timestamppb.New(c.Now)
		o := &eventsv1.Operator{Id: ID(email), Email: email, Name: c.Name, PasswordHash: c.PasswordHash, Admin: c.Admin,
			Roles: roles, CreatedAt: ts, UpdatedAt: ts}
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorCreated{OperatorCreated: &eventsv1.OperatorCreated{Operator: o}}}), nil
	case Update:
		o := proto.CloneOf(state)
		if c.Name != nil {
			o.Name = *c.Name
		}
		if c.Admin != nil {
			o.Admin = *c.Admin
		}
		if c.Roles != nil {
			roles, err := checkRoles("roles.roles", *c.Roles)
			if err != nil {
				return nil, err
			}
			o.Roles = roles
		}
		if c.PasswordHash != nil {
			if *c.PasswordHash == "" {
				return nil, domain.FieldError("password", "must not be empty")
			}
			o.PasswordHash = *c.PasswordHash
			o.Invitation = nil // an administrator set the password: nothing left to accept
			o.Sessions = slices.DeleteFunc(o.Sessions, func(s *eventsv1.OperatorSession) bool {
				return c.KeepSession == "" || s.GetId() != c.KeepSession
			})
		}
		if proto.Equal(o, state) {
			return nil, nil
		}
		o.UpdatedAt = timestamppb.New(c.Now)
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorUpdated{OperatorUpdated: &eventsv1.OperatorUpdated{Operator: o}}}), nil
	case Delete:
		o := proto.CloneOf(state)
		o.UpdatedAt = timestamppb.New(c.Now)
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorDeleted{OperatorDeleted: &eventsv1.OperatorDeleted{Operator: o}}}), nil
	case SignIn:
		if c.SessionID == "" || len(c.SecretHash) == 0 || !c.ExpiresAt.After(c.Now) {
			return nil, domain.Errorf(domain.KindInternal, "sign-in without a session id, secret or future expiry")
		}
		o := proto.CloneOf(state)
		if c.Mfa != nil {
			o.Mfa = proto.CloneOf(c.Mfa)
		}
		o.Sessions = slices.DeleteFunc(o.Sessions, func(s *eventsv1.OperatorSession) bool {
			return !s.GetExpiresAt().AsTime().After(c.Now)
		})
		if n := len(o.Sessions) - (MaxSessions - 1); n > 0 {
			o.Sessions = o.Sessions[n:] // sessions are appended, oldest first
		}
		o.Sessions = append(o.Sessions, &eventsv1.OperatorSession{Id: c.SessionID, SecretHash: c.SecretHash,
			CreatedAt: timestamppb.New(c.Now), ExpiresAt: timestamppb.New(c.ExpiresAt)})
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorSessionCreated{
			OperatorSessionCreated: &eventsv1.OperatorSessionCreated{Operator: o, SessionId: c.SessionID}}}), nil
	case EndSessions:
		o := proto.CloneOf(state)
		var ended []string
		o.Sessions = slices.DeleteFunc(o.Sessions, func(s *eventsv1.OperatorSession) bool {
			if c.IDs == nil || slices.Contains(c.IDs, s.GetId()) {
				ended = append(ended, s.GetId())
				return true
			}
			return false
		})
		if len(ended) == 0 {
			return nil, nil
		}
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorSessionsDeleted{
			OperatorSessionsDeleted: &eventsv1.OperatorSessionsDeleted{Operator: o, SessionIds: ended}}}), nil
	case SetMfa:
		o := proto.CloneOf(state)
		o.Mfa = proto.CloneOf(c.Mfa)
		if !o.GetMfa().GetEnabled() && len(o.GetMfa().GetTotpSecretSealed()) == 0 {
			o.Mfa = nil // nothing enrolled: the account has no MFA state
		}
		if c.EndSessions {
			o.Sessions = nil
		}
		if proto.Equal(o, state) {
			return nil, nil
		}
		o.UpdatedAt = timestamppb.New(c.Now)
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorUpdated{OperatorUpdated: &eventsv1.OperatorUpdated{Operator: o}}}), nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown operator command %T", cmd)
	}
}

func decideInvite(state State, c Invite) ([]*eventsv1.Envelope, error) {
	roles, err := checkRoles("roles", c.Roles)
	if err != nil {
		return nil, err
	}
	if state != nil && !Pending(state) {
		// An account: the invitation adds its roles, replacing the role it
		// held on the same project.
		o := proto.CloneOf(state)
		o.Roles = slices.DeleteFunc(o.Roles, func(r *eventsv1.OperatorRole) bool {
			return slices.ContainsFunc(roles, func(n *eventsv1.OperatorRole) bool { return n.GetProjectId() == r.GetProjectId() })
		})
		if o.Roles, err = checkRoles("roles", append(o.Roles, roles...)); err != nil {
			return nil, err
		}
		o.Admin = o.Admin || c.Admin
		if proto.Equal(o, state) {
			return nil, nil
		}
		o.UpdatedAt = timestamppb.New(c.Now)
		return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorUpdated{OperatorUpdated: &eventsv1.OperatorUpdated{Operator: o}}}), nil
	}
	email := NormalizeEmail(c.Email)
	if email == "" || !strings.Contains(email, "@") {
		return nil, domain.FieldError("email", "must be an email address")
	}
	if len(c.SecretHash) == 0 || !c.ExpiresAt.After(c.Now) {
		return nil, domain.Errorf(domain.KindInternal, "invitation without a secret or a future expiry")
	}
	ts := timestamppb.New(c.Now)
	o := &eventsv1.Operator{Id: ID(email), Email: email, Name: c.Name, Admin: c.Admin, Roles: roles, CreatedAt: ts, UpdatedAt: ts,
		Invitation: &eventsv1.OperatorInvitation{SecretHash: c.SecretHash, CreatedAt: ts, ExpiresAt: timestamppb.New(c.ExpiresAt), InvitedBy: c.InvitedBy}}
	if state != nil {
		o.CreatedAt = state.GetCreatedAt()
	}
	return one(&eventsv1.Envelope{Payload: &eventsv1.Envelope_OperatorInvited{OperatorInvited: &eventsv1.OperatorInvited{Operator: o}}}), nil
}

func one(e *eventsv1.Envelope) []*eventsv1.Envelope { return []*eventsv1.Envelope{e} }

// checkRoles validates roles (one per project, known roles) and returns
// them sorted by project.
func checkRoles(field string, roles []*eventsv1.OperatorRole) ([]*eventsv1.OperatorRole, error) {
	out := make([]*eventsv1.OperatorRole, 0, len(roles))
	for _, r := range roles {
		if !domain.ValidProjectID(r.GetProjectId()) {
			return nil, domain.FieldError(field, "project id %q must match [a-z0-9][a-z0-9-]{0,35}", r.GetProjectId())
		}
		if !access.ValidRole(r.GetRole()) {
			return nil, domain.FieldError(field, "role %q on project %q: must be owner, developer or viewer", r.GetRole(), r.GetProjectId())
		}
		out = append(out, &eventsv1.OperatorRole{ProjectId: r.GetProjectId(), Role: r.GetRole()})
	}
	slices.SortFunc(out, func(a, b *eventsv1.OperatorRole) int { return cmp.Compare(a.GetProjectId(), b.GetProjectId()) })
	for i := 1; i < len(out); i++ {
		if out[i].GetProjectId() == out[i-1].GetProjectId() {
			return nil, domain.FieldError(field, "project %q has more than one role", out[i].GetProjectId())
		}
	}
	return out, nil
}

// Evolve returns the state after e: the account it carries, nil once
// deleted.
func Evolve(_ State, e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_OperatorCreated:
		return p.OperatorCreated.GetOperator()
	case *eventsv1.Envelope_OperatorUpdated:
		return p.OperatorUpdated.GetOperator()
	case *eventsv1.Envelope_OperatorSessionCreated:
		return p.OperatorSessionCreated.GetOperator()
	case *eventsv1.Envelope_OperatorSessionsDeleted:
		return p.OperatorSessionsDeleted.GetOperator()
	case *eventsv1.Envelope_OperatorInvited:
		return p.OperatorInvited.GetOperator()
	case *eventsv1.Envelope_OperatorInvitationAccepted:
		return p.OperatorInvitationAccepted.GetOperator()
	}
	return nil
}

// RoleMap is an account's roles keyed by project, as access.Principal holds them.
func RoleMap(o State) map[string]access.Role {
	m := make(map[string]access.Role, len(o.GetRoles()))
	for _, r := range o.GetRoles() {
		m[r.GetProjectId()] = access.Role(r.GetRole())
	}
	return m
}
