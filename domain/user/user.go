// Package user decides the lifecycle of a project's end users: accounts,
// sessions and single-use tokens, one aggregate per user. Pure: ids, time,
// password hashes and secret hashes come in the commands; no secret in
// clear ever reaches this package.
package user

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// State is a user's current state; nil when the user does not exist.
type State = *eventsv1.User

// ClaimEmail is the claim namespace that keeps emails unique per project.
const ClaimEmail = "email"

// Limits on what a user holds.
const (
	// MaxPrefsBytes bounds the preferences JSON.
	MaxPrefsBytes = 64 << 10
	// MaxTokensPerKind keeps only the newest pending tokens of one kind.
	MaxTokensPerKind = 5
	// MaxNameLen is the longest name, in bytes.
	MaxNameLen = 128
	// MaxEmailLen is the longest email address.
	MaxEmailLen = 254
	// DefaultMaxSessions and DefaultSessionDuration apply when the
	// project's settings leave them 0.
	DefaultMaxSessions     = 10
	DefaultSessionDuration = 365 * 24 * time.Hour
)

// Settings are the project settings a decision needs.
type Settings struct {
	SessionDuration time.Duration // 0: DefaultSessionDuration
	MaxSessions     int           // 0: DefaultMaxSessions
}

func (s Settings) duration() time.Duration {
	if s.SessionDuration <= 0 {
		return DefaultSessionDuration
	}
	return s.SessionDuration
}

func (s Settings) maxSessions() int {
	if s.MaxSessions <= 0 {
		return DefaultMaxSessions
	}
	return s.MaxSessions
}

// NormalizeEmail is the form of an address used for lookups and claims.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CheckEmail validates an address as a user's email.
func CheckEmail(field, email string) error {
	if len(email) > MaxEmailLen {
		return domain.FieldError(field, "must be at most %d bytes", MaxEmailLen)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return domain.FieldError(field, "is not a valid email address")
	}
	return nil
}

func checkName(name string) error {
	if len(name) > MaxNameLen || !utf8.ValidString(name) || strings.ContainsAny(name, "\r\n\x00") {
		return domain.FieldError("name", "must be valid text of at most %d bytes on one line", MaxNameLen)
	}
	return nil
}

// CheckPrefs validates a preferences document: a JSON object, bounded.
func CheckPrefs(prefsJSON string) error {
	if len(prefsJSON) > MaxPrefsBytes {
		return domain.FieldError("prefs", "must be at most %d bytes as JSON", MaxPrefsBytes)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(prefsJSON), &obj); err != nil || obj == nil {
		return domain.FieldError("prefs", "must be a JSON object")
	}
	return nil
}

// CheckLabels validates user labels (usable as the role label:<name>).
func CheckLabels(labels []string) error {
	if len(labels) > 100 {
		return domain.FieldError("labels", "at most 100 labels")
	}
	for _, l := range labels {
		if l == "" || len(l) > 36 || strings.IndexFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) >= 0 {
			return domain.FieldError("labels", "label %q must be 1 to 36 letters or digits", l)
		}
	}
	return nil
}

func normalizeLabels(labels []string) []string {
	out := slices.Clone(labels)
	slices.Sort(out)
	return slices.Compact(out)
}

// Command is one of the commands below.
type Command interface{ isCommand() }

// Create makes a user: with an email (and a password hash, or none), or an
// anonymous one. With Identity set the user is created from an OAuth2/OIDC
// sign-in: the identity is linked and claimed in the same write as the
// email, so neither can be taken by another user meanwhile.
type Create struct {
	ID            string
	ProjectID     string
	Email         string
	Name          string
	PasswordHash  string
	Labels        []string
	EmailVerified bool
	Anonymous     bool
	Identity      *eventsv1.Identity
	Now           time.Time
}

// Update changes the fields that are set; each change is its own event,
// named as Appwrite names it.
type Update struct {
	Email         *string
	Name          *string
	PasswordHash  *string
	Blocked       *bool
	EmailVerified *bool
	Labels        *[]string
	PrefsJSON     *string
	// Convert turns an anonymous user into a full account (Email and
	// PasswordHash set together).
	Convert bool
	// SignOut revokes every session in the same write (password recovery).
	SignOut bool
	Now     time.Time
}

// Delete removes the user; its sessions go with it and its claims are
// released.
type Delete struct{ Now time.Time }

// CreateSession signs the user in.
type CreateSession struct {
	Session  *eventsv1.Session // id, secret hash, ip, user agent, provider, factors
	Settings Settings
	Now      time.Time
}

// DeleteSessions signs sessions out: the listed ones, or all (All) but
// Keep.
type DeleteSessions struct {
	IDs  []string
	All  bool
	Keep string
	Now  time.Time
}

// CreateToken stores a single-use token (its secret's hash).
type CreateToken struct {
	Token *eventsv1.Token
	Now   time.Time
}

// UseToken consumes a token of one of Kinds whose secret hashes to
// SecretHash, then applies Then (an Update) and/or creates Session. A wrong
// secret counts a failed attempt on the tokens of those kinds; after
// MaxFailedAttempts the token is dropped.
type UseToken struct {
	Kinds      []eventsv1.Token_Kind
	SecretHash []byte
	// VerifiesEmail lists the kinds whose use proves the user reads their
	// mail (a sign-in link or code): using one marks the email verified.
	VerifiesEmail []eventsv1.Token_Kind
	Then          *Update
	Session       *CreateSession
	Now           time.Time
}

// MaxFailedAttempts bounds guesses at a token (email codes are 6 digits).
const MaxFailedAttempts = 5

// SetMfa replaces the user's MFA state (enrolment, verification, removal,
// new recovery codes); the caller has checked the code that allows it.
type SetMfa struct {
	Mfa *eventsv1.Mfa
	Now time.Time
}

// ProveFactor records that a session proved a second factor, with the MFA
// state after the code was used (its step or recovery code spent).
type ProveFactor struct {
	SessionID string
	Factor    string
	Mfa       *eventsv1.Mfa
	Now       time.Time
}

func (SetMfa) isCommand()         {}
func (ProveFactor) isCommand()    {}
func (Create) isCommand()         {}
func (Update) isCommand()         {}
func (Delete) isCommand()         {}
func (CreateSession) isCommand()  {}
func (DeleteSessions) isCommand() {}
func (CreateToken) isCommand()    {}
func (UseToken) isCommand()       {}

// ErrNoUser is what commands on a missing user return.
var ErrNoUser = domain.Errorf(domain.KindNotFound, "user not found")

// ErrBadToken is the one answer to a wrong, used or expired token.
var ErrBadToken = domain.Errorf(domain.KindUnauthenticated, "invalid or expired token")

// Decide returns the events that follow from cmd given state.
func Decide(state State, cmd Command) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case Create:
		return decideCreate(state, c)
	case Update:
		if state == nil {
			return nil, ErrNoUser
		}
		u := prune(state, c.Now)
		return decideUpdate(state, u, c)
	case Delete:
		if state == nil {
			return nil, ErrNoUser
		}
		u := proto.CloneOf(state)
		u.UpdatedAt = timestamppb.New(c.Now)
		evs := []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_UserDeleted{UserDeleted: &eventsv1.UserDeleted{User: u}}}}
		if u.GetEmail() != "" {
			evs = append(evs, release(u.GetProjectId(), ClaimEmail, NormalizeEmail(u.GetEmail()), u.GetId()))
		}
		evs = append(evs, identityReleases(u)...)
		return append(evs, passkeyReleases(u)...), nil
	case CreateSession:
		if state == nil {
			return nil, ErrNoUser
		}
		u := prune(state, c.Now)
		return decideSession(u, c)
	case DeleteSessions:
		if state == nil {
			return nil, ErrNoUser
		}
		return decideDeleteSessions(state, c)
	case CreateToken:
		if state == nil {
			return nil, ErrNoUser
		}
		return decideToken(state, c)
	case UseToken:
		if state == nil {
			return nil, ErrBadToken
		}
		return decideUseToken(state, c)
	case SetMfa:
		if state == nil {
			return nil, ErrNoUser
		}
		u := prune(state, c.Now)
		if proto.Equal(u.GetMfa(), c.Mfa) {
			return nil, nil
		}
		u.Mfa = proto.CloneOf(c.Mfa)
		if !u.GetMfa().GetEnabled() {
			// Turning MFA off lifts the limit of sessions waiting for it.
			for _, s := range u.Sessions {
				s.MfaPending = false
			}
		}
		u.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: u, Change: "mfa"}}}}, nil
	case ProveFactor:
		if state == nil {
			return nil, ErrNoUser
		}
		u := prune(state, c.Now)
		i := slices.IndexFunc(u.Sessions, func(s *eventsv1.Session) bool { return s.GetId() == c.SessionID })
		if i < 0 {
			return nil, domain.Errorf(domain.KindUnauthenticated, "session not found")
		}
		s := u.Sessions[i]
		s.MfaPending = false
		if !slices.Contains(s.Factors, c.Factor) {
			s.Factors = append(s.Factors, c.Factor)
		}
		u.Mfa = proto.CloneOf(c.Mfa)
		u.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_SessionUpdated{SessionUpdated: &eventsv1.SessionUpdated{User: u, SessionId: c.SessionID}}}}, nil
	case LinkIdentity:
		if state == nil {
			return nil, ErrNoUser
		}
		return decideLink(state, c)
	case UnlinkIdentity:
		if state == nil {
			return nil, ErrNoUser
		}
		return decideUnlink(state, c)
	case RegisterPasskey:
		if state == nil {
			return nil, ErrNoUser
		}
		return decideRegisterPasskey(state, c)
	case RemovePasskey:
		if state == nil {
			return nil, ErrNoUser
		}
		return decideRemovePasskey(state, c)
	case UsePasskey:
		if state == nil {
			return nil, ErrPasskeyRefused
		}
		return decideUsePasskey(state, c)
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown user command %T", cmd)
	}
}

func decideCreate(state State, c Create) ([]*eventsv1.Envelope, error) {
	if state != nil {
		return nil, domain.Errorf(domain.KindAlreadyExists, "user %q already exists", c.ID)
	}
	if !domain.ValidResourceID(c.ID) {
		return nil, domain.FieldError("user_id", "malformed id")
	}
	if c.Anonymous && (c.Email != "" || c.PasswordHash != "" || c.Identity != nil) {
		return nil, domain.Errorf(domain.KindInternal, "an anonymous user has no email, password or identity")
	}
	if c.Identity != nil {
		if err := checkIdentity(c.Identity); err != nil {
			return nil, err
		}
	}
	if c.PasswordHash != "" && c.Email == "" {
		return nil, domain.FieldError("email", "required for a user with a password")
	}
	if c.Email != "" {
		if err := CheckEmail("email", c.Email); err != nil {
			return nil, err
		}
	}
	if err := checkName(c.Name); err != nil {
		return nil, err
	}
	if err := CheckLabels(c.Labels); err != nil {
		return nil, err
	}
	ts := timestamppb.New(c.Now)
	u := &eventsv1.User{Id: c.ID, ProjectId: c.ProjectID, Email: c.Email, Name: c.Name, PasswordHash: c.PasswordHash,
		EmailVerified: c.EmailVerified && c.Email != "", Labels: normalizeLabels(c.Labels), PrefsJson: "{}",
		Anonymous: c.Anonymous, CreatedAt: ts, UpdatedAt: ts}
	if c.PasswordHash != "" {
		u.PasswordUpdatedAt = ts
	}
	if c.Identity != nil {
		id := proto.CloneOf(c.Identity)
		id.CreatedAt = ts
		u.Identities = []*eventsv1.Identity{id}
	}
	evs := []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_UserCreated{UserCreated: &eventsv1.UserCreated{User: u}}}}
	if c.Email != "" {
		evs = append(evs, take(c.ProjectID, ClaimEmail, NormalizeEmail(c.Email), c.ID))
	}
	if c.Identity != nil {
		evs = append(evs, take(c.ProjectID, ClaimIdentity, IdentityClaim(c.Identity.GetProviderId(), c.Identity.GetSubject()), c.ID))
	}
	return evs, nil
}

// decideUpdate applies c to u (state pruned of expired sessions), one
// event per change.
func decideUpdate(state, u State, c Update) ([]*eventsv1.Envelope, error) {
	var evs, claims []*eventsv1.Envelope
	emit := func(change string) {
		u.UpdatedAt = timestamppb.New(c.Now)
		evs = append(evs, &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: proto.CloneOf(u), Change: change}}})
	}
	if c.Convert {
		if !u.GetAnonymous() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "the account already has an email")
		}
		if c.Email == nil || c.PasswordHash == nil {
			return nil, domain.Errorf(domain.KindInternal, "converting an anonymous user needs email and password")
		}
	}
	// Converting checks the email even when unchanged: an account never
	// ends up with a password and no (valid) email.
	if c.Email != nil && (*c.Email != u.GetEmail() || c.Convert) {
		if err := CheckEmail("email", *c.Email); err != nil {
			return nil, err
		}
		old, new := NormalizeEmail(u.GetEmail()), NormalizeEmail(*c.Email)
		if old != new {
			if old != "" {
				claims = append(claims, release(u.GetProjectId(), ClaimEmail, old, u.GetId()))
			}
			claims = append(claims, take(u.GetProjectId(), ClaimEmail, new, u.GetId()))
			u.EmailVerified = false
		}
		u.Email = *c.Email
		if !c.Convert {
			emit("email")
		}
	}
	if c.PasswordHash != nil && *c.PasswordHash != u.GetPasswordHash() {
		u.PasswordHash = *c.PasswordHash
		u.PasswordUpdatedAt = timestamppb.New(c.Now)
		if !c.Convert {
			emit("password")
		}
	}
	if c.Convert {
		u.Anonymous = false
		emit("account")
	}
	if c.Name != nil && *c.Name != u.GetName() {
		if err := checkName(*c.Name); err != nil {
			return nil, err
		}
		u.Name = *c.Name
		emit("name")
	}
	if c.Blocked != nil && *c.Blocked != u.GetBlocked() {
		u.Blocked = *c.Blocked
		if u.Blocked {
			// A blocked user keeps no session: every node refuses them once
			// this event is applied.
			u.Sessions = nil
		}
		emit("status")
	}
	if c.EmailVerified != nil && *c.EmailVerified != u.GetEmailVerified() {
		if *c.EmailVerified && u.GetEmail() == "" {
			return nil, domain.FieldError("email_verified", "the user has no email")
		}
		u.EmailVerified = *c.EmailVerified
		emit("verification")
	}
	if c.Labels != nil {
		if err := CheckLabels(*c.Labels); err != nil {
			return nil, err
		}
		if l := normalizeLabels(*c.Labels); !slices.Equal(l, u.GetLabels()) {
			u.Labels = l
			emit("labels")
		}
	}
	if c.PrefsJSON != nil && *c.PrefsJSON != u.GetPrefsJson() {
		if err := CheckPrefs(*c.PrefsJSON); err != nil {
			return nil, err
		}
		u.PrefsJson = *c.PrefsJSON
		emit("prefs")
	}
	if c.SignOut && len(u.GetSessions()) > 0 {
		ids := sessionIDs(u.GetSessions())
		u.Sessions = nil
		u.UpdatedAt = timestamppb.New(c.Now)
		evs = append(evs, &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionsDeleted{SessionsDeleted: &eventsv1.SessionsDeleted{User: proto.CloneOf(u), SessionIds: ids}}})
	}
	if len(evs) == 0 && len(state.GetSessions()) != len(u.GetSessions()) {
		// Nothing changed but expired sessions: not worth an event.
		return nil, nil
	}
	return append(evs, claims...), nil
}

func decideSession(u State, c CreateSession) ([]*eventsv1.Envelope, error) {
	if u.GetBlocked() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "the user is blocked")
	}
	s := proto.CloneOf(c.Session)
	if !domain.ValidResourceID(s.GetId()) {
		return nil, domain.Errorf(domain.KindInternal, "malformed session id %q", s.GetId())
	}
	if len(s.GetSecretHash()) != sha256.Size {
		return nil, domain.Errorf(domain.KindInternal, "session secret hash must be SHA-256")
	}
	s.CreatedAt = timestamppb.New(c.Now)
	s.ExpiresAt = timestamppb.New(c.Now.Add(c.Settings.duration()))
	// With MFA on, one factor gives a limited session (server-made sessions
	// are the server's word and need none).
	// A passkey with user verification is two factors by itself.
	s.MfaPending = u.GetMfa().GetEnabled() && s.GetProvider() != "server" && len(s.GetFactors()) < 2 &&
		!slices.Contains(s.GetFactors(), FactorPasskey)
	u.Sessions = append(u.Sessions, s)
	var evicted []string
	for len(u.Sessions) > c.Settings.maxSessions() {
		evicted = append(evicted, u.Sessions[0].GetId())
		u.Sessions = u.Sessions[1:]
	}
	u.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_SessionCreated{SessionCreated: &eventsv1.SessionCreated{
		User: u, SessionId: s.GetId(), EvictedSessionIds: evicted}}}}, nil
}

func decideDeleteSessions(state State, c DeleteSessions) ([]*eventsv1.Envelope, error) {
	u := proto.CloneOf(state)
	var gone []string
	u.Sessions = slices.DeleteFunc(u.Sessions, func(s *eventsv1.Session) bool {
		drop := (c.All && s.GetId() != c.Keep) || slices.Contains(c.IDs, s.GetId())
		if drop {
			gone = append(gone, s.GetId())
		}
		return drop
	})
	if len(gone) == 0 {
		if len(c.IDs) > 0 {
			return nil, domain.Errorf(domain.KindNotFound, "session not found")
		}
		return nil, nil
	}
	u.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_SessionsDeleted{SessionsDeleted: &eventsv1.SessionsDeleted{User: u, SessionIds: gone}}}}, nil
}

func decideToken(state State, c CreateToken) ([]*eventsv1.Envelope, error) {
	if state.GetBlocked() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "the user is blocked")
	}
	t := proto.CloneOf(c.Token)
	if !domain.ValidResourceID(t.GetId()) || len(t.GetSecretHash()) != sha256.Size || t.GetKind() == eventsv1.Token_KIND_UNSPECIFIED {
		return nil, domain.Errorf(domain.KindInternal, "malformed token")
	}
	if !t.GetExpiresAt().AsTime().After(c.Now) {
		return nil, domain.Errorf(domain.KindInternal, "token expires before it is created")
	}
	t.CreatedAt = timestamppb.New(c.Now)
	u := prune(state, c.Now)
	u.Tokens = append(u.Tokens, t)
	// Keep only the newest few of a kind: asking again invalidates the oldest.
	n := 0
	for i := len(u.Tokens) - 1; i >= 0; i-- {
		if u.Tokens[i].GetKind() == t.GetKind() {
			n++
			if n > MaxTokensPerKind {
				u.Tokens = slices.Delete(u.Tokens, i, i+1)
			}
		}
	}
	u.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TokenCreated{TokenCreated: &eventsv1.TokenCreated{User: u, TokenId: t.GetId()}}}}, nil
}

func decideUseToken(state State, c UseToken) ([]*eventsv1.Envelope, error) {
	u := prune(state, c.Now)
	idx := slices.IndexFunc(u.Tokens, func(t *eventsv1.Token) bool {
		return slices.Contains(c.Kinds, t.GetKind()) && subtle.ConstantTimeCompare(t.GetSecretHash(), c.SecretHash) == 1
	})
	if idx < 0 {
		// Count the miss on every live token of these kinds; drop the ones
		// that have had too many.
		var failed []string
		u.Tokens = slices.DeleteFunc(u.Tokens, func(t *eventsv1.Token) bool {
			if !slices.Contains(c.Kinds, t.GetKind()) {
				return false
			}
			t.FailedAttempts++
			failed = append(failed, t.GetId())
			return t.FailedAttempts >= MaxFailedAttempts
		})
		if len(failed) == 0 {
			return nil, ErrBadToken
		}
		u.UpdatedAt = timestamppb.New(c.Now)
		evs := make([]*eventsv1.Envelope, 0, len(failed))
		for _, id := range failed {
			evs = append(evs, &eventsv1.Envelope{Payload: &eventsv1.Envelope_TokenConsumed{TokenConsumed: &eventsv1.TokenConsumed{User: proto.CloneOf(u), TokenId: id, Failed: true}}})
		}
		// The failed attempt is recorded, and the caller still learns the
		// token was wrong.
		return evs, &domain.AfterWrite{Err: ErrBadToken}
	}
	if u.GetBlocked() {
		return nil, ErrBadToken
	}
	tok := u.Tokens[idx]
	u.Tokens = slices.Delete(u.Tokens, idx, idx+1)
	u.UpdatedAt = timestamppb.New(c.Now)
	evs := []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TokenConsumed{TokenConsumed: &eventsv1.TokenConsumed{User: proto.CloneOf(u), TokenId: tok.GetId()}}}}
	if slices.Contains(c.VerifiesEmail, tok.GetKind()) && u.GetEmail() != "" && !u.GetEmailVerified() {
		// A copy: Decide never changes the caller's command.
		verified, then := true, Update{}
		if c.Then != nil {
			then = *c.Then
		}
		then.EmailVerified = &verified
		c.Then = &then
	}
	if c.Then != nil {
		then := *c.Then
		then.Now = c.Now
		more, err := decideUpdate(u, u, then)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	}
	if c.Session != nil {
		cs := *c.Session
		cs.Now = c.Now
		cs.Session = proto.CloneOf(cs.Session)
		if cs.Session.GetProvider() == "" {
			cs.Session.Provider = providerOf(tok.GetKind())
		}
		if cs.Session.GetProviderId() == "" {
			cs.Session.ProviderId = tok.GetProviderId()
		}
		if len(cs.Session.GetFactors()) == 0 {
			cs.Session.Factors = []string{factorOf(tok.GetKind())}
		}
		more, err := decideSession(latest(u, evs), cs)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	}
	return evs, nil
}

func providerOf(k eventsv1.Token_Kind) string {
	switch k {
	case eventsv1.Token_KIND_MAGIC_URL:
		return "magic-url"
	case eventsv1.Token_KIND_EMAIL_OTP:
		return "email-otp"
	case eventsv1.Token_KIND_OAUTH2:
		return "oauth2"
	}
	return "token"
}

func factorOf(k eventsv1.Token_Kind) string {
	if k == eventsv1.Token_KIND_OAUTH2 {
		return "oauth2"
	}
	return "email"
}

// DecideAll decides cmds in order, each on the state the previous one's
// events leave, and returns all their events: several changes of one user
// in one write (create and sign in, sign in and upgrade the hash). The
// first error stops it.
func DecideAll(state State, cmds ...Command) ([]*eventsv1.Envelope, error) {
	var out []*eventsv1.Envelope
	for _, c := range cmds {
		evs, err := Decide(state, c)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			state = Evolve(state, e)
		}
		out = append(out, evs...)
	}
	return out, nil
}

// latest is the user state after evs (the last user-carrying event), or u.
func latest(u State, evs []*eventsv1.Envelope) State {
	s := u
	for _, e := range evs {
		if n := Evolve(s, e); n != nil {
			s = n
		}
	}
	return proto.CloneOf(s)
}

// prune returns a copy of state without expired sessions and tokens.
func prune(state State, now time.Time) State {
	u := proto.CloneOf(state)
	u.Sessions = slices.DeleteFunc(u.Sessions, func(s *eventsv1.Session) bool { return !now.Before(s.GetExpiresAt().AsTime()) })
	u.Tokens = slices.DeleteFunc(u.Tokens, func(t *eventsv1.Token) bool { return !now.Before(t.GetExpiresAt().AsTime()) })
	return u
}

func sessionIDs(ss []*eventsv1.Session) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.GetId()
	}
	return ids
}

func take(project, ns, value, holder string) *eventsv1.Envelope {
	return &eventsv1.Envelope{Payload: &eventsv1.Envelope_ClaimTaken{ClaimTaken: &eventsv1.ClaimTaken{ProjectId: project, Namespace: ns, Value: value, Holder: holder}}}
}

func release(project, ns, value, holder string) *eventsv1.Envelope {
	return &eventsv1.Envelope{Payload: &eventsv1.Envelope_ClaimReleased{ClaimReleased: &eventsv1.ClaimReleased{ProjectId: project, Namespace: ns, Value: value, Holder: holder}}}
}

// Evolve returns the state after e; claims and other aggregates' events
// leave it unchanged.
func Evolve(state State, e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_UserCreated:
		return p.UserCreated.GetUser()
	case *eventsv1.Envelope_UserUpdated:
		return p.UserUpdated.GetUser()
	case *eventsv1.Envelope_UserDeleted:
		return nil
	case *eventsv1.Envelope_SessionCreated:
		return p.SessionCreated.GetUser()
	case *eventsv1.Envelope_SessionUpdated:
		return p.SessionUpdated.GetUser()
	case *eventsv1.Envelope_SessionsDeleted:
		return p.SessionsDeleted.GetUser()
	case *eventsv1.Envelope_TokenCreated:
		return p.TokenCreated.GetUser()
	case *eventsv1.Envelope_TokenConsumed:
		return p.TokenConsumed.GetUser()
	case *eventsv1.Envelope_PasskeyRegistered:
		return p.PasskeyRegistered.GetUser()
	case *eventsv1.Envelope_PasskeyRemoved:
		return p.PasskeyRemoved.GetUser()
	case *eventsv1.Envelope_PasskeyUsed:
		return p.PasskeyUsed.GetUser()
	}
	return state
}

// UserOf returns the user an event carries (its state after the event, or
// the last state for a deletion), or nil for events of other aggregates.
func UserOf(e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_UserDeleted:
		return p.UserDeleted.GetUser()
	default:
		return Evolve(nil, e)
	}
}

// FindSession returns the live session of u with id, or nil.
func FindSession(u State, id string, now time.Time) *eventsv1.Session {
	for _, s := range u.GetSessions() {
		if s.GetId() == id && now.Before(s.GetExpiresAt().AsTime()) {
			return s
		}
	}
	return nil
}

// SessionByHash returns the live session of u whose secret hashes to hash.
func SessionByHash(u State, hash []byte, now time.Time) *eventsv1.Session {
	for _, s := range u.GetSessions() {
		if bytes.Equal(s.GetSecretHash(), hash) && now.Before(s.GetExpiresAt().AsTime()) {
			return s
		}
	}
	return nil
}
