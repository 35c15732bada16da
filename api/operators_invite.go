package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/operator"
	"github.com/cairn-dev/cairn/mail"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// invitationTTL is how long an invitation link works: long enough for a
// week's holiday, short enough that a forgotten mail stops mattering.
const invitationTTL = 7 * 24 * time.Hour

// invitationPrefix marks an invitation token: ci_<account id>_<secret>.
const invitationPrefix = "ci_"

// invitationToken is the link's token for account id.
func invitationToken(id string, secret []byte) string {
	return invitationPrefix + id + "_" + hex.EncodeToString(secret)
}

// invitationAccount is the account a token names; "" when malformed.
func invitationAccount(token string) string {
	rest, ok := strings.CutPrefix(token, invitationPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || !domain.ValidResourceID(id) || len(secret) != 64 {
		return ""
	}
	return id
}

var errNoSystemSMTP = errors.New("no instance SMTP server (--smtp-host)")

// instanceName names this instance in mails: the console's host.
func (s *Server) instanceName() string {
	if u, err := url.Parse(s.publicURL); err == nil && u.Host != "" {
		return "the Cairn console at " + u.Host
	}
	return "the Cairn console"
}

// sendSystemMail sends an operator mail through the instance's SMTP.
func (s *Server) sendSystemMail(ctx context.Context, kind mail.Kind, data mail.Data) error {
	if s.systemMail == nil {
		return errNoSystemSMTP
	}
	data.Project = s.instanceName()
	msg, err := mail.Render(kind, data)
	if err != nil {
		return err
	}
	if err := s.mail.Send(ctx, *s.systemMail, msg); err != nil {
		s.logger.WarnContext(ctx, "operator mail not sent", "kind", kind, "err", err)
		return err
	}
	return nil
}

func (h *operatorsHandler) InviteOperator(ctx context.Context, req *cairnv1.InviteOperatorRequest) (*cairnv1.InviteOperatorResponse, error) {
	roles, err := h.rolesIn("roles", req.GetRoles())
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	id := operator.ID(req.GetEmail())
	token := invitationToken(id, secret)
	p := principal(ctx)
	by := p.Name
	if p.ID == "" {
		by = "" // the operator key is nobody's name
	}
	now := h.log.Now()
	o, err := h.write(ctx, id, operator.Invite{Email: req.GetEmail(), Name: req.GetName(), Admin: req.GetAdmin(), Roles: roles,
		SecretHash: hashToken(token), ExpiresAt: now.Add(invitationTTL), InvitedBy: cmp.Or(by, "operator key"), Now: now})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.InviteOperatorResponse{Operator: operatorOut(o), ExistingAccount: !operator.Pending(o)}
	to := mail.Address{Email: o.GetEmail(), Name: o.GetName()}
	if res.ExistingAccount {
		// Nothing to accept: a notice, best effort.
		res.Emailed = h.sendSystemMail(ctx, mail.KindOperatorAccess, mail.Data{To: to, Inviter: by, URL: h.publicURL + "/console/"}) == nil
		return res, nil
	}
	link := h.publicURL + "/console/invite?token=" + url.QueryEscape(token)
	res.Emailed = h.sendSystemMail(ctx, mail.KindOperatorInvite, mail.Data{To: to, Inviter: by, URL: link}) == nil
	if !res.Emailed {
		// No instance SMTP (or it failed): the inviter passes the link on.
		res.InvitationUrl = link
	}
	return res, nil
}

func (h *operatorsHandler) RevokeOperatorInvitation(ctx context.Context, req *cairnv1.RevokeOperatorInvitationRequest) (*cairnv1.RevokeOperatorInvitationResponse, error) {
	if _, err := h.write(ctx, req.GetOperatorId(), operator.RevokeInvitation{Now: h.log.Now()}); err != nil {
		return nil, err
	}
	return &cairnv1.RevokeOperatorInvitationResponse{}, nil
}

func (h *operatorsHandler) AcceptOperatorInvitation(ctx context.Context, req *cairnv1.AcceptOperatorInvitationRequest) (*cairnv1.AcceptOperatorInvitationResponse, error) {
	if err := h.limit(ctx, operatorLimitKey, h.limits.tokenIP, nil, ""); err != nil {
		return nil, err
	}
	id := invitationAccount(req.GetToken())
	if id == "" {
		return nil, operator.ErrNoInvitation
	}
	if err := h.limit(ctx, operatorLimitKey, nil, h.limits.tokenID, id); err != nil {
		return nil, err
	}
	hash, err := h.operatorPasswordHash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	o, err := h.write(ctx, id, operator.Accept{SecretHash: hashToken(req.GetToken()), PasswordHash: hash, Name: req.Name, Now: h.log.Now()})
	if err != nil {
		if de := (*domain.Error)(nil); errors.As(err, &de) && de.Kind == domain.KindNotFound {
			return nil, operator.ErrNoInvitation // missing account or wrong secret: one answer
		}
		return nil, err
	}
	return &cairnv1.AcceptOperatorInvitationResponse{Operator: operatorOut(o)}, nil
}

// invitationOut adds a pending invitation to an account as the API shows it.
func invitationOut(out *cairnv1.OperatorAccount, inv *eventsv1.OperatorInvitation) {
	if inv == nil {
		return
	}
	out.InvitationPending = true
	out.InvitationExpiresAt = inv.GetExpiresAt()
}
