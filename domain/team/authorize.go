package team

import (
	"slices"

	"github.com/cairn-dev/cairn/domain"
)

// Caller is who asks, as far as team rules care: a server (an API key
// whose scopes were already checked, or an operator) or an end user.
type Caller struct {
	// Server callers are not subject to team roles.
	Server bool
	// UserID is the end user behind a session; empty for servers.
	UserID string
}

// Action is what a caller wants to do with a team.
type Action int

// The actions of TeamsService.
const (
	ActionCreateTeam Action = iota + 1
	ActionReadTeam          // get the team, get or list its memberships
	ActionUpdateTeam        // name or prefs
	ActionDeleteTeam
	ActionAddMember // add a user directly, confirmed
	ActionInvite    // invite an address
	ActionUpdateMembership
	ActionAcceptMembership
	ActionDeleteMembership
)

// Request is everything Authorize needs to know about one call.
type Request struct {
	Action Action
	// Team is the team acted on; nil when it does not exist (or for
	// ActionCreateTeam).
	Team State
	// Members are the team's memberships, for end-user callers: the
	// caller's own is looked up here, and owners are counted. Memberships
	// that are not Live are ignored.
	Members []MembershipState
	// Target is the membership acted on, when there is one.
	Target MembershipState
	// Roles are the target's new roles (ActionUpdateMembership).
	Roles []string
	// UserID is the user accepting an invitation (ActionAcceptMembership).
	UserID string
}

// Authorize decides whether c may do r, following Appwrite's team rules:
//   - servers may do everything;
//   - any signed-in user may create a team (and becomes its owner);
//   - a confirmed member may read the team and its memberships; to anyone
//     else the team does not exist (KindNotFound);
//   - a confirmed owner (role "owner") may rename the team, change its
//     prefs, delete it, invite addresses and change roles;
//   - only servers add users directly; end users invite;
//   - a member may leave (delete their own membership);
//   - an invitation is accepted by the user it is accepted for;
//   - an end user cannot take the team's last owner away (remove them or
//     drop their owner role): delete the team instead.
//
// Returns KindUnauthenticated, KindNotFound, KindPermissionDenied or
// KindFailedPrecondition.
func Authorize(c Caller, r Request) error {
	if c.Server {
		return nil
	}
	if c.UserID == "" {
		return domain.Errorf(domain.KindUnauthenticated, "sign in to use teams")
	}
	if r.Action == ActionCreateTeam {
		return nil
	}
	if r.Team == nil {
		return domain.Errorf(domain.KindNotFound, "team not found")
	}
	if r.Action == ActionAcceptMembership {
		if r.UserID != c.UserID {
			return domain.Errorf(domain.KindPermissionDenied, "an invitation can only be accepted for the signed-in user")
		}
		return nil
	}
	var own MembershipState
	owners := 0
	for _, m := range r.Members {
		if !Live(r.Team, m) || !m.GetConfirmed() {
			continue
		}
		if m.GetUserId() == c.UserID {
			own = m
		}
		if HasRole(m, RoleOwner) {
			owners++
		}
	}
	if own == nil {
		return domain.Errorf(domain.KindNotFound, "team not found")
	}
	owner := HasRole(own, RoleOwner)
	target := r.Target
	if !Live(r.Team, target) {
		target = nil
	}
	lastOwner := target != nil && HasRole(target, RoleOwner) && owners <= 1
	switch r.Action {
	case ActionReadTeam:
		return nil
	case ActionAddMember:
		return domain.Errorf(domain.KindPermissionDenied, "only servers add members directly; invite by email")
	case ActionUpdateTeam, ActionDeleteTeam, ActionInvite:
		if !owner {
			return domain.Errorf(domain.KindPermissionDenied, "only team owners may do this")
		}
		return nil
	case ActionUpdateMembership:
		if !owner {
			return domain.Errorf(domain.KindPermissionDenied, "only team owners may change roles")
		}
		if lastOwner && !slices.Contains(r.Roles, RoleOwner) {
			return domain.Errorf(domain.KindFailedPrecondition, "the team's last owner must stay an owner; delete the team instead")
		}
		return nil
	case ActionDeleteMembership:
		if target == nil {
			return domain.Errorf(domain.KindNotFound, "membership not found")
		}
		if !owner && target.GetUserId() != c.UserID {
			return domain.Errorf(domain.KindPermissionDenied, "only team owners may remove other members")
		}
		if lastOwner {
			return domain.Errorf(domain.KindFailedPrecondition, "the team's last owner cannot leave; delete the team instead")
		}
		return nil
	}
	return domain.Errorf(domain.KindInternal, "unknown team action %d", r.Action)
}

// AuthorizeUserMemberships decides whether c may list userID's
// memberships: servers may list anyone's, an end user only their own.
func AuthorizeUserMemberships(c Caller, userID string) error {
	switch {
	case c.Server:
		return nil
	case c.UserID == "":
		return domain.Errorf(domain.KindUnauthenticated, "sign in to use teams")
	case c.UserID != userID:
		return domain.Errorf(domain.KindPermissionDenied, "an end user may list only their own memberships")
	}
	return nil
}
