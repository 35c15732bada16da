package main

// The web console (console/, served at /console/ on the API's origin), in
// a real headless Chromium against a real instance: sign in with the
// operator key, create a project, a key (its secret shown once), a
// database, a collection with an attribute, a document in the grid, and
// find the document's event in the audit log. And, over plain HTTP: its
// security headers, and that no site host serves it.

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/console"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

func TestConsoleBrowser(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	browser := edgeBrowser(t, 150*time.Second)
	tab := openConsoleTab(t, browser)
	c := tab.c
	step, wait, text, setText := tab.step, tab.wait, consoleText, consoleSetText

	// A wrong key: the API's refusal, as the API words it.
	step("open", chromedp.Navigate(in.url+"/console/"))
	wait("sign-in form", `document.querySelector("#operator-email") ? "yes" : ""`)
	step("key sign-in", chromedp.Click(chromedp.CSS("#signin-switch")))
	wait("key form", `document.querySelector("#operator-key") ? "yes" : ""`)
	step("wrong key", chromedp.SendKeys(chromedp.CSS("#operator-key"), "not-the-key"), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	if msg := wait("refusal", text("#signin .error")); !strings.Contains(msg, "unauthenticated") {
		t.Errorf("a wrong key shows %q, want the API's unauthenticated error", msg)
	}
	edgeShot(t, c, "1-signin-refused")

	step("reload", chromedp.Navigate(in.url+"/console/"))
	step("key sign-in again", chromedp.Click(chromedp.CSS("#signin-switch")))
	step("sign in", chromedp.SendKeys(chromedp.CSS("#operator-key"), testAdminKey), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	wait("projects", `document.querySelector("#create-project") ? "yes" : ""`)
	if stored, _ := chromedp.Run(c, chromedp.Evaluate[string](`sessionStorage.getItem("cairn.console.operatorKey") + "|" + (localStorage.length)`)); stored != testAdminKey+"|0" {
		t.Errorf("the operator key is kept as %q (sessionStorage|localStorage items), want it in sessionStorage only", stored)
	}

	// A project, then its keys screen.
	step("create project", chromedp.SendKeys(chromedp.CSS(`#create-project input[name=projectId]`), "shop"),
		chromedp.SendKeys(chromedp.CSS(`#create-project input[name=name]`), "The Shop"),
		chromedp.Click(chromedp.CSS(`#create-project button[type=submit]`)))
	wait("keys screen", `location.pathname === "/console/p/shop/keys" && document.querySelector("#create-key") ? "yes" : ""`)

	// A key with two scopes: its secret shown once.
	step("create key", chromedp.SendKeys(chromedp.CSS(`#create-key input[name=keyName]`), "backend"),
		chromedp.Click(chromedp.CSS(`#create-key input[value="documents.read"]`)),
		chromedp.Click(chromedp.CSS(`#create-key input[value="documents.write"]`)),
		chromedp.Click(chromedp.CSS(`#create-key button[type=submit]`)))
	secret := strings.TrimSpace(wait("secret", text("#secret-value")))
	if !strings.HasPrefix(secret, "ck_shop_") {
		t.Fatalf("the secret shown: %q, want a key of project shop", secret)
	}
	if row := wait("key listed", text("#keys tbody")); !strings.Contains(row, "backend") || !strings.Contains(row, "documents.write") {
		t.Errorf("the keys table: %q, want the key with its scopes", row)
	}
	edgeShot(t, c, "2-key-secret")
	step("hide secret", chromedp.Click(chromedp.CSS("#secret-done")))
	step("reload keys", chromedp.Navigate(in.url+"/console/p/shop/keys"))
	wait("keys again", text("#keys tbody"))
	if page, _ := chromedp.Run(c, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(page, secret) {
		t.Error("the key's secret is on the page after it was dismissed")
	}

	// A database, a collection, an attribute.
	step("databases", chromedp.Click(chromedp.CSS("#tab-databases")))
	step("create database", chromedp.SendKeys(chromedp.CSS(`#create-database input[name=databaseId]`), "main"),
		chromedp.Click(chromedp.CSS(`#create-database button[type=submit]`)))
	wait("database listed", `document.querySelector("[data-database=main] .create-collection") ? "yes" : ""`)
	step("create collection", chromedp.SendKeys(chromedp.CSS(`[data-database=main] input[name=collectionId]`), "orders"),
		chromedp.Click(chromedp.CSS(`[data-database=main] .create-collection button[type=submit]`)))
	wait("collection listed", `document.querySelector('a[href="/console/p/shop/databases/main/orders"]') ? "yes" : ""`)
	edgeShot(t, c, "3-databases")
	step("open collection", chromedp.Click(chromedp.CSS(`a[href="/console/p/shop/databases/main/orders"]`)))
	// CI once failed here ("create attribute: context deadline exceeded":
	// the tab never opened): a loading line then sat above the tabs and
	// moved them under the click when it went. The tabs now come first;
	// the test still uses them only once the collection has loaded.
	wait("collection loaded", `document.querySelector("#new-document") ? "yes" : ""`)
	step("attributes", chromedp.Click(chromedp.CSS("#subtab-attributes")))
	step("create attribute", chromedp.SendKeys(chromedp.CSS(`#create-attribute input[name=attributeKey]`), "title"),
		setText(`#create-attribute input[name=attributeSize]`, "40"),
		chromedp.Click(chromedp.CSS(`#create-attribute button[type=submit]`)))
	if row := wait("attribute listed", text("#attributes tbody")); !strings.Contains(row, "title") || !strings.Contains(row, "string") {
		t.Errorf("the attributes table: %q", row)
	}
	edgeShot(t, c, "4-attributes")
	// Likewise once the attribute is built (its "Building…" line gone).
	wait("attribute built", `document.querySelector("#building") ? "" : "yes"`)

	// A document that breaks the schema: the API's message and field; then a good one.
	step("documents", chromedp.Click(chromedp.CSS("#subtab-documents")), chromedp.Click(chromedp.CSS("#new-document")))
	wait("editor", `document.querySelector("#document-editor") ? "yes" : ""`)
	step("bad document", setText(`#document-editor textarea[name=data]`, `{"title": "`+strings.Repeat("x", 41)+`"}`),
		chromedp.Click(chromedp.CSS("#save-document")))
	if msg := wait("schema error", text("#document-editor .error")); !strings.Contains(msg, "invalid_argument") || !strings.Contains(msg, "field") {
		t.Errorf("a document over the attribute's size shows %q, want the API's invalid_argument and its field", msg)
	} else {
		t.Logf("the error shown: %s", msg)
	}
	edgeShot(t, c, "5-document-error")
	step("good document", setText(`#document-editor textarea[name=data]`, `{"title": "first order"}`),
		setText(`#document-editor input[name=documentId]`, "order-1"),
		chromedp.Click(chromedp.CSS("#save-document")))
	if row := wait("document listed", text(`#documents tr[data-document="order-1"]`)); !strings.Contains(row, "first order") {
		t.Errorf("the grid's row: %q", row)
	}
	edgeShot(t, c, "6-documents")
	// The key shown once works, and sees the document.
	k, _ := as(context.Background(), secret)
	if l, err := in.databases().ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: "shop", DatabaseId: "main", CollectionId: "orders"}); err != nil || len(l.GetDocuments()) != 1 {
		t.Errorf("the key created in the console lists %d documents, %v; want the one", len(l.GetDocuments()), err)
	}

	// The audit log, filtered to the collection's documents: the document's event.
	step("audit", chromedp.Click(chromedp.CSS("#tab-audit")))
	wait("events", text("#events tbody"))
	step("filter", chromedp.SendKeys(chromedp.CSS(`#audit-filter input[name=subject]`), "databases.main.collections.orders.documents.>"),
		chromedp.Click(chromedp.CSS(`#audit-filter button[type=submit]`)))
	rows := wait("document events", `(() => { const t = document.querySelector("#events tbody")?.innerText ?? "";
		return t.includes("documentCreated") && !t.includes("keyCreated") ? t : ""; })()`)
	if !strings.Contains(rows, "documents.order-1.create") || !strings.Contains(rows, "operator") {
		t.Errorf("the audit rows: %q, want order-1's create by the operator", rows)
	}
	edgeShot(t, c, "7-audit")
	step("open event", chromedp.Click(chromedp.CSS(`#events tbody tr:first-child`)))
	if ev := wait("event", text("#event-json")); !strings.Contains(ev, "first order") {
		t.Errorf("the event opened: %q, want the document's data", ev)
	}
	edgeShot(t, c, "8-event")

	// The projects list, with its figures.
	step("projects", chromedp.Navigate(in.url+"/console/"))
	row := wait("figures", `(() => { const r = document.querySelector('tr[data-project="shop"]'); return r && !r.innerText.includes("…") ? r.innerText : ""; })()`)
	if f := strings.Fields(row); len(f) < 6 || f[3] != "1" || f[4] != "1" {
		t.Errorf("the project's row: %q, want 1 key and 1 database", row)
	}
	edgeShot(t, c, "9-projects")

	// Deleting the project takes typing its id.
	step("delete project", chromedp.Click(chromedp.CSS(`tr[data-project="shop"] button.danger`)))
	if disabled, _ := chromedp.Run(c, chromedp.Evaluate[bool](`document.querySelector("#confirm-delete").disabled`)); !disabled {
		t.Error("the delete button is enabled before the id is typed")
	}
	step("type id", chromedp.SendKeys(chromedp.CSS("#confirm-id"), "shop"), chromedp.Click(chromedp.CSS("#confirm-delete")))
	wait("project gone", `!document.querySelector('tr[data-project="shop"]') && !document.querySelector(".modal") ? "yes" : ""`)
	if _, err := in.projects().GetProject(op(t), &cairnv1.GetProjectRequest{ProjectId: "shop"}); err == nil {
		t.Error("project shop still exists after the console deleted it")
	}
}

// op is the operator's call context.
func op(t *testing.T) context.Context {
	t.Helper()
	ctx, _ := as(context.Background(), testAdminKey)
	return ctx
}

// consoleTab drives one browser tab of the console, failing t with a
// screenshot and the page's text when a step does not happen.
type consoleTab struct {
	t *testing.T
	c context.Context

	mu       sync.Mutex
	problems []string // CSP refusals and uncaught exceptions
}

// openConsoleTab opens a tab of its own in browser, watching for CSP
// refusals and uncaught exceptions; when t ends, the tab closes and any
// of those fails t.
func openConsoleTab(t *testing.T, browser context.Context) *consoleTab {
	t.Helper()
	c, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	// The tab opens now, on c: steps' timeouts are then theirs alone.
	if err := chromedp.Do(c); err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &consoleTab{t: t, c: c}
	t.Cleanup(func() {
		p.check()
		cancel()
	})
	p.watch()
	return p
}

// watch records what the page's console says about the CSP refusing
// something, and uncaught exceptions; check fails t on any.
func (p *consoleTab) watch() {
	p.t.Helper()
	if err := chromedp.Listen(p.c, func(ev any) {
		var problem string
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			if e.Entry.Source == cdplog.EntrySourceSecurity || strings.Contains(e.Entry.Text, "Content Security Policy") {
				problem = e.Entry.Text
			}
		case *cdpruntime.EventExceptionThrown:
			problem = "uncaught: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				problem += " " + e.ExceptionDetails.Exception.Description
			}
		}
		if problem != "" {
			p.mu.Lock()
			p.problems = append(p.problems, problem)
			p.mu.Unlock()
		}
	}); err != nil {
		p.t.Fatal(err)
	}
	if _, err := chromedp.Call(p.c, cdplog.Enable, cdp.Empty{}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *consoleTab) check() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("the page's console: %s", m)
	}
}

func (p *consoleTab) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.c, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		edgeShot(p.t, p.c, "failed-"+name)
		p.t.Fatalf("%s: %v", name, err)
	}
}

// wait polls expr (JavaScript) until it is a non-empty string, and returns it.
func (p *consoleTab) wait(name, expr string) string {
	p.t.Helper()
	var v string
	var err error
	// A poll that starts while a navigation replaces the document can be
	// answered for the old document's execution context; that is the
	// browser's race, not the page's, so it is polled again.
	for range 3 {
		v, err = chromedp.Run(p.c, chromedp.Poll[string](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
		if err == nil || !contextGone(err) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		edgeShot(p.t, p.c, "failed-"+name)
		body, _ := chromedp.Run(p.c, chromedp.Evaluate[string](`document.body.innerText`))
		p.t.Fatalf("%s: %v\npage:\n%s", name, err, body)
	}
	return v
}

// contextGone reports an error from evaluating in a document that a
// navigation has just replaced.
func contextGone(err error) bool {
	m := err.Error()
	return strings.Contains(m, "Cannot find context with specified id") || strings.Contains(m, "Execution context was destroyed")
}

// wantRefused waits for the error shown in sel and checks it is the API's
// invalid_argument naming field.
func (p *consoleTab) wantRefused(name, sel, field string) {
	p.t.Helper()
	if msg := p.wait(name, consoleText(sel)); !strings.Contains(msg, "invalid_argument") || !strings.Contains(msg, field) {
		p.t.Errorf("%s: the page shows %q, want invalid_argument naming %s", name, msg, field)
	}
}

// signIn opens the console at path and signs in with the operator key.
func (p *consoleTab) signIn(base, path string) {
	p.t.Helper()
	p.step("open", chromedp.Navigate(base+"/console"+path))
	p.step("key sign-in", chromedp.Click(chromedp.CSS("#signin-switch")))
	p.step("sign in", chromedp.SendKeys(chromedp.CSS("#operator-key"), testAdminKey), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	p.wait("signed in", `document.querySelector("#signout") ? "yes" : ""`)
}

// consoleText is JavaScript for the text of the element sel matches ("" for none).
func consoleText(sel string) string {
	return `(document.querySelector(` + jsString(sel) + `)?.innerText ?? "")`
}

// consoleSetText sets a text area or input the way typing does (an input event).
func consoleSetText(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector(` + jsString(sel) + `); e.value = ` + jsString(v) +
		`; e.dispatchEvent(new Event("input", {bubbles: true})); })()`)
}

// TestConsoleScreens: storage (an upload and its preview), sites (a
// rollback to the older deployment, a preview link on its own host) and
// functions (a run with a payload, its logs), set up through the API.
func TestConsoleScreens(t *testing.T) {
	requireChromium(t)
	in, port := edgeInstance(t)
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateBucket(op, &cairnv1.CreateBucketRequest{ProjectId: "demo", BucketId: "photos", Name: "photos"}); err != nil {
		t.Fatal(err)
	}
	deploySite(t, in, testAdminKey, "demo", "web", map[string]string{"index.html": "<h1>v1</h1>"})
	res, body := in.httpDo(t, "POST", "/v1/sites/demo/web/deployments?activate=true", testAdminKey, tarGz(t, map[string]string{"index.html": "<h1>v2</h1>"}), nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("second deployment: %d %s", res.StatusCode, body)
	}
	deployJS(t, in, testAdminKey, "demo", &cairnv1.CreateFunctionRequest{FunctionId: "echo"},
		`module.exports.default = async ({ req, res, log }) => { log("got " + req.bodyText); return res.json({ echo: JSON.parse(req.bodyText) }); };`)
	pic := filepath.Join(t.TempDir(), "pic.png")
	if err := os.WriteFile(pic, pngBytes(t, 64, 40), 0o644); err != nil {
		t.Fatal(err)
	}

	browser := edgeBrowser(t, 150*time.Second)
	p := openConsoleTab(t, browser)

	// Storage: upload, and the server's preview shown.
	p.signIn(in.url, "/p/demo/storage/photos")
	p.wait("bucket", `document.querySelector("#upload") ? "yes" : ""`)
	p.step("upload", chromedp.SetUploadFiles(chromedp.CSS(`#upload input[type=file]`), []string{pic}))
	if row := p.wait("file listed", `(() => { const i = document.querySelector("#files img.preview");
		return i && i.complete && i.naturalWidth > 0 ? document.querySelector("#files tbody").innerText : ""; })()`); !strings.Contains(row, "pic.png") || !strings.Contains(row, "image/png") {
		t.Errorf("the files table: %q", row)
	}
	edgeShot(t, p.c, "1-storage")

	// Sites: v2 active; rolling back to v1 serves v1 on the site's host.
	p.step("sites", chromedp.Click(chromedp.CSS("#tab-sites")))
	p.wait("deployments", `document.querySelectorAll("[data-site=web] .deployments tbody tr").length === 2 ? "yes" : ""`)
	preview := p.wait("preview link", `document.querySelector("[data-site=web] .deployments a[href]")?.href ?? ""`)
	if !strings.Contains(preview, ".web.demo.localhost:"+port) {
		t.Errorf("the preview link %q is not on the deployment's own host", preview)
	}
	edgeShot(t, p.c, "2-sites")
	p.step("roll back", chromedp.Click(chromedp.CSS(`[data-site=web] .deployments tbody tr:last-child button:not(.danger)`)))
	p.wait("rolled back", `document.querySelector("[data-site=web] .deployments tbody tr:last-child")?.innerText.includes("active") ? "yes" : ""`)
	req, _ := http.NewRequest("GET", in.url+"/", nil)
	req.Host = "web.demo.localhost:" + port
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), "v1") {
			t.Errorf("after the rollback the site serves %q, want v1", b)
		}
	}

	// Functions: a run with a payload, its logs and response.
	p.step("functions", chromedp.Click(chromedp.CSS("#tab-functions")))
	p.wait("function listed", consoleText("#functions tbody"))
	p.step("open function", chromedp.Click(chromedp.CSS(`#functions tbody tr:first-child`)))
	p.step("run", consoleSetText(`#function-panel textarea`, `{"n": 42}`), chromedp.Click(chromedp.CSS(`#function-panel button[type=submit]`)))
	if logs := p.wait("logs", consoleText("#execution-logs")); !strings.Contains(logs, `got {"n": 42}`) {
		t.Errorf("the execution's logs: %q", logs)
	}
	if page := p.wait("response", consoleText(".modal")); !strings.Contains(page, `"echo":{"n":42}`) || !strings.Contains(page, "completed") {
		t.Errorf("the execution shown: %q", page)
	}
	edgeShot(t, p.c, "3-function-run")
}

// TestConsoleHeaders: the console on the API's origin with its CSP, its
// screens falling back to index.html; never on a site's host, not even
// under the site's own API prefix.
func TestConsoleHeaders(t *testing.T) {
	in, port := edgeInstance(t)
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "alpha", Name: "alpha"}); err != nil {
		t.Fatal(err)
	}
	deploySite(t, in, testAdminKey, "alpha", "web", map[string]string{"index.html": "<h1>alpha's site</h1>"})

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(host, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("GET", in.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, c := range []struct{ path, ctype, contains string }{
		{"/console/", "text/html", "<title>Cairn console</title>"},
		{"/console/p/alpha/databases/main/orders", "text/html", "<title>Cairn console</title>"},
		{"/console/app.js", "text/javascript", ""},
		{"/console/style.css", "text/css", ""},
	} {
		res, body := get("", c.path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), c.ctype) || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %s, want 200 %s with %q", c.path, res.StatusCode, res.Header.Get("Content-Type"), c.ctype, c.contains)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != console.CSP || !strings.Contains(got, "default-src 'self'") || strings.Contains(got, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, got)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: X-Frame-Options %q, X-Content-Type-Options %q", c.path, res.Header.Get("X-Frame-Options"), res.Header.Get("X-Content-Type-Options"))
		}
	}
	// The page runs no inline script: every script is a file of its own.
	if _, body := get("", "/console/"); strings.Contains(body, "<script>") || strings.Contains(body, "<script type=\"module\">") {
		t.Errorf("index.html has an inline script:\n%s", body)
	}
	if res, _ := get("", "/console/missing.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /console/missing.js: %d, want 404 (a missing file is no screen)", res.StatusCode)
	}
	if res, _ := get("", "/console"); res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/console/" {
		t.Errorf("GET /console: %d to %q, want 301 to /console/", res.StatusCode, res.Header.Get("Location"))
	}
	// Site hosts: the site's own content or a 404, never the console.
	site := "web.alpha.localhost:" + port
	if res, body := get(site, "/"); res.StatusCode != 200 || !strings.Contains(body, "alpha's site") {
		t.Fatalf("the site itself: %d %q", res.StatusCode, body)
	}
	for _, path := range []string{"/console/", "/console/app.js", "/_cairn/console/", "/_cairn/console/app.js"} {
		res, body := get(site, path)
		if strings.Contains(body, "Cairn console") || res.Header.Get("Content-Security-Policy") == console.CSP || res.StatusCode == 200 && strings.HasSuffix(path, ".js") {
			t.Errorf("GET %s on %s: %d %q: the console is served on a site's host", path, site, res.StatusCode, body)
		}
	}
}
