package api

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/api/passkey"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/user"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/streams"
)

// passkeysHandler is PasskeyService: the WebAuthn ceremonies (api/passkey)
// around the user aggregate's passkey decisions (domain/user). A
// ceremony's state waits between its two calls in the instance's shared
// challenges bucket (streams.Challenges): any node finishes what another
// began, and a challenge is taken once.
type passkeysHandler struct {
	*Server
	cairnv1connect.UnimplementedPasskeyServiceHandler
}

// methodPasskey is the sign-in method a project turns off to refuse every
// passkey ceremony.
const methodPasskey = "passkey"

// passkeyChallengeTTL is how long a ceremony may take: the browser's own
// timeout (go-webauthn asks for five minutes).
const passkeyChallengeTTL = 5 * time.Minute

var (
	errNoChallenge = domain.Errorf(domain.KindPermissionDenied, "the passkey challenge is unknown, expired or already used: begin again")
	errPasskeyPage = domain.FieldError("Origin", "passkeys are used from a page of the project: one of its sites, or one of its allowed origins (the request carries no such Origin)")
)

// relyingParty is the relying party of the page calling: a site of the
// project (its own API, same origin) or an allowed origin calling the API
// host (the access rules have checked it is allowed). The API's own origin
// serves no project's pages, so no passkey is ever bound to it.
func (s *Server) relyingParty(ctx context.Context, project string) (passkey.RelyingParty, error) {
	e := edgeOf(ctx)
	origin := e.origin
	if e.pinned != "" {
		origin = cmp.Or(e.origin, e.self)
	}
	if origin == "" {
		return passkey.RelyingParty{}, errPasskeyPage
	}
	return passkey.RelyingPartyFor(origin, project, s.sitesDomain)
}

// beginCeremony keeps a ceremony's state for its second call.
func (s *Server) beginCeremony(ctx context.Context, st passkey.State) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("passkey state: %w", err)
	}
	if err := s.challenges.Put(ctx, st.Project, string(st.Kind), st.Challenge(), raw); err != nil {
		// A full bucket (a flood of ceremonies) or NATS away: the caller
		// may try again shortly; the operator sees why.
		s.logger.WarnContext(ctx, "passkey ceremony not stored", "project", st.Project, "err", err)
		return domain.Errorf(domain.KindUnavailable, "passkey ceremonies cannot begin right now: try again shortly")
	}
	return nil
}

// takeCeremony takes the state a browser's answer (with challenge) belongs
// to; it must have been begun for this project, kind and relying party.
func (s *Server) takeCeremony(ctx context.Context, project string, kind passkey.Kind, challenge string) (passkey.State, error) {
	rp, err := s.relyingParty(ctx, project)
	if err != nil {
		return passkey.State{}, err
	}
	raw, err := s.challenges.Take(ctx, project, string(kind), challenge, s.now())
	if errors.Is(err, streams.ErrNoChallenge) {
		return passkey.State{}, errNoChallenge
	}
	if err != nil {
		return passkey.State{}, err
	}
	var st passkey.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return passkey.State{}, fmt.Errorf("passkey state: %w", err)
	}
	if st.Project != project || st.Kind != kind || st.RP != rp {
		return passkey.State{}, errNoChallenge
	}
	return st, nil
}

// refused logs why a ceremony did not verify and answers the one error.
func (s *Server) refused(ctx context.Context, err error) error {
	var f *passkey.Failed
	if errors.As(err, &f) {
		s.logger.InfoContext(ctx, "passkey ceremony refused", "project", principal(ctx).Project, "detail", f.Detail)
		return passkey.ErrCeremony
	}
	return err
}

func (h *passkeysHandler) BeginPasskeyRegistration(ctx context.Context, _ *cairnv1.BeginPasskeyRegistrationRequest) (*cairnv1.BeginPasskeyRegistrationResponse, error) {
	p := principal(ctx)
	if _, err := h.authGate(ctx); err != nil {
		return nil, err
	}
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	rp, err := h.relyingParty(ctx, p.Project)
	if err != nil {
		return nil, err
	}
	opts, st, err := passkey.BeginRegistration(rp, p.Project, u)
	if err != nil {
		return nil, err
	}
	if err := h.beginCeremony(ctx, st); err != nil {
		return nil, err
	}
	return &cairnv1.BeginPasskeyRegistrationResponse{OptionsJson: string(opts)}, nil
}

func (h *passkeysHandler) FinishPasskeyRegistration(ctx context.Context, req *cairnv1.FinishPasskeyRegistrationRequest) (*cairnv1.FinishPasskeyRegistrationResponse, error) {
	p := principal(ctx)
	if _, err := h.authGate(ctx); err != nil {
		return nil, err
	}
	cred := []byte(req.GetCredentialJson())
	challenge, err := passkey.ChallengeOfRegistration(cred)
	if err != nil {
		return nil, err
	}
	st, err := h.takeCeremony(ctx, p.Project, passkey.Register, challenge)
	if err != nil {
		return nil, err
	}
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	pk, err := passkey.FinishRegistration(st, u, cred)
	if err != nil {
		return nil, h.refused(ctx, err)
	}
	pk.Id, pk.Name = h.log.NewID(), req.GetName()
	u, _, err = h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.RegisterPasskey{Passkey: pk, Now: h.log.Now()})
	})
	var de *domain.Error
	if errors.As(err, &de) && de.Kind == domain.KindAlreadyExists && de.Field == user.ClaimPasskey {
		return nil, domain.FieldError("credential_json", "this passkey is already registered")
	}
	if err != nil {
		return nil, err
	}
	for _, k := range u.GetPasskeys() {
		if k.GetId() == pk.GetId() {
			return &cairnv1.FinishPasskeyRegistrationResponse{Passkey: passkeyOut(k)}, nil
		}
	}
	return nil, errors.New("registered passkey missing from the user's state")
}

// authGate checks that the project has passkeys on.
func (h *passkeysHandler) authGate(ctx context.Context) (authConfig, error) {
	cfg, err := h.authConfig(principal(ctx).Project)
	if err != nil {
		return authConfig{}, err
	}
	return cfg, cfg.enabled(methodPasskey)
}

// decoyCredential stands in for the passkeys of an email that has none
// (or no account): the answer looks the same either way, and the same for
// every ask, so it tells nothing of the account.
func (s *Server) decoyCredential(project, email string) []byte {
	m := hmac.New(sha256.New, s.masterKey)
	m.Write([]byte("cairn passkey decoy\x00" + project + "\x00" + user.NormalizeEmail(email)))
	return m.Sum(nil)[:16]
}

func (h *passkeysHandler) BeginPasskeySignIn(ctx context.Context, req *cairnv1.BeginPasskeySignInRequest) (*cairnv1.BeginPasskeySignInResponse, error) {
	project := principal(ctx).Project
	email := user.NormalizeEmail(req.GetEmail())
	if _, err := h.gate(ctx, methodPasskey, h.limits.signInIP, h.limits.signInID, email); err != nil {
		return nil, err
	}
	rp, err := h.relyingParty(ctx, project)
	if err != nil {
		return nil, err
	}
	var allow [][]byte
	userID := ""
	if email != "" {
		if id, err := h.reads.ClaimHolder(project, user.ClaimEmail, email); err == nil {
			if u, err := h.reads.User(project, id); err == nil {
				for _, k := range u.GetPasskeys() {
					if k.GetRpId() == rp.ID {
						allow = append(allow, k.GetCredentialId())
					}
				}
				if len(allow) > 0 {
					userID = id
				}
			} else if !errors.Is(err, errNotFound) {
				return nil, err
			}
		} else if !errors.Is(err, errNotFound) {
			return nil, err
		}
		if len(allow) == 0 {
			allow = [][]byte{h.decoyCredential(project, email)}
		}
	}
	opts, st, err := passkey.BeginLogin(rp, project, passkey.SignIn, userID, allow)
	if err != nil {
		return nil, err
	}
	if err := h.beginCeremony(ctx, st); err != nil {
		return nil, err
	}
	return &cairnv1.BeginPasskeySignInResponse{OptionsJson: string(opts)}, nil
}

// assertedUser is the user a browser's assertion names, or nil.
func (s *Server) assertedUser(project string, cred []byte) (*eventsv1.User, error) {
	id := passkey.UserHandle(cred)
	if !domain.ValidResourceID(id) {
		return nil, nil
	}
	u, err := s.reads.User(project, id)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return u, err
}

func (h *passkeysHandler) FinishPasskeySignIn(ctx context.Context, req *cairnv1.FinishPasskeySignInRequest) (*cairnv1.FinishPasskeySignInResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.gate(ctx, methodPasskey, h.limits.signInIP, nil, "")
	if err != nil {
		return nil, err
	}
	cred := []byte(req.GetCredentialJson())
	challenge, err := passkey.ChallengeOfAssertion(cred)
	if err != nil {
		return nil, err
	}
	st, err := h.takeCeremony(ctx, project, passkey.SignIn, challenge)
	if err != nil {
		return nil, err
	}
	u, err := h.assertedUser(project, cred)
	if err != nil {
		return nil, err
	}
	a, err := passkey.FinishLogin(st, u, cred)
	if err != nil {
		return nil, h.refused(ctx, err)
	}
	sess, token, err := h.newSession(ctx, project, "passkey", user.FactorPasskey)
	if err != nil {
		return nil, err
	}
	u, res, err := h.writeUser(ctx, project, a.UserID, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.UsePasskey{CredentialID: a.CredentialID, SignCount: a.SignCount, BackedUp: a.BackedUp,
			Session: &user.CreateSession{Session: sess, Settings: cfg.sessions}, Now: h.log.Now()})
	})
	if err != nil {
		return nil, err
	}
	out, err := h.sessionIssued(ctx, u, sessionCreated(res), token)
	if err != nil {
		return nil, err
	}
	return &cairnv1.FinishPasskeySignInResponse{Session: out, Secret: token}, nil
}

func (h *passkeysHandler) ListPasskeys(ctx context.Context, _ *cairnv1.ListPasskeysRequest) (*cairnv1.ListPasskeysResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	out := &cairnv1.ListPasskeysResponse{}
	for _, k := range u.GetPasskeys() {
		out.Passkeys = append(out.Passkeys, passkeyOut(k))
	}
	return out, nil
}

func (h *passkeysHandler) DeletePasskey(ctx context.Context, req *cairnv1.DeletePasskeyRequest) (*cairnv1.DeletePasskeyResponse, error) {
	p := principal(ctx)
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.RemovePasskey{ID: req.GetPasskeyId(), Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeletePasskeyResponse{}, nil
}

func (h *passkeysHandler) BeginPasskeyMfa(ctx context.Context, _ *cairnv1.BeginPasskeyMfaRequest) (*cairnv1.BeginPasskeyMfaResponse, error) {
	p := principal(ctx)
	if err := h.limit(ctx, p.Project, nil, h.limits.mfaUser, p.ID); err != nil {
		return nil, err
	}
	if _, err := h.authGate(ctx); err != nil {
		return nil, err
	}
	if p.SessionID == "" {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "a JWT has no session to complete")
	}
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	if s := user.FindSession(u, p.SessionID, h.now()); s == nil || !s.GetMfaPending() {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "this session has no second factor to prove")
	}
	rp, err := h.relyingParty(ctx, p.Project)
	if err != nil {
		return nil, err
	}
	var allow [][]byte
	for _, k := range u.GetPasskeys() {
		if k.GetRpId() == rp.ID {
			allow = append(allow, k.GetCredentialId())
		}
	}
	if len(allow) == 0 {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "no passkey of this account is registered for %s", rp.ID)
	}
	opts, st, err := passkey.BeginLogin(rp, p.Project, passkey.MFA, u.GetId(), allow)
	if err != nil {
		return nil, err
	}
	if err := h.beginCeremony(ctx, st); err != nil {
		return nil, err
	}
	return &cairnv1.BeginPasskeyMfaResponse{OptionsJson: string(opts)}, nil
}

func (h *passkeysHandler) FinishPasskeyMfa(ctx context.Context, req *cairnv1.FinishPasskeyMfaRequest) (*cairnv1.FinishPasskeyMfaResponse, error) {
	p := principal(ctx)
	if err := h.limit(ctx, p.Project, nil, h.limits.mfaUser, p.ID); err != nil {
		return nil, err
	}
	if p.SessionID == "" {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "a JWT has no session to complete")
	}
	cred := []byte(req.GetCredentialJson())
	challenge, err := passkey.ChallengeOfAssertion(cred)
	if err != nil {
		return nil, err
	}
	st, err := h.takeCeremony(ctx, p.Project, passkey.MFA, challenge)
	if err != nil {
		return nil, err
	}
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	a, err := passkey.FinishLogin(st, u, cred)
	if err != nil {
		return nil, h.refused(ctx, err)
	}
	u, _, err = h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.UsePasskey{CredentialID: a.CredentialID, SignCount: a.SignCount, BackedUp: a.BackedUp,
			ProveSession: p.SessionID, Now: h.log.Now()})
	})
	if err != nil {
		return nil, err
	}
	s := user.FindSession(u, p.SessionID, h.now())
	if s == nil {
		return nil, errBadCredential
	}
	return &cairnv1.FinishPasskeyMfaResponse{Session: sessionOut(u.GetId(), s, p.SessionID)}, nil
}

func passkeyOut(k *eventsv1.Passkey) *cairnv1.Passkey {
	return &cairnv1.Passkey{Id: k.GetId(), Name: k.GetName(), RpId: k.GetRpId(), CredentialId: user.PasskeyClaim(k.GetCredentialId()),
		Aaguid: passkey.AAGUID(k.GetAaguid()), Transports: k.GetTransports(), BackedUp: k.GetBackedUp(),
		CloneSuspected: k.GetCloneSuspected(), CreatedAt: k.GetCreatedAt(), LastUsedAt: k.GetLastUsedAt()}
}

// ListUserPasskeys is a user's passkeys as a server sees them (UsersService).
func (h *usersHandler) ListUserPasskeys(_ context.Context, req *cairnv1.ListUserPasskeysRequest) (*cairnv1.ListUserPasskeysResponse, error) {
	u, err := h.reads.User(req.GetProjectId(), req.GetUserId())
	if err != nil {
		return nil, notFound(err, "user")
	}
	out := &cairnv1.ListUserPasskeysResponse{}
	for _, k := range u.GetPasskeys() {
		out.Passkeys = append(out.Passkeys, passkeyOut(k))
	}
	return out, nil
}

// DeleteUserPasskey removes a user's passkey for a server (a lost device).
func (h *usersHandler) DeleteUserPasskey(ctx context.Context, req *cairnv1.DeleteUserPasskeyRequest) (*cairnv1.DeleteUserPasskeyResponse, error) {
	if _, _, err := h.writeUser(ctx, req.GetProjectId(), req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.RemovePasskey{ID: req.GetPasskeyId(), Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteUserPasskeyResponse{}, nil
}
