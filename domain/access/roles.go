package access

import (
	"slices"
	"strings"
)

// Role is an operator account's role on one project. Stored in events:
// only ever add to this list.
type Role string

const (
	// Viewer reads everything in the project and changes nothing.
	Viewer Role = "viewer"
	// Developer reads and writes the project's resources but cannot manage
	// its API keys (a key grants access beyond the role's lifetime).
	Developer Role = "developer"
	// Owner may do all of the project: keys, deleting it, exporting it.
	Owner Role = "owner"
)

// Roles lists every role, weakest first.
var Roles = []Role{Viewer, Developer, Owner}

// ValidRole reports whether s names a role.
func ValidRole(s string) bool { return slices.Contains(Roles, Role(s)) }

// AtLeast reports whether r includes every right of min.
func (r Role) AtLeast(min Role) bool {
	i, j := slices.Index(Roles, r), slices.Index(Roles, min)
	return i >= 0 && j >= 0 && i >= j
}

// Scopes are the key scopes a role holds on its project. A role is checked
// exactly like a key holding these scopes, so no account gets more than a
// key could.
func (r Role) Scopes() []string {
	out := make([]string, 0, len(Scopes))
	for _, s := range Scopes {
		if r.allows(s) {
			out = append(out, string(s))
		}
	}
	return out
}

func (r Role) allows(s Scope) bool {
	switch r {
	case Owner:
		return true
	case Developer:
		return s != KeysWrite
	case Viewer:
		return strings.HasSuffix(string(s), ".read")
	}
	return false
}
