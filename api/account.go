package api

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/api/ratelimit"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/password"
	"github.com/cairn-dev/cairn/domain/user"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// accountHandler is the client side of authentication. The access
// interceptor has resolved the project and, for signed-in calls, the user.
type accountHandler struct {
	*Server
	cairnv1connect.UnimplementedAccountServiceHandler
}

// Sign-in methods a project can turn off (AuthSettings.disabled_methods).
const (
	methodEmailPassword = "email-password"
	methodAnonymous     = "anonymous"
	methodMagicURL      = "magic-url"
	methodEmailOTP      = "email-otp"
	methodOAuth2        = "oauth2"
)

// authConfig is a project's settings as the handlers use them.
type authConfig struct {
	raw      *eventsv1.AuthSettings
	sessions user.Settings
	policy   password.Policy
}

func (s *Server) authConfig(project string) (authConfig, error) {
	raw, err := s.reads.AuthSettings(project)
	if err != nil {
		return authConfig{}, err
	}
	return authConfig{raw: raw,
		sessions: user.Settings{SessionDuration: time.Duration(raw.GetSessionDurationSeconds()) * time.Second, MaxSessions: int(raw.GetMaxSessions())},
		policy:   password.Policy{MinLen: int(raw.GetPasswordMinLength()), RejectCommon: raw.GetPasswordCheckCommon()},
	}, nil
}

func (c authConfig) enabled(method string) error {
	if slices.Contains(c.raw.GetDisabledMethods(), method) {
		return domain.Errorf(domain.KindFailedPrecondition, "sign-in method %q is turned off for this project", method)
	}
	return nil
}

// gate is the start of every sign-in and sign-up: the rate limits (byIP
// on the caller's address, byID on id), then the project's settings, with
// method turned on ("" for none to check).
func (s *Server) gate(ctx context.Context, method string, byIP, byID *ratelimit.Limiter, id string) (authConfig, error) {
	project := principal(ctx).Project
	if err := s.limit(ctx, project, byIP, byID, id); err != nil {
		return authConfig{}, err
	}
	cfg, err := s.authConfig(project)
	if err != nil {
		return authConfig{}, err
	}
	if method != "" {
		if err := cfg.enabled(method); err != nil {
			return authConfig{}, err
		}
	}
	return cfg, nil
}

// newSession makes a session with a fresh secret; the caller decides it
// into the user's aggregate.
func (s *Server) newSession(ctx context.Context, project, provider string, factors ...string) (*eventsv1.Session, string, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, "", err
	}
	token := sessionToken(project, secret)
	sess := &eventsv1.Session{Id: s.log.NewID(), SecretHash: hashToken(token), Provider: provider, Factors: factors}
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		sess.UserAgent = truncate(info.RequestHeader().Get("User-Agent"), 256)
		if host, _, err := net.SplitHostPort(info.PeerAddr); err == nil {
			sess.Ip = host
		}
	}
	return sess, token, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// sessionIssued answers a sign-in: the session, its secret, and the
// project's session cookie.
func (s *Server) sessionIssued(ctx context.Context, u *eventsv1.User, sessionID, token string) (*cairnv1.Session, error) {
	sess := user.FindSession(u, sessionID, s.now())
	if sess == nil {
		return nil, errors.New("issued session missing from the user's state")
	}
	s.setSessionCookie(ctx, u.GetProjectId(), token, sess.GetExpiresAt().AsTime())
	return sessionOut(u.GetId(), sess, sessionID), nil
}

// setSessionCookie sets (or, with an empty token, clears) the project's
// session cookie: host-only (no Domain), HttpOnly, SameSite=Lax, Secure
// unless this is plain-HTTP development. On a site's own API it is scoped
// to that API's path, so the site's files never receive it.
func (s *Server) setSessionCookie(ctx context.Context, project, token string, expires time.Time) {
	info, ok := connect.CallInfoForServerContext(ctx)
	if !ok {
		return
	}
	e := edgeOf(ctx)
	c := &http.Cookie{Name: sessionCookie(project), Value: token, Path: "/", Expires: expires, HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   e.secure || strings.HasPrefix(s.publicURL, "https://") || info.RequestHeader().Get("X-Forwarded-Proto") == "https"}
	if e.pinned != "" {
		c.Path = pinnedPrefix + "/"
	}
	if token == "" {
		c.Expires, c.MaxAge = time.Time{}, -1
	}
	info.ResponseHeader().Add("Set-Cookie", c.String())
}

func (s *Server) clearSessionCookie(ctx context.Context, project string) {
	s.setSessionCookie(ctx, project, "", time.Time{})
}

// writeUser runs one decision on a user's aggregate.
func (s *Server) writeUser(ctx context.Context, project, userID string, decide func(user.State) ([]*eventsv1.Envelope, error)) (user.State, eventlog.Result, error) {
	meta, err := s.meta(ctx)
	if err != nil {
		return nil, eventlog.Result{}, err
	}
	return s.writeUserMeta(ctx, meta, project, userID, decide)
}

// writeUserMeta is writeUser with the write's Meta given (plain HTTP
// routes have no RPC call info).
func (s *Server) writeUserMeta(ctx context.Context, meta eventlog.Meta, project, userID string, decide func(user.State) ([]*eventsv1.Envelope, error)) (user.State, eventlog.Result, error) {
	var before user.State
	res, err := s.log.Write(ctx, eventlog.UserAggregate(project, userID), meta, eventlog.Decide(user.Evolve, func(st user.State) ([]*eventsv1.Envelope, error) {
		before = st
		return decide(st)
	}))
	if err != nil {
		return nil, res, err
	}
	setSeq(ctx, res.Seq)
	after := before
	for _, e := range res.Events {
		if _, ok := e.GetPayload().(*eventsv1.Envelope_UserDeleted); ok {
			after = nil
			continue
		}
		if u := user.Evolve(nil, e); u != nil {
			after = u
		}
	}
	return after, res, nil
}

// sessionCreated is the id of the session a write created.
func sessionCreated(res eventlog.Result) string {
	for _, e := range res.Events {
		if c, ok := e.GetPayload().(*eventsv1.Envelope_SessionCreated); ok {
			return c.SessionCreated.GetSessionId()
		}
	}
	return ""
}

func (h *accountHandler) CreateAccount(ctx context.Context, req *cairnv1.CreateAccountRequest) (*cairnv1.CreateAccountResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.gate(ctx, methodEmailPassword, h.limits.signUpIP, nil, "")
	if err != nil {
		return nil, err
	}
	if err := cfg.policy.Check(req.GetPassword()); err != nil {
		return nil, err
	}
	hash, err := h.hasher.hash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	id := req.GetUserId()
	if id == "" || id == domain.UniqueID {
		id = h.log.NewID()
	}
	cmd := user.Create{ID: id, ProjectID: project, Email: req.GetEmail(), Name: req.GetName(), PasswordHash: hash, Now: h.log.Now()}
	u, _, err := h.writeUser(ctx, project, id, func(st user.State) ([]*eventsv1.Envelope, error) { return user.Decide(st, cmd) })
	var de *domain.Error
	if errors.As(err, &de) && de.Kind == domain.KindAlreadyExists && de.Field == user.ClaimEmail {
		// No account enumeration: a taken address answers like a new one.
		// The owner of the address signs in with their own password.
		ts := timestamppb.New(cmd.Now)
		return &cairnv1.CreateAccountResponse{User: userOut(&eventsv1.User{Id: id, ProjectId: project, Email: req.GetEmail(),
			Name: req.GetName(), PrefsJson: "{}", PasswordHash: hash, CreatedAt: ts, UpdatedAt: ts, PasswordUpdatedAt: ts})}, nil
	}
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateAccountResponse{User: userOut(u)}, nil
}

// errBadSignIn is the one answer to a wrong email or a wrong password.
var errBadSignIn = domain.Errorf(domain.KindUnauthenticated, "invalid email or password")

func (h *accountHandler) CreateEmailPasswordSession(ctx context.Context, req *cairnv1.CreateEmailPasswordSessionRequest) (*cairnv1.CreateEmailPasswordSessionResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.gate(ctx, methodEmailPassword, h.limits.signInIP, h.limits.signInID, user.NormalizeEmail(req.GetEmail()))
	if err != nil {
		return nil, err
	}
	var u *eventsv1.User
	id, err := h.reads.ClaimHolder(project, user.ClaimEmail, user.NormalizeEmail(req.GetEmail()))
	switch {
	case err == nil:
		if u, err = h.reads.User(project, id); err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
	case !errors.Is(err, errNotFound):
		return nil, err
	}
	ok, rehash, err := h.hasher.verify(ctx, req.GetPassword(), u.GetPasswordHash())
	if err != nil {
		// A malformed stored hash: the operator must see it, the caller not.
		h.logger.ErrorContext(ctx, "stored password hash unusable", "project", project, "user", u.GetId(), "err", err)
		return nil, errBadSignIn
	}
	if !ok {
		return nil, errBadSignIn
	}
	if u.GetBlocked() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "this account is blocked")
	}
	sess, token, err := h.newSession(ctx, project, "email", "password")
	if err != nil {
		return nil, err
	}
	var newHash *string
	if rehash {
		// Imported or weaker hashes become argon2id at today's cost now that
		// the password is known.
		if hsh, err := h.hasher.hash(ctx, req.GetPassword()); err == nil {
			newHash = &hsh
		}
	}
	now := h.log.Now()
	u, res, err := h.writeUser(ctx, project, u.GetId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		if st.GetPasswordHash() != u.GetPasswordHash() {
			// The password changed since it was checked: check again.
			return nil, domain.Errorf(domain.KindConflict, "the password changed meanwhile; sign in again")
		}
		cmds := []user.Command{user.CreateSession{Session: sess, Settings: cfg.sessions, Now: now}}
		if newHash != nil {
			cmds = append(cmds, user.Update{PasswordHash: newHash, Now: now})
		}
		return user.DecideAll(st, cmds...)
	})
	if err != nil {
		return nil, err
	}
	out, err := h.sessionIssued(ctx, u, sessionCreated(res), token)
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateEmailPasswordSessionResponse{Session: out, Secret: token}, nil
}

func (h *accountHandler) CreateAnonymousSession(ctx context.Context, _ *cairnv1.CreateAnonymousSessionRequest) (*cairnv1.CreateAnonymousSessionResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.gate(ctx, methodAnonymous, h.limits.signUpIP, nil, "")
	if err != nil {
		return nil, err
	}
	sess, token, err := h.newSession(ctx, project, "anonymous", "anonymous")
	if err != nil {
		return nil, err
	}
	id, now := h.log.NewID(), h.log.Now()
	u, res, err := h.writeUser(ctx, project, id, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.DecideAll(st, user.Create{ID: id, ProjectID: project, Anonymous: true, Now: now},
			user.CreateSession{Session: sess, Settings: cfg.sessions, Now: now})
	})
	if err != nil {
		return nil, err
	}
	out, err := h.sessionIssued(ctx, u, sessionCreated(res), token)
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateAnonymousSessionResponse{Session: out, Secret: token}, nil
}

// signInKinds are the tokens CreateSession exchanges for a session.
var signInKinds = []eventsv1.Token_Kind{eventsv1.Token_KIND_MAGIC_URL, eventsv1.Token_KIND_EMAIL_OTP, eventsv1.Token_KIND_OAUTH2}

func (h *accountHandler) CreateSession(ctx context.Context, req *cairnv1.CreateSessionRequest) (*cairnv1.CreateSessionResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.gate(ctx, "", h.limits.tokenIP, h.limits.tokenID, req.GetUserId())
	if err != nil {
		return nil, err
	}
	sess, token, err := h.newSession(ctx, project, "")
	if err != nil {
		return nil, err
	}
	cmd := user.UseToken{Kinds: signInKinds, SecretHash: hashToken(req.GetSecret()),
		VerifiesEmail: []eventsv1.Token_Kind{eventsv1.Token_KIND_MAGIC_URL, eventsv1.Token_KIND_EMAIL_OTP},
		Session:       &user.CreateSession{Session: sess, Settings: cfg.sessions}, Now: h.log.Now()}
	u, res, err := h.writeUser(ctx, project, req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, cmd)
	})
	if err != nil {
		return nil, err
	}
	out, err := h.sessionIssued(ctx, u, sessionCreated(res), token)
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateSessionResponse{Session: out, Secret: token}, nil
}

// me is the signed-in user's current state.
func (s *Server) me(ctx context.Context) (*eventsv1.User, error) {
	p := principal(ctx)
	u, err := s.reads.User(p.Project, p.ID)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return nil, errBadCredential
		}
		return nil, err
	}
	return u, nil
}

func (h *accountHandler) GetAccount(ctx context.Context, _ *cairnv1.GetAccountRequest) (*cairnv1.GetAccountResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetAccountResponse{User: userOut(u)}, nil
}

// updateMe applies an update to the signed-in user.
func (h *accountHandler) updateMe(ctx context.Context, upd user.Update) (*cairnv1.User, error) {
	p := principal(ctx)
	upd.Now = h.log.Now()
	u, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) { return user.Decide(st, upd) })
	if err != nil {
		return nil, err
	}
	return userOut(u), nil
}

func (h *accountHandler) UpdateName(ctx context.Context, req *cairnv1.UpdateNameRequest) (*cairnv1.UpdateNameResponse, error) {
	name := req.GetName()
	u, err := h.updateMe(ctx, user.Update{Name: &name})
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateNameResponse{User: u}, nil
}

func (h *accountHandler) UpdatePrefs(ctx context.Context, req *cairnv1.UpdatePrefsRequest) (*cairnv1.UpdatePrefsResponse, error) {
	prefs, err := prefsJSON(req.GetPrefs())
	if err != nil {
		return nil, err
	}
	u, err := h.updateMe(ctx, user.Update{PrefsJSON: &prefs})
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdatePrefsResponse{User: u}, nil
}

// checkPassword verifies the signed-in user's current password.
func (h *accountHandler) checkPassword(ctx context.Context, u *eventsv1.User, pw, field string) error {
	ok, _, err := h.hasher.verify(ctx, pw, u.GetPasswordHash())
	if err != nil || !ok {
		return &domain.Error{Kind: domain.KindPermissionDenied, Field: field, Message: "the password is wrong"}
	}
	return nil
}

func (h *accountHandler) UpdateEmail(ctx context.Context, req *cairnv1.UpdateEmailRequest) (*cairnv1.UpdateEmailResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	email := req.GetEmail()
	upd := user.Update{Email: &email}
	if u.GetAnonymous() {
		// An anonymous user becomes a full account: the password is new.
		hash, err := h.newPasswordHash(ctx, u.GetProjectId(), req.GetPassword())
		if err != nil {
			return nil, err
		}
		upd.PasswordHash, upd.Convert = &hash, true
	} else if err := h.checkPassword(ctx, u, req.GetPassword(), "password"); err != nil {
		return nil, err
	}
	out, err := h.updateMe(ctx, upd)
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateEmailResponse{User: out}, nil
}

func (h *accountHandler) UpdatePassword(ctx context.Context, req *cairnv1.UpdatePasswordRequest) (*cairnv1.UpdatePasswordResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	if u.GetPasswordHash() != "" {
		if err := h.checkPassword(ctx, u, req.GetOldPassword(), "old_password"); err != nil {
			return nil, err
		}
	}
	hash, err := h.newPasswordHash(ctx, u.GetProjectId(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	out, err := h.updateMe(ctx, user.Update{PasswordHash: &hash})
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdatePasswordResponse{User: out}, nil
}

func (h *accountHandler) DeleteAccount(ctx context.Context, _ *cairnv1.DeleteAccountRequest) (*cairnv1.DeleteAccountResponse, error) {
	p := principal(ctx)
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.Delete{Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	h.clearSessionCookie(ctx, p.Project)
	return &cairnv1.DeleteAccountResponse{}, nil
}

func (h *accountHandler) ListSessions(ctx context.Context, _ *cairnv1.ListSessionsRequest) (*cairnv1.ListSessionsResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	return &cairnv1.ListSessionsResponse{Sessions: sessionsOut(u, principal(ctx).SessionID, h.now())}, nil
}

// sessionID resolves "current".
func sessionID(ctx context.Context, id string) string {
	if id == "current" {
		return principal(ctx).SessionID
	}
	return id
}

func (h *accountHandler) GetSession(ctx context.Context, req *cairnv1.GetSessionRequest) (*cairnv1.GetSessionResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	s := user.FindSession(u, sessionID(ctx, req.GetSessionId()), h.now())
	if s == nil {
		return nil, domain.Errorf(domain.KindNotFound, "session not found")
	}
	return &cairnv1.GetSessionResponse{Session: sessionOut(u.GetId(), s, principal(ctx).SessionID)}, nil
}

func (h *accountHandler) DeleteSession(ctx context.Context, req *cairnv1.DeleteSessionRequest) (*cairnv1.DeleteSessionResponse, error) {
	p := principal(ctx)
	id := sessionID(ctx, req.GetSessionId())
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.DeleteSessions{IDs: []string{id}, Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	if id == p.SessionID {
		h.clearSessionCookie(ctx, p.Project)
	}
	return &cairnv1.DeleteSessionResponse{}, nil
}

func (h *accountHandler) DeleteSessions(ctx context.Context, req *cairnv1.DeleteSessionsRequest) (*cairnv1.DeleteSessionsResponse, error) {
	p := principal(ctx)
	cmd := user.DeleteSessions{All: true, Now: h.log.Now()}
	if req.GetKeepCurrent() {
		cmd.Keep = p.SessionID
	}
	_, res, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) { return user.Decide(st, cmd) })
	if err != nil {
		return nil, err
	}
	if !req.GetKeepCurrent() {
		h.clearSessionCookie(ctx, p.Project)
	}
	return &cairnv1.DeleteSessionsResponse{Deleted: int32(deletedSessions(res))}, nil
}

func deletedSessions(res eventlog.Result) int {
	n := 0
	for _, e := range res.Events {
		if d, ok := e.GetPayload().(*eventsv1.Envelope_SessionsDeleted); ok {
			n += len(d.SessionsDeleted.GetSessionIds())
		}
	}
	return n
}

// prefsJSON is the stored form of preferences: compact JSON of an object.
func prefsJSON(p *structpb.Struct) (string, error) {
	if p == nil {
		return "{}", nil
	}
	b, err := protojson.Marshal(p)
	if err != nil {
		return "", domain.FieldError("prefs", "not representable as JSON: %v", err)
	}
	if len(b) > user.MaxPrefsBytes {
		return "", domain.FieldError("prefs", "must be at most %d bytes as JSON", user.MaxPrefsBytes)
	}
	return string(b), nil
}

func userOut(u *eventsv1.User) *cairnv1.User {
	if u == nil {
		return nil
	}
	out := &cairnv1.User{Id: u.GetId(), ProjectId: u.GetProjectId(), Email: u.GetEmail(), Name: u.GetName(),
		Blocked: u.GetBlocked(), EmailVerified: u.GetEmailVerified(), Labels: u.GetLabels(), Anonymous: u.GetAnonymous(),
		HasPassword: u.GetPasswordHash() != "", MfaEnabled: u.GetMfa().GetEnabled(),
		CreatedAt: u.GetCreatedAt(), UpdatedAt: u.GetUpdatedAt(), PasswordUpdatedAt: u.GetPasswordUpdatedAt()}
	prefs := &structpb.Struct{}
	if err := protojson.Unmarshal([]byte(u.GetPrefsJson()), prefs); err == nil {
		out.Prefs = prefs
	}
	for _, i := range u.GetIdentities() {
		out.Identities = append(out.Identities, &cairnv1.Identity{ProviderId: i.GetProviderId(), Subject: i.GetSubject(), Email: i.GetEmail(), CreatedAt: i.GetCreatedAt()})
	}
	return out
}

func sessionOut(userID string, s *eventsv1.Session, current string) *cairnv1.Session {
	return &cairnv1.Session{Id: s.GetId(), UserId: userID, CreatedAt: s.GetCreatedAt(), ExpiresAt: s.GetExpiresAt(),
		Ip: s.GetIp(), UserAgent: s.GetUserAgent(), Provider: s.GetProvider(), ProviderId: s.GetProviderId(),
		Factors: s.GetFactors(), MfaPending: s.GetMfaPending(), Current: current != "" && s.GetId() == current}
}

func sessionsOut(u *eventsv1.User, current string, now time.Time) []*cairnv1.Session {
	var out []*cairnv1.Session
	for _, s := range u.GetSessions() {
		if now.Before(s.GetExpiresAt().AsTime()) {
			out = append(out, sessionOut(u.GetId(), s, current))
		}
	}
	return out
}
