package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The browser edge (DESIGN §10): user content on its own hosts, a site's
// own API under /_cairn/, web platforms for CORS, one credential model.

// hostURL is http://<labels>.localhost:<port> of the instance.
func (in *instance) hostURL(labels string) string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(in.url, "http://"))
	return "http://" + labels + ".localhost:" + port
}

type edgeAnswer struct {
	status int
	header http.Header
	body   string
}

// code is the Connect (or plain route) error code of the answer.
func (a edgeAnswer) code() string {
	var e struct{ Code string }
	_ = json.Unmarshal([]byte(a.body), &e)
	return e.Code
}

// edgeDo sends a browser-like request: method to base+path with a JSON
// body and headers, never following redirects.
func edgeDo(t *testing.T, method, u, body string, hdr map[string]string) edgeAnswer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return edgeAnswer{status: res.StatusCode, header: res.Header, body: string(b)}
}

func setPlatforms(t *testing.T, in *instance, key, project string, platforms []string, noLocalhost bool) error {
	t.Helper()
	c, _ := as(context.Background(), key)
	_, err := in.users().UpdateAuthSettings(c, &cairnv1.UpdateAuthSettingsRequest{ProjectId: project,
		Settings: &cairnv1.AuthSettings{AllowedOrigins: platforms, DisableLocalhostOrigins: noLocalhost}})
	return err
}

func TestEdgeCORS(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "web1", append(docScopes, "users.read", "users.write", "files.read", "buckets.write")...)
	kctx, _ := as(context.Background(), key)
	docsFixture(t, kctx, in.databases(), "web1", "notes", []string{`read("any")`}, false)
	if err := setPlatforms(t, in, key, "web1", []string{"https://app.example.com", "https://*.preview.example.com"}, false); err != nil {
		t.Fatal(err)
	}
	list := in.url + "/cairn.v1.DatabasesService/ListDocuments"
	body := `{"projectId":"web1","databaseId":"main","collectionId":"notes"}`
	preflight := func(origin, u string) edgeAnswer {
		return edgeDo(t, http.MethodOptions, u, "", map[string]string{"Origin": origin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,cairn-project,content-type"})
	}
	for _, origin := range []string{"https://app.example.com", "https://pr-7.preview.example.com", "http://localhost:5173"} {
		a := preflight(origin, list)
		if a.status/100 != 2 || a.header.Get("Access-Control-Allow-Origin") != origin || a.header.Get("Access-Control-Allow-Credentials") != "true" ||
			a.header.Get("Access-Control-Max-Age") == "" || !strings.Contains(strings.ToLower(a.header.Get("Access-Control-Allow-Headers")), "cairn-project") {
			t.Fatalf("preflight from %s: %d %v", origin, a.status, a.header)
		}
		a = edgeDo(t, http.MethodPost, list, body, map[string]string{"Origin": origin})
		if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(a.header.Get("Access-Control-Expose-Headers"), "Cairn-Seq") {
			t.Fatalf("request from %s: %d %v %s", origin, a.status, a.header, a.body)
		}
	}
	// Storage routes name their project in the query: preflights use it.
	if a := preflight("https://app.example.com", in.url+"/v1/storage/buckets/b/files?project=web1"); a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("storage preflight: %d %v", a.status, a.header)
	}
	// An origin no project allows: no CORS approval, and the request itself
	// is refused naming the origin and what to do.
	for _, origin := range []string{"https://evil.example.com", "https://preview.example.com", "http://web.other.localhost:8080"} {
		if a := preflight(origin, list); a.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight from %s approved: %v", origin, a.header)
		}
		a := edgeDo(t, http.MethodPost, list, body, map[string]string{"Origin": origin})
		if a.status != 403 || a.code() != "permission_denied" || !strings.Contains(a.body, origin) || !strings.Contains(a.body, "allowed_origins") ||
			a.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("request from %s: %d %s %v", origin, a.status, a.body, a.header)
		}
	}
	// A key is for servers: from a browser origin the project does not
	// allow, it is refused too.
	a := edgeDo(t, http.MethodPost, list, body, map[string]string{"Origin": "https://evil.example.com", "Authorization": "Bearer " + key})
	if a.status != 403 {
		t.Fatalf("key from a foreign origin: %d %s", a.status, a.body)
	}
	// Operators' instance-wide calls are never taken from another origin.
	a = edgeDo(t, http.MethodPost, in.url+"/cairn.v1.ProjectsService/ListProjects", "{}", map[string]string{"Origin": "http://localhost:3000", "Authorization": "Bearer " + testAdminKey})
	if a.status != 403 || !strings.Contains(a.body, "instance operations") {
		t.Fatalf("operator from another origin: %d %s", a.status, a.body)
	}
	// "null" and other non-origins: invalid_argument naming the header.
	for _, o := range []string{"null", "file://", "chrome-extension://abc"} {
		a := edgeDo(t, http.MethodPost, list, body, map[string]string{"Origin": o})
		if a.status != 400 || a.code() != "invalid_argument" || !strings.Contains(a.body, "Origin") {
			t.Fatalf("Origin %q: %d %s", o, a.status, a.body)
		}
	}
	// No Origin (servers, curl) and the API's own origin are unaffected.
	if a := edgeDo(t, http.MethodPost, list, body, nil); a.status != 200 {
		t.Fatalf("no origin: %d %s", a.status, a.body)
	}
	if a := edgeDo(t, http.MethodPost, list, body, map[string]string{"Origin": in.url}); a.status != 200 {
		t.Fatalf("own origin: %d %s", a.status, a.body)
	}
	// Local development can be switched off.
	if err := setPlatforms(t, in, key, "web1", []string{"https://app.example.com"}, true); err != nil {
		t.Fatal(err)
	}
	if a := edgeDo(t, http.MethodPost, list, body, map[string]string{"Origin": "http://localhost:5173"}); a.status != 403 {
		t.Fatalf("localhost with local development off: %d %s", a.status, a.body)
	}
}

func TestEdgePlatformsBadInput(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "plat", "users.read", "users.write")
	if err := setPlatforms(t, in, key, "plat", []string{"https://ok.example.com"}, false); err != nil {
		t.Fatal(err)
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = "https://example.org"
	}
	for name, list := range map[string][]string{
		"star": {"*"}, "tld wildcard": {"https://*.com"}, "sites domain": {"http://*.localhost"},
		"scheme": {"ftp://example.com"}, "javascript": {"javascript:alert(1)"}, "path": {"https://example.com/app"},
		"crlf": {"https://example.com\r\nSet-Cookie: x=1"}, "null": {"null"}, "too many": many, "empty": {""},
	} {
		err := setPlatforms(t, in, key, "plat", list, false)
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "allowed_origins") {
			t.Errorf("%s: %v", name, err)
		}
	}
	c, _ := as(context.Background(), key)
	got, err := in.users().GetAuthSettings(c, &cairnv1.GetAuthSettingsRequest{ProjectId: "plat"})
	if err != nil || len(got.GetSettings().GetAllowedOrigins()) != 1 || got.GetSettings().GetAllowedOrigins()[0] != "https://ok.example.com" {
		t.Fatalf("settings changed by refused input: %v %v", got, err)
	}
}

func TestEdgeUserContentHosts(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "uc", Name: "uc"}); err != nil {
		t.Fatal(err)
	}
	// "fn" would make functions' hosts ambiguous.
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "fn", Name: "fn"}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("project fn: %v", err)
	}
	st, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "uc", SiteId: "web", Name: "Web"})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetSite().GetUrl() != in.hostURL("web.uc")+"/" {
		t.Fatalf("site URL %q", st.GetSite().GetUrl())
	}
	res, body := in.httpDo(t, "POST", "/v1/sites/uc/web/deployments?activate=true", testAdminKey, tarGz(t, map[string]string{"index.html": "<p>hi</p>"}), nil)
	if res.StatusCode != 201 {
		t.Fatalf("deploy: %d %s", res.StatusCode, body)
	}
	var dep struct{ Id, PreviewUrl string }
	_ = json.Unmarshal([]byte(body), &dep)
	if dep.PreviewUrl != in.hostURL(dep.Id+".web.uc")+"/" {
		t.Fatalf("preview URL %q", dep.PreviewUrl)
	}
	// The API's host serves no project's content: the old paths redirect.
	for path, want := range map[string]string{
		"/_sites/uc/web/":                        in.hostURL("web.uc") + "/",
		"/_sites/uc/web/a/b.html?x=1":            in.hostURL("web.uc") + "/a/b.html?x=1",
		"/_previews/uc/web/" + dep.Id + "/x.css": in.hostURL(dep.Id+".web.uc") + "/x.css",
		"/v1/functions/uc/hook/p?q=1":            in.hostURL("hook.uc.fn") + "/p?q=1",
	} {
		a := edgeDo(t, http.MethodGet, in.url+path, "", nil)
		if a.status != http.StatusTemporaryRedirect || a.header.Get("Location") != want || strings.Contains(a.header.Get("Content-Type"), "html") && strings.Contains(a.body, "hi") {
			t.Errorf("GET %s: %d %v", path, a.status, a.header)
		}
	}
	a := edgeDo(t, http.MethodGet, in.hostURL("web.uc")+"/", "", nil)
	if a.status != 200 || a.body != "<p>hi</p>" {
		t.Fatalf("site host: %d %s", a.status, a.body)
	}
	if a := edgeDo(t, http.MethodGet, in.hostURL("web.uc.x.y"), "", nil); a.status != 404 {
		t.Fatalf("an unknown user-content host: %d", a.status)
	}
	if a := edgeDo(t, http.MethodGet, in.hostURL("uc")+"/healthz", "", nil); a.status != 404 {
		t.Fatalf("a project label alone is no API: %d", a.status)
	}
}

func TestEdgeSiteOwnAPI(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	ka := newProjectWithKey(t, in, "pa", append(docScopes, "users.read", "buckets.write", "files.read")...)
	kb := newProjectWithKey(t, in, "pb", append(docScopes, "users.read")...)
	kactx, _ := as(ctx, ka)
	kbctx, _ := as(ctx, kb)
	docsFixture(t, kactx, in.databases(), "pa", "notes", []string{`read("users")`, `create("users")`}, false)
	docsFixture(t, kbctx, in.databases(), "pb", "notes", []string{`read("any")`}, false)
	site := in.hostURL("web.pa")
	api := site + "/_cairn"
	sameOrigin := map[string]string{"Origin": site}

	// Sign up and in on the site's own API: no Cairn-Project header, the
	// cookie is first-party, host-only and scoped to the API's path.
	if a := edgeDo(t, http.MethodPost, api+"/cairn.v1.AccountService/CreateAccount", `{"email":"u@example.com","password":"correct horse battery"}`, sameOrigin); a.status != 200 {
		t.Fatalf("sign up: %d %s", a.status, a.body)
	}
	a := edgeDo(t, http.MethodPost, api+"/cairn.v1.AccountService/CreateEmailPasswordSession", `{"email":"u@example.com","password":"correct horse battery"}`, sameOrigin)
	if a.status != 200 {
		t.Fatalf("sign in: %d %s", a.status, a.body)
	}
	sc := a.header.Get("Set-Cookie")
	for _, want := range []string{"cairn_session_pa=", "Path=/_cairn/", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Fatalf("cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(strings.ToLower(sc), "domain=") {
		t.Fatalf("cookie is not host-only: %q", sc)
	}
	cookie := strings.SplitN(sc, ";", 2)[0]
	withCookie := map[string]string{"Origin": site, "Cookie": cookie}
	if a := edgeDo(t, http.MethodPost, api+"/cairn.v1.AccountService/GetAccount", `{}`, withCookie); a.status != 200 || !strings.Contains(a.body, "u@example.com") {
		t.Fatalf("account with the cookie: %d %s", a.status, a.body)
	}
	// Every end-user service honours the cookie (it used to make a guest of
	// DatabasesService callers).
	create := `{"projectId":"pa","databaseId":"main","collectionId":"notes","document":{"documentId":"unique()","data":{"title":"mine"}}}`
	if a := edgeDo(t, http.MethodPost, api+"/cairn.v1.DatabasesService/CreateDocument", create, withCookie); a.status != 200 {
		t.Fatalf("create with the cookie: %d %s", a.status, a.body)
	}
	list := `{"projectId":"pa","databaseId":"main","collectionId":"notes"}`
	if a := edgeDo(t, http.MethodPost, api+"/cairn.v1.DatabasesService/ListDocuments", list, withCookie); a.status != 200 || !strings.Contains(a.body, `"mine"`) {
		t.Fatalf("list with the cookie: %d %s", a.status, a.body)
	}
	// The page need not know its project: an empty project_id is the
	// pinned one.
	if a := edgeDo(t, http.MethodPost, api+"/cairn.v1.DatabasesService/ListDocuments", `{"databaseId":"main","collectionId":"notes"}`, withCookie); a.status != 200 || !strings.Contains(a.body, `"mine"`) {
		t.Fatalf("list without projectId on the site's API: %d %s", a.status, a.body)
	}
	if a := edgeDo(t, http.MethodPost, in.url+"/cairn.v1.DatabasesService/ListDocuments", `{"databaseId":"main","collectionId":"notes"}`, nil); a.status != 400 {
		t.Fatalf("list without projectId on the API host: %d %s", a.status, a.body)
	}
	// A cookie that is present but no live session is an error, not a guest.
	stale := map[string]string{"Origin": site, "Cookie": "cairn_session_pa=cs_pa_" + strings.Repeat("0", 64)}
	if a := edgeDo(t, http.MethodPost, api+"/cairn.v1.DatabasesService/ListDocuments", list, stale); a.status != 401 || !strings.Contains(a.body, "cairn_session_pa") {
		t.Fatalf("stale cookie: %d %s", a.status, a.body)
	}
	// Pinned: naming project pb in the message, the header or the query,
	// or carrying pb's key or the operator's, is refused.
	refused := []struct {
		name, method, path, body string
		hdr                      map[string]string
	}{
		{"message names pb", "POST", "/cairn.v1.DatabasesService/ListDocuments", `{"projectId":"pb","databaseId":"main","collectionId":"notes"}`, withCookie},
		{"header names pb", "POST", "/cairn.v1.AccountService/GetAccount", `{}`, map[string]string{"Cairn-Project": "pb"}},
		{"pb's key", "POST", "/cairn.v1.DatabasesService/ListDocuments", `{"projectId":"pa","databaseId":"main","collectionId":"notes"}`, map[string]string{"Authorization": "Bearer " + kb}},
		{"pb's key for pb", "POST", "/cairn.v1.DatabasesService/ListDocuments", `{"projectId":"pb","databaseId":"main","collectionId":"notes"}`, map[string]string{"Authorization": "Bearer " + kb}},
		{"operator", "POST", "/cairn.v1.ProjectsService/ListProjects", `{}`, map[string]string{"Authorization": "Bearer " + testAdminKey}},
		{"operator on a project", "POST", "/cairn.v1.DatabasesService/ListDocuments", list, map[string]string{"Authorization": "Bearer " + testAdminKey}},
		{"storage of pb", "GET", "/v1/storage/buckets/b/files/f/view?project=pb", "", nil},
		{"function of pb", "GET", "/v1/functions/pb/f/", "", nil},
		{"site upload of pb", "POST", "/v1/sites/pb/web/deployments", "", map[string]string{"Authorization": "Bearer " + kb}},
		{"realtime of pb", "GET", "/v1/realtime?project=pb&channels=documents", "", nil},
	}
	for _, r := range refused {
		a := edgeDo(t, r.method, api+r.path, r.body, r.hdr)
		if a.status != 403 || a.code() != "permission_denied" {
			t.Errorf("%s: %d %s", r.name, a.status, a.body)
		}
	}
	if a := edgeDo(t, http.MethodGet, api+"/metrics", "", nil); a.status != 404 {
		t.Errorf("metrics on a site's API: %d", a.status)
	}
	// The same calls through the API host work for pb: nothing above was
	// refused for being malformed.
	if a := edgeDo(t, http.MethodPost, in.url+"/cairn.v1.DatabasesService/ListDocuments", `{"projectId":"pb","databaseId":"main","collectionId":"notes"}`, nil); a.status != 200 {
		t.Fatalf("pb on the API host: %d %s", a.status, a.body)
	}
	// Another site's page may not use pa's site API with pa's cookie.
	a = edgeDo(t, http.MethodPost, api+"/cairn.v1.AccountService/GetAccount", `{}`, map[string]string{"Origin": in.hostURL("web.pb"), "Cookie": cookie})
	if a.status != 403 || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("pb's site with pa's cookie: %d %s", a.status, a.body)
	}
}

func TestEdgeNoSideEffectsOverGET(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "tx", docScopes...)
	kctx, _ := as(context.Background(), key)
	docsFixture(t, kctx, in.databases(), "tx", "notes", []string{`read("any")`}, false)
	// Connect's GET form of GetDocument: with a transaction it would stage
	// a read (an event); a page of another site can make a browser send a
	// GET, so it is refused.
	msg := `{"projectId":"tx","databaseId":"main","collectionId":"notes","documentId":"d1","transactionId":"t1"}`
	q := url.Values{"encoding": {"json"}, "message": {msg}, "connect": {"v1"}}
	a := edgeDo(t, http.MethodGet, in.url+"/cairn.v1.DatabasesService/GetDocument?"+q.Encode(), "", map[string]string{"Authorization": "Bearer " + key})
	if a.status != 400 || !strings.Contains(a.body, "transaction_id") {
		t.Fatalf("GET with a transaction: %d %s", a.status, a.body)
	}
}
