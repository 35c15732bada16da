package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestBadInput: every malformed request gets a clear error naming what was
// wrong, and changes nothing.
func TestBadInput(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "p1", Name: "P1"}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 200)
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"project id with upper case", func() error {
			_, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "Acme", Name: "x"})
			return err
		}, "project_id"},
		{"project id with a dot", func() error {
			_, err := in.projects().GetProject(op, &cairnv1.GetProjectRequest{ProjectId: "a.b"})
			return err
		}, "project_id"},
		{"empty name", func() error {
			_, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "ok", Name: ""})
			return err
		}, "name"},
		{"negative limit", func() error {
			_, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "ok", Name: "x", Limits: &cairnv1.ProjectLimits{MaxStreamBytes: -1}})
			return err
		}, "limits.max_stream_bytes"},
		{"unknown scope", func() error {
			_, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "p1", Name: "k", Scopes: &cairnv1.Scopes{Scopes: []string{"keys.*"}}})
			return err
		}, "scopes"},
		{"missing scopes", func() error {
			_, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "p1", Name: "k"})
			return err
		}, "scopes"},
		{"key id with a dot", func() error {
			_, err := in.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: "p1", KeyId: "a.b"})
			return err
		}, "key_id"},
		{"name too long", func() error {
			_, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "p1", Name: long, Scopes: &cairnv1.Scopes{}})
			return err
		}, "name"},
		{"subject filter escaping", func() error {
			_, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: "p1", Subject: ">.x"})
			return err
		}, "subject"},
		{"subject with space", func() error {
			_, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: "p1", Subject: "keys .>"})
			return err
		}, "subject"},
		{"bad page token", func() error {
			_, err := in.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: "p1", PageToken: "%%%"})
			return err
		}, "page_token"},
		{"page size too large", func() error {
			_, err := in.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: "p1", PageSize: 5000})
			return err
		}, "page_size"},
		{"team id with a dot", func() error {
			_, err := in.teams().CreateTeam(op, &cairnv1.CreateTeamRequest{ProjectId: "p1", TeamId: "a.b", Name: "x"})
			return err
		}, "team_id"},
		{"empty team name", func() error {
			_, err := in.teams().CreateTeam(op, &cairnv1.CreateTeamRequest{ProjectId: "p1", Name: ""})
			return err
		}, "name"},
		{"team role with a slash", func() error {
			_, err := in.teams().CreateTeam(op, &cairnv1.CreateTeamRequest{ProjectId: "p1", Name: "x", Roles: []string{"a/b"}})
			return err
		}, "roles"},
		{"prefs too large", func() error {
			big, _ := structpb.NewStruct(map[string]any{"x": strings.Repeat("y", 70<<10)})
			_, err := in.teams().CreateTeam(op, &cairnv1.CreateTeamRequest{ProjectId: "p1", TeamId: "big", Name: "x", Prefs: big})
			return err
		}, "prefs"},
		{"missing prefs", func() error {
			_, err := in.teams().UpdateTeamPrefs(op, &cairnv1.UpdateTeamPrefsRequest{ProjectId: "p1", TeamId: "t"})
			return err
		}, "prefs"},
		{"membership for both a user and an email", func() error {
			_, err := in.teams().CreateMembership(op, &cairnv1.CreateMembershipRequest{ProjectId: "p1", TeamId: "t", UserId: "u", Email: "a@b.c"})
			return err
		}, "user_id"},
		{"membership for nobody", func() error {
			_, err := in.teams().CreateMembership(op, &cairnv1.CreateMembershipRequest{ProjectId: "p1", TeamId: "t"})
			return err
		}, "email"},
		{"malformed email", func() error {
			_, err := in.teams().CreateMembership(op, &cairnv1.CreateMembershipRequest{ProjectId: "p1", TeamId: "t", Email: "not an email"})
			return err
		}, "email"},
		{"invitation url not http", func() error {
			_, err := in.teams().CreateMembership(op, &cairnv1.CreateMembershipRequest{ProjectId: "p1", TeamId: "t", Email: "a@b.c", Url: "javascript:alert(1)"})
			return err
		}, "url"},
		{"membership role too long", func() error {
			_, err := in.teams().UpdateMembership(op, &cairnv1.UpdateMembershipRequest{ProjectId: "p1", TeamId: "t", MembershipId: "m", Roles: []string{long}})
			return err
		}, "roles"},
		{"accept without secret", func() error {
			_, err := in.teams().AcceptMembership(op, &cairnv1.AcceptMembershipRequest{ProjectId: "p1", TeamId: "t", MembershipId: "m", UserId: "u"})
			return err
		}, "secret"},
		{"user memberships of a bad user id", func() error {
			_, err := in.teams().ListUserMemberships(op, &cairnv1.ListUserMembershipsRequest{ProjectId: "p1", UserId: "a b"})
			return err
		}, "user_id"},
		{"idempotency key too long", func() error {
			c, info := as(ctx, testAdminKey)
			info.RequestHeader().Set("Idempotency-Key", strings.Repeat("k", 300))
			_, err := in.keys().CreateKey(c, &cairnv1.CreateKeyRequest{ProjectId: "p1", Name: "k", Scopes: &cairnv1.Scopes{}})
			return err
		}, "Idempotency-Key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			wantCode(t, err, connect.CodeInvalidArgument)
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error does not name %q: %v", c.field, err)
			}
		})
	}
	// Nothing was written by any of them.
	ks, err := in.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: "p1"})
	if err != nil || len(ks.GetKeys()) != 0 {
		t.Fatalf("bad input wrote keys: %v %v", ks, err)
	}
	if ts, err := in.teams().ListTeams(op, &cairnv1.ListTeamsRequest{ProjectId: "p1"}); err != nil || len(ts.GetTeams()) != 0 {
		t.Fatalf("bad input wrote teams: %v %v", ts, err)
	}
	ps, err := in.projects().ListProjects(op, &cairnv1.ListProjectsRequest{})
	if err != nil || len(ps.GetProjects()) != 1 {
		t.Fatalf("bad input wrote projects: %v %v", ps, err)
	}

	post := func(contentType string, body []byte) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, in.url+"/cairn.v1.ProjectsService/GetProject", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	t.Run("wrong content type", func(t *testing.T) {
		res, _ := post("text/plain", []byte(`{"projectId":"p1"}`))
		if res.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("want 415, got %d", res.StatusCode)
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		res, body := post("application/json", []byte(`{"projectId":`))
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_argument") {
			t.Fatalf("want 400 invalid_argument, got %d %s", res.StatusCode, body)
		}
	})
	t.Run("oversize body", func(t *testing.T) {
		big := []byte(`{"projectId":"p1","name":"` + strings.Repeat("x", 2<<20) + `"}`)
		res, body := post("application/json", big)
		if res.StatusCode < 400 || res.StatusCode >= 500 && res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversize body accepted or crashed: %d %.200s", res.StatusCode, body)
		}
		if !strings.Contains(body, "resource_exhausted") && res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("want resource_exhausted, got %d %.300s", res.StatusCode, body)
		}
	})
	t.Run("JSON call works", func(t *testing.T) {
		res, body := post("application/json", []byte(`{"projectId":"p1"}`))
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"id":"p1"`) {
			t.Fatalf("plain JSON call failed: %d %s", res.StatusCode, body)
		}
	})
}
