package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/api/oauth"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/user"
	"github.com/cairn-dev/cairn/mail"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// How long mailed tokens live.
const (
	verificationTTL = 24 * time.Hour
	recoveryTTL     = time.Hour
	magicURLTTL     = time.Hour
	emailCodeTTL    = 10 * time.Minute
	// backgroundMail bounds a mail sent after the answer (recovery).
	backgroundMail = time.Minute
)

var errNoSMTP = domain.Errorf(domain.KindFailedPrecondition, "the project has no SMTP settings (UsersService.UpdateAuthSettings)")

// sendProjectMail renders and sends one of the account mails through the
// project's SMTP settings.
func (s *Server) sendProjectMail(ctx context.Context, project string, kind mail.Kind, data mail.Data) error {
	cfg, err := s.authConfig(project)
	if err != nil {
		return err
	}
	sm := cfg.raw.GetSmtp()
	if sm == nil {
		return errNoSMTP
	}
	var pw []byte
	if len(sm.GetPasswordSealed()) > 0 {
		if pw, err = s.unseal(project, sealSMTPPassword, sm.GetPasswordSealed()); err != nil {
			return err
		}
	}
	p, err := s.reads.Project(project)
	if err != nil {
		return err
	}
	data.Project = p.GetName()
	msg, err := mail.Render(kind, data)
	if err != nil {
		return err
	}
	err = s.mail.Send(ctx, mail.Config{Host: sm.GetHost(), Port: int(sm.GetPort()), Username: sm.GetUsername(), Password: string(pw),
		SenderEmail: sm.GetSenderEmail(), SenderName: sm.GetSenderName(), Security: mail.Security(sm.GetSecurity())}, msg)
	if err != nil {
		s.logger.WarnContext(ctx, "project mail not sent", "project", project, "kind", kind, "err", err)
		return domain.Errorf(domain.KindUnavailable, "the project's mail server did not take the message; retry later")
	}
	return nil
}

// checkLink refuses link targets outside the project's allowed origins, so
// a mailed secret never goes to someone else's site.
func checkLink(cfg authConfig, field, raw string) error {
	if err := oauth.CheckRedirect(raw, cfg.raw.GetAllowedOrigins()); err != nil {
		var re *oauth.RedirectError
		if errors.As(err, &re) {
			return domain.FieldError(field, "%s", re.Reason)
		}
		return domain.FieldError(field, "%v", err)
	}
	return nil
}

// newToken draws a token secret: 32 random bytes in hex, or for codes six
// digits.
func newToken(kind eventsv1.Token_Kind, id string, now time.Time, ttl time.Duration) (*eventsv1.Token, string, error) {
	var secret string
	if kind == eventsv1.Token_KIND_EMAIL_OTP {
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return nil, "", err
		}
		secret = fmt.Sprintf("%06d", n.Int64())
	} else {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, "", err
		}
		secret = hex.EncodeToString(b)
	}
	return &eventsv1.Token{Id: id, Kind: kind, SecretHash: hashToken(secret), ExpiresAt: timestamppb.New(now.Add(ttl))}, secret, nil
}

func (h *accountHandler) CreateVerification(ctx context.Context, req *cairnv1.CreateVerificationRequest) (*cairnv1.CreateVerificationResponse, error) {
	p := principal(ctx)
	cfg, err := h.authConfig(p.Project)
	if err != nil {
		return nil, err
	}
	if err := checkLink(cfg, "url", req.GetUrl()); err != nil {
		return nil, err
	}
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	if u.GetEmail() == "" {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "the account has no email to verify")
	}
	if u.GetEmailVerified() {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "the email is already verified")
	}
	if err := h.limit(ctx, p.Project, h.limits.mailIP, h.limits.mailID, user.NormalizeEmail(u.GetEmail())); err != nil {
		return nil, err
	}
	now := h.log.Now()
	tok, secret, err := newToken(eventsv1.Token_KIND_VERIFICATION, h.log.NewID(), now, verificationTTL)
	if err != nil {
		return nil, err
	}
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.CreateToken{Token: tok, Now: now})
	}); err != nil {
		return nil, err
	}
	link, err := oauth.SuccessRedirect(req.GetUrl(), u.GetId(), secret)
	if err != nil {
		return nil, err
	}
	if err := h.sendProjectMail(ctx, p.Project, mail.KindVerification, mail.Data{To: mail.Address{Email: u.GetEmail(), Name: u.GetName()}, URL: link}); err != nil {
		return nil, err
	}
	return &cairnv1.CreateVerificationResponse{ExpiresAt: tok.GetExpiresAt()}, nil
}

func (h *accountHandler) ConfirmVerification(ctx context.Context, req *cairnv1.ConfirmVerificationRequest) (*cairnv1.ConfirmVerificationResponse, error) {
	project := principal(ctx).Project
	if err := h.limit(ctx, project, h.limits.tokenIP, h.limits.tokenID, req.GetUserId()); err != nil {
		return nil, err
	}
	verified := true
	cmd := user.UseToken{Kinds: []eventsv1.Token_Kind{eventsv1.Token_KIND_VERIFICATION}, SecretHash: hashToken(req.GetSecret()),
		Then: &user.Update{EmailVerified: &verified}, Now: h.log.Now()}
	if _, _, err := h.writeUser(ctx, project, req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, cmd)
	}); err != nil {
		return nil, err
	}
	return &cairnv1.ConfirmVerificationResponse{}, nil
}

func (h *accountHandler) CreateRecovery(ctx context.Context, req *cairnv1.CreateRecoveryRequest) (*cairnv1.CreateRecoveryResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.authConfig(project)
	if err != nil {
		return nil, err
	}
	if err := checkLink(cfg, "url", req.GetUrl()); err != nil {
		return nil, err
	}
	email := user.NormalizeEmail(req.GetEmail())
	if err := h.limit(ctx, project, h.limits.mailIP, h.limits.mailID, email); err != nil {
		return nil, err
	}
	if cfg.raw.GetSmtp() == nil {
		return nil, errNoSMTP
	}
	// The answer never says whether the address has an account, nor does
	// its timing: the token and the mail happen after it.
	bg := context.WithoutCancel(ctx)
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	go func() {
		bg, cancel := context.WithTimeout(bg, backgroundMail)
		defer cancel()
		if err := h.recover(bg, project, email, req.GetUrl(), meta.CorrelationID); err != nil {
			h.logger.WarnContext(bg, "password recovery not sent", "project", project, "err", err)
		}
	}()
	return &cairnv1.CreateRecoveryResponse{}, nil
}

// recover stores a recovery token for the account with email, if any, and
// mails its link.
func (h *accountHandler) recover(ctx context.Context, project, email, url, correlation string) error {
	id, err := h.reads.ClaimHolder(project, user.ClaimEmail, email)
	if errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := h.log.Now()
	tok, secret, err := newToken(eventsv1.Token_KIND_RECOVERY, h.log.NewID(), now, recoveryTTL)
	if err != nil {
		return err
	}
	var u *eventsv1.User
	meta := eventlog.Meta{Actor: &eventsv1.Actor{Kind: eventsv1.Actor_KIND_SYSTEM, ProjectId: project}, CorrelationID: correlation}
	if _, err := h.log.Write(ctx, eventlog.UserAggregate(project, id), meta, eventlog.Decide(user.Evolve, func(st user.State) ([]*eventsv1.Envelope, error) {
		u = st
		return user.Decide(st, user.CreateToken{Token: tok, Now: now})
	})); err != nil {
		if domain.KindOf(err) == domain.KindPermissionDenied || domain.KindOf(err) == domain.KindNotFound {
			return nil // blocked or gone: nothing to send
		}
		return err
	}
	link, err := oauth.SuccessRedirect(url, id, secret)
	if err != nil {
		return err
	}
	return h.sendProjectMail(ctx, project, mail.KindRecovery, mail.Data{To: mail.Address{Email: u.GetEmail(), Name: u.GetName()}, URL: link})
}

func (h *accountHandler) ConfirmRecovery(ctx context.Context, req *cairnv1.ConfirmRecoveryRequest) (*cairnv1.ConfirmRecoveryResponse, error) {
	project := principal(ctx).Project
	if err := h.limit(ctx, project, h.limits.tokenIP, h.limits.tokenID, req.GetUserId()); err != nil {
		return nil, err
	}
	hash, err := h.newPasswordHash(ctx, project, req.GetPassword())
	if err != nil {
		return nil, err
	}
	// A new password signs every session out: whoever knew the old one is out.
	cmd := user.UseToken{Kinds: []eventsv1.Token_Kind{eventsv1.Token_KIND_RECOVERY}, SecretHash: hashToken(req.GetSecret()),
		VerifiesEmail: []eventsv1.Token_Kind{eventsv1.Token_KIND_RECOVERY},
		Then:          &user.Update{PasswordHash: &hash, SignOut: true}, Now: h.log.Now()}
	if _, _, err := h.writeUser(ctx, project, req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, cmd)
	}); err != nil {
		return nil, err
	}
	return &cairnv1.ConfirmRecoveryResponse{}, nil
}

// signInToken stores a sign-in token for the account with email, creating
// the account (without password) when the address is new, and returns the
// user and the token's secret.
func (h *accountHandler) signInToken(ctx context.Context, method, email string, kind eventsv1.Token_Kind, ttl time.Duration) (*eventsv1.User, *eventsv1.Token, string, error) {
	project := principal(ctx).Project
	cfg, err := h.gate(ctx, method, h.limits.mailIP, h.limits.mailID, user.NormalizeEmail(email))
	if err != nil {
		return nil, nil, "", err
	}
	if cfg.raw.GetSmtp() == nil {
		return nil, nil, "", errNoSMTP
	}
	id, err := h.reads.ClaimHolder(project, user.ClaimEmail, user.NormalizeEmail(email))
	switch {
	case errors.Is(err, errNotFound):
		id = h.log.NewID()
	case err != nil:
		return nil, nil, "", err
	}
	now := h.log.Now()
	tok, secret, err := newToken(kind, h.log.NewID(), now, ttl)
	if err != nil {
		return nil, nil, "", err
	}
	u, _, err := h.writeUser(ctx, project, id, func(st user.State) ([]*eventsv1.Envelope, error) {
		if st != nil {
			return user.Decide(st, user.CreateToken{Token: tok, Now: now})
		}
		return user.DecideAll(nil, user.Create{ID: id, ProjectID: project, Email: email, Now: now}, user.CreateToken{Token: tok, Now: now})
	})
	if err != nil {
		return nil, nil, "", err
	}
	return u, tok, secret, nil
}

func (h *accountHandler) CreateMagicURLToken(ctx context.Context, req *cairnv1.CreateMagicURLTokenRequest) (*cairnv1.CreateMagicURLTokenResponse, error) {
	project := principal(ctx).Project
	cfg, err := h.authConfig(project)
	if err != nil {
		return nil, err
	}
	if err := checkLink(cfg, "url", req.GetUrl()); err != nil {
		return nil, err
	}
	u, tok, secret, err := h.signInToken(ctx, methodMagicURL, req.GetEmail(), eventsv1.Token_KIND_MAGIC_URL, magicURLTTL)
	if err != nil {
		return nil, hideBlocked(err)
	}
	link, err := oauth.SuccessRedirect(req.GetUrl(), u.GetId(), secret)
	if err != nil {
		return nil, err
	}
	if err := h.sendProjectMail(ctx, project, mail.KindMagicLink, mail.Data{To: mail.Address{Email: u.GetEmail(), Name: u.GetName()}, URL: link}); err != nil {
		return nil, err
	}
	return &cairnv1.CreateMagicURLTokenResponse{UserId: u.GetId(), ExpiresAt: tok.GetExpiresAt()}, nil
}

func (h *accountHandler) CreateEmailToken(ctx context.Context, req *cairnv1.CreateEmailTokenRequest) (*cairnv1.CreateEmailTokenResponse, error) {
	project := principal(ctx).Project
	u, tok, code, err := h.signInToken(ctx, methodEmailOTP, req.GetEmail(), eventsv1.Token_KIND_EMAIL_OTP, emailCodeTTL)
	if err != nil {
		return nil, hideBlocked(err)
	}
	if err := h.sendProjectMail(ctx, project, mail.KindSignInCode, mail.Data{To: mail.Address{Email: u.GetEmail(), Name: u.GetName()}, Code: code}); err != nil {
		return nil, err
	}
	return &cairnv1.CreateEmailTokenResponse{UserId: u.GetId(), ExpiresAt: tok.GetExpiresAt()}, nil
}

// hideBlocked answers a blocked account's sign-in request like any other
// failure to sign in, without saying it exists.
func hideBlocked(err error) error {
	if domain.KindOf(err) == domain.KindPermissionDenied {
		return domain.Errorf(domain.KindUnauthenticated, "this address cannot sign in")
	}
	return err
}

// projectInvites mails team invitations through the project's SMTP
// settings; without them the invitation is only stored (servers get its
// secret in the CreateMembership answer and deliver it themselves).
type projectInvites struct{ s *Server }

func (p projectInvites) SendTeamInvite(ctx context.Context, inv TeamInvite) error {
	cfg, err := p.s.authConfig(inv.ProjectID)
	if err != nil {
		return err
	}
	if cfg.raw.GetSmtp() == nil || inv.URL == "" {
		return nil
	}
	u, err := url.Parse(inv.URL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("team_id", inv.Team.GetId())
	q.Set("membership_id", inv.Membership.GetId())
	q.Set("secret", inv.Secret)
	u.RawQuery = q.Encode()
	return p.s.sendProjectMail(ctx, inv.ProjectID, mail.KindTeamInvite, mail.Data{To: mail.Address{Email: inv.Membership.GetEmail(), Name: inv.Name},
		URL: u.String(), Team: inv.Team.GetName()})
}
