package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/api/oauth"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/user"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// OAuth2 / OIDC sign-in (Appwrite's createOAuth2Token):
//
//  1. The client calls AccountService.CreateOAuth2Token with the provider
//     and its success and failure URLs (each on one of the project's
//     allowed origins) and sends the browser to the returned redirect_url:
//     the provider's authorization page, with PKCE, nonce and a sealed state
//     bound to the project and provider (package oauth).
//  2. The provider redirects to GET /v1/oauth2/<project>/<provider>/callback.
//     Cairn completes the flow, applies the linking policy (oauth.Decide:
//     sign in the linked user, create a user, or link to the user with the
//     same email only when both the provider and the account vouch for it),
//     stores a single-use KIND_OAUTH2 token on the user and redirects (303)
//     to success_url?user_id=…&secret=…; any failure after the state opened
//     goes to failure_url?error=…&error_description=…. A state that does not
//     open for this project and provider gets a plain 400 page: no URL in
//     it can be trusted.
//  3. The client exchanges user_id and secret for a session with
//     AccountService.CreateSession (within oauthTokenTTL, once).
//
// Failure codes sent to failure_url: the provider's own (access_denied, …),
// the flow's (state_expired, server_error), and Cairn's: email_required (the
// provider shared no email), account_exists (an account with the email
// exists and linking is not safe, or the account is linked to another
// account at this provider), user_blocked, method_disabled (the provider or
// oauth2 was turned off during the sign-in), invalid_request.

// oauthTokenTTL is how long the secret handed to the success URL may be
// exchanged for a session.
const oauthTokenTTL = 5 * time.Minute

// oauthCallbackPath is the callback route; the provider's redirect URI is
// PublicURL + this path with the project and provider filled in.
const oauthCallbackPath = "GET /v1/oauth2/{project}/{provider}/callback"

// oauthCallbackURL is the redirect URI registered with the provider.
func (s *Server) oauthCallbackURL(project, provider string) string {
	return s.publicURL + "/v1/oauth2/" + url.PathEscape(project) + "/" + url.PathEscape(provider) + "/callback"
}

// oauthProvider returns the project's provider id, with its client secret
// unsealed, and its stored settings.
func (s *Server) oauthProvider(project string, cfg authConfig, id string) (oauth.Provider, *eventsv1.OAuthProvider, error) {
	for _, p := range cfg.raw.GetOauthProviders() {
		if p.GetId() != id {
			continue
		}
		secret, err := s.unseal(project, sealOAuthSecret+id, p.GetClientSecretSealed())
		if err != nil {
			return oauth.Provider{}, nil, fmt.Errorf("client secret of oauth provider %q: %w", id, err)
		}
		return oauth.Provider{ID: id, Kind: oauth.Kind(p.GetKind()), ClientID: p.GetClientId(), ClientSecret: string(secret),
			IssuerURL: p.GetIssuerUrl(), Scopes: p.GetScopes()}, p, nil
	}
	return oauth.Provider{}, nil, domain.Errorf(domain.KindNotFound, "oauth provider %q is not configured for this project", id)
}

func (h *accountHandler) CreateOAuth2Token(ctx context.Context, req *cairnv1.CreateOAuth2TokenRequest) (*cairnv1.CreateOAuth2TokenResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.authConfig(project)
	if err != nil {
		return nil, err
	}
	if err := cfg.enabled(methodOAuth2); err != nil {
		return nil, err
	}
	p, stored, err := h.oauthProvider(project, cfg, req.GetProviderId())
	if err != nil {
		return nil, err
	}
	if stored.GetDisabled() {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "oauth provider %q is turned off for this project", req.GetProviderId())
	}
	failure := req.GetFailureUrl()
	if failure == "" {
		failure = req.GetSuccessUrl()
	}
	start, err := h.oauth.Begin(ctx, p, oauth.BeginParams{Project: project, RedirectURI: h.oauthCallbackURL(project, p.ID),
		SuccessURL: req.GetSuccessUrl(), FailureURL: failure, AllowedOrigins: cfg.raw.GetAllowedOrigins(), Now: h.now()})
	if err != nil {
		if _, ok := errors.AsType[*domain.Error](err); ok {
			return nil, err // success_url or failure_url refused
		}
		if errors.Is(err, oauth.ErrDiscovery) {
			h.logger.WarnContext(ctx, "oauth provider discovery failed", "project", project, "provider", p.ID, "err", err)
			return nil, domain.Errorf(domain.KindUnavailable, "oauth provider %q cannot be reached; try again later", p.ID)
		}
		return nil, fmt.Errorf("begin oauth sign-in with provider %q: %w", p.ID, err)
	}
	return &cairnv1.CreateOAuth2TokenResponse{RedirectUrl: start.URL}, nil
}

// oauthCallback is the provider's redirect back to Cairn.
func (s *Server) oauthCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	project, providerID := r.PathValue("project"), r.PathValue("provider")
	// The answer carries a sign-in secret: keep it out of caches and
	// Referer headers.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !domain.ValidProjectID(project) || !domain.ValidProjectID(providerID) {
		oauthBadRequest(w, "unknown project or provider")
		return
	}
	if _, err := s.reads.Project(project); err != nil {
		if errors.Is(err, errNotFound) {
			oauthBadRequest(w, "unknown project or provider")
			return
		}
		s.oauthInternal(w, r, project, providerID, fmt.Errorf("read project: %w", err))
		return
	}
	cfg, err := s.authConfig(project)
	if err != nil {
		s.oauthInternal(w, r, project, providerID, fmt.Errorf("read auth settings: %w", err))
		return
	}
	p, stored, err := s.oauthProvider(project, cfg, providerID)
	if err != nil {
		if domain.KindOf(err) == domain.KindNotFound {
			oauthBadRequest(w, "unknown project or provider")
			return
		}
		s.oauthInternal(w, r, project, providerID, err)
		return
	}
	query := r.URL.Query()
	if cfg.enabled(methodOAuth2) != nil || stored.GetDisabled() {
		// Turned off during the sign-in. The state is still opened (and
		// checked) to learn where to send the browser; with an error in the
		// query, Complete neither exchanges the code nor calls the provider.
		query = url.Values{"state": {query.Get("state")}, "error": {"method_disabled"},
			"error_description": {"sign-in with this provider is turned off"}}
	}
	res, err := s.oauth.Complete(ctx, p, project, query)
	if ce, ok := errors.AsType[*oauth.CallbackError](err); ok {
		s.oauthFailure(w, r, ce.FailureURL, ce.Code, ce.Description)
		return
	}
	if err != nil {
		s.logger.WarnContext(ctx, "oauth callback refused", "project", project, "provider", providerID, "err", err)
		oauthBadRequest(w, "this sign-in link is invalid or was made for another project; start the sign-in again")
		return
	}
	// Browsers send no idempotency key, and one must not make a second
	// callback reuse the first one's write: only the request id is kept.
	meta, err := writeMeta(access.Principal{Project: project}, oauthCallbackPath, func(k string) string {
		if k == headerRequestID {
			return r.Header.Get(k)
		}
		return ""
	})
	if err != nil {
		s.oauthInternal(w, r, project, providerID, err)
		return
	}
	userID, secret, err := s.oauthSignIn(ctx, meta, project, res.Identity)
	if err != nil {
		code, desc := oauthFailureCode(err)
		if code == "server_error" {
			s.logger.ErrorContext(ctx, "oauth sign-in failed", "project", project, "provider", providerID, "err", err)
		} else {
			s.logger.InfoContext(ctx, "oauth sign-in refused", "project", project, "provider", providerID, "code", code, "err", err)
		}
		s.oauthFailure(w, r, res.FailureURL, code, desc)
		return
	}
	loc, err := oauth.SuccessRedirect(res.SuccessURL, userID, secret)
	if err != nil {
		s.oauthInternal(w, r, project, providerID, err)
		return
	}
	http.Redirect(w, r, loc, http.StatusSeeOther)
}

// errOAuthRaced: the user changed between the read-model lookup and the
// write (unlinked, email changed or unverified, deleted): decide again.
var errOAuthRaced = errors.New("the user changed during the oauth sign-in")

// oauthSignIn applies the linking policy to a completed sign-in and stores
// a single-use oauth2 token on the user, in one write: a created user, a
// link and the token are decided together, with the identity (and email)
// claims checked atomically by the write path. It returns the user and the
// token's secret.
func (s *Server) oauthSignIn(ctx context.Context, meta eventlog.Meta, project string, id oauth.Identity) (string, string, error) {
	// One secret for every attempt: the token is decided again each time.
	tok, secret, err := newToken(eventsv1.Token_KIND_OAUTH2, "", s.log.Now(), oauthTokenTTL)
	if err != nil {
		return "", "", fmt.Errorf("oauth token secret: %w", err)
	}
	tok.ProviderId = id.ProviderID
	ident := &eventsv1.Identity{ProviderId: id.ProviderID, Subject: id.Subject, Email: id.Email}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		acc, err := s.oauthAccount(project, id)
		if err != nil {
			return "", "", err
		}
		link, err := oauth.Decide(id, acc)
		if err != nil {
			return "", "", err
		}
		now := s.log.Now()
		t := proto.CloneOf(tok)
		t.Id, t.ExpiresAt = s.log.NewID(), timestamppb.New(now.Add(oauthTokenTTL))
		token := user.CreateToken{Token: t, Now: now}
		target := link.UserID
		var decide func(user.State) ([]*eventsv1.Envelope, error)
		switch link.Action {
		case oauth.ActionSignIn:
			decide = func(st user.State) ([]*eventsv1.Envelope, error) {
				if have := user.FindIdentity(st, id.ProviderID); have == nil || have.GetSubject() != id.Subject {
					return nil, errOAuthRaced
				}
				return user.Decide(st, token)
			}
		case oauth.ActionLink:
			decide = func(st user.State) ([]*eventsv1.Envelope, error) {
				// Decided on the read model; hold it against the user's
				// current state: the email must still be this one, verified.
				if st == nil || !st.GetEmailVerified() || user.NormalizeEmail(st.GetEmail()) != user.NormalizeEmail(id.Email) {
					return nil, errOAuthRaced
				}
				return user.DecideAll(st, user.LinkIdentity{Identity: ident, Now: now}, token)
			}
		case oauth.ActionCreateUser:
			target = s.log.NewID()
			create := user.Create{ID: target, ProjectID: project, Email: id.Email, Name: cleanName(id.Name),
				EmailVerified: link.EmailVerified, Identity: ident, Now: now}
			decide = func(st user.State) ([]*eventsv1.Envelope, error) { return user.DecideAll(st, create, token) }
		default:
			return "", "", fmt.Errorf("oauth: unknown link action %v", link.Action)
		}
		_, _, err = s.writeUserMeta(ctx, meta, project, target, decide)
		if err == nil {
			return target, secret, nil
		}
		if attempt >= attempts || !(errors.Is(err, errOAuthRaced) || claimTaken(err)) {
			return "", "", fmt.Errorf("oauth sign-in (%v) of project %q: %w", link.Action, project, err)
		}
		// Another sign-in or update won the race; its events reach the
		// read model shortly.
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// claimTaken reports a uniqueness claim lost to another write.
func claimTaken(err error) bool {
	de, ok := errors.AsType[*domain.Error](err)
	return ok && de.Kind == domain.KindAlreadyExists && (de.Field == user.ClaimEmail || de.Field == user.ClaimIdentity)
}

// oauthAccount is what the read model knows about the identity and its
// email.
func (s *Server) oauthAccount(project string, id oauth.Identity) (oauth.Account, error) {
	var acc oauth.Account
	holder, err := s.reads.ClaimHolder(project, user.ClaimIdentity, user.IdentityClaim(id.ProviderID, id.Subject))
	switch {
	case err == nil:
		acc.LinkedUserID = holder
	case !errors.Is(err, errNotFound):
		return acc, fmt.Errorf("identity claim: %w", err)
	}
	if id.Email == "" {
		return acc, nil
	}
	holder, err = s.reads.ClaimHolder(project, user.ClaimEmail, user.NormalizeEmail(id.Email))
	switch {
	case errors.Is(err, errNotFound):
		return acc, nil
	case err != nil:
		return acc, fmt.Errorf("email claim: %w", err)
	}
	// A claim whose user is not (yet) readable counts as unverified: never
	// link on what cannot be checked.
	acc.EmailUserID = holder
	u, err := s.reads.User(project, holder)
	switch {
	case err == nil:
		acc.EmailUserVerified = u.GetEmailVerified()
	case !errors.Is(err, errNotFound):
		return acc, fmt.Errorf("user holding the email: %w", err)
	}
	return acc, nil
}

// oauthFailureCode maps a sign-in error to the failure URL's error code
// and a description safe to show.
func oauthFailureCode(err error) (code, desc string) {
	switch {
	case errors.Is(err, oauth.ErrEmailRequired):
		return "email_required", oauth.ErrEmailRequired.Error()
	case errors.Is(err, oauth.ErrLinkUnverified):
		return "account_exists", oauth.ErrLinkUnverified.Error()
	}
	de, ok := errors.AsType[*domain.Error](err)
	if !ok {
		return "server_error", ""
	}
	switch de.Kind {
	case domain.KindPermissionDenied:
		return "user_blocked", "this account is blocked"
	case domain.KindFailedPrecondition:
		return "account_exists", de.Error()
	case domain.KindInvalid:
		return "invalid_request", "the provider's profile is not usable here: " + de.Error()
	}
	return "server_error", ""
}

// oauthFailure redirects to the sign-in's failure URL.
func (s *Server) oauthFailure(w http.ResponseWriter, r *http.Request, failureURL, code, desc string) {
	loc, err := oauth.FailureRedirect(failureURL, code, desc)
	if err != nil {
		oauthBadRequest(w, "the sign-in failed: "+code)
		return
	}
	http.Redirect(w, r, loc, http.StatusSeeOther)
}

func (s *Server) oauthInternal(w http.ResponseWriter, r *http.Request, project, provider string, err error) {
	s.logger.ErrorContext(r.Context(), "oauth callback failed", "project", project, "provider", provider, "err", err)
	http.Error(w, "internal error; start the sign-in again", http.StatusInternalServerError)
}

// oauthBadRequest is the plain page for a callback whose state cannot be
// trusted.
func oauthBadRequest(w http.ResponseWriter, msg string) {
	http.Error(w, "sign-in failed: "+msg, http.StatusBadRequest)
}

// cleanName makes a provider's display name acceptable as a user's name:
// one line of valid text, at most user.MaxNameLen bytes.
func cleanName(name string) string {
	name = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(name, ""), func(r rune) bool {
		return r == '\r' || r == '\n' || r == 0
	}), " ")
	name = strings.TrimSpace(name)
	for len(name) > user.MaxNameLen {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

func (h *accountHandler) ListIdentities(ctx context.Context, _ *cairnv1.ListIdentitiesRequest) (*cairnv1.ListIdentitiesResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	return &cairnv1.ListIdentitiesResponse{Identities: identitiesOut(u)}, nil
}

func (h *accountHandler) DeleteIdentity(ctx context.Context, req *cairnv1.DeleteIdentityRequest) (*cairnv1.DeleteIdentityResponse, error) {
	p := principal(ctx)
	cmd := user.UnlinkIdentity{ProviderID: req.GetProviderId(), Now: h.log.Now()}
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) { return user.Decide(st, cmd) }); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteIdentityResponse{}, nil
}

func identitiesOut(u *eventsv1.User) []*cairnv1.Identity {
	out := make([]*cairnv1.Identity, 0, len(u.GetIdentities()))
	for _, i := range u.GetIdentities() {
		out = append(out, &cairnv1.Identity{ProviderId: i.GetProviderId(), Subject: i.GetSubject(), Email: i.GetEmail(), CreatedAt: i.GetCreatedAt()})
	}
	return out
}
