package main

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/cairn-dev/cairn/mail/mailtest"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestOperatorInvitations: an administrator invites an email; the link
// arrives through the instance's SMTP (a real server on loopback), works
// once to set a password, expires with a revocation, and an invitation to
// an existing account adds its roles. Without --smtp-host the link is
// answered to the inviter instead.
func TestOperatorInvitations(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	in := startInstance(t, t.TempDir(), "--no-auth-rate-limits", "--smtp-host", srv.Host, "--smtp-port", strconv.Itoa(srv.Port),
		"--smtp-security", "none", "--smtp-sender", "console@cairn.example")
	ctx := context.Background()
	ops := in.operators()
	admin, _ := as(ctx, testAdminKey)
	for _, p := range []string{"alpha", "beta"} {
		if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	_, ownerTok := createOperator(t, in, "owner@example.com", map[string]string{"alpha": "owner"})
	owner, _ := as(ctx, ownerTok)

	// Only administrators invite: a project owner is refused.
	_, err := ops.InviteOperator(owner, &cairnv1.InviteOperatorRequest{Email: "new@example.com", Roles: []*cairnv1.OperatorRole{{ProjectId: "alpha", Role: "viewer"}}})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = ops.InviteOperator(admin, &cairnv1.InviteOperatorRequest{Email: "new@example.com", Roles: []*cairnv1.OperatorRole{{ProjectId: "nope", Role: "viewer"}}})
	wantField(t, err, connect.CodeInvalidArgument, "roles")

	inv, err := ops.InviteOperator(admin, &cairnv1.InviteOperatorRequest{Email: "New@Example.com", Name: "Nia",
		Roles: []*cairnv1.OperatorRole{{ProjectId: "alpha", Role: "developer"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.GetEmailed() || inv.GetInvitationUrl() != "" || !inv.GetOperator().GetInvitationPending() || inv.GetExistingAccount() {
		t.Fatalf("invite: %v", inv)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := srv.Wait(wctx, "new@example.com")
	if err != nil {
		t.Fatal(err)
	}
	link := m.FirstURL()
	if !strings.HasPrefix(link, in.url+"/console/invite?token=") || !strings.Contains(m.Subject, "invited") {
		t.Fatalf("invitation mail: %q %q", m.Subject, link)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("token")
	// The pending account is listed and cannot sign in.
	ls, err := ops.ListOperators(admin, &cairnv1.ListOperatorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, o := range ls.GetOperators() {
		if o.GetInvitationPending() {
			pending++
		}
	}
	if pending != 1 {
		t.Fatalf("pending invitations listed: %v", ls)
	}
	_, err = ops.CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "new@example.com", Password: "x"})
	wantCode(t, err, connect.CodeUnauthenticated)

	// A wrong or forged token learns nothing; a common password is refused.
	// The forged token differs in its last digit (deciding it before the
	// call: sending the real token here would spend the invitation).
	forged := token[:len(token)-1] + "0"
	if token[len(token)-1] == '0' {
		forged = token[:len(token)-1] + "1"
	}
	_, err = ops.AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: forged, Password: "nia's long password"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = ops.AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: "ci_garbage", Password: "nia's long password"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = ops.AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: token, Password: "password1"})
	wantField(t, err, connect.CodeInvalidArgument, "password")

	acc, err := ops.AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: token, Password: "nia's long password"})
	if err != nil || acc.GetOperator().GetInvitationPending() || len(acc.GetOperator().GetRoles()) != 1 {
		t.Fatalf("accept: %v %v", acc, err)
	}
	// Single use.
	_, err = ops.AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: token, Password: "another long password"})
	wantCode(t, err, connect.CodeNotFound)
	s, err := ops.CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "new@example.com", Password: "nia's long password"})
	if err != nil {
		t.Fatal(err)
	}
	nia, _ := as(ctx, s.GetSecret())
	if _, err := in.databases().CreateDatabase(nia, &cairnv1.CreateDatabaseRequest{ProjectId: "alpha", DatabaseId: "db", Name: "db"}); err != nil {
		t.Fatalf("the invited developer works in alpha: %v", err)
	}
	_, err = in.databases().CreateDatabase(nia, &cairnv1.CreateDatabaseRequest{ProjectId: "beta", DatabaseId: "db", Name: "db"})
	wantCode(t, err, connect.CodeNotFound)

	// An invitation to an existing account adds the roles at once and says so.
	again, err := ops.InviteOperator(admin, &cairnv1.InviteOperatorRequest{Email: "new@example.com", Roles: []*cairnv1.OperatorRole{{ProjectId: "beta", Role: "viewer"}}})
	if err != nil || !again.GetExistingAccount() || again.GetInvitationUrl() != "" || len(again.GetOperator().GetRoles()) != 2 {
		t.Fatalf("invite an account: %v %v", again, err)
	}
	if m, err := srv.Wait(wctx, "new@example.com"); err != nil || !strings.Contains(m.Subject, "access") {
		t.Fatalf("access mail: %q %v", m.Subject, err)
	}
	if _, err := in.databases().ListDatabases(nia, &cairnv1.ListDatabasesRequest{ProjectId: "beta"}); err != nil {
		t.Fatalf("the added role: %v", err)
	}
	_, err = ops.RevokeOperatorInvitation(admin, &cairnv1.RevokeOperatorInvitationRequest{OperatorId: acc.GetOperator().GetId()})
	wantCode(t, err, connect.CodeFailedPrecondition)

	// Inviting again replaces the link; a revoked invitation's link is dead.
	first, err := ops.InviteOperator(admin, &cairnv1.InviteOperatorRequest{Email: "late@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	m1, _ := srv.Wait(wctx, "late@example.com")
	if _, err := ops.InviteOperator(admin, &cairnv1.InviteOperatorRequest{Email: "late@example.com"}); err != nil {
		t.Fatal(err)
	}
	m2, _ := srv.Wait(wctx, "late@example.com")
	u1, _ := url.Parse(m1.FirstURL())
	_, err = ops.AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: u1.Query().Get("token"), Password: "late's long password"})
	wantCode(t, err, connect.CodeNotFound)
	if _, err := ops.RevokeOperatorInvitation(admin, &cairnv1.RevokeOperatorInvitationRequest{OperatorId: first.GetOperator().GetId()}); err != nil {
		t.Fatal(err)
	}
	u2, _ := url.Parse(m2.FirstURL())
	_, err = ops.AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: u2.Query().Get("token"), Password: "late's long password"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = ops.GetOperator(admin, &cairnv1.GetOperatorRequest{OperatorId: first.GetOperator().GetId()})
	wantCode(t, err, connect.CodeNotFound)
}

// TestOperatorInvitationWithoutSMTP: with no --smtp-host the inviter gets
// the link to pass on (the RPC's answer, the CLI's output), and it works.
func TestOperatorInvitationWithoutSMTP(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	admin, _ := as(ctx, testAdminKey)
	inv, err := in.operators().InviteOperator(admin, &cairnv1.InviteOperatorRequest{Email: "solo@example.com", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if inv.GetEmailed() || !strings.HasPrefix(inv.GetInvitationUrl(), in.url+"/console/invite?token=ci_") {
		t.Fatalf("invite without SMTP: %v", inv)
	}
	// The CLI prints the link to pass on.
	var out strings.Builder
	err = run(ctx, []string{"operators", "invite", "--email", "cli-invite@example.com", "--role", ""}, &out, io.Discard, func(k string) string {
		return map[string]string{"CAIRN_URL": in.url, "CAIRN_ADMIN_KEY": testAdminKey}[k]
	})
	if err != nil || !strings.Contains(out.String(), "invitation link (no instance SMTP") || !strings.Contains(out.String(), "/console/invite?token=ci_") {
		t.Fatalf("operators invite: %q %v", out.String(), err)
	}
	u, _ := url.Parse(inv.GetInvitationUrl())
	if _, err := in.operators().AcceptOperatorInvitation(ctx, &cairnv1.AcceptOperatorInvitationRequest{Token: u.Query().Get("token"), Password: "solo's long password"}); err != nil {
		t.Fatal(err)
	}
	if s, err := in.operators().CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "solo@example.com", Password: "solo's long password"}); err != nil || !s.GetOperator().GetAdmin() {
		t.Fatalf("sign in after accepting: %v %v", s, err)
	}
}
