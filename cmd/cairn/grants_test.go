package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// deployJS creates js function fn with req's settings (as token) and
// deploys code to it, activated.
func deployJS(t *testing.T, in *instance, token, project string, req *cairnv1.CreateFunctionRequest, code string) {
	t.Helper()
	ctx, _ := as(context.Background(), token)
	req.ProjectId, req.Runtime = project, "js"
	if req.Name == "" {
		req.Name = req.GetFunctionId()
	}
	if _, err := in.functions().CreateFunction(ctx, req); err != nil {
		t.Fatalf("create function %s: %v", req.GetFunctionId(), err)
	}
	res := in.do(t, httpCall{method: http.MethodPost, path: "/v1/projects/" + project + "/functions/" + req.GetFunctionId() + "/deployments",
		token: token, query: map[string][]string{"activate": {"true"}}, body: bytes.NewReader([]byte(code))})
	if res.status != http.StatusCreated || !strings.Contains(string(res.body), `"status":"ready"`) {
		t.Fatalf("deploy %s: %s", req.GetFunctionId(), res)
	}
}

// TestFunctionScopesWithinGrantor: a key holding only functions.* and
// executions.* cannot give a function scopes it does not hold (its code's
// key would act with them), on create or update; the error names them.
// Operators may.
func TestFunctionScopesWithinGrantor(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "grant", "functions.read", "functions.write", "executions.read", "executions.write")
	ctx, _ := as(context.Background(), key)
	_, err := in.functions().CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: "grant", FunctionId: "esc", Name: "esc",
		Runtime: "js", Scopes: []string{"functions.read", "keys.write", "users.write"}})
	wantCode(t, err, connect.CodePermissionDenied)
	if msg := err.Error(); !strings.Contains(msg, "keys.write") || !strings.Contains(msg, "users.write") || strings.Contains(msg, "functions.read") {
		t.Fatalf("the error does not name exactly the scopes not held: %v", err)
	}
	if _, err := in.functions().CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: "grant", FunctionId: "ok", Name: "ok",
		Runtime: "js", Scopes: []string{"functions.read"}}); err != nil {
		t.Fatalf("scopes the key holds: %v", err)
	}
	_, err = in.functions().UpdateFunction(ctx, &cairnv1.UpdateFunctionRequest{ProjectId: "grant", FunctionId: "ok",
		Scopes: &cairnv1.StringList{Values: []string{"functions.read", "keys.write"}}})
	wantCode(t, err, connect.CodePermissionDenied)
	if !strings.Contains(err.Error(), "keys.write") {
		t.Fatalf("the error does not name keys.write: %v", err)
	}
	// Updating other settings is not a grant.
	name := "renamed"
	if _, err := in.functions().UpdateFunction(ctx, &cairnv1.UpdateFunctionRequest{ProjectId: "grant", FunctionId: "ok", Name: &name}); err != nil {
		t.Fatalf("update without scopes: %v", err)
	}
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.functions().UpdateFunction(op, &cairnv1.UpdateFunctionRequest{ProjectId: "grant", FunctionId: "ok",
		Scopes: &cairnv1.StringList{Values: []string{"keys.write"}}}); err != nil {
		t.Fatalf("operator: %v", err)
	}
}

// keyJS answers with the key its execution received.
const keyJS = `module.exports.default = async ({ res, apiKey }) => res.text(apiKey);`

// functionKey runs function fn of project and returns the key its code got.
func functionKey(t *testing.T, in *instance, token, project, fn string) string {
	t.Helper()
	ctx, _ := as(context.Background(), token)
	res, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: project, FunctionId: fn})
	if err != nil {
		t.Fatal(err)
	}
	k := string(res.GetExecution().GetResponseBody())
	if !strings.HasPrefix(k, "cfk~") {
		t.Fatalf("execution answered %q (%s), not a function key", k, res.GetExecution().GetErrors())
	}
	return k
}

// TestFunctionKeyBound: an execution's key acts only while its project,
// function and deployment are the ones it was made for, the function is
// enabled, and with no more than the function's current scopes.
func TestFunctionKeyBound(t *testing.T) {
	in := startInstance(t, t.TempDir())
	op, _ := as(context.Background(), testAdminKey)
	key := newProjectWithKey(t, in, "fkb", "functions.read", "functions.write", "executions.read", "executions.write")
	ctx, _ := as(context.Background(), key)
	deployJS(t, in, key, "fkb", &cairnv1.CreateFunctionRequest{FunctionId: "leak", Scopes: []string{"functions.read"}}, keyJS)
	fk := functionKey(t, in, key, "fkb", "leak")
	fctx, _ := as(context.Background(), fk)
	list := func() error {
		_, err := in.functions().ListFunctions(fctx, &cairnv1.ListFunctionsRequest{ProjectId: "fkb"})
		return err
	}
	if err := list(); err != nil {
		t.Fatalf("fresh function key: %v", err)
	}
	update := func(req *cairnv1.UpdateFunctionRequest) {
		t.Helper()
		req.ProjectId, req.FunctionId = "fkb", "leak"
		if _, err := in.functions().UpdateFunction(ctx, req); err != nil {
			t.Fatal(err)
		}
	}

	// Down-scoped: the key acts with the function's scopes of now.
	update(&cairnv1.UpdateFunctionRequest{Scopes: &cairnv1.StringList{}})
	wantCode(t, list(), connect.CodePermissionDenied)
	update(&cairnv1.UpdateFunctionRequest{Scopes: &cairnv1.StringList{Values: []string{"functions.read"}}})
	if err := list(); err != nil {
		t.Fatalf("scope given back: %v", err)
	}

	// Disabled, then enabled.
	off, on := false, true
	update(&cairnv1.UpdateFunctionRequest{Enabled: &off})
	wantCode(t, list(), connect.CodeUnauthenticated)
	update(&cairnv1.UpdateFunctionRequest{Enabled: &on})
	if err := list(); err != nil {
		t.Fatalf("enabled again: %v", err)
	}

	// Deleted and created again under the same id: another function.
	if _, err := in.functions().DeleteFunction(ctx, &cairnv1.DeleteFunctionRequest{ProjectId: "fkb", FunctionId: "leak"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, list(), connect.CodeUnauthenticated)
	deployJS(t, in, key, "fkb", &cairnv1.CreateFunctionRequest{FunctionId: "leak", Scopes: []string{"functions.read"}}, keyJS)
	wantCode(t, list(), connect.CodeUnauthenticated)

	// The project deleted and created again under the same id: another
	// project, whose functions the old key must not reach.
	fk2 := functionKey(t, in, key, "fkb", "leak")
	if _, err := in.projects().DeleteProject(op, &cairnv1.DeleteProjectRequest{ProjectId: "fkb"}); err != nil {
		t.Fatal(err)
	}
	key = newProjectWithKey(t, in, "fkb", "functions.read", "functions.write", "executions.read", "executions.write")
	deployJS(t, in, key, "fkb", &cairnv1.CreateFunctionRequest{FunctionId: "leak", Scopes: []string{"functions.read"}}, keyJS)
	f2ctx, _ := as(context.Background(), fk2)
	_, err := in.functions().ListFunctions(f2ctx, &cairnv1.ListFunctionsRequest{ProjectId: "fkb"})
	wantCode(t, err, connect.CodeUnauthenticated)
}

// TestFunctionPlatformHeaders: the headers the platform sets for a
// function's code (x-appwrite-*, x-cairn-*, cairn-*) are the platform's:
// a caller's values for them never reach the code, over the HTTP route or
// CreateExecution; other headers do.
func TestFunctionPlatformHeaders(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "hdr", "functions.read", "functions.write", "executions.read", "executions.write")
	deployJS(t, in, key, "hdr", &cairnv1.CreateFunctionRequest{FunctionId: "echo", Execute: []string{"any"}},
		`module.exports.default = async ({ req, res }) => res.json(req.headers);`)
	forged := map[string]string{"X-Appwrite-Key": "forged", "X-Appwrite-User-Jwt": "forged", "X-Appwrite-Trigger": "event",
		"X-Appwrite-Event": "forged", "X-Cairn-Thing": "forged", "Cairn-Thing": "forged", "X-Kept": "kept"}
	check := func(how string, got map[string]any) {
		t.Helper()
		if got["x-kept"] != "kept" {
			t.Errorf("%s: a caller's ordinary header was dropped: %v", how, got)
		}
		for k, v := range got {
			if v == "forged" {
				t.Errorf("%s: the code saw the caller's %s", how, k)
			}
		}
		if got["x-appwrite-trigger"] != "http" {
			t.Errorf("%s: x-appwrite-trigger %v, want http", how, got["x-appwrite-trigger"])
		}
		if k, _ := got["x-appwrite-key"].(string); !strings.HasPrefix(k, "cfk~") {
			t.Errorf("%s: x-appwrite-key %q is not the platform's", how, k)
		}
	}
	h := http.Header{}
	for k, v := range forged {
		h.Set(k, v)
	}
	res := callRoute(t, in, http.MethodGet, "/v1/functions/hdr/echo/", "", h, "")
	if res.status != http.StatusOK {
		t.Fatalf("route: %s", res)
	}
	var got map[string]any
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatal(err)
	}
	check("HTTP route", got)

	ctx, _ := as(context.Background(), key)
	e, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "hdr", FunctionId: "echo", Headers: forged})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal(e.GetExecution().GetResponseBody(), &got); err != nil {
		t.Fatalf("%v: %s", err, e.GetExecution().GetErrors())
	}
	check("CreateExecution", got)
}

// TestAuditNamesEndUsers: an end user's write is recorded with the user
// and the session, as a key's names the key.
func TestAuditNamesEndUsers(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "auditu"
	k, _ := as(ctx, newProjectWithKey(t, in, p, append(docScopes, "events.read")...))
	docsFixture(t, k, in.databases(), p, "notes", []string{`create("users")`}, true)
	g, _ := guest(ctx, p, "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "ann@example.com", Password: "password of ann"}); err != nil {
		t.Fatal(err)
	}
	ann := signIn(t, in, p, "ann@example.com", "password of ann")
	ac, _ := guest(ctx, p, ann.GetSecret())
	if _, err := in.databases().CreateDocument(ac, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes",
		Document: &cairnv1.DocumentInput{DocumentId: "byann", Data: data(t, map[string]any{"title": "ann"})}}); err != nil {
		t.Fatal(err)
	}
	res, err := in.events().ListEvents(k, &cairnv1.ListEventsRequest{ProjectId: p})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.GetEvents() {
		if e.GetEnvelope().GetDocumentCreated().GetDocument().GetId() != "byann" {
			continue
		}
		a := e.GetEnvelope().GetActor()
		if a.GetKind().String() != "KIND_USER" || a.GetId() != ann.GetSession().GetUserId() || a.GetProjectId() != p ||
			a.GetSessionId() == "" || a.GetSessionId() != ann.GetSession().GetId() {
			t.Fatalf("actor %v, want user %s with session %s", a, ann.GetSession().GetUserId(), ann.GetSession().GetId())
		}
		return
	}
	t.Fatal("the user's document is not in the log")
}

// TestAdminKeyStrength: serve refuses an operator key under 128 bits and
// says where it came from: the environment, the flag or admin.key.
func TestAdminKeyStrength(t *testing.T) {
	serveWith := func(env map[string]string, args ...string) error {
		dir := t.TempDir()
		if f, ok := env["file"]; ok {
			if err := os.WriteFile(filepath.Join(dir, "admin.key"), []byte(f+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args = append([]string{"serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--log-level", "error"}, args...)
		return run(ctx, args, io.Discard, io.Discard, func(k string) string { return env[k] })
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"env", map[string]string{"CAIRN_ADMIN_KEY": "x"}, nil, "CAIRN_ADMIN_KEY is 1 character"},
		{"flag", nil, []string{"--admin-key", "cak_0123456789abcdef"}, "--admin-key is 20 characters"},
		{"file", map[string]string{"file": "x"}, nil, "admin.key is 1 character"},
		{"31 hex", map[string]string{"CAIRN_ADMIN_KEY": strings.Repeat("a", 31)}, nil, "at least 128 bits"},
	} {
		err := serveWith(c.env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: serve returned %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// TestGuestsCannotTellMissingFromForbidden: a caller who may do nothing in
// a bucket, collection or function gets the answer a missing one gives,
// code and message, also when the whole project is missing; the JWKS of
// any well-formed project id is served.
func TestGuestsCannotTellMissingFromForbidden(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "orc"
	k, _ := as(ctx, newProjectWithKey(t, in, p, allScopes()...))
	if _, err := in.storage().CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "priv", Name: "priv"}); err != nil {
		t.Fatal(err)
	}
	docsFixture(t, k, in.databases(), p, "priv", nil, false)
	if _, err := in.functions().CreateFunction(k, &cairnv1.CreateFunctionRequest{ProjectId: p, FunctionId: "priv", Name: "priv", Runtime: "js"}); err != nil {
		t.Fatal(err)
	}
	g, _ := guest(ctx, p, "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "u@example.com", Password: "user password 1"}); err != nil {
		t.Fatal(err)
	}
	sess := signIn(t, in, p, "u@example.com", "user password 1").GetSecret()

	calls := map[string]func(ctx context.Context, project string) error{
		"GetFile": func(ctx context.Context, project string) error {
			_, err := in.storage().GetFile(ctx, &cairnv1.GetFileRequest{ProjectId: project, BucketId: "priv", FileId: "f"})
			return err
		},
		"ListFiles": func(ctx context.Context, project string) error {
			_, err := in.storage().ListFiles(ctx, &cairnv1.ListFilesRequest{ProjectId: project, BucketId: "priv"})
			return err
		},
		"ListDocuments": func(ctx context.Context, project string) error {
			_, err := in.databases().ListDocuments(ctx, &cairnv1.ListDocumentsRequest{ProjectId: project, DatabaseId: "main", CollectionId: "priv"})
			return err
		},
		"CreateDocument": func(ctx context.Context, project string) error {
			_, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: project, DatabaseId: "main", CollectionId: "priv",
				Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "x"})}})
			return err
		},
		"CreateExecution": func(ctx context.Context, project string) error {
			_, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: project, FunctionId: "priv"})
			return err
		},
	}
	answer := func(err error) string {
		var ce *connect.Error
		if !errors.As(err, &ce) {
			return fmt.Sprintf("success or not a connect error: %v", err)
		}
		return ce.Code().String() + ": " + ce.Message()
	}
	for name, call := range calls {
		gctx, _ := as(ctx, "")
		existing := answer(call(gctx, p))
		missing := answer(call(gctx, "nosuchproject"))
		if existing != missing || !strings.HasPrefix(existing, "not_found") {
			t.Errorf("%s as a guest: existing %q, missing project %q", name, existing, missing)
		}
		uctx, _ := guest(ctx, p, sess)
		if got := answer(call(uctx, p)); got != existing {
			t.Errorf("%s as a user who may do nothing there: %q, want %q", name, got, existing)
		}
	}
	for _, path := range []string{"/v1/functions/" + p + "/priv/x", "/v1/functions/nosuchproject/priv/x"} {
		if r := callRoute(t, in, http.MethodGet, path, "", nil, ""); r.status != http.StatusNotFound || !strings.Contains(string(r.body), `function \"priv\" not found`) {
			t.Errorf("%s: %s", path, r)
		}
	}
	for _, project := range []string{p, "nosuchproject"} {
		res, err := http.Get(in.url + "/v1/projects/" + project + "/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), `"kty":"OKP"`) {
			t.Errorf("jwks of %s: %d %s", project, res.StatusCode, b)
		}
	}
}
