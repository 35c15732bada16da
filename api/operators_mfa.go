package api

import (
	"context"
	"crypto/rand"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/mfa"
	"github.com/cairn-dev/cairn/domain/operator"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// An operator's TOTP secret is sealed for its account under the system's
// name ("_" is in no project id), so it opens for no user of any project.
func sealOperatorTOTP(id string) string { return "operator-totp:" + id }

var errMfaRequired = &domain.Error{Kind: domain.KindFailedPrecondition, Field: "code",
	Message: "this account has two-factor sign-in: give a code from its authenticator or a recovery code"}

// checkOperatorCode verifies a TOTP code (or, with recovery, a recovery
// code) against o's MFA state and returns the state with the code spent.
// It runs inside the write's decision, on the freshest state, so a code is
// never accepted twice.
func (s *Server) checkOperatorCode(o *eventsv1.Operator, code string, recovery bool) (*eventsv1.Mfa, error) {
	m := proto.CloneOf(o.GetMfa())
	if m == nil || len(m.GetTotpSecretSealed()) == 0 {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "no authenticator is enrolled")
	}
	if mfa.IsTOTPCode(code) {
		secret, err := s.unseal(operatorLimitKey, sealOperatorTOTP(o.GetId()), m.GetTotpSecretSealed())
		if err != nil {
			return nil, err
		}
		step, ok := mfa.Verify(secret, code, s.log.Now(), m.GetTotpLastStep())
		if !ok {
			return nil, errBadCode
		}
		m.TotpLastStep = step
		return m, nil
	}
	if recovery && m.GetEnabled() {
		if rest, ok := mfa.UseRecoveryCode(m.GetRecoveryCodeHashes(), code); ok {
			m.RecoveryCodeHashes = rest
			return m, nil
		}
	}
	return nil, errBadCode
}

// current is the signed-in account; the admin key is none.
func (h *operatorsHandler) current(ctx context.Context) (string, error) {
	p := principal(ctx)
	if p.ID == "" {
		return "", domain.Errorf(domain.KindFailedPrecondition, "the admin key is no account; sign in with an operator account")
	}
	return p.ID, nil
}

// writeDecided runs decide on account id's freshest state; an account
// that does not exist is not found.
func (h *operatorsHandler) writeDecided(ctx context.Context, id string, decide func(operator.State) ([]*eventsv1.Envelope, error)) (*eventsv1.Operator, error) {
	return h.writeWith(ctx, id, func(s operator.State) ([]*eventsv1.Envelope, error) {
		if s == nil {
			return nil, domain.Errorf(domain.KindNotFound, "operator account not found")
		}
		return decide(s)
	})
}

func (h *operatorsHandler) CreateCurrentOperatorTotp(ctx context.Context, _ *cairnv1.CreateCurrentOperatorTotpRequest) (*cairnv1.CreateCurrentOperatorTotpResponse, error) {
	id, err := h.current(ctx)
	if err != nil {
		return nil, err
	}
	secret, encoded, err := mfa.NewSecret(rand.Reader)
	if err != nil {
		return nil, err
	}
	sealed, err := h.seal(operatorLimitKey, sealOperatorTOTP(id), secret)
	if err != nil {
		return nil, err
	}
	o, err := h.writeDecided(ctx, id, func(st operator.State) ([]*eventsv1.Envelope, error) {
		if st.GetMfa().GetEnabled() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "an authenticator is already enabled; delete it first")
		}
		return operator.Decide(st, operator.SetMfa{Mfa: &eventsv1.Mfa{TotpSecretSealed: sealed}, Now: h.log.Now()})
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateCurrentOperatorTotpResponse{Secret: encoded, Uri: mfa.URI("Cairn console", o.GetEmail(), secret)}, nil
}

func (h *operatorsHandler) VerifyCurrentOperatorTotp(ctx context.Context, req *cairnv1.VerifyCurrentOperatorTotpRequest) (*cairnv1.VerifyCurrentOperatorTotpResponse, error) {
	codes, err := h.issueRecoveryCodes(ctx, req.GetCode(), false, "the authenticator is already verified", func(m *eventsv1.Mfa) {
		m.Enabled, m.TotpVerified = true, true
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.VerifyCurrentOperatorTotpResponse{RecoveryCodes: codes}, nil
}

// issueRecoveryCodes checks a TOTP code of the signed-in account, whose
// two-factor sign-in must be on (on) or not yet, and stores fresh recovery
// codes (replacing any) with what set changes; the codes are shown once.
func (h *operatorsHandler) issueRecoveryCodes(ctx context.Context, code string, on bool, refusal string, set func(*eventsv1.Mfa)) ([]string, error) {
	id, err := h.current(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.limit(ctx, operatorLimitKey, nil, h.limits.mfaUser, id); err != nil {
		return nil, err
	}
	codes, hashes, err := mfa.NewRecoveryCodes(rand.Reader, 0)
	if err != nil {
		return nil, err
	}
	if _, err := h.writeDecided(ctx, id, func(st operator.State) ([]*eventsv1.Envelope, error) {
		if st.GetMfa().GetEnabled() != on {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "%s", refusal)
		}
		m, err := h.checkOperatorCode(st, code, false)
		if err != nil {
			return nil, err
		}
		m.RecoveryCodeHashes = hashes
		if set != nil {
			set(m)
		}
		return operator.Decide(st, operator.SetMfa{Mfa: m, Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return codes, nil
}

func (h *operatorsHandler) DeleteCurrentOperatorTotp(ctx context.Context, req *cairnv1.DeleteCurrentOperatorTotpRequest) (*cairnv1.DeleteCurrentOperatorTotpResponse, error) {
	id, err := h.current(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.limit(ctx, operatorLimitKey, nil, h.limits.mfaUser, id); err != nil {
		return nil, err
	}
	if _, err := h.writeDecided(ctx, id, func(st operator.State) ([]*eventsv1.Envelope, error) {
		if _, err := h.checkOperatorCode(st, req.GetCode(), true); err != nil {
			return nil, err
		}
		return operator.Decide(st, operator.SetMfa{Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteCurrentOperatorTotpResponse{}, nil
}

func (h *operatorsHandler) RegenerateCurrentOperatorRecoveryCodes(ctx context.Context, req *cairnv1.RegenerateCurrentOperatorRecoveryCodesRequest) (*cairnv1.RegenerateCurrentOperatorRecoveryCodesResponse, error) {
	codes, err := h.issueRecoveryCodes(ctx, req.GetCode(), true, "two-factor sign-in is not on for this account", nil)
	if err != nil {
		return nil, err
	}
	return &cairnv1.RegenerateCurrentOperatorRecoveryCodesResponse{RecoveryCodes: codes}, nil
}

func (h *operatorsHandler) ResetOperatorMfa(ctx context.Context, req *cairnv1.ResetOperatorMfaRequest) (*cairnv1.ResetOperatorMfaResponse, error) {
	o, err := h.writeDecided(ctx, req.GetOperatorId(), func(st operator.State) ([]*eventsv1.Envelope, error) {
		return operator.Decide(st, operator.SetMfa{EndSessions: true, Now: h.log.Now()})
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.ResetOperatorMfaResponse{Operator: operatorOut(o)}, nil
}

func (h *operatorsHandler) UpdateCurrentOperatorPassword(ctx context.Context, req *cairnv1.UpdateCurrentOperatorPasswordRequest) (*cairnv1.UpdateCurrentOperatorPasswordResponse, error) {
	id, err := h.current(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.limit(ctx, operatorLimitKey, nil, h.limits.signInID, id); err != nil {
		return nil, err
	}
	o, err := h.reads.Operator(id)
	if err != nil {
		return nil, notFound(err, "operator account")
	}
	ok, _, err := h.hasher.verify(ctx, req.GetCurrentPassword(), o.GetPasswordHash())
	if err != nil || !ok {
		return nil, &domain.Error{Kind: domain.KindPermissionDenied, Field: "current_password", Message: "the current password is wrong"}
	}
	if err := operatorPolicy.Check(req.GetNewPassword()); err != nil {
		return nil, fieldNamed(err, "new_password")
	}
	hash, err := h.hasher.hash(ctx, req.GetNewPassword())
	if err != nil {
		return nil, err
	}
	checked := o.GetPasswordHash()
	keep := principal(ctx).SessionID
	o, err = h.writeDecided(ctx, id, func(st operator.State) ([]*eventsv1.Envelope, error) {
		if st.GetPasswordHash() != checked {
			// Changed by someone else since it was checked.
			return nil, &domain.Error{Kind: domain.KindPermissionDenied, Field: "current_password", Message: "the current password is wrong"}
		}
		return operator.Decide(st, operator.Update{PasswordHash: &hash, KeepSession: keep, Now: h.log.Now()})
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateCurrentOperatorPasswordResponse{Operator: operatorOut(o)}, nil
}

// fieldNamed renames the field a policy error names: the policy says
// "password", the request's field is another.
func fieldNamed(err error, field string) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	c := *de
	c.Field = field
	return &c
}
