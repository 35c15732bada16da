// Package permission is Cairn's resource permission model, shaped after
// Appwrite's so that its users feel at home: roles ("any", "users/verified",
// "team:t1/admin", …), actions (read, create, update, delete and write =
// create+update+delete), permission strings such as read("any"), the roles a
// subject (guest, user, API key, operator) holds, the check of an action
// against container and item permissions, and the rule that a caller may only
// grant roles it holds itself.
//
// It is pure: no I/O, no clock, no mutable state. Callers resolve sessions,
// memberships and labels and pass the result in.
package permission

import (
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-dev/cairn/domain"
)

// Field is the request field that permission errors name.
const Field = "permissions"

// MaxPermissions is the most permissions one resource may carry (Appwrite's
// array parameter limit).
const MaxPermissions = 100

// RoleKind tells the role families apart.
type RoleKind int

// The role families. The zero RoleKind is not a valid role.
const (
	_          RoleKind = iota
	RoleAny             // any: everybody, signed in or not
	RoleGuests          // guests: callers without a session
	RoleUsers           // users, users/verified, users/unverified
	RoleUser            // user:<id>, user:<id>/verified, user:<id>/unverified
	RoleTeam            // team:<id>, team:<id>/<role>
	RoleMember          // member:<membershipId>
	RoleLabel           // label:<name>
)

// Dimensions of the users and user:<id> roles.
const (
	Verified   = "verified"
	Unverified = "unverified"
)

// Role is a parsed role. ID is the user id, team id, membership id or label
// name (empty for any, guests and users); Dimension is "verified" or
// "unverified" for users and user:<id>, or the team role for team:<id>/<role>,
// and empty otherwise. Roles are comparable with ==.
type Role struct {
	Kind      RoleKind
	ID        string
	Dimension string
}

// String returns the canonical form of r, the one ParseRole accepts.
func (r Role) String() string {
	var s string
	switch r.Kind {
	case RoleAny:
		return "any"
	case RoleGuests:
		return "guests"
	case RoleUsers:
		s = "users"
	case RoleUser:
		s = "user:" + r.ID
	case RoleTeam:
		s = "team:" + r.ID
	case RoleMember:
		return "member:" + r.ID
	case RoleLabel:
		return "label:" + r.ID
	default:
		return "invalid"
	}
	if r.Dimension != "" {
		s += "/" + r.Dimension
	}
	return s
}

// ParseRole parses a role strictly. Ids (user, team, membership) must match
// [a-zA-Z0-9][a-zA-Z0-9_-]{0,35}, label names [a-zA-Z0-9]{1,36} and team
// roles [a-zA-Z0-9_-]{1,32}. Errors are KindInvalid with Field "role".
func ParseRole(s string) (Role, error) {
	r, msg := parseRole(s)
	if msg != "" {
		return Role{}, domain.FieldError("role", "%s", msg)
	}
	return r, nil
}

const roleList = "any, guests, users, users/verified, users/unverified, user:<id>[/verified|/unverified], " +
	"team:<id>[/<role>], member:<id> or label:<name>"

// parseRole returns the role or a message saying what was wrong.
func parseRole(s string) (Role, string) {
	switch s {
	case "":
		return Role{}, "role is empty"
	case "any":
		return Role{Kind: RoleAny}, ""
	case "guests":
		return Role{Kind: RoleGuests}, ""
	case "users":
		return Role{Kind: RoleUsers}, ""
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		if dim, ok := strings.CutPrefix(s, "users/"); ok {
			if dim != Verified && dim != Unverified {
				return Role{}, "unknown users dimension " + quote(dim) + " (want verified or unverified)"
			}
			return Role{Kind: RoleUsers, Dimension: dim}, ""
		}
		return Role{}, "unknown role " + quote(s) + " (want " + roleList + ")"
	}
	switch kind {
	case "user":
		id, dim, hasDim := strings.Cut(rest, "/")
		if !domain.ValidResourceID(id) {
			return Role{}, badID("user id", id)
		}
		if hasDim && dim != Verified && dim != Unverified {
			return Role{}, "unknown user dimension " + quote(dim) + " (want verified or unverified)"
		}
		return Role{Kind: RoleUser, ID: id, Dimension: dim}, ""
	case "team":
		id, role, hasRole := strings.Cut(rest, "/")
		if !domain.ValidResourceID(id) {
			return Role{}, badID("team id", id)
		}
		if hasRole && !validTeamRole(role) {
			if role == "" {
				return Role{}, "team role is empty (write team:" + id + " for every member)"
			}
			return Role{}, "team role " + quote(role) + " must be 1–32 letters, digits, _ or -"
		}
		return Role{Kind: RoleTeam, ID: id, Dimension: role}, ""
	case "member":
		if !domain.ValidResourceID(rest) {
			return Role{}, badID("membership id", rest)
		}
		return Role{Kind: RoleMember, ID: rest}, ""
	case "label":
		if !validLabel(rest) {
			if rest == "" {
				return Role{}, "label name is empty"
			}
			return Role{}, "label name " + quote(rest) + " must be 1–36 letters or digits"
		}
		return Role{Kind: RoleLabel, ID: rest}, ""
	}
	return Role{}, "unknown role " + quote(s) + " (want " + roleList + ")"
}

func badID(what, id string) string {
	if id == "" {
		return what + " is empty"
	}
	return what + " " + quote(id) + " must match [a-zA-Z0-9][a-zA-Z0-9_-]{0,35}"
}

// quote quotes untrusted input for an error message, cutting it short.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func validLabel(s string) bool {
	if len(s) < 1 || len(s) > 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func validTeamRole(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Action is what a permission allows.
type Action string

// The actions. Write is shorthand for Create, Update and Delete.
const (
	Read   Action = "read"
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
	Write  Action = "write"
)

// Valid reports whether a is one of the five actions.
func (a Action) Valid() bool {
	switch a {
	case Read, Create, Update, Delete, Write:
		return true
	}
	return false
}

// Expand returns the primitive actions a stands for: write is create,
// update and delete; every other action is itself. An invalid action
// expands to nothing.
func Expand(a Action) []Action {
	switch a {
	case Write:
		return []Action{Create, Update, Delete}
	case Read, Create, Update, Delete:
		return []Action{a}
	}
	return nil
}

// Permission grants an action to a role.
type Permission struct {
	Action Action
	Role   Role
}

// String returns the canonical form, e.g. read("any").
func (p Permission) String() string {
	return string(p.Action) + `("` + p.Role.String() + `")`
}

// Grants reports whether p allows action a (a primitive action; write
// grants create, update and delete).
func (p Permission) Grants(a Action) bool {
	if p.Action == a {
		return a != Write
	}
	return p.Action == Write && (a == Create || a == Update || a == Delete)
}

// ParsePermission parses one permission string strictly: the exact form is
// action("role") with a lower-case action, double quotes and no spaces.
// Errors are KindInvalid with Field "permissions" and say what was wrong.
func ParsePermission(s string) (Permission, error) {
	p, msg := parsePermission(s)
	if msg != "" {
		return Permission{}, domain.FieldError(Field, "%s", msg)
	}
	return p, nil
}

func parsePermission(s string) (Permission, string) {
	if s == "" {
		return Permission{}, `permission is empty (want action("role"))`
	}
	name, arg, ok := strings.Cut(s, "(")
	if !ok {
		return Permission{}, "permission " + quote(s) + ` is not of the form action("role")`
	}
	a := Action(name)
	if !a.Valid() {
		return Permission{}, "unknown action " + quote(name) + " in " + quote(s) +
			" (want read, create, update, delete or write)"
	}
	if !strings.HasSuffix(arg, ")") {
		return Permission{}, "permission " + quote(s) + ` must end with ")"`
	}
	arg = arg[:len(arg)-1]
	if len(arg) < 2 || arg[0] != '"' || arg[len(arg)-1] != '"' {
		return Permission{}, "role in " + quote(s) + " must be in double quotes"
	}
	r, msg := parseRole(arg[1 : len(arg)-1])
	if msg != "" {
		return Permission{}, "permission " + quote(s) + ": " + msg
	}
	return Permission{Action: a, Role: r}, ""
}

// ParsePermissions parses a resource's permission list. It rejects more
// than MaxPermissions entries and duplicates; nil and empty give an empty
// list.
func ParsePermissions(ss []string) ([]Permission, error) {
	if len(ss) > MaxPermissions {
		return nil, domain.FieldError(Field, "at most %d permissions, got %d", MaxPermissions, len(ss))
	}
	out := make([]Permission, 0, len(ss))
	for i, s := range ss {
		p, msg := parsePermission(s)
		if msg != "" {
			return nil, domain.FieldError(Field, "entry %d: %s", i, msg)
		}
		if j := slices.Index(out, p); j >= 0 {
			return nil, domain.FieldError(Field, "entry %d: duplicate of entry %d %s", i, j, p)
		}
		out = append(out, p)
	}
	return out, nil
}

// Strings returns the canonical strings of perms, for storing.
func Strings(perms []Permission) []string {
	out := make([]string, len(perms))
	for i, p := range perms {
		out[i] = p.String()
	}
	return out
}
