package main

// The console's settings screens, each edit checked through the API: OAuth
// providers (the client secret write-only), a bucket's, a function's and a
// site's settings; an index build followed live to available or failed;
// and a file token at its expiry's edge.

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// consoleSelect picks v in the select sel matches, as a user does (a change event).
func consoleSelect(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector(` + jsString(sel) + `); e.value = ` + jsString(v) +
		`; e.dispatchEvent(new Event("change", {bubbles: true})); })()`)
}

// consoleCheck sets the checkbox sel matches to on, clicking it only if it differs.
func consoleCheck(sel string, on bool) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector(` + jsString(sel) + `); if (e.checked !== ` +
		fmt.Sprint(on) + `) e.click(); })()`)
}

func TestConsoleSettings(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	admin := op(t)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateBucket(admin, &cairnv1.CreateBucketRequest{ProjectId: "demo", BucketId: "photos", Name: "photos"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.functions().CreateFunction(admin, &cairnv1.CreateFunctionRequest{ProjectId: "demo", FunctionId: "mailer", Name: "mailer", Runtime: "js"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.sites().CreateSite(admin, &cairnv1.CreateSiteRequest{ProjectId: "demo", SiteId: "web", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	browser := edgeBrowser(t, 200*time.Second)
	p := openConsoleTab(t, browser)
	const clientSecret = "gh-client-secret-value"

	// OAuth: a provider added with its secret; then turned off and its client
	// id changed with the secret field empty: the stored secret stays.
	p.signIn(in.url, "/p/demo/auth")
	p.step("settings", chromedp.Click(chromedp.CSS("#auth-settings")))
	p.wait("settings form", `document.querySelector("#add-provider") ? "yes" : ""`)
	p.step("add provider", chromedp.Click(chromedp.CSS("#add-provider")))
	prov := `#oauth-providers .provider:first-of-type `
	p.step("provider", consoleSetText(prov+`input[name=oauthId]`, "github"), consoleSelect(prov+`select[name=oauthKind]`, "github"),
		consoleSetText(prov+`input[name=oauthClientId]`, "client-1"), consoleSetText(prov+`input[name=oauthClientSecret]`, clientSecret),
		chromedp.Click(chromedp.CSS(`form#auth-settings button[type=submit]`)))
	p.wait("saved", `document.querySelector("#settings-saved") ? "yes" : ""`)
	provider := func() *cairnv1.OAuthProvider {
		t.Helper()
		s, err := in.users().GetAuthSettings(admin, &cairnv1.GetAuthSettingsRequest{ProjectId: "demo"})
		if err != nil || len(s.GetSettings().GetOauthProviders()) != 1 {
			t.Fatalf("oauth providers after the console: %v %v", s.GetSettings().GetOauthProviders(), err)
		}
		return s.GetSettings().GetOauthProviders()[0]
	}
	if g := provider(); g.GetId() != "github" || g.GetKind() != "github" || g.GetClientId() != "client-1" || !g.GetClientSecretSet() || g.GetDisabled() {
		t.Errorf("the provider saved: %v", g)
	}
	if v := p.wait("secret field", `document.querySelector(`+jsString(prov+`input[name=oauthClientSecret]`)+`).placeholder`); !strings.Contains(v, "stored") {
		t.Errorf("the secret field after saving says %q, want that a secret is stored", v)
	}
	p.step("edit provider", consoleSetText(prov+`input[name=oauthClientId]`, "client-2"), consoleCheck(prov+`input[name=oauthEnabled]`, false),
		chromedp.Click(chromedp.CSS(`form#auth-settings button[type=submit]`)))
	var g *cairnv1.OAuthProvider
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if g = provider(); g.GetClientId() == "client-2" {
			break
		}
	}
	if g.GetClientId() != "client-2" || !g.GetDisabled() || !g.GetClientSecretSet() {
		t.Errorf("the provider edited with the secret left empty: %v, want client-2, disabled, secret kept", g)
	}
	if page := p.wait("page", `document.body.innerText + [...document.querySelectorAll("input")].map((i) => i.value).join(" ")`); strings.Contains(page, clientSecret) {
		t.Error("the client secret is on the page after saving")
	}
	edgeShot(t, p.c, "1-oauth")

	// A bucket's settings; a bad permission refused with the API's field.
	p.step("bucket", chromedp.Navigate(in.url+"/console/p/demo/storage/photos"))
	p.step("bucket settings", chromedp.Click(chromedp.CSS("#bucket-settings-toggle")))
	p.wait("bucket form", `document.querySelector("#bucket-settings input[name=bucketName]")?.value === "photos" ? "yes" : ""`)
	p.step("bad permission", consoleSetText(`#bucket-settings textarea[name=bucketPermissions]`, `read("nobody")`),
		chromedp.Click(chromedp.CSS(`#bucket-settings button[type=submit]`)))
	p.wantRefused("refused", "#bucket-settings .error", "permissions")
	p.step("bucket edit", consoleSetText(`#bucket-settings input[name=bucketName]`, "Photos"),
		consoleSetText(`#bucket-settings input[name=maximumFileSize]`, "2"),
		consoleSetText(`#bucket-settings input[name=allowedFileExtensions]`, "png, jpg"),
		consoleSelect(`#bucket-settings select[name=compression]`, "COMPRESSION_GZIP"),
		consoleCheck(`#bucket-settings input[name=encryption]`, true),
		consoleCheck(`#bucket-settings input[name=fileSecurity]`, true),
		consoleSetText(`#bucket-settings textarea[name=bucketPermissions]`, "read(\"any\")\ncreate(\"users\")"),
		chromedp.Click(chromedp.CSS(`#bucket-settings button[type=submit]`)))
	p.wait("bucket saved", `document.querySelector("#bucket-saved") && !document.querySelector("#bucket-settings .error") ? "yes" : ""`)
	edgeShot(t, p.c, "2-bucket")
	b, err := in.storage().GetBucket(admin, &cairnv1.GetBucketRequest{ProjectId: "demo", BucketId: "photos"})
	if bk := b.GetBucket(); err != nil || bk.GetName() != "Photos" || bk.GetMaximumFileSize() != 2<<20 || strings.Join(slices.Sorted(slices.Values(bk.GetAllowedFileExtensions())), ",") != "jpg,png" ||
		bk.GetCompression() != cairnv1.Compression_COMPRESSION_GZIP || !bk.GetEncryption() || !bk.GetFileSecurity() || !bk.GetEnabled() ||
		strings.Join(bk.GetPermissions(), " ") != `read("any") create("users")` {
		t.Errorf("the bucket after the console: %v %v", bk, err)
	}

	// A function's settings; a bad schedule refused.
	p.step("functions", chromedp.Navigate(in.url+"/console/p/demo/functions"))
	p.wait("function listed", consoleText("#functions tbody"))
	p.step("open function", chromedp.Click(chromedp.CSS(`#functions tbody tr:first-child`)))
	p.wait("function form", `document.querySelector("#function-settings") ? "yes" : ""`)
	p.step("bad schedule", consoleSetText(`#function-settings input[name=schedule]`, "every tuesday"),
		chromedp.Click(chromedp.CSS(`#function-settings button[type=submit]`)))
	p.wantRefused("schedule refused", "#function-settings .error", "schedule")
	p.step("function edit", consoleSetText(`#function-settings input[name=functionName]`, "Mailer"),
		consoleSetText(`#function-settings input[name=timeoutSeconds]`, "30"),
		consoleSetText(`#function-settings input[name=schedule]`, "*/5 * * * *"),
		consoleSetText(`#function-settings input[name=maxConcurrency]`, "3"),
		consoleSetText(`#function-settings input[name=execute]`, "users"),
		consoleSetText(`#function-settings input[name=scopes]`, "documents.read, files.read"),
		consoleSetText(`#function-settings textarea[name=events]`, "users.*.create"),
		consoleCheck(`#function-settings input[name=functionEnabled]`, false),
		chromedp.Click(chromedp.CSS(`#function-settings button[type=submit]`)))
	p.wait("function saved", `document.querySelector("#function-saved") ? "yes" : ""`)
	edgeShot(t, p.c, "3-function")
	f, err := in.functions().GetFunction(admin, &cairnv1.GetFunctionRequest{ProjectId: "demo", FunctionId: "mailer"})
	if fn := f.GetFunction(); err != nil || fn.GetName() != "Mailer" || fn.GetTimeoutSeconds() != 30 || fn.GetSchedule() != "*/5 * * * *" || fn.GetMaxConcurrency() != 3 ||
		!slices.Equal(fn.GetExecute(), []string{"users"}) || !slices.Equal(fn.GetScopes(), []string{"documents.read", "files.read"}) ||
		!slices.Equal(fn.GetEvents(), []string{"users.*.create"}) || fn.GetEnabled() {
		t.Errorf("the function after the console: %v %v", fn, err)
	}

	// A site's settings: the domain then listed with its TXT record.
	p.step("sites", chromedp.Navigate(in.url+"/console/p/demo/sites"))
	p.wait("site", `document.querySelector("[data-site=web] .site-settings") ? "yes" : ""`)
	site := `[data-site=web] .site-settings `
	p.step("open settings", chromedp.Evaluate[chromedp.Void](`document.querySelector("[data-site=web] details").open = true`))
	p.step("bad redirect", consoleSetText(site+`textarea[name=siteRedirects]`, "/old"), chromedp.Click(chromedp.CSS(site+`button[type=submit]`)))
	if msg := p.wait("redirect refused", consoleText(site+".error")); !strings.Contains(msg, "redirect") {
		t.Errorf("a bad redirect line shows %q", msg)
	}
	p.step("site edit", consoleSetText(site+`input[name=siteName]`, "Web"), consoleCheck(site+`input[name=spaFallback]`, true),
		consoleSelect(site+`select[name=trailingSlash]`, "TRAILING_SLASH_REMOVE"),
		consoleSetText(site+`textarea[name=siteHeaders]`, "/* X-Test: yes"),
		consoleSetText(site+`textarea[name=siteRedirects]`, "/old /new 301"),
		consoleSetText(site+`textarea[name=siteDomains]`, "www.example.com"),
		chromedp.Click(chromedp.CSS(site+`button[type=submit]`)))
	p.wait("domain listed", `document.querySelector("[data-site=web] .domains")?.innerText.includes("www.example.com") ? "yes" : ""`)
	edgeShot(t, p.c, "4-site")
	s, err := in.sites().GetSite(admin, &cairnv1.GetSiteRequest{ProjectId: "demo", SiteId: "web"})
	st := s.GetSite().GetSettings()
	if err != nil || s.GetSite().GetName() != "Web" || !st.GetSpaFallback() || st.GetTrailingSlash().String() != "TRAILING_SLASH_REMOVE" ||
		len(st.GetHeaders()) != 1 || st.GetHeaders()[0].GetName() != "X-Test" || st.GetHeaders()[0].GetPattern() != "/*" ||
		len(st.GetRedirects()) != 1 || st.GetRedirects()[0].GetTo() != "/new" || st.GetRedirects()[0].GetStatus() != 301 ||
		!slices.Equal(st.GetDomains(), []string{"www.example.com"}) {
		t.Errorf("the site after the console: %v %v", s.GetSite(), err)
	}
}

// TestConsoleIndexProgress: indexes created in the console on a collection
// with thousands of documents show their outcome without a reload: one
// available, a unique index over duplicates failed, with the reason.
func TestConsoleIndexProgress(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	admin := op(t)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(admin, &cairnv1.CreateDatabaseRequest{ProjectId: "demo", DatabaseId: "main", Name: "main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(admin, &cairnv1.CreateCollectionRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts", Name: "posts"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(admin, &cairnv1.CreateAttributeRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts",
		Attribute: &cairnv1.Attribute{Key: "tag", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 16}}); err != nil {
		t.Fatal(err)
	}
	const docs, batch = 3000, 100
	for i := 0; i < docs; i += batch {
		page := make([]*cairnv1.DocumentInput, batch)
		for j := range page {
			s, _ := structpb.NewStruct(map[string]any{"tag": fmt.Sprintf("t%d", (i+j)%10)})
			page[j] = &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("d%05d", i+j), Data: s}
		}
		if _, err := dbs.CreateDocuments(admin, &cairnv1.CreateDocumentsRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts", Documents: page}); err != nil {
			t.Fatal(err)
		}
	}
	browser := edgeBrowser(t, 150*time.Second)
	p := openConsoleTab(t, browser)
	p.signIn(in.url, "/p/demo/databases/main/posts")
	p.step("indexes", chromedp.Click(chromedp.CSS("#subtab-indexes")))
	// Every status the row shows is recorded as it changes.
	p.step("watch", chromedp.Evaluate[chromedp.Void](`window.seen = []; new MutationObserver(() => {
		for (const r of document.querySelectorAll("#indexes tr[data-index] .status")) {
			const s = r.closest("tr").dataset.index + ":" + r.innerText;
			if (window.seen[window.seen.length - 1] !== s) window.seen.push(s);
		}
	}).observe(document.body, { subtree: true, childList: true, characterData: true });`))
	create := func(key, typ string) {
		t.Helper()
		form := `#create-index `
		p.step("create "+key, consoleSetText(form+`input[name=indexKey]`, key), consoleSelect(form+"select[name=indexType]", typ),
			consoleSetText(form+`input[name=indexAttributes]`, "tag"), chromedp.Click(chromedp.CSS(form+`button[type=submit]`)))
	}
	create("by_tag", "key")
	p.wait("available", `document.querySelector("#indexes tr[data-index=by_tag] .status")?.innerText === "available" ? "yes" : ""`)
	create("one_tag", "unique")
	failed := p.wait("failed", `(() => { const r = document.querySelector("#indexes tr[data-index=one_tag]");
		return r && r.querySelector(".status").innerText === "failed" ? r.innerText : ""; })()`)
	edgeShot(t, p.c, "1-index-failed")
	seen := p.wait("seen", `window.seen.join(" ")`)
	t.Logf("statuses shown, in order: %s", seen)
	t.Logf("the failed index's row: %s", strings.Join(strings.Fields(failed), " "))
	// The projector builds an index in the transaction that applies its
	// IndexCreated event, and CreateIndex answers once that is applied: a
	// reader sees available or failed at once, "processing" only while a
	// node is still applying it. The console's polling covers that case.
	if !strings.Contains(seen, "by_tag:available") || !strings.Contains(seen, "one_tag:failed") {
		t.Errorf("statuses shown %q, want by_tag available and one_tag failed without a reload", seen)
	}
	li, err := dbs.ListIndexes(admin, &cairnv1.ListIndexesRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ix := range li.GetIndexes() {
		if want := map[string]string{"by_tag": "available", "one_tag": "failed"}[ix.GetKey()]; ix.GetStatus() != want {
			t.Errorf("index %s is %s, want %s", ix.GetKey(), ix.GetStatus(), want)
		} else if want == "failed" && (ix.GetError() == "" || !strings.Contains(failed, ix.GetError())) {
			t.Errorf("the failed index's row %q does not show its error %q", failed, ix.GetError())
		}
	}
	if !strings.Contains(p.wait("done", `document.querySelector("#building") ? "" : "yes"`), "yes") {
		t.Error("the console still says it is building")
	}

	// The node's projection lag (from /metrics) on the projects screen: caught up.
	p.step("projects", chromedp.Navigate(in.url+"/console/"))
	if lag := p.wait("lag", consoleText("#projection-lag")); !strings.Contains(lag, "caught up") || !strings.Contains(lag, "projects at ") {
		t.Errorf("the projection lag shown: %q, want caught up with the projects' applied sequence", lag)
	} else {
		t.Logf("shown: %s", lag)
	}
}

// TestConsoleFileTokenExpiry: a token created in the console that expires
// in a few seconds reads the file before, and is refused after.
func TestConsoleFileTokenExpiry(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	admin := op(t)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateBucket(admin, &cairnv1.CreateBucketRequest{ProjectId: "demo", BucketId: "docs", Name: "docs"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateFile(admin, &cairnv1.CreateFileRequest{ProjectId: "demo", BucketId: "docs", FileId: "notes", Name: "notes.txt",
		Content: []byte("short-lived numbers")}); err != nil {
		t.Fatal(err)
	}
	get := func(u string) int {
		t.Helper()
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode == http.StatusOK && string(b) != "short-lived numbers" {
			t.Errorf("the token's URL read %q", b)
		}
		return res.StatusCode
	}
	browser := edgeBrowser(t, 120*time.Second)
	p := openConsoleTab(t, browser)
	p.signIn(in.url, "/p/demo/storage/docs")
	p.wait("file listed", consoleText("#files tbody"))
	p.step("tokens", chromedp.Click(chromedp.CSS(`#files tbody tr:first-child button.tokens`)))
	// Four seconds from now, in the browser's local time (a datetime-local field).
	expiry := p.wait("expiry", `(() => { const d = new Date(Date.now() + 4000); const z = (n) => String(n).padStart(2, "0");
		const v = d.getFullYear() + "-" + z(d.getMonth() + 1) + "-" + z(d.getDate()) + "T" + z(d.getHours()) + ":" + z(d.getMinutes()) + ":" + z(d.getSeconds());
		const e = document.querySelector("#create-token input[name=expiresAt]"); e.value = v; e.dispatchEvent(new Event("input", {bubbles: true}));
		return new Date(v).toISOString(); })()`)
	expires, err := time.Parse(time.RFC3339, expiry)
	if err != nil {
		t.Fatal(err)
	}
	p.step("create", chromedp.Click(chromedp.CSS(`#create-token button[type=submit]`)))
	u := p.wait("token URL", `document.querySelector("#token-url input")?.value ?? ""`)
	if code := get(u); code != http.StatusOK || !time.Now().Before(expires) {
		t.Fatalf("before its expiry (%s, now %s) the token's URL answers %d, want 200", expires.Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339Nano), code)
	}
	tl, err := in.storage().ListFileTokens(admin, &cairnv1.ListFileTokensRequest{ProjectId: "demo", BucketId: "docs", FileId: "notes"})
	if err != nil || len(tl.GetTokens()) != 1 || !tl.GetTokens()[0].GetExpiresAt().AsTime().Equal(expires) {
		t.Errorf("the token through the API: %v %v, want one expiring at %s", tl.GetTokens(), err, expires)
	}
	// Refused once the expiry has passed (polled, not slept through).
	var code int
	for deadline := expires.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		now := time.Now()
		if code = get(u); code != http.StatusOK {
			if now.Before(expires) {
				t.Errorf("refused (%d) at %s, before its expiry %s", code, now.UTC().Format(time.RFC3339Nano), expires.Format(time.RFC3339))
			}
			break
		}
	}
	if code == http.StatusOK {
		t.Fatalf("the token's URL still reads the file 5 s after its expiry")
	}
	t.Logf("after expiry the URL answers %d", code)
	p.step("close", chromedp.Click(chromedp.CSS(`.modal .modal-head button`)))
	p.step("tokens again", chromedp.Click(chromedp.CSS(`#files tbody tr:first-child button.tokens`)))
	p.wait("expired shown", `document.querySelector("#tokens .expired") ? "yes" : ""`)
	edgeShot(t, p.c, "1-token-expired")
}
