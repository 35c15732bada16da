package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// tsProject is the TypeScript function of the JS tests: index.ts imports a
// local module and a package from node_modules; it answers by path.
var tsProject = map[string]string{
	"index.ts": `import { greet } from './lib/greet';
import { VERSION } from './lib/version';
import pad from 'tiny-pad';

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  bodyText: string;
  query: Record<string, string>;
}

interface Ctx {
  req: Req;
  res: any;
  log: (...args: unknown[]) => void;
  projectId: string;
  apiKey: string;
  apiEndpoint: string;
  userJwt: string;
  variables: Record<string, string>;
}

async function call(c: Ctx, rpc: string, body: object): Promise<{ status: number; body: any }> {
  const r = await fetch(c.apiEndpoint + '/' + rpc, {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + c.apiKey, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

export default async (c: Ctx) => {
  const { req, res, log } = c;
  log('handling ' + req.method + ' ' + req.path);
  switch (req.path) {
    case '/json':
      return res.json({ greeting: greet(req.bodyText), padded: pad('7', 3), method: req.method,
        header: req.headers['x-test'] ?? null, q: req.query.q ?? null }, 201, { 'X-Fn': 'ts' });
    case '/redirect':
      return res.redirect('https://example.com/next', 302);
    case '/empty':
      return res.empty();
    case '/version':
      return res.text(VERSION);
    case '/whoami':
      return res.json({ jwt: c.userJwt });
    case '/secret':
      return res.text(c.variables.SECRET === 'hunter2-secret' ? 'has secret' : 'no secret');
    case '/api': {
      const allowed = await call(c, 'cairn.v1.DatabasesService/ListDocuments',
        { projectId: c.projectId, databaseId: 'main', collectionId: 'posts' });
      const refused = await call(c, 'cairn.v1.UsersService/ListUsers', { projectId: c.projectId });
      return res.json({ allowed, refused });
    }
    case '/fetch':
      try {
        const r = await fetch(req.bodyText);
        return res.json({ status: r.status });
      } catch (e) {
        return res.json({ error: String(e) });
      }
    case '/spin':
      while (true) {}
    case '/hog': {
      const keep: number[][] = [];
      for (;;) keep.push(new Array(1 << 16).fill(keep.length));
    }
  }
  return res.json({ path: req.path }, 404);
};
`,
	"lib/greet.ts":                       "export const greet = (name: string): string => `hello, ${name || 'nobody'}`;\n",
	"lib/version.ts":                     "export const VERSION: string = 'v1';\n",
	"node_modules/tiny-pad/package.json": `{"name": "tiny-pad", "version": "1.0.0", "main": "index.js"}`,
	"node_modules/tiny-pad/index.js": `module.exports = function pad(s, n) {
  s = String(s);
  while (s.length < n) s = '0' + s;
  return s;
};
`,
}

// writeTree writes files under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cli runs the cairn CLI in-process against in with key, returning stdout.
func cli(t testing.TB, in *instance, key string, args ...string) (string, error) {
	t.Helper()
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_KEY": key}
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	if err != nil {
		return out.String(), fmt.Errorf("%v (stderr: %s)", err, errb.String())
	}
	return out.String(), nil
}

// deployTS creates js function fn in project with the CLI and deploys dir
// (the TypeScript project) to it, activated.
func deployTS(t testing.TB, in *instance, key, project, fn, dir string, create ...string) {
	t.Helper()
	args := append([]string{"functions", "create", "--project", project, "--function", fn, "--runtime", "js"}, create...)
	if _, err := cli(t, in, key, args...); err != nil {
		t.Fatalf("functions create %s: %v", fn, err)
	}
	out, err := cli(t, in, key, "functions", "deploy", dir, "--project", project, "--function", fn, "--activate")
	if err != nil || !strings.Contains(out, `"ready"`) {
		t.Fatalf("functions deploy %s: %v: %s", fn, err, out)
	}
}

// noRedirects is an HTTP client that shows redirects instead of following.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// call sends one request to a function's HTTP route.
func callRoute(t testing.TB, in *instance, method, path, token string, header http.Header, body string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, in.routeURL(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return httpResult{status: res.StatusCode, header: res.Header, body: b}
}

func execStatus(e *cairnv1.Execution) string {
	return strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "EXECUTION_STATUS_"))
}

// TestFunctionsJS: a TypeScript project deployed with the CLI, run over
// the RPC and the HTTP route; its code calls back into Cairn with its
// scoped key; timeouts and runaway memory fail the execution and not the
// server; secrets are never returned; execute roles admit end users;
// deployments list, roll back, delete, and a broken bundle fails its build.
func TestFunctionsJS(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--function-fetch-allow", "127.0.0.1", "--max-function-memory", fmt.Sprint(64<<20))
	const p = "fjs"
	key := newProjectWithKey(t, in, p, append(docScopes, "functions.read", "functions.write", "executions.read", "executions.write", "events.read")...)
	ctx, _ := as(context.Background(), key)
	fns := in.functions()
	dir := t.TempDir()
	writeTree(t, dir, tsProject)
	deployTS(t, in, key, p, "ts", dir, "--scopes", "documents.read", "--execute", "any", "--var", "PLAIN=plain-value", "--secret", "SECRET=hunter2-secret")

	t.Run("cli list and run", func(t *testing.T) {
		out, err := cli(t, in, key, "functions", "list", "--project", p, "-o", "table")
		if err != nil || !regexp.MustCompile(`(?m)^ts +js +[0-9A-Za-z]{26} `).MatchString(out) {
			t.Fatalf("list: %v: %s", err, out)
		}
		out, err = cli(t, in, key, "functions", "run", "--project", p, "--function", "ts", "--path", "/json", "--body", "cli")
		if err != nil || !strings.Contains(out, `"greeting":"hello, cli"`) || !strings.Contains(out, `"padded":"007"`) {
			t.Fatalf("run: %v: %s", err, out)
		}
		out, err = cli(t, in, key, "functions", "run", "--project", p, "--function", "ts", "--path", "/version", "--async")
		if err != nil || !strings.Contains(out, "EXECUTION_STATUS_WAITING") {
			t.Fatalf("run --async: %v: %s", err, out)
		}
	})

	t.Run("sync rpc", func(t *testing.T) {
		res, err := fns.CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: p, FunctionId: "ts", Method: "PATCH", Path: "/json",
			Body: []byte("rpc"), Headers: map[string]string{"x-test": "via rpc"}})
		if err != nil {
			t.Fatal(err)
		}
		e := res.GetExecution()
		var got map[string]any
		_ = json.Unmarshal(e.GetResponseBody(), &got)
		if execStatus(e) != "completed" || e.GetResponseStatus() != 201 || e.GetResponseHeaders()["x-fn"] != "ts" || got["method"] != "PATCH" ||
			got["greeting"] != "hello, rpc" || got["padded"] != "007" || got["header"] != "via rpc" || !strings.Contains(e.GetLogs(), "handling PATCH /json") {
			t.Fatalf("execution %v: %s", e, e.GetResponseBody())
		}
	})

	t.Run("http route", func(t *testing.T) {
		r := callRoute(t, in, http.MethodPut, "/v1/functions/"+p+"/ts/json?q=1", "", http.Header{"X-Test": {"via http"}}, "route")
		var got map[string]any
		_ = json.Unmarshal(r.body, &got)
		if r.status != 201 || r.header.Get("X-Fn") != "ts" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") ||
			got["method"] != "PUT" || got["header"] != "via http" || got["greeting"] != "hello, route" || got["q"] != "1" || r.header.Get("Cairn-Execution-Id") == "" {
			t.Fatalf("json: %s %v", r, r.header)
		}
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/ts/redirect", "", nil, ""); r.status != 302 || r.header.Get("Location") != "https://example.com/next" {
			t.Fatalf("redirect: %s %v", r, r.header)
		}
		if r := callRoute(t, in, http.MethodDelete, "/v1/functions/"+p+"/ts/empty", "", nil, ""); r.status != 204 || len(r.body) != 0 {
			t.Fatalf("empty: %s", r)
		}
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/ts/nowhere", "", nil, ""); r.status != 404 || !strings.Contains(string(r.body), `"path":"/nowhere"`) {
			t.Fatalf("404: %s", r)
		}
	})

	t.Run("scoped key", func(t *testing.T) {
		docsFixture(t, ctx, in.databases(), p, "posts", nil, false)
		if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data(t, map[string]any{"title": "from the test"})}}); err != nil {
			t.Fatal(err)
		}
		res, err := fns.CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: p, FunctionId: "ts", Path: "/api"})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Allowed struct {
				Status int
				Body   struct {
					Documents []map[string]any `json:"documents"`
				}
			}
			Refused struct {
				Status int
				Body   struct{ Code string }
			}
		}
		if err := json.Unmarshal(res.GetExecution().GetResponseBody(), &got); err != nil {
			t.Fatalf("%v: %v", err, res.GetExecution())
		}
		if got.Allowed.Status != 200 || len(got.Allowed.Body.Documents) != 1 || !strings.Contains(fmt.Sprint(got.Allowed.Body.Documents[0]), "from the test") {
			t.Errorf("documents.read call: %s", res.GetExecution().GetResponseBody())
		}
		if got.Refused.Status != http.StatusForbidden || got.Refused.Body.Code != "permission_denied" {
			t.Errorf("call outside the scopes: %s", res.GetExecution().GetResponseBody())
		}
	})

	t.Run("timeout", func(t *testing.T) {
		deployTS(t, in, key, p, "spin", dir, "--timeout", "1", "--execute", "any")
		type result struct {
			e   *cairnv1.Execution
			err error
			d   time.Duration
		}
		done := make(chan result, 1)
		go func() {
			c, _ := as(context.Background(), key)
			start := time.Now()
			res, err := fns.CreateExecution(c, &cairnv1.CreateExecutionRequest{ProjectId: p, FunctionId: "spin", Path: "/spin"})
			done <- result{res.GetExecution(), err, time.Since(start)}
		}()
		time.Sleep(300 * time.Millisecond)
		// Meanwhile the server answers, functions included.
		start := time.Now()
		if _, err := fns.ListFunctions(ctx, &cairnv1.ListFunctionsRequest{ProjectId: p}); err != nil {
			t.Fatal(err)
		}
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/ts/version", "", nil, ""); r.status != 200 || string(r.body) != "v1" {
			t.Fatalf("while spinning: %s", r)
		}
		if d := time.Since(start); d > 700*time.Millisecond {
			t.Errorf("answers took %v while a function spins", d)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if execStatus(r.e) != "failed" || !strings.Contains(r.e.GetErrors(), "timed out") || r.d > 5*time.Second {
			t.Fatalf("spinning execution after %v: %v", r.d, r.e)
		}
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/spin/version", "", nil, ""); r.status != 200 || string(r.body) != "v1" {
			t.Fatalf("after the timeout: %s", r)
		}
	})

	t.Run("runaway memory", func(t *testing.T) {
		deployTS(t, in, key, p, "hog", dir, "--timeout", "20", "--execute", "any")
		start := time.Now()
		res, err := fns.CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: p, FunctionId: "hog", Path: "/hog"})
		if err != nil {
			t.Fatal(err)
		}
		if e := res.GetExecution(); execStatus(e) != "failed" || !strings.Contains(e.GetErrors(), "memory") {
			t.Fatalf("runaway execution after %v: %v", time.Since(start), e)
		}
		t.Logf("killed for memory after %v", time.Since(start))
		r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/hog/hog", "", nil, "")
		if r.status != http.StatusInternalServerError || !strings.Contains(string(r.body), "function_failed") {
			t.Fatalf("runaway over the route: %s", r)
		}
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/hog/version", "", nil, ""); r.status != 200 || string(r.body) != "v1" {
			t.Fatalf("after the runaway: %s", r)
		}
	})

	t.Run("secrets never returned", func(t *testing.T) {
		const secret = "hunter2-secret"
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/ts/secret", "", nil, ""); string(r.body) != "has secret" {
			t.Fatalf("the code does not see its secret: %s", r)
		}
		// Updating with the secret's value empty keeps it.
		up, err := fns.UpdateFunction(ctx, &cairnv1.UpdateFunctionRequest{ProjectId: p, FunctionId: "ts", Variables: &cairnv1.VariableList{Values: []*cairnv1.FunctionVariable{
			{Key: "PLAIN", Value: "plain-value"}, {Key: "SECRET", Secret: true}}}})
		if err != nil {
			t.Fatal(err)
		}
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/ts/secret", "", nil, ""); string(r.body) != "has secret" {
			t.Fatalf("the secret is lost by an update: %s", r)
		}
		got, err := fns.GetFunction(ctx, &cairnv1.GetFunctionRequest{ProjectId: p, FunctionId: "ts"})
		if err != nil {
			t.Fatal(err)
		}
		list, err := fns.ListFunctions(ctx, &cairnv1.ListFunctionsRequest{ProjectId: p})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := in.events().ListEvents(ctx, &cairnv1.ListEventsRequest{ProjectId: p, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		sawFunctionEvents := 0
		for _, e := range evs.GetEvents() {
			if strings.Contains(e.GetSubject(), "functions.ts") {
				sawFunctionEvents++
			}
		}
		if sawFunctionEvents < 3 {
			t.Fatalf("the audit log has %d events of function ts", sawFunctionEvents)
		}
		for what, b := range map[string][]byte{"CreateFunction/UpdateFunction": mustJSON(t, up), "GetFunction": mustJSON(t, got),
			"ListFunctions": mustJSON(t, list), "ListEvents": mustJSON(t, evs)} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s returns the secret's value", what)
			}
		}
		if !bytes.Contains(mustJSON(t, got), []byte("plain-value")) {
			t.Errorf("GetFunction lacks the plain variable: %s", mustJSON(t, got))
		}
	})

	t.Run("execute permissions", func(t *testing.T) {
		deployTS(t, in, key, p, "members", dir, "--execute", "users")
		g, _ := guest(context.Background(), p, "")
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "u@example.com", Password: "user password 1"}); err != nil {
			t.Fatal(err)
		}
		// A caller who may not execute it is told it does not exist.
		_, err := fns.CreateExecution(g, &cairnv1.CreateExecutionRequest{ProjectId: p, FunctionId: "members", Path: "/version"})
		wantCode(t, err, connect.CodeNotFound)
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/members/version", "", nil, ""); r.status != http.StatusNotFound {
			t.Fatalf("guest over the route: %s", r)
		}
		sess := signIn(t, in, p, "u@example.com", "user password 1").GetSecret()
		u, _ := guest(context.Background(), p, sess)
		res, err := fns.CreateExecution(u, &cairnv1.CreateExecutionRequest{ProjectId: p, FunctionId: "members", Path: "/version"})
		if err != nil || string(res.GetExecution().GetResponseBody()) != "v1" {
			t.Fatalf("signed-in user: %v %v", res, err)
		}
		if r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/members/version", sess, nil, ""); r.status != 200 || string(r.body) != "v1" {
			t.Fatalf("signed-in user over the route: %s", r)
		}
		// The code gets a JWT of the calling user; a guest's gets none.
		var who struct{ JWT string }
		_ = json.Unmarshal(callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/members/whoami", sess, nil, "").body, &who)
		jctx, _ := guest(context.Background(), p, who.JWT)
		if acc, err := in.account().GetAccount(jctx, &cairnv1.GetAccountRequest{}); err != nil || acc.GetUser().GetEmail() != "u@example.com" {
			t.Fatalf("the user's JWT the code got (%q): %v %v", who.JWT, acc, err)
		}
		who.JWT = "x"
		_ = json.Unmarshal(callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/ts/whoami", "", nil, "").body, &who)
		if who.JWT != "" {
			t.Fatalf("a guest's execution got a JWT: %q", who.JWT)
		}
		// A user reads no execution records (keys with executions.read do).
		_, err = fns.ListExecutions(u, &cairnv1.ListExecutionsRequest{ProjectId: p, FunctionId: "members"})
		if code := connect.CodeOf(err); code != connect.CodePermissionDenied && code != connect.CodeUnauthenticated {
			t.Fatalf("user lists executions: %v", err)
		}
	})

	t.Run("deployments", func(t *testing.T) {
		fctx, _ := as(context.Background(), key)
		first, err := fns.GetFunction(fctx, &cairnv1.GetFunctionRequest{ProjectId: p, FunctionId: "ts"})
		if err != nil {
			t.Fatal(err)
		}
		v1 := first.GetFunction().GetActiveDeploymentId()
		writeTree(t, dir, map[string]string{"lib/version.ts": "export const VERSION: string = 'v2';\n"})
		if out, err := cli(t, in, key, "functions", "deploy", dir, "--project", p, "--function", "ts", "--activate"); err != nil {
			t.Fatalf("deploy v2: %v: %s", err, out)
		}
		version := func() string {
			return string(callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/ts/version", "", nil, "").body)
		}
		if v := version(); v != "v2" {
			t.Fatalf("after deploying v2: %s", v)
		}
		// Deployed without --activate: listed, not serving.
		writeTree(t, dir, map[string]string{"lib/version.ts": "export const VERSION: string = 'v3';\n"})
		if out, err := cli(t, in, key, "functions", "deploy", dir, "--project", p, "--function", "ts"); err != nil {
			t.Fatalf("deploy v3: %v: %s", err, out)
		}
		if v := version(); v != "v2" {
			t.Fatalf("an inactive deployment serves: %s", v)
		}
		ds, err := fns.ListFunctionDeployments(fctx, &cairnv1.ListFunctionDeploymentsRequest{ProjectId: p, FunctionId: "ts"})
		if err != nil || len(ds.GetDeployments()) != 3 {
			t.Fatalf("deployments: %v %v", ds, err)
		}
		byID := map[string]*cairnv1.FunctionDeployment{}
		var v2, v3 string
		for _, d := range ds.GetDeployments() {
			byID[d.GetId()] = d
			if d.GetStatus() != "ready" || d.GetSize() == 0 || len(d.GetSha256()) != 64 {
				t.Errorf("deployment %v", d)
			}
			switch {
			case d.GetActive():
				v2 = d.GetId()
			case d.GetId() != v1:
				v3 = d.GetId()
			}
		}
		if byID[v1] == nil || v2 == "" || v3 == "" || v2 == v1 {
			t.Fatalf("deployments %v (v1 %s)", ds.GetDeployments(), v1)
		}
		// Roll back to v1.
		act, err := fns.ActivateFunctionDeployment(fctx, &cairnv1.ActivateFunctionDeploymentRequest{ProjectId: p, FunctionId: "ts", DeploymentId: v1})
		if err != nil || act.GetFunction().GetActiveDeploymentId() != v1 {
			t.Fatalf("roll back: %v %v", act, err)
		}
		if v := version(); v != "v1" {
			t.Fatalf("after rolling back: %s", v)
		}
		// Deleting the active one is refused; an inactive one goes.
		_, err = fns.DeleteFunctionDeployment(fctx, &cairnv1.DeleteFunctionDeploymentRequest{ProjectId: p, FunctionId: "ts", DeploymentId: v1})
		wantCode(t, err, connect.CodeFailedPrecondition)
		if _, err := fns.DeleteFunctionDeployment(fctx, &cairnv1.DeleteFunctionDeploymentRequest{ProjectId: p, FunctionId: "ts", DeploymentId: v2}); err != nil {
			t.Fatal(err)
		}
		_, err = fns.GetFunctionDeployment(fctx, &cairnv1.GetFunctionDeploymentRequest{ProjectId: p, FunctionId: "ts", DeploymentId: v2})
		wantCode(t, err, connect.CodeNotFound)
		// A bundle that does not compile fails its build and cannot serve.
		bad, err := fns.CreateFunctionDeployment(fctx, &cairnv1.CreateFunctionDeploymentRequest{ProjectId: p, FunctionId: "ts",
			Code: []byte("module.exports = { default: async ({ res }) => res.text('x') "), Activate: true})
		if err != nil {
			t.Fatal(err)
		}
		if d := bad.GetDeployment(); d.GetStatus() != "failed" || d.GetError() == "" || d.GetActive() {
			t.Fatalf("broken bundle: %v", d)
		}
		_, err = fns.ActivateFunctionDeployment(fctx, &cairnv1.ActivateFunctionDeploymentRequest{ProjectId: p, FunctionId: "ts", DeploymentId: bad.GetDeployment().GetId()})
		wantCode(t, err, connect.CodeFailedPrecondition)
		// So does one uploaded over the HTTP route, and the CLI refuses
		// to deploy a project that does not bundle.
		r := in.do(t, httpCall{method: http.MethodPost, path: "/v1/projects/" + p + "/functions/ts/deployments", token: key,
			query: map[string][]string{"activate": {"true"}}, body: strings.NewReader("function (")})
		if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"status":"failed"`) {
			t.Fatalf("broken upload: %s", r)
		}
		broken := t.TempDir()
		writeTree(t, broken, map[string]string{"index.ts": "export default async ({ res }) => res.text(;\n"})
		if out, err := cli(t, in, key, "functions", "deploy", broken, "--project", p, "--function", "ts"); err == nil || !strings.Contains(err.Error(), "index.ts:1") {
			t.Fatalf("deploying a project that does not bundle: %v: %s", err, out)
		}
		if v := version(); v != "v1" {
			t.Fatalf("after the failed deployments: %s", v)
		}
	})
}

func mustJSON(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFunctionsSSRF: without an allowlist, a function's fetch reaches
// neither loopback (the server itself) nor link-local (cloud metadata).
func TestFunctionsSSRF(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p = "ssrf"
	key := newProjectWithKey(t, in, p, "functions.read", "functions.write", "executions.read", "executions.write")
	dir := t.TempDir()
	writeTree(t, dir, tsProject)
	deployTS(t, in, key, p, "ts", dir, "--execute", "any")
	for _, target := range []string{in.url + "/readyz", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]:80/"} {
		r := callRoute(t, in, http.MethodPost, "/v1/functions/"+p+"/ts/fetch", "", nil, target)
		if r.status != 200 || !strings.Contains(string(r.body), "blocked") {
			t.Errorf("fetch %s: %s", target, r)
		}
	}
}
