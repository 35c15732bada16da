package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

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
