package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func (c clients) operators() cairnv1connect.OperatorsServiceClient {
	return cairnv1connect.NewOperatorsServiceClient(c.client)
}

// createOperator makes an operator account with roles and signs it in,
// returning its console session token.
func createOperator(t *testing.T, in *instance, email string, roles map[string]string) (id, token string) {
	t.Helper()
	op, _ := as(context.Background(), testAdminKey)
	req := &cairnv1.CreateOperatorRequest{Email: email, Name: email, Password: "operator password"}
	for p, r := range roles {
		req.Roles = append(req.Roles, &cairnv1.OperatorRole{ProjectId: p, Role: r})
	}
	res, err := in.operators().CreateOperator(op, req)
	if err != nil {
		t.Fatalf("create operator %s: %v", email, err)
	}
	s, err := in.operators().CreateOperatorSession(context.Background(), &cairnv1.CreateOperatorSessionRequest{Email: email, Password: "operator password"})
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	return res.GetOperator().GetId(), s.GetSecret()
}

func projectIDs(ps []*cairnv1.Project) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.GetId())
	}
	return ids
}

// TestOperatorAccounts: accounts act through their per-project roles, in
// the keys' access path: a developer works in its project and learns
// nothing of others, a viewer cannot write, a role change and a revocation
// apply to the very next request, and the log names the account.
func TestOperatorAccounts(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	admin, _ := as(ctx, testAdminKey)
	for _, id := range []string{"alpha", "beta"} {
		if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	devID, devToken := createOperator(t, in, "Dev@Example.com", map[string]string{"alpha": "developer"})
	_, viewerToken := createOperator(t, in, "viewer@example.com", map[string]string{"alpha": "viewer"})
	dev, _ := as(ctx, devToken)
	viewer, _ := as(ctx, viewerToken)

	t.Run("developer works in its project", func(t *testing.T) {
		if _, err := in.databases().CreateDatabase(dev, &cairnv1.CreateDatabaseRequest{ProjectId: "alpha", DatabaseId: "db", Name: "db"}); err != nil {
			t.Fatal(err)
		}
		if _, err := in.keys().ListKeys(dev, &cairnv1.ListKeysRequest{ProjectId: "alpha"}); err != nil {
			t.Fatal(err)
		}
		if _, err := in.projects().GetProject(dev, &cairnv1.GetProjectRequest{ProjectId: "alpha"}); err != nil {
			t.Fatal(err)
		}
		ps, err := in.projects().ListProjects(dev, &cairnv1.ListProjectsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got := projectIDs(ps.GetProjects()); len(got) != 1 || got[0] != "alpha" {
			t.Fatalf("developer of alpha lists %v", got)
		}
		cur, err := in.operators().GetCurrentOperator(dev, &cairnv1.GetCurrentOperatorRequest{})
		if err != nil || cur.GetAdmin() || cur.GetOperator().GetEmail() != "dev@example.com" || cur.GetOperator().GetRoles()[0].GetRole() != "developer" {
			t.Fatalf("current operator: %v %v", cur, err)
		}
	})
	t.Run("developer learns nothing of another project", func(t *testing.T) {
		wantCode(t, getErr(in.projects().GetProject(dev, &cairnv1.GetProjectRequest{ProjectId: "beta"})), connect.CodeNotFound)
		wantCode(t, getErr(in.projects().GetProject(dev, &cairnv1.GetProjectRequest{ProjectId: "nosuch"})), connect.CodeNotFound)
		wantCode(t, getErr(in.databases().ListDatabases(dev, &cairnv1.ListDatabasesRequest{ProjectId: "beta"})), connect.CodeNotFound)
		wantCode(t, getErr(in.databases().ListDatabases(dev, &cairnv1.ListDatabasesRequest{ProjectId: "nosuch"})), connect.CodeNotFound)
		wantCode(t, getErr(in.events().ListEvents(dev, &cairnv1.ListEventsRequest{})), connect.CodeNotFound)
	})
	t.Run("developer cannot do what the role does not hold", func(t *testing.T) {
		wantCode(t, getErr(in.keys().CreateKey(dev, &cairnv1.CreateKeyRequest{ProjectId: "alpha", Name: "k", Scopes: &cairnv1.Scopes{Scopes: []string{"users.read"}}})), connect.CodePermissionDenied)
		wantCode(t, getErr(in.projects().DeleteProject(dev, &cairnv1.DeleteProjectRequest{ProjectId: "alpha"})), connect.CodePermissionDenied)
		wantCode(t, getErr(in.projects().CreateProject(dev, &cairnv1.CreateProjectRequest{ProjectId: "gamma", Name: "g"})), connect.CodePermissionDenied)
		wantCode(t, getErr(in.operators().ListOperators(dev, &cairnv1.ListOperatorsRequest{})), connect.CodePermissionDenied)
		// Sign-in settings (allowed origins, OAuth providers) are the owner's.
		wantCode(t, getErr(in.users().UpdateAuthSettings(dev, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "alpha",
			Settings: &cairnv1.AuthSettings{AllowedOrigins: []string{"https://evil.example"}}})), connect.CodePermissionDenied)
		if _, err := in.users().GetAuthSettings(dev, &cairnv1.GetAuthSettingsRequest{ProjectId: "alpha"}); err != nil {
			t.Fatal(err)
		}
		// A function cannot carry a scope the role lacks either.
		wantCode(t, getErr(in.functions().CreateFunction(dev, &cairnv1.CreateFunctionRequest{ProjectId: "alpha", FunctionId: "f", Name: "f",
			Runtime: "wasm", Scopes: []string{"keys.write"}})), connect.CodePermissionDenied)
		if res, body := in.httpDo(t, "GET", "/v1/projects/alpha/export", devToken, nil, map[string]string{"Cairn-Passphrase": "p"}); res.StatusCode != 403 {
			t.Errorf("export by a developer: %d %s", res.StatusCode, body)
		}
		if res, body := in.httpDo(t, "GET", "/v1/projects/beta/export", devToken, nil, map[string]string{"Cairn-Passphrase": "p"}); res.StatusCode != 404 {
			t.Errorf("export of another project: %d %s", res.StatusCode, body)
		}
	})
	t.Run("viewer cannot write", func(t *testing.T) {
		if _, err := in.databases().ListDatabases(viewer, &cairnv1.ListDatabasesRequest{ProjectId: "alpha"}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, getErr(in.databases().CreateDatabase(viewer, &cairnv1.CreateDatabaseRequest{ProjectId: "alpha", DatabaseId: "v", Name: "v"})), connect.CodePermissionDenied)
		wantCode(t, getErr(in.users().CreateUser(viewer, &cairnv1.CreateUserRequest{ProjectId: "alpha", Email: "u@example.com", Password: "user password"})), connect.CodePermissionDenied)
	})
	t.Run("events carry the operator account", func(t *testing.T) {
		evs, err := in.events().ListEvents(admin, &cairnv1.ListEventsRequest{ProjectId: "alpha", Subject: "databases.>"})
		if err != nil || len(evs.GetEvents()) != 1 {
			t.Fatalf("alpha's database events: %v %v", evs, err)
		}
		a := evs.GetEvents()[0].GetEnvelope().GetActor()
		if a.GetKind() != eventsv1.Actor_KIND_OPERATOR || a.GetId() != devID || a.GetName() != "dev@example.com" || a.GetSessionId() == "" {
			t.Fatalf("actor of the developer's write: %v", a)
		}
		// The system log shows accounts without their secrets.
		sys, err := in.events().ListEvents(admin, &cairnv1.ListEventsRequest{Subject: "operators.>"})
		if err != nil || len(sys.GetEvents()) == 0 {
			t.Fatalf("system log of operators: %v %v", sys, err)
		}
		for _, e := range sys.GetEvents() {
			o := e.GetEnvelope().GetOperatorSessionCreated().GetOperator()
			if o == nil {
				o = e.GetEnvelope().GetOperatorCreated().GetOperator()
			}
			if o.GetPasswordHash() != "" || (len(o.GetSessions()) > 0 && len(o.GetSessions()[0].GetSecretHash()) > 0) {
				t.Fatalf("system log leaks a hash: %v", e)
			}
		}
	})
	t.Run("role change takes effect immediately", func(t *testing.T) {
		if _, err := in.operators().UpdateOperator(admin, &cairnv1.UpdateOperatorRequest{OperatorId: devID, Roles: &cairnv1.OperatorRoles{Roles: []*cairnv1.OperatorRole{
			{ProjectId: "alpha", Role: "viewer"}, {ProjectId: "beta", Role: "owner"}}}}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, getErr(in.databases().CreateDatabase(dev, &cairnv1.CreateDatabaseRequest{ProjectId: "alpha", DatabaseId: "db2", Name: "db2"})), connect.CodePermissionDenied)
		if _, err := in.keys().CreateKey(dev, &cairnv1.CreateKeyRequest{ProjectId: "beta", Name: "k", Scopes: &cairnv1.Scopes{Scopes: []string{"users.read"}}}); err != nil {
			t.Fatalf("owner of beta creates a key: %v", err)
		}
		if _, err := in.users().UpdateAuthSettings(dev, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "beta",
			Settings: &cairnv1.AuthSettings{AllowedOrigins: []string{"https://app.example"}}}); err != nil {
			t.Fatalf("owner of beta changes its sign-in settings: %v", err)
		}
		if res, body := in.httpDo(t, "GET", "/v1/projects/beta/export", devToken, nil, map[string]string{"Cairn-Passphrase": "a long passphrase"}); res.StatusCode != 200 {
			t.Errorf("export by the owner: %d %s", res.StatusCode, body)
		}
		ps, err := in.projects().ListProjects(dev, &cairnv1.ListProjectsRequest{})
		if got := projectIDs(ps.GetProjects()); err != nil || len(got) != 2 {
			t.Fatalf("lists %v %v", got, err)
		}
		// The owner deletes its project; its role there goes with it.
		if _, err := in.projects().DeleteProject(dev, &cairnv1.DeleteProjectRequest{ProjectId: "beta"}); err != nil {
			t.Fatal(err)
		}
		o, err := in.operators().GetOperator(admin, &cairnv1.GetOperatorRequest{OperatorId: devID})
		if err != nil || len(o.GetOperator().GetRoles()) != 1 || o.GetOperator().GetRoles()[0].GetProjectId() != "alpha" {
			t.Fatalf("roles after the project's deletion: %v %v", o, err)
		}
	})
	t.Run("bad input names the field", func(t *testing.T) {
		for _, c := range []struct {
			req   *cairnv1.CreateOperatorRequest
			field string
		}{
			{&cairnv1.CreateOperatorRequest{Email: "not an email", Password: "operator password"}, "email"},
			{&cairnv1.CreateOperatorRequest{Email: "x@example.com", Password: "short"}, "password"},
			{&cairnv1.CreateOperatorRequest{Email: "x@example.com", Password: "password123"}, "password"},
			{&cairnv1.CreateOperatorRequest{Email: "x@example.com", Password: "operator password", Roles: []*cairnv1.OperatorRole{{ProjectId: "alpha", Role: "god"}}}, "roles[0].role"},
			{&cairnv1.CreateOperatorRequest{Email: "x@example.com", Password: "operator password", Roles: []*cairnv1.OperatorRole{{ProjectId: "nosuch", Role: "viewer"}}}, "roles"},
			{&cairnv1.CreateOperatorRequest{Email: "x@example.com", Password: "operator password", Roles: []*cairnv1.OperatorRole{{ProjectId: "alpha", Role: "viewer"}, {ProjectId: "alpha", Role: "owner"}}}, "roles"},
		} {
			_, err := in.operators().CreateOperator(admin, c.req)
			wantCode(t, err, connect.CodeInvalidArgument)
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error does not name %q: %v", c.field, err)
			}
		}
		wantCode(t, getErr(in.operators().CreateOperator(admin, &cairnv1.CreateOperatorRequest{Email: "dev@example.com", Password: "operator password"})), connect.CodeAlreadyExists)
		wantCode(t, getErr(in.operators().CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "dev@example.com", Password: "wrong password"})), connect.CodeUnauthenticated)
		wantCode(t, getErr(in.operators().CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "nobody@example.com", Password: "operator password"})), connect.CodeUnauthenticated)
	})
	t.Run("revoked and ended sessions are refused", func(t *testing.T) {
		if _, err := in.operators().RevokeOperatorSessions(admin, &cairnv1.RevokeOperatorSessionsRequest{OperatorId: devID}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, getErr(in.databases().ListDatabases(dev, &cairnv1.ListDatabasesRequest{ProjectId: "alpha"})), connect.CodeUnauthenticated)
		if _, err := in.operators().DeleteCurrentOperatorSession(viewer, &cairnv1.DeleteCurrentOperatorSessionRequest{}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, getErr(in.projects().ListProjects(viewer, &cairnv1.ListProjectsRequest{})), connect.CodeUnauthenticated)
		// A deleted account's new sign-in is refused too.
		vid, vtoken := createOperator(t, in, "gone@example.com", map[string]string{"alpha": "viewer"})
		if _, err := in.operators().DeleteOperator(admin, &cairnv1.DeleteOperatorRequest{OperatorId: vid}); err != nil {
			t.Fatal(err)
		}
		gone, _ := as(ctx, vtoken)
		wantCode(t, getErr(in.projects().ListProjects(gone, &cairnv1.ListProjectsRequest{})), connect.CodeUnauthenticated)
	})
	var rootToken string
	t.Run("an administrator account is an operator", func(t *testing.T) {
		res, err := in.operators().CreateOperator(admin, &cairnv1.CreateOperatorRequest{Email: "root@example.com", Password: "operator password", Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		s, err := in.operators().CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "root@example.com", Password: "operator password"})
		if err != nil {
			t.Fatal(err)
		}
		rootToken = s.GetSecret()
		root, _ := as(ctx, rootToken)
		// Metrics are the instance's: administrators see them, members not.
		if res, body := in.httpDo(t, "GET", "/metrics", rootToken, nil, nil); res.StatusCode != 200 {
			t.Errorf("/metrics for an administrator account: %d %s", res.StatusCode, body)
		}
		_, member := createOperator(t, in, "metrics@example.com", map[string]string{"alpha": "owner"})
		if res, _ := in.httpDo(t, "GET", "/metrics", member, nil, nil); res.StatusCode != 401 {
			t.Errorf("/metrics for an owner account: %d", res.StatusCode)
		}
		if _, err := in.projects().CreateProject(root, &cairnv1.CreateProjectRequest{ProjectId: "gamma", Name: "g"}); err != nil {
			t.Fatal(err)
		}
		evs, err := in.events().ListEvents(root, &cairnv1.ListEventsRequest{Subject: "projects.gamma.>"})
		if err != nil || len(evs.GetEvents()) != 1 || evs.GetEvents()[0].GetEnvelope().GetActor().GetId() != res.GetOperator().GetId() {
			t.Fatalf("gamma's creation by the administrator account: %v %v", evs, err)
		}
	})
	t.Run("accounts survive a restart and rebuild equal", func(t *testing.T) {
		in.stop()
		n := openStopped(t, dir)
		checkRebuild(t, n, "", "operator accounts")
		n.close()
		in = startInstance(t, dir)
		root, _ := as(ctx, rootToken)
		if cur, err := in.operators().GetCurrentOperator(root, &cairnv1.GetCurrentOperatorRequest{}); err != nil || !cur.GetAdmin() {
			t.Fatalf("the administrator's session after a restart: %v %v", cur, err)
		}
		wantCode(t, getErr(in.projects().ListProjects(dev, &cairnv1.ListProjectsRequest{})), connect.CodeUnauthenticated)
		o, err := in.operators().GetOperator(root, &cairnv1.GetOperatorRequest{OperatorId: devID})
		if err != nil || len(o.GetOperator().GetRoles()) != 1 || o.GetOperator().GetRoles()[0].GetRole() != "viewer" {
			t.Fatalf("the developer's roles after a restart: %v %v", o, err)
		}
	})
}

// getErr drops a call's response.
func getErr[T any](_ T, err error) error { return err }

// TestOperatorsCLI: cairn operators create prints a generated initial
// password that signs in; roles, reset-mfa, revoke and delete take the
// email; password changes the caller's own.
func TestOperatorsCLI(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	admin, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "clip", Name: "clip"}); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, &out, io.Discard, func(k string) string {
			return map[string]string{"CAIRN_URL": in.url, "CAIRN_ADMIN_KEY": testAdminKey}[k]
		})
		return out.String(), err
	}
	out, err := cli("operators", "create", "--email", "cli@example.com", "--role", "clip=developer")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(out, "initial password (shown once; pass it on privately): ")
	pw, _, _ := strings.Cut(rest, "\n")
	if !ok || len(pw) < 16 || !strings.Contains(out, `"developer"`) {
		t.Fatalf("operators create printed %q", out)
	}
	s, err := in.operators().CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "cli@example.com", Password: pw})
	if err != nil {
		t.Fatalf("sign in with the printed password: %v", err)
	}
	dev, _ := as(ctx, s.GetSecret())
	if out, err := cli("operators", "roles", "--role", "clip=viewer", "cli@example.com"); err != nil || !strings.Contains(out, `"viewer"`) {
		t.Fatalf("operators roles: %q %v", out, err)
	}
	wantCode(t, getErr(in.databases().CreateDatabase(dev, &cairnv1.CreateDatabaseRequest{ProjectId: "clip", DatabaseId: "d", Name: "d"})), connect.CodePermissionDenied)
	if _, err := cli("operators", "roles", "--role", "clip=god", "cli@example.com"); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("operators roles with an unknown role: %v", err)
	}
	// The account changes its own password with its session as the key.
	own := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		env["CAIRN_URL"], env["CAIRN_KEY"] = in.url, s.GetSecret()
		err := run(ctx, args, &out, io.Discard, func(k string) string { return env[k] })
		return out.String(), err
	}
	if _, err := own(map[string]string{"CAIRN_OPERATOR_PASSWORD": "not it", "CAIRN_OPERATOR_NEW_PASSWORD": "the new cli password"}, "operators", "password"); err == nil ||
		!strings.Contains(err.Error(), "current_password") {
		t.Fatalf("operators password with a wrong current one: %v", err)
	}
	if out, err := own(map[string]string{"CAIRN_OPERATOR_PASSWORD": pw, "CAIRN_OPERATOR_NEW_PASSWORD": "the new cli password"}, "operators", "password"); err != nil ||
		!strings.Contains(out, "password changed") {
		t.Fatalf("operators password: %q %v", out, err)
	}
	if _, err := in.operators().CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "cli@example.com", Password: "the new cli password"}); err != nil {
		t.Fatalf("sign in with the new password: %v", err)
	}
	if out, err := cli("operators", "reset-mfa", "cli@example.com"); err != nil || !strings.Contains(out, "two-factor sign-in") {
		t.Fatalf("operators reset-mfa: %q %v", out, err)
	}
	wantCode(t, getErr(in.projects().ListProjects(dev, &cairnv1.ListProjectsRequest{})), connect.CodeUnauthenticated)
	if _, err := cli("operators", "revoke", "cli@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli("operators", "delete", "cli@example.com"); err != nil {
		t.Fatal(err)
	}
	if out, err := cli("operators", "list"); err != nil || strings.Contains(out, "cli@example.com") {
		t.Fatalf("operators list after delete: %q %v", out, err)
	}
}
