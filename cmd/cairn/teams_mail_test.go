package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/cairn-dev/cairn/api"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// recordingMailer stands in for the mail system (built separately): it
// records what the API hands over, and fails when told to.
type recordingMailer struct {
	mu   sync.Mutex
	sent []api.TeamInvite
	fail error
}

func (m *recordingMailer) SendTeamInvite(_ context.Context, inv api.TeamInvite) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.sent = append(m.sent, inv)
	return nil
}

// TestTeamInviteMailer: with a mailer configured, an invitation is handed to
// it with the secret whose hash was stored, and that secret accepts it. The
// rest is the real node (embedded NATS, Badger) behind loopback HTTP.
func TestTeamInviteMailer(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := openNode(ctx, &config{DataDir: t.TempDir(), Sync: defaultSync}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	if err := n.reads.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mailer := &recordingMailer{}
	h, err := api.New(api.Config{Log: n.log, Reads: n.reads, Store: n.store, AdminKey: testAdminKey,
		MasterKey: make([]byte, 32), Logger: quiet, InviteMailer: mailer})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := connect.NewClient(connecthttp.NewTransport(srv.Client(), srv.URL))
	op, _ := as(ctx, testAdminKey)
	if _, err := cairnv1connect.NewProjectsServiceClient(client).CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cairnv1connect.NewUsersServiceClient(client).UpdateAuthSettings(op, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "acme",
		Settings: &cairnv1.AuthSettings{AllowedOrigins: []string{"https://app.example.com"}}}); err != nil {
		t.Fatal(err)
	}
	ts := cairnv1connect.NewTeamsServiceClient(client)
	if _, err := ts.CreateTeam(op, &cairnv1.CreateTeamRequest{ProjectId: "acme", TeamId: "red", Name: "Red"}); err != nil {
		t.Fatal(err)
	}
	res, err := ts.CreateMembership(op, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", Email: "dana@example.com",
		Roles: []string{"dev"}, Url: "https://app.example.com/join", Name: "Dana"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mailer.sent) != 1 {
		t.Fatalf("%d invitations mailed, want 1", len(mailer.sent))
	}
	inv := mailer.sent[0]
	if inv.Secret != res.GetSecret() || inv.Membership.GetId() != res.GetMembership().GetId() || inv.Team.GetName() != "Red" ||
		inv.URL != "https://app.example.com/join" || inv.Name != "Dana" || inv.ProjectID != "acme" {
		t.Fatalf("mailed %+v", inv)
	}
	if _, err := url.Parse(inv.URL); err != nil {
		t.Fatal(err)
	}
	acc, err := ts.AcceptMembership(op, &cairnv1.AcceptMembershipRequest{ProjectId: "acme", TeamId: "red",
		MembershipId: inv.Membership.GetId(), UserId: "dana", Secret: inv.Secret})
	if err != nil || !acc.GetMembership().GetConfirmed() {
		t.Fatalf("accept with the mailed secret: %v %v", acc, err)
	}

	// A mail failure is Unavailable, saying the invitation stays stored
	// (withdraw it with DeleteMembership and invite again).
	mailer.fail = errors.New("smtp: connection refused")
	_, err = ts.CreateMembership(op, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", Email: "eve@example.com"})
	wantCode(t, err, connect.CodeUnavailable)
	if !strings.Contains(err.Error(), "DeleteMembership") {
		t.Fatalf("error does not say what to do: %v", err)
	}
	ms, err := ts.ListMemberships(op, &cairnv1.ListMembershipsRequest{ProjectId: "acme", TeamId: "red"})
	if err != nil || len(ms.GetMemberships()) != 2 {
		t.Fatalf("memberships: %v %v", ms, err)
	}
}
