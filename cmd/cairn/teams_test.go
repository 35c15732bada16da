package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain/team"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func (c clients) teams() cairnv1connect.TeamsServiceClient {
	return cairnv1connect.NewTeamsServiceClient(c.client)
}

// TestTeamsLifecycle drives teams and memberships through a real server
// with a project key, as a server-side app would, then checks that the read
// models equal a fresh rebuild from the log.
func TestTeamsLifecycle(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	// Invitation links may only point at the project's own app.
	if _, err := in.users().UpdateAuthSettings(op, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "acme",
		Settings: &cairnv1.AuthSettings{AllowedOrigins: []string{"https://app.example.com"}}}); err != nil {
		t.Fatal(err)
	}
	writer, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "acme", Name: "w", Scopes: &cairnv1.Scopes{Scopes: []string{"teams.read", "teams.write"}}})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "acme", Name: "r", Scopes: &cairnv1.Scopes{Scopes: []string{"teams.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	w, info := as(ctx, writer.GetSecret())
	r, _ := as(ctx, reader.GetSecret())
	ts := in.teams()

	// Teams: create (chosen and generated id), get, list, search, update.
	prefs, _ := structpb.NewStruct(map[string]any{"theme": "dark", "size": 3})
	red, err := ts.CreateTeam(w, &cairnv1.CreateTeamRequest{ProjectId: "acme", TeamId: "red", Name: "Red Team", Prefs: prefs})
	if err != nil {
		t.Fatal(err)
	}
	if red.GetTeam().GetId() != "red" || red.GetTeam().GetPrefs().GetFields()["theme"].GetStringValue() != "dark" || info.ResponseHeader().Get("Cairn-Seq") == "" {
		t.Fatalf("bad team %v", red)
	}
	gen, err := ts.CreateTeam(w, &cairnv1.CreateTeamRequest{ProjectId: "acme", TeamId: "unique()", Name: "Blue"})
	if err != nil || len(gen.GetTeam().GetId()) != 26 || len(gen.GetTeam().GetPrefs().GetFields()) != 0 {
		t.Fatalf("generated team: %v %v", gen, err)
	}
	_, err = ts.CreateTeam(w, &cairnv1.CreateTeamRequest{ProjectId: "acme", TeamId: "red", Name: "again"})
	wantCode(t, err, connect.CodeAlreadyExists)
	_, err = ts.CreateTeam(r, &cairnv1.CreateTeamRequest{ProjectId: "acme", Name: "by a reader"})
	wantCode(t, err, connect.CodePermissionDenied)

	page, err := ts.ListTeams(r, &cairnv1.ListTeamsRequest{ProjectId: "acme", PageSize: 1})
	if err != nil || len(page.GetTeams()) != 1 || page.GetNextPageToken() == "" {
		t.Fatalf("page 1: %v %v", page, err)
	}
	page2, err := ts.ListTeams(r, &cairnv1.ListTeamsRequest{ProjectId: "acme", PageSize: 1, PageToken: page.GetNextPageToken()})
	if err != nil || len(page2.GetTeams()) != 1 || page2.GetNextPageToken() != "" || page2.GetTeams()[0].GetId() == page.GetTeams()[0].GetId() {
		t.Fatalf("page 2: %v %v", page2, err)
	}
	found, err := ts.ListTeams(r, &cairnv1.ListTeamsRequest{ProjectId: "acme", Search: "red t"})
	if err != nil || len(found.GetTeams()) != 1 || found.GetTeams()[0].GetId() != "red" {
		t.Fatalf("search: %v %v", found, err)
	}
	upd, err := ts.UpdateTeam(w, &cairnv1.UpdateTeamRequest{ProjectId: "acme", TeamId: "red", Name: "Crimson"})
	if err != nil || upd.GetTeam().GetName() != "Crimson" || upd.GetTeam().GetPrefs().GetFields()["size"].GetNumberValue() != 3 {
		t.Fatalf("rename: %v %v", upd, err)
	}
	newPrefs, _ := structpb.NewStruct(map[string]any{"nested": map[string]any{"a": []any{1, "x"}}})
	up, err := ts.UpdateTeamPrefs(w, &cairnv1.UpdateTeamPrefsRequest{ProjectId: "acme", TeamId: "red", Prefs: newPrefs})
	if err != nil || len(up.GetTeam().GetPrefs().GetFields()) != 1 || up.GetTeam().GetName() != "Crimson" {
		t.Fatalf("prefs: %v %v", up, err)
	}
	got, err := ts.GetTeam(r, &cairnv1.GetTeamRequest{ProjectId: "acme", TeamId: "red"})
	if err != nil || got.GetTeam().GetPrefs().GetFields()["nested"] == nil {
		t.Fatalf("read-your-write: %v %v", got, err)
	}
	_, err = ts.UpdateTeam(r, &cairnv1.UpdateTeamRequest{ProjectId: "acme", TeamId: "red", Name: "x"})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = ts.UpdateTeam(w, &cairnv1.UpdateTeamRequest{ProjectId: "acme", TeamId: "nope", Name: "x"})
	wantCode(t, err, connect.CodeNotFound)

	// Memberships: a user added directly is confirmed at once, once.
	alice, err := ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", UserId: "alice", Roles: []string{"owner", "dev"}})
	if err != nil {
		t.Fatal(err)
	}
	am := alice.GetMembership()
	if !am.GetConfirmed() || am.GetUserId() != "alice" || am.GetId() != team.MemberID("red", "alice") || len(am.GetRoles()) != 2 || alice.GetSecret() != "" {
		t.Fatalf("bad membership %v", alice)
	}
	_, err = ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", UserId: "alice"})
	wantCode(t, err, connect.CodeAlreadyExists)
	_, err = ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "nope", UserId: "alice"})
	wantCode(t, err, connect.CodeNotFound)

	// An invitation waits for its secret; the same address (any case) is
	// invited once; a retried request with its Idempotency-Key answers the
	// same secret.
	ic, iinfo := as(ctx, writer.GetSecret())
	iinfo.RequestHeader().Set("Idempotency-Key", "invite-bob-1")
	bob, err := ts.CreateMembership(ic, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", Email: "Bob@Example.com", Roles: []string{"dev"}, Url: "https://app.example.com/join"})
	if err != nil {
		t.Fatal(err)
	}
	bm := bob.GetMembership()
	if bm.GetConfirmed() || bm.GetUserId() != "" || bm.GetEmail() != "bob@example.com" || bob.GetSecret() == "" || bm.GetJoinedAt() != nil {
		t.Fatalf("bad invitation %v", bob)
	}
	ic2, iinfo2 := as(ctx, writer.GetSecret())
	iinfo2.RequestHeader().Set("Idempotency-Key", "invite-bob-1")
	again, err := ts.CreateMembership(ic2, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", Email: "Bob@Example.com", Roles: []string{"dev"}})
	if err != nil || again.GetSecret() != bob.GetSecret() || again.GetMembership().GetId() != bm.GetId() {
		t.Fatalf("idempotent retry: %v %v", again, err)
	}
	_, err = ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", Email: "bob@example.COM"})
	wantCode(t, err, connect.CodeAlreadyExists)

	_, err = ts.AcceptMembership(w, &cairnv1.AcceptMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: bm.GetId(), UserId: "bob", Secret: "guess"})
	wantCode(t, err, connect.CodePermissionDenied)
	acc, err := ts.AcceptMembership(w, &cairnv1.AcceptMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: bm.GetId(), UserId: "bob", Secret: bob.GetSecret()})
	if err != nil || !acc.GetMembership().GetConfirmed() || acc.GetMembership().GetUserId() != "bob" || acc.GetMembership().GetJoinedAt() == nil {
		t.Fatalf("accept: %v %v", acc, err)
	}
	_, err = ts.AcceptMembership(w, &cairnv1.AcceptMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: bm.GetId(), UserId: "bob", Secret: bob.GetSecret()})
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Bob is a member through the invitation: adding him directly too is refused.
	_, err = ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", UserId: "bob"})
	wantCode(t, err, connect.CodeAlreadyExists)
	// Carol is invited but never accepts.
	if _, err := ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", Email: "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	// Bob is in the other team too.
	if _, err := ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: gen.GetTeam().GetId(), UserId: "bob", Roles: []string{"owner"}}); err != nil {
		t.Fatal(err)
	}

	ms, err := ts.ListMemberships(r, &cairnv1.ListMembershipsRequest{ProjectId: "acme", TeamId: "red", PageSize: 2})
	if err != nil || len(ms.GetMemberships()) != 2 || ms.GetNextPageToken() == "" {
		t.Fatalf("memberships page 1: %v %v", ms, err)
	}
	ms2, err := ts.ListMemberships(r, &cairnv1.ListMembershipsRequest{ProjectId: "acme", TeamId: "red", PageSize: 2, PageToken: ms.GetNextPageToken()})
	if err != nil || len(ms2.GetMemberships()) != 1 || ms2.GetNextPageToken() != "" {
		t.Fatalf("memberships page 2: %v %v", ms2, err)
	}
	roles, err := ts.UpdateMembership(w, &cairnv1.UpdateMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: bm.GetId(), Roles: []string{"admin", "dev"}})
	if err != nil || len(roles.GetMembership().GetRoles()) != 2 || roles.GetMembership().GetRoles()[0] != "admin" {
		t.Fatalf("update roles: %v %v", roles, err)
	}
	_, err = ts.UpdateMembership(r, &cairnv1.UpdateMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: bm.GetId()})
	wantCode(t, err, connect.CodePermissionDenied)
	gm, err := ts.GetMembership(r, &cairnv1.GetMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: bm.GetId()})
	if err != nil || gm.GetMembership().GetRoles()[0] != "admin" {
		t.Fatalf("get membership: %v %v", gm, err)
	}
	um, err := ts.ListUserMemberships(r, &cairnv1.ListUserMembershipsRequest{ProjectId: "acme", UserId: "bob"})
	if err != nil || len(um.GetMemberships()) != 2 {
		t.Fatalf("bob's memberships: %v %v", um, err)
	}

	// The log names events as Appwrite does, and never shows the secret hash.
	evs, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: "acme", Subject: "teams.red.memberships.*.*"})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, e := range evs.GetEvents() {
		subjects = append(subjects, strings.TrimPrefix(e.GetSubject(), "teams.red.memberships."))
		if m := e.GetEnvelope().GetMembershipCreated().GetMembership(); m != nil && len(m.GetInviteSecretHash()) != 0 {
			t.Fatalf("the audit log shows an invitation's secret hash: %v", e)
		}
	}
	if len(subjects) != 5 || !strings.HasSuffix(subjects[0], ".create") || !strings.HasSuffix(subjects[2], ".update") {
		t.Fatalf("membership events: %v", subjects)
	}

	// Leaving, then deleting the team with its memberships.
	if _, err := ts.DeleteMembership(w, &cairnv1.DeleteMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: am.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = ts.DeleteMembership(w, &cairnv1.DeleteMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: am.GetId()})
	wantCode(t, err, connect.CodeNotFound)
	if um, _ := ts.ListUserMemberships(r, &cairnv1.ListUserMembershipsRequest{ProjectId: "acme", UserId: "alice"}); len(um.GetMemberships()) != 0 {
		t.Fatalf("alice still a member: %v", um)
	}
	_, err = ts.DeleteTeam(r, &cairnv1.DeleteTeamRequest{ProjectId: "acme", TeamId: "red"})
	wantCode(t, err, connect.CodePermissionDenied)
	if _, err := ts.DeleteTeam(w, &cairnv1.DeleteTeamRequest{ProjectId: "acme", TeamId: "red"}); err != nil {
		t.Fatal(err)
	}
	_, err = ts.GetTeam(r, &cairnv1.GetTeamRequest{ProjectId: "acme", TeamId: "red"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = ts.GetMembership(r, &cairnv1.GetMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: bm.GetId()})
	wantCode(t, err, connect.CodeNotFound)
	um, err = ts.ListUserMemberships(r, &cairnv1.ListUserMembershipsRequest{ProjectId: "acme", UserId: "bob"})
	if err != nil || len(um.GetMemberships()) != 1 || um.GetMemberships()[0].GetTeamId() != gen.GetTeam().GetId() {
		t.Fatalf("bob's memberships after red went: %v %v", um, err)
	}

	// A team created again under the same id starts with no members, and
	// the old members can join it again.
	if _, err := ts.CreateTeam(w, &cairnv1.CreateTeamRequest{ProjectId: "acme", TeamId: "red", Name: "Red again"}); err != nil {
		t.Fatal(err)
	}
	if ms, err := ts.ListMemberships(r, &cairnv1.ListMembershipsRequest{ProjectId: "acme", TeamId: "red"}); err != nil || len(ms.GetMemberships()) != 0 {
		t.Fatalf("the new red has old members: %v %v", ms, err)
	}
	_, err = ts.AcceptMembership(w, &cairnv1.AcceptMembershipRequest{ProjectId: "acme", TeamId: "red", MembershipId: team.InviteID("red", "carol@example.com"), UserId: "carol", Secret: "x"})
	wantCode(t, err, connect.CodeNotFound)
	back, err := ts.CreateMembership(w, &cairnv1.CreateMembershipRequest{ProjectId: "acme", TeamId: "red", UserId: "bob", Roles: []string{"owner"}})
	if err != nil || back.GetMembership().GetRoles()[0] != "owner" {
		t.Fatalf("re-join: %v %v", back, err)
	}

	// The read models equal a fresh rebuild from the log.
	in.stop()
	n, err := openNode(ctx, &config{DataDir: dir, Sync: defaultSync}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	checkRebuild(t, n, "acme", "teams")
}
