package api

import (
	"context"
	"crypto/rand"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/mfa"
	"github.com/cairn-dev/cairn/domain/user"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TOTP secrets are sealed per user: a sealed secret copied to another user
// does not open.
func sealTOTP(userID string) string { return "totp:" + userID }

var errBadCode = &domain.Error{Kind: domain.KindPermissionDenied, Field: "code", Message: "the code is wrong or was already used"}

// checkCode verifies a TOTP code (or, with recovery, a recovery code)
// against the user's MFA state and returns the state with the code spent.
// It runs inside the write's decision, on the freshest state, so a code is
// never accepted twice even by racing requests.
func (h *accountHandler) checkCode(u *eventsv1.User, code string, recovery bool) (*eventsv1.Mfa, string, error) {
	m := proto.CloneOf(u.GetMfa())
	// With passkeys alone there is no authenticator, but recovery codes.
	if m == nil || (len(m.GetTotpSecretSealed()) == 0 && !(recovery && m.GetEnabled())) {
		return nil, "", domain.Errorf(domain.KindFailedPrecondition, "no authenticator is enrolled")
	}
	if mfa.IsTOTPCode(code) && len(m.GetTotpSecretSealed()) > 0 {
		secret, err := h.unseal(u.GetProjectId(), sealTOTP(u.GetId()), m.GetTotpSecretSealed())
		if err != nil {
			return nil, "", err
		}
		step, ok := mfa.Verify(secret, code, h.log.Now(), m.GetTotpLastStep())
		if !ok {
			return nil, "", errBadCode
		}
		m.TotpLastStep = step
		return m, "totp", nil
	}
	if recovery && m.GetEnabled() {
		if rest, ok := mfa.UseRecoveryCode(m.GetRecoveryCodeHashes(), code); ok {
			m.RecoveryCodeHashes = rest
			return m, "recovery-code", nil
		}
	}
	return nil, "", errBadCode
}

func (h *accountHandler) CreateTotp(ctx context.Context, _ *cairnv1.CreateTotpRequest) (*cairnv1.CreateTotpResponse, error) {
	u, err := h.me(ctx)
	if err != nil {
		return nil, err
	}
	if u.GetMfa().GetTotpVerified() {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "an authenticator is already enabled; delete it first")
	}
	secret, encoded, err := mfa.NewSecret(rand.Reader)
	if err != nil {
		return nil, err
	}
	sealed, err := h.seal(u.GetProjectId(), sealTOTP(u.GetId()), secret)
	if err != nil {
		return nil, err
	}
	p := principal(ctx)
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		if st.GetMfa().GetTotpVerified() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "an authenticator is already enabled; delete it first")
		}
		// MFA switched on with passkeys alone stays on while enrolling.
		m := &eventsv1.Mfa{TotpSecretSealed: sealed, Enabled: st.GetMfa().GetEnabled(), RecoveryCodeHashes: st.GetMfa().GetRecoveryCodeHashes()}
		return user.Decide(st, user.SetMfa{Mfa: m, Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	account := u.GetEmail()
	if account == "" {
		account = u.GetId()
	}
	return &cairnv1.CreateTotpResponse{Secret: encoded, Uri: mfa.URI("Cairn "+p.Project, account, secret)}, nil
}

func (h *accountHandler) VerifyTotp(ctx context.Context, req *cairnv1.VerifyTotpRequest) (*cairnv1.VerifyTotpResponse, error) {
	if err := h.limit(ctx, principal(ctx).Project, nil, h.limits.mfaUser, principal(ctx).ID); err != nil {
		return nil, err
	}
	codes, hashes, err := mfa.NewRecoveryCodes(rand.Reader, 0)
	if err != nil {
		return nil, err
	}
	p := principal(ctx)
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		if st.GetMfa().GetTotpVerified() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "the authenticator is already verified")
		}
		m, _, err := h.checkCode(st, req.GetCode(), false)
		if err != nil {
			return nil, err
		}
		m.Enabled, m.TotpVerified, m.RecoveryCodeHashes = true, true, hashes
		cmds := []user.Command{user.SetMfa{Mfa: m, Now: h.log.Now()}}
		if p.SessionID != "" { // a JWT has no session to mark
			// The session that enrolled has proven the factor.
			cmds = append(cmds, user.ProveFactor{SessionID: p.SessionID, Factor: "totp", Mfa: m, Now: h.log.Now()})
		}
		return user.DecideAll(st, cmds...)
	}); err != nil {
		return nil, err
	}
	return &cairnv1.VerifyTotpResponse{RecoveryCodes: codes}, nil
}

func (h *accountHandler) DeleteTotp(ctx context.Context, req *cairnv1.DeleteTotpRequest) (*cairnv1.DeleteTotpResponse, error) {
	if err := h.limit(ctx, principal(ctx).Project, nil, h.limits.mfaUser, principal(ctx).ID); err != nil {
		return nil, err
	}
	p := principal(ctx)
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		if len(st.GetMfa().GetTotpSecretSealed()) == 0 {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "no authenticator is enrolled")
		}
		m, _, err := h.checkCode(st, req.GetCode(), true)
		if err != nil {
			return nil, err
		}
		// MFA stays on while a passkey remains as the second factor.
		rest := &eventsv1.Mfa{}
		if m.GetEnabled() && len(st.GetPasskeys()) > 0 {
			rest = &eventsv1.Mfa{Enabled: true, RecoveryCodeHashes: m.GetRecoveryCodeHashes()}
		}
		return user.Decide(st, user.SetMfa{Mfa: rest, Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteTotpResponse{}, nil
}

func (h *accountHandler) CompleteMfa(ctx context.Context, req *cairnv1.CompleteMfaRequest) (*cairnv1.CompleteMfaResponse, error) {
	if err := h.limit(ctx, principal(ctx).Project, nil, h.limits.mfaUser, principal(ctx).ID); err != nil {
		return nil, err
	}
	p := principal(ctx)
	if p.SessionID == "" {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "a JWT has no session to complete")
	}
	u, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		s := user.FindSession(st, p.SessionID, h.log.Now())
		if s == nil {
			return nil, errBadCredential
		}
		if !s.GetMfaPending() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "this session has no second factor to prove")
		}
		m, factor, err := h.checkCode(st, req.GetCode(), true)
		if err != nil {
			return nil, err
		}
		return user.Decide(st, user.ProveFactor{SessionID: p.SessionID, Factor: factor, Mfa: m, Now: h.log.Now()})
	})
	if err != nil {
		return nil, err
	}
	s := user.FindSession(u, p.SessionID, h.now())
	if s == nil {
		return nil, errBadCredential
	}
	return &cairnv1.CompleteMfaResponse{Session: sessionOut(u.GetId(), s, p.SessionID)}, nil
}

func (h *accountHandler) RegenerateRecoveryCodes(ctx context.Context, req *cairnv1.RegenerateRecoveryCodesRequest) (*cairnv1.RegenerateRecoveryCodesResponse, error) {
	if err := h.limit(ctx, principal(ctx).Project, nil, h.limits.mfaUser, principal(ctx).ID); err != nil {
		return nil, err
	}
	codes, hashes, err := mfa.NewRecoveryCodes(rand.Reader, 0)
	if err != nil {
		return nil, err
	}
	p := principal(ctx)
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		if !st.GetMfa().GetEnabled() {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "MFA is not enabled")
		}
		m, _, err := h.checkCode(st, req.GetCode(), false)
		if err != nil {
			return nil, err
		}
		m.RecoveryCodeHashes = hashes
		return user.Decide(st, user.SetMfa{Mfa: m, Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return &cairnv1.RegenerateRecoveryCodesResponse{RecoveryCodes: codes}, nil
}

// UpdateMfa switches MFA on or off, keeping the factors enrolled: a
// verified authenticator or a passkey is enough to switch it on.
func (h *accountHandler) UpdateMfa(ctx context.Context, req *cairnv1.UpdateMfaRequest) (*cairnv1.UpdateMfaResponse, error) {
	codes, hashes, err := mfa.NewRecoveryCodes(rand.Reader, 0)
	if err != nil {
		return nil, err
	}
	p := principal(ctx)
	var issued bool
	if _, _, err := h.writeUser(ctx, p.Project, p.ID, func(st user.State) ([]*eventsv1.Envelope, error) {
		issued = false
		m := proto.CloneOf(st.GetMfa())
		if m == nil {
			m = &eventsv1.Mfa{}
		}
		if req.GetEnabled() {
			if !m.GetTotpVerified() && len(st.GetPasskeys()) == 0 {
				return nil, &domain.Error{Kind: domain.KindFailedPrecondition, Field: "enabled",
					Message: "MFA needs a second factor: verify an authenticator (CreateTotp) or register a passkey first"}
			}
			if len(m.GetRecoveryCodeHashes()) == 0 {
				m.RecoveryCodeHashes, issued = hashes, true
			}
		}
		m.Enabled = req.GetEnabled()
		return user.Decide(st, user.SetMfa{Mfa: m, Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	if !issued {
		codes = nil
	}
	return &cairnv1.UpdateMfaResponse{RecoveryCodes: codes}, nil
}
