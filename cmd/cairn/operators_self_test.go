package main

import (
	"context"
	"encoding/base32"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/cairn-dev/cairn/domain/mfa"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestOperatorSelfService: an account changes its own password (current
// one required, common ones refused, other sessions end), enrols TOTP and
// must then give a code (or a recovery code, once) to sign in, and an
// administrator resets a lost authenticator; sessions last
// --operator-session-ttl. (Sign-in rate limits are off: this test signs in
// more often than they allow.)
func TestOperatorSelfService(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--operator-session-ttl", "30m", "--no-auth-rate-limits")
	ctx := context.Background()
	ops := in.operators()
	admin, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "alpha", Name: "alpha"}); err != nil {
		t.Fatal(err)
	}
	id, tok1 := createOperator(t, in, "ana@example.com", map[string]string{"alpha": "viewer"})
	_, viewerTok := createOperator(t, in, "vic@example.com", map[string]string{"alpha": "viewer"})
	signInOp := func(password, code string) (*cairnv1.CreateOperatorSessionResponse, error) {
		return ops.CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "ana@example.com", Password: password, Code: code})
	}

	t.Run("session length", func(t *testing.T) {
		s, err := signInOp("operator password", "")
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(s.GetExpiresAt().AsTime()); d < 29*time.Minute || d > 31*time.Minute {
			t.Fatalf("session lasts %v, want 30m", d)
		}
	})

	t.Run("own password", func(t *testing.T) {
		s2, err := signInOp("operator password", "")
		if err != nil {
			t.Fatal(err)
		}
		me, _ := as(ctx, tok1)
		other, _ := as(ctx, s2.GetSecret())
		_, err = ops.UpdateCurrentOperatorPassword(me, &cairnv1.UpdateCurrentOperatorPasswordRequest{CurrentPassword: "wrong password", NewPassword: "a much better passphrase"})
		wantField(t, err, connect.CodePermissionDenied, "current_password")
		_, err = ops.UpdateCurrentOperatorPassword(me, &cairnv1.UpdateCurrentOperatorPasswordRequest{CurrentPassword: "operator password", NewPassword: "password1"})
		wantField(t, err, connect.CodeInvalidArgument, "new_password")
		// The admin key is no account.
		_, err = ops.UpdateCurrentOperatorPassword(admin, &cairnv1.UpdateCurrentOperatorPasswordRequest{CurrentPassword: "x", NewPassword: "a much better passphrase"})
		wantCode(t, err, connect.CodeFailedPrecondition)
		if _, err := ops.UpdateCurrentOperatorPassword(me, &cairnv1.UpdateCurrentOperatorPasswordRequest{CurrentPassword: "operator password", NewPassword: "a much better passphrase"}); err != nil {
			t.Fatal(err)
		}
		if _, err := ops.GetCurrentOperator(me, &cairnv1.GetCurrentOperatorRequest{}); err != nil {
			t.Fatalf("the session that changed the password ended: %v", err)
		}
		_, err = ops.GetCurrentOperator(other, &cairnv1.GetCurrentOperatorRequest{})
		wantCode(t, err, connect.CodeUnauthenticated)
		_, err = signInOp("operator password", "")
		wantCode(t, err, connect.CodeUnauthenticated)
		if _, err := signInOp("a much better passphrase", ""); err != nil {
			t.Fatal(err)
		}
	})

	const pw = "a much better passphrase"
	me, _ := as(ctx, tok1)
	var secret []byte
	var recovery []string
	t.Run("totp", func(t *testing.T) {
		c, err := ops.CreateCurrentOperatorTotp(me, &cairnv1.CreateCurrentOperatorTotpRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if want := "otpauth://totp/"; len(c.GetUri()) < len(want) || c.GetUri()[:len(want)] != want {
			t.Fatalf("uri %q", c.GetUri())
		}
		secret, _ = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(c.GetSecret())
		_, err = ops.VerifyCurrentOperatorTotp(me, &cairnv1.VerifyCurrentOperatorTotpRequest{Code: "000000"})
		wantCode(t, err, connect.CodePermissionDenied)
		step := mfa.Step(time.Now())
		v, err := ops.VerifyCurrentOperatorTotp(me, &cairnv1.VerifyCurrentOperatorTotpRequest{Code: mfa.Code(secret, step)})
		if err != nil {
			t.Fatal(err)
		}
		recovery = v.GetRecoveryCodes()
		if len(recovery) == 0 {
			t.Fatal("no recovery codes")
		}
		cur, err := ops.GetCurrentOperator(me, &cairnv1.GetCurrentOperatorRequest{})
		if err != nil || !cur.GetOperator().GetMfa() {
			t.Fatalf("current account after enrolment: %v %v", cur, err)
		}
		// The password alone is no longer enough, and the answer names the field.
		_, err = signInOp(pw, "")
		wantField(t, err, connect.CodeFailedPrecondition, "code")
		// A wrong password still says only that.
		_, err = signInOp("wrong password", "123456")
		wantCode(t, err, connect.CodeUnauthenticated)
		_, err = signInOp(pw, "000000")
		wantCode(t, err, connect.CodePermissionDenied)
		// The code used to verify is spent; the next one signs in.
		_, err = signInOp(pw, mfa.Code(secret, step))
		wantCode(t, err, connect.CodePermissionDenied)
		if _, err := signInOp(pw, mfa.Code(secret, step+1)); err != nil {
			t.Fatal(err)
		}
		// A recovery code signs in once.
		if _, err := signInOp(pw, recovery[0]); err != nil {
			t.Fatal(err)
		}
		_, err = signInOp(pw, recovery[0])
		wantCode(t, err, connect.CodePermissionDenied)

	})

	t.Run("reset by an administrator", func(t *testing.T) {
		viewer, _ := as(ctx, viewerTok)
		_, err := ops.ResetOperatorMfa(viewer, &cairnv1.ResetOperatorMfaRequest{OperatorId: id})
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = ops.ResetOperatorMfa(admin, &cairnv1.ResetOperatorMfaRequest{OperatorId: "nobody"})
		wantCode(t, err, connect.CodeNotFound)
		r, err := ops.ResetOperatorMfa(admin, &cairnv1.ResetOperatorMfaRequest{OperatorId: id})
		if err != nil || r.GetOperator().GetMfa() || r.GetOperator().GetSessions() != 0 {
			t.Fatalf("reset: %v %v", r, err)
		}
		_, err = ops.GetCurrentOperator(me, &cairnv1.GetCurrentOperatorRequest{})
		wantCode(t, err, connect.CodeUnauthenticated)
		s, err := signInOp(pw, "")
		if err != nil {
			t.Fatal(err)
		}
		// Enrol again, regenerate the recovery codes and switch it off with one.
		me2, _ := as(ctx, s.GetSecret())
		c, err := ops.CreateCurrentOperatorTotp(me2, &cairnv1.CreateCurrentOperatorTotpRequest{})
		if err != nil {
			t.Fatal(err)
		}
		sec, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(c.GetSecret())
		step := mfa.Step(time.Now())
		v, err := ops.VerifyCurrentOperatorTotp(me2, &cairnv1.VerifyCurrentOperatorTotpRequest{Code: mfa.Code(sec, step)})
		if err != nil {
			t.Fatal(err)
		}
		old := v.GetRecoveryCodes()
		// New recovery codes need a current TOTP code (not a recovery
		// code); the old ones stop working.
		_, err = ops.RegenerateCurrentOperatorRecoveryCodes(me2, &cairnv1.RegenerateCurrentOperatorRecoveryCodesRequest{Code: old[0]})
		wantCode(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), "code: ") {
			t.Errorf("a recovery code in place of a TOTP code: %v does not name the field", err)
		}
		_, err = ops.RegenerateCurrentOperatorRecoveryCodes(me2, &cairnv1.RegenerateCurrentOperatorRecoveryCodesRequest{Code: "000000"})
		wantCode(t, err, connect.CodePermissionDenied)
		rc, err := ops.RegenerateCurrentOperatorRecoveryCodes(me2, &cairnv1.RegenerateCurrentOperatorRecoveryCodesRequest{Code: mfa.Code(sec, step+1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rc.GetRecoveryCodes()) != len(old) || rc.GetRecoveryCodes()[0] == old[0] {
			t.Fatalf("regenerated codes %v (old %v)", rc.GetRecoveryCodes(), old)
		}
		// Switched off with a recovery code: an old one is refused, a new one works.
		_, err = ops.DeleteCurrentOperatorTotp(me2, &cairnv1.DeleteCurrentOperatorTotpRequest{Code: old[1]})
		wantCode(t, err, connect.CodePermissionDenied)
		if _, err := ops.DeleteCurrentOperatorTotp(me2, &cairnv1.DeleteCurrentOperatorTotpRequest{Code: rc.GetRecoveryCodes()[1]}); err != nil {
			t.Fatalf("a regenerated recovery code: %v", err)
		}
		if _, err := signInOp(pw, ""); err != nil {
			t.Fatalf("sign-in after MFA off: %v", err)
		}
	})
}

// wantField checks an error's code and the field its details name.
func wantField(t *testing.T, err error, code connect.Code, field string) {
	t.Helper()
	wantCode(t, err, code)
	var ce *connect.Error
	// A domain error's message starts with the field it names.
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message(), field+": ") {
		t.Fatalf("error %v does not name the field %q", err, field)
	}
}
