// Package access decides who may do what: principals (operators, operator
// accounts, project API keys), the closed list of key scopes, the roles
// operator accounts hold per project, and the checks every endpoint calls.
// It is pure: callers resolve credentials and pass the result in.
package access

import (
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
)

// Scope is a permission a project API key can hold.
type Scope string

// The scopes a key may hold. Stored in events: only ever add to this list.
const (
	UsersRead        Scope = "users.read"
	UsersWrite       Scope = "users.write"
	TeamsRead        Scope = "teams.read"
	TeamsWrite       Scope = "teams.write"
	DatabasesRead    Scope = "databases.read"
	DatabasesWrite   Scope = "databases.write"
	CollectionsRead  Scope = "collections.read"
	CollectionsWrite Scope = "collections.write"
	DocumentsRead    Scope = "documents.read"
	DocumentsWrite   Scope = "documents.write"
	BucketsRead      Scope = "buckets.read"
	BucketsWrite     Scope = "buckets.write"
	FilesRead        Scope = "files.read"
	FilesWrite       Scope = "files.write"
	FunctionsRead    Scope = "functions.read"
	FunctionsWrite   Scope = "functions.write"
	ExecutionsRead   Scope = "executions.read"
	ExecutionsWrite  Scope = "executions.write"
	SitesRead        Scope = "sites.read"
	SitesWrite       Scope = "sites.write"
	EventsRead       Scope = "events.read"
	KeysRead         Scope = "keys.read"
	KeysWrite        Scope = "keys.write"
	WebhooksRead     Scope = "webhooks.read"
	WebhooksWrite    Scope = "webhooks.write"
	// UsageRead lets a key read its own project's usage (GetProjectUsage).
	UsageRead Scope = "usage.read"
)

// Scopes lists every scope, in the order documentation shows them.
var Scopes = []Scope{
	UsersRead, UsersWrite, TeamsRead, TeamsWrite, DatabasesRead, DatabasesWrite,
	CollectionsRead, CollectionsWrite, DocumentsRead, DocumentsWrite, BucketsRead, BucketsWrite,
	FilesRead, FilesWrite, FunctionsRead, FunctionsWrite, ExecutionsRead, ExecutionsWrite,
	SitesRead, SitesWrite, EventsRead, KeysRead, KeysWrite, WebhooksRead, WebhooksWrite,
	UsageRead,
}

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool { return slices.Contains(Scopes, Scope(s)) }

// Principal is an authenticated caller.
type Principal struct {
	Kind PrincipalKind
	// Project the credential belongs to; empty for operators.
	Project string
	// ID of the key (or later user/function); empty for operators.
	ID     string
	Scopes []string
	// ExpiresAt is zero when the credential never expires.
	ExpiresAt time.Time
	// SessionID is the session of a User principal (empty for a JWT).
	SessionID string
	// MfaPending marks a session that has not proven its second factor yet.
	MfaPending bool
	// Name is a person's name for the audit log (an operator account's
	// email); ID is then the account id and SessionID its console session.
	Name string
	// Roles of a Member: project id → role, read at each request so that a
	// change applies at once.
	Roles map[string]Role
}

// PrincipalKind tells operators from project credentials.
type PrincipalKind int

const (
	// Anonymous is a caller with no credential.
	Anonymous PrincipalKind = iota
	Operator
	APIKey
	// User is an end user of Project, by session or JWT; ID is the user id.
	User
	// Member is an operator account that is no instance administrator: it
	// acts on the projects it holds a role on, as a key with the role's
	// scopes would. (Administrator accounts are Operators with an ID.)
	Member
)

// IsUser reports whether p is an end user with a session or JWT.
func (p Principal) IsUser() bool { return p.Kind == User }

// IsOperator reports whether p is an instance operator: the admin key or an
// administrator account.
func (p Principal) IsOperator() bool { return p.Kind == Operator }

// IsServer reports whether p calls as a trusted server (no end-user
// permissions apply): an operator, a member or an API key, whose scopes
// the access rule has checked.
func (p Principal) IsServer() bool {
	return p.Kind == Operator || p.Kind == Member || p.Kind == APIKey
}

// In returns p acting on project: a Member gets its role's scopes there
// (none without a role), so that CanGrant and handlers see what a key
// would hold. Other principals are returned unchanged.
func (p Principal) In(project string) Principal {
	if p.Kind != Member {
		return p
	}
	p.Project, p.Scopes = project, nil
	if r, ok := p.Roles[project]; ok {
		p.Scopes = r.Scopes()
	}
	return p
}

// RoleIn returns a Member's role on project; ok is false without one.
func (p Principal) RoleIn(project string) (Role, bool) {
	r, ok := p.Roles[project]
	return r, ok && p.Kind == Member
}

// Authorize checks that p may act on project with scope. Operators may act
// on every project; a key only on its own project and within its scopes; a
// member only on projects it holds a role on (KindNotFound elsewhere: it
// learns nothing of other projects) and within the role's scopes.
// scope "" means the call is for operators only.
func Authorize(p Principal, project string, scope Scope, now time.Time) error {
	switch p.Kind {
	case Operator:
		return nil
	case Member:
		if !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt) {
			return domain.Errorf(domain.KindUnauthenticated, "console session expired: sign in again")
		}
		role, ok := p.Roles[project]
		if !ok {
			return domain.Errorf(domain.KindNotFound, "project %q not found", project)
		}
		if scope == "" {
			return domain.Errorf(domain.KindPermissionDenied, "only instance administrators may call this")
		}
		if !role.allows(scope) {
			return domain.Errorf(domain.KindPermissionDenied, "role %s on project %q does not allow %s", role, project, scope)
		}
		return nil
	case User:
		return domain.Errorf(domain.KindPermissionDenied, "end-user sessions cannot call server APIs; use an API key")
	case APIKey:
		if !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt) {
			return domain.Errorf(domain.KindUnauthenticated, "API key expired")
		}
		if scope == "" {
			return domain.Errorf(domain.KindPermissionDenied, "only instance operators may call this")
		}
		if project != p.Project {
			return domain.Errorf(domain.KindPermissionDenied, "API key does not belong to project %q", project)
		}
		if !slices.Contains(p.Scopes, string(scope)) {
			return domain.Errorf(domain.KindPermissionDenied, "API key lacks scope %q", scope)
		}
		return nil
	default:
		return domain.Errorf(domain.KindUnauthenticated, "missing credential: send Authorization: Bearer <key>")
	}
}

// CanGrant checks that p may hand out scopes to a new or updated key or
// function: a key can never grant a scope it does not hold itself. The
// error names every scope not held, so one fix settles it.
func CanGrant(p Principal, scopes []string) error {
	if p.IsOperator() {
		return nil
	}
	var missing []string
	for _, s := range scopes {
		if !slices.Contains(p.Scopes, s) && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return &domain.Error{Kind: domain.KindPermissionDenied, Field: "scopes",
			Message: "cannot grant scope " + missing[0] + " that the " + caller(p) + " does not hold"}
	}
	return &domain.Error{Kind: domain.KindPermissionDenied, Field: "scopes",
		Message: "cannot grant scopes " + strings.Join(missing, ", ") + " that the " + caller(p) + " does not hold"}
}

func caller(p Principal) string {
	if p.Kind == Member {
		return "caller's role"
	}
	return "calling key"
}

// Intersect returns the scopes of held that allowed also has: what a
// credential derived from a grant may still do once the grant shrank.
func Intersect(held, allowed []string) []string {
	out := make([]string, 0, len(held))
	for _, s := range held {
		if slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	return out
}
