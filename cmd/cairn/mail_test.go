package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/cairn-dev/cairn/mail/mailtest"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// linkParams waits for the next mail to addr and returns the user id and
// secret its link carries.
func linkParams(t *testing.T, srv *mailtest.Server, addr, wantPrefix string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := srv.Wait(ctx, addr)
	if err != nil {
		t.Fatalf("no mail to %s: %v", addr, err)
	}
	u, err := url.Parse(m.FirstURL())
	if err != nil || u.Scheme+"://"+u.Host+u.Path != wantPrefix {
		t.Fatalf("mail to %s links to %q, want %s…: %s", addr, m.FirstURL(), wantPrefix, m.Text)
	}
	return u.Query().Get("user_id"), u.Query().Get("secret")
}

// TestMailFlows runs verification, recovery, magic-URL and email-code
// sign-in through a real SMTP server started by the test.
func TestMailFlows(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	key := newProjectWithKey(t, in, "mailer", "users.read", "users.write")
	k, _ := as(ctx, key)
	g, _ := guest(ctx, "mailer", "")

	// Without SMTP settings the mail flows say so.
	_, err := in.account().CreateRecovery(g, &cairnv1.CreateRecoveryRequest{Email: "ann@example.com", Url: "https://app.example/reset"})
	if c := connect.CodeOf(err); c != connect.CodeInvalidArgument && c != connect.CodeFailedPrecondition {
		t.Fatalf("recovery without settings: %v", err)
	}

	srv := mailtest.Start(t, mailtest.Options{Username: "smtp-user", Password: "smtp-pass"})
	settings := &cairnv1.AuthSettings{AllowedOrigins: []string{"https://app.example"},
		Smtp: &cairnv1.SmtpSettings{Host: srv.Host, Port: int32(srv.Port), Username: "smtp-user", Password: "smtp-pass",
			SenderEmail: "no-reply@app.example", SenderName: "App", Security: "none"}}
	if _, err := in.users().UpdateAuthSettings(k, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "mailer", Settings: settings}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "ann@example.com", Password: "ann's password", Name: "Ann"}); err != nil {
		t.Fatal(err)
	}
	s := signIn(t, in, "mailer", "ann@example.com", "ann's password")
	me, _ := guest(ctx, "mailer", s.GetSecret())

	// Verification: links only to the project's own origins; single use.
	_, err = in.account().CreateVerification(me, &cairnv1.CreateVerificationRequest{Url: "https://evil.example/verify"})
	wantCode(t, err, connect.CodeInvalidArgument)
	if _, err := in.account().CreateVerification(me, &cairnv1.CreateVerificationRequest{Url: "https://app.example/verify"}); err != nil {
		t.Fatal(err)
	}
	uid, secret := linkParams(t, srv, "ann@example.com", "https://app.example/verify")
	if _, err := in.account().ConfirmVerification(g, &cairnv1.ConfirmVerificationRequest{UserId: uid, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	if a, err := in.account().GetAccount(me, &cairnv1.GetAccountRequest{}); err != nil || !a.GetUser().GetEmailVerified() {
		t.Fatalf("not verified: %v %v", a, err)
	}
	_, err = in.account().ConfirmVerification(g, &cairnv1.ConfirmVerificationRequest{UserId: uid, Secret: secret})
	wantCode(t, err, connect.CodeUnauthenticated)

	// Recovery: the same answer for a known and an unknown address; the
	// link sets a new password and signs every session out.
	for _, e := range []string{"ann@example.com", "nobody@example.com"} {
		if _, err := in.account().CreateRecovery(g, &cairnv1.CreateRecoveryRequest{Email: e, Url: "https://app.example/reset"}); err != nil {
			t.Fatalf("recovery for %s: %v", e, err)
		}
	}
	uid, secret = linkParams(t, srv, "ann@example.com", "https://app.example/reset")
	if _, err := in.account().ConfirmRecovery(g, &cairnv1.ConfirmRecoveryRequest{UserId: uid, Secret: secret, Password: "brand new password"}); err != nil {
		t.Fatal(err)
	}
	_, err = in.account().GetAccount(me, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	signIn(t, in, "mailer", "ann@example.com", "brand new password")
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if m, err := srv.Wait(wctx, "nobody@example.com"); err == nil {
		t.Fatalf("recovery mailed an address without an account: %v", m.Subject)
	}
	cancel()

	// Magic URL: a new address gets an account (no password), verified by
	// the link it used.
	tok, err := in.account().CreateMagicURLToken(g, &cairnv1.CreateMagicURLTokenRequest{Email: "bob@example.com", Url: "https://app.example/magic"})
	if err != nil {
		t.Fatal(err)
	}
	uid, secret = linkParams(t, srv, "bob@example.com", "https://app.example/magic")
	if uid != tok.GetUserId() {
		t.Fatalf("link names user %q, answer %q", uid, tok.GetUserId())
	}
	bs, err := in.account().CreateSession(g, &cairnv1.CreateSessionRequest{UserId: uid, Secret: secret})
	if err != nil || bs.GetSession().GetProvider() != "magic-url" {
		t.Fatalf("magic session: %v %v", bs, err)
	}
	bctx, _ := guest(ctx, "mailer", bs.GetSecret())
	if a, err := in.account().GetAccount(bctx, &cairnv1.GetAccountRequest{}); err != nil || !a.GetUser().GetEmailVerified() || a.GetUser().GetHasPassword() {
		t.Fatalf("magic account: %v %v", a, err)
	}
	_, err = in.account().CreateSession(g, &cairnv1.CreateSessionRequest{UserId: uid, Secret: secret})
	wantCode(t, err, connect.CodeUnauthenticated)

	// Email code: wrong codes count, the right one signs in once.
	et, err := in.account().CreateEmailToken(g, &cairnv1.CreateEmailTokenRequest{Email: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := srv.Wait(wctx, "ann@example.com")
	if err != nil || len(m.Code()) != 6 {
		t.Fatalf("code mail: %v %q", err, m.Text)
	}
	if time.Until(et.GetExpiresAt().AsTime()) > 10*time.Minute {
		t.Fatalf("code lives longer than 10 minutes: %v", et.GetExpiresAt().AsTime())
	}
	wrong := "000000"
	if m.Code() == wrong {
		wrong = "111111"
	}
	_, err = in.account().CreateSession(g, &cairnv1.CreateSessionRequest{UserId: et.GetUserId(), Secret: wrong})
	wantCode(t, err, connect.CodeUnauthenticated)
	cs, err := in.account().CreateSession(g, &cairnv1.CreateSessionRequest{UserId: et.GetUserId(), Secret: m.Code()})
	if err != nil || cs.GetSession().GetProvider() != "email-otp" {
		t.Fatalf("code session: %v %v", cs, err)
	}
	_, err = in.account().CreateSession(g, &cairnv1.CreateSessionRequest{UserId: et.GetUserId(), Secret: m.Code()})
	wantCode(t, err, connect.CodeUnauthenticated)
}
