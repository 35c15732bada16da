package permission

import (
	"slices"

	"github.com/cairn-dev/cairn/domain"
)

// SubjectKind tells the kinds of caller apart. The zero value is Guest, so
// a forgotten Kind holds the fewest roles.
type SubjectKind int

// The kinds of caller.
const (
	Guest    SubjectKind = iota // no session
	User                        // an end user with a session (or a JWT acting as one)
	APIKey                      // a project API key (server side)
	Operator                    // an instance operator
)

// Membership is a user's membership of a team, with the team roles it has.
type Membership struct {
	TeamID       string
	MembershipID string
	Roles        []string
}

// Subject is a resolved caller: what the session, key or operator
// credential stands for. UserID, Verified, Teams and Labels matter only for
// User.
type Subject struct {
	Kind     SubjectKind
	UserID   string
	Verified bool
	Teams    []Membership
	Labels   []string
}

// Roles returns the set of roles s holds, without duplicates. A guest holds
// any and guests; a user holds any, users, users/verified or
// users/unverified, user:<id>, user:<id>/verified or user:<id>/unverified,
// team:<t> and team:<t>/<role> for each membership and its roles,
// member:<m> for each membership and label:<l> for each label. API keys and
// operators hold no roles: they are not subject to permissions (see Check).
func Roles(s Subject) []Role {
	switch s.Kind {
	case Guest:
		return []Role{{Kind: RoleAny}, {Kind: RoleGuests}}
	case User:
	default:
		return nil
	}
	dim := Unverified
	if s.Verified {
		dim = Verified
	}
	roles := make([]Role, 0, 6+3*len(s.Teams)+len(s.Labels))
	roles = append(roles,
		Role{Kind: RoleAny},
		Role{Kind: RoleUsers},
		Role{Kind: RoleUsers, Dimension: dim},
		Role{Kind: RoleUser, ID: s.UserID},
		Role{Kind: RoleUser, ID: s.UserID, Dimension: dim},
	)
	add := func(r Role) {
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	for _, m := range s.Teams {
		add(Role{Kind: RoleTeam, ID: m.TeamID})
		for _, tr := range m.Roles {
			add(Role{Kind: RoleTeam, ID: m.TeamID, Dimension: tr})
		}
		add(Role{Kind: RoleMember, ID: m.MembershipID})
	}
	for _, l := range s.Labels {
		add(Role{Kind: RoleLabel, ID: l})
	}
	return roles
}

// bypasses reports whether s is exempt from permissions.
func bypasses(s Subject) bool { return s.Kind == APIKey || s.Kind == Operator }

// Check reports whether s may perform action on a resource. container is
// the permissions of the collection or bucket, item those of the single
// document or file, consulted only when itemSecurity (the container's
// document/file security flag) is on. The action is allowed when the
// container grants it to a role s holds, or when itemSecurity is on and the
// item grants it. A write permission grants create, update and delete;
// asking for Write requires all three.
//
// Operators and API keys bypass permissions and are always allowed here:
// their access is decided by scopes, which callers check elsewhere
// (domain/access.Authorize) before calling Check. Unknown subject kinds and
// invalid actions are denied.
func Check(s Subject, action Action, container, item []Permission, itemSecurity bool) bool {
	if bypasses(s) {
		return true
	}
	if s.Kind != Guest && s.Kind != User {
		return false
	}
	prims := Expand(action)
	if len(prims) == 0 {
		return false
	}
	held := Roles(s)
	for _, a := range prims {
		if !grants(held, a, container) && !(itemSecurity && grants(held, a, item)) {
			return false
		}
	}
	return true
}

func grants(held []Role, a Action, perms []Permission) bool {
	for _, p := range perms {
		if p.Grants(a) && slices.Contains(held, p.Role) {
			return true
		}
	}
	return false
}

// CanGrant checks that s may put perms on a resource: as in Appwrite, a
// user or guest may only use roles it holds itself, while API keys and
// operators may grant any role. The error is KindPermissionDenied with
// Field "permissions" and names the first role s does not hold.
func CanGrant(s Subject, perms []Permission) error {
	if bypasses(s) {
		return nil
	}
	held := Roles(s)
	for _, p := range perms {
		if !slices.Contains(held, p.Role) {
			return &domain.Error{Kind: domain.KindPermissionDenied, Field: Field,
				Message: "cannot grant role " + quote(p.Role.String()) + " that the caller does not hold"}
		}
	}
	return nil
}
