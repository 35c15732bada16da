package main

// The example app (examples/todo), built with @cairn/client, used in a real
// headless Chromium two ways. First deployed as a Cairn site the way its
// README says: sign-up, sign-in and sign-out with the site's first-party
// cookie, todos created, listed, toggled and deleted, live updates from a
// second browser context signed in as the same user, an image uploaded and
// its preview shown. Then the same dist/ served by a plain file server on
// another origin the project allows (config.js naming the API and the
// project; the session a bearer secret in localStorage): the same flow. And
// from an origin the project does not allow: the app shows why it fails.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// todoItemsJS lists the app's todos as the page shows them: the title, ✓
// when done, +img when its preview has loaded.
const todoItemsJS = `[...document.querySelectorAll("#todos li")].map((li) => li.querySelector(".title").textContent +
  (li.classList.contains("done") ? "✓" : "") +
  (li.querySelector("img.preview") ? (li.querySelector("img.preview").complete && li.querySelector("img.preview").naturalWidth > 0 ? "+img" : "+loading") : "")).join("|")`

func TestTodoBrowser(t *testing.T) {
	requireChromium(t)
	example, err := filepath.Abs("../../examples/todo")
	if err != nil {
		t.Fatal(err)
	}
	in, port := edgeInstance(t)
	const p = "todoapp"

	// The README's steps against this instance: setup.sh, then the CLI's deploy.
	setup := exec.Command("bash", filepath.Join(example, "setup.sh"), p)
	setup.Env = append(os.Environ(), "CAIRN_URL="+in.url, "CAIRN_ADMIN_KEY="+testAdminKey)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("setup.sh: %v\n%s", err, out)
	}
	if out, err := cli(t, in, testAdminKey, "sites", "deploy", "--project", p, "--site", "todo", "--activate", filepath.Join(example, "dist")); err != nil {
		t.Fatalf("sites deploy: %v\n%s", err, out)
	}

	// The same dist/ from a plain file server on another port, as any static
	// host would serve it; config.js, as the app's deployer writes it, names
	// the API and the project.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"api": in.url, "project": p})
	mux := http.NewServeMux()
	mux.HandleFunc("/config.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		fmt.Fprintf(w, "window.todoConfig = %s;\n", cfg)
	})
	mux.Handle("/", http.FileServer(http.Dir(filepath.Join(example, "dist"))))
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	port2 := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	app, evil := "http://todoapp.localhost:"+port2, "http://evil.localhost:"+port2

	// The app's origin is one of the project's web platforms, set with a key
	// holding users.write.
	op, _ := as(context.Background(), testAdminKey)
	key, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: p, Name: "settings", Scopes: &cairnv1.Scopes{Scopes: []string{"users.write"}}})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := as(context.Background(), key.GetSecret())
	if _, err := in.users().UpdateAuthSettings(k, &cairnv1.UpdateAuthSettingsRequest{ProjectId: p,
		Settings: &cairnv1.AuthSettings{AllowedOrigins: []string{app}}}); err != nil {
		t.Fatal(err)
	}

	browser := edgeBrowser(t, 200*time.Second)

	t.Run("site", func(t *testing.T) {
		todoFlow(t, in, browser, todoRun{name: "site", url: "http://todo." + p + ".localhost:" + port + "/", project: p,
			email: "ada@example.com", server: "milk,photo"})
	})
	t.Run("other-origin", func(t *testing.T) {
		todoFlow(t, in, browser, todoRun{name: "origin", url: app + "/", project: p, bearer: true,
			email: "grace@example.com", server: "milk,photo,milk,photo"})
	})

	// From an origin the project does not list, the browser refuses the
	// API's answers (CORS), and the app says what to check.
	t.Run("not-allowed-origin", func(t *testing.T) {
		c, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := chromedp.Do(c, chromedp.Navigate(evil+"/")); err != nil {
			t.Fatal(err)
		}
		msg, err := chromedp.Run(c, chromedp.Poll[string](`document.getElementById("error").textContent || false`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
		edgeShot(t, c, "evil")
		if err != nil {
			t.Fatalf("no error shown on %s: %v", evil, err)
		}
		for _, want := range []string{"could not reach the Cairn server at " + in.url, "Failed to fetch", "this page's origin " + evil, "allowed_origins"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the error the app shows: %q, want it to say %q", msg, want)
			}
		}
		if state, _ := chromedp.Run(c, chromedp.Evaluate[string](`(document.body.dataset.state ?? "") + "/" + document.getElementById("auth").hidden + "/" + document.getElementById("main").hidden`)); state != "/true/true" {
			t.Errorf("state, sign-in form hidden, todos hidden: %q, want nothing shown but the error", state)
		}
		t.Logf("%s: %s", evil, msg)
	})
}

// todoRun is one way the app runs: where, and as whom.
type todoRun struct {
	name, url, project, email string
	// bearer: the session is a bearer secret in localStorage (another
	// origin), not the site's cookie.
	bearer bool
	// server: the titles of every todo the server holds after the run.
	server string
}

// todoFlow signs up and in, adds todos (one with an image), sees another
// browser context's changes live, and signs out.
func todoFlow(t *testing.T, in *instance, browser context.Context, r todoRun) {
	// Two browser contexts of their own: their own cookie jars and
	// storage, as two devices.
	a, cancelA := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelA)
	b, cancelB := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelB)
	site, p := r.url, r.project

	wait := func(ctx context.Context, name, what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			items, _ := chromedp.Run(ctx, chromedp.Evaluate[string](todoItemsJS+` + " / error: " + document.getElementById("error").textContent`))
			edgeShot(t, ctx, name+"-failed")
			t.Fatalf("%s: %s: %v (page: %q)", name, what, err, items)
		}
	}
	items := func(ctx context.Context, name, want string) {
		t.Helper()
		wait(ctx, name, "todos "+want, todoItemsJS+` === `+jsString(want))
	}
	do := func(ctx context.Context, name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			edgeShot(t, ctx, name+"-failed")
			t.Fatalf("%s: %v", name, err)
		}
	}
	signedIn := `document.body.dataset.state === "signed-in" && document.body.dataset.live === "live"`
	signedOut := `document.body.dataset.state === "signed-out" && !document.getElementById("auth").hidden`
	email := r.email
	const password = "todo password 8812"
	add := func(ctx context.Context, name, title string) {
		t.Helper()
		do(ctx, name, chromedp.SendKeys(chromedp.CSS("#title"), title), chromedp.Click(chromedp.CSS("#add button[type=submit]")))
	}
	stored := `localStorage.getItem("cairn.token") ?? ""`

	// Sign up (the app signs in after), add a todo.
	t0 := time.Now()
	do(a, "a", chromedp.Navigate(site))
	wait(a, "a", "the sign-in form", signedOut)
	do(a, "a", chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signup")))
	wait(a, "a", "signed in after sign-up, realtime live", signedIn)
	if who, err := chromedp.Run(a, chromedp.Evaluate[string](`document.getElementById("who").textContent`)); err != nil || who != email {
		t.Errorf("signed in as %q (%v), want %s", who, err, email)
	}
	add(a, "a", "milk")
	items(a, "a", "milk")
	if !r.bearer {
		if got := cookieNamed(cookies(t, a, site+"_cairn/"), "cairn_session_"+p); len(got) != 1 || !got[0].HTTPOnly {
			t.Errorf("the site's session cookie: %v, want one, HttpOnly", cookieList(got))
		}
		if jsCookie, _ := chromedp.Run(a, chromedp.Evaluate[string](`document.cookie + JSON.stringify(localStorage)`)); strings.Contains(jsCookie, "cs_") {
			t.Errorf("the session secret is readable by the page: %q", jsCookie)
		}
	} else {
		// Cookies do not cross sites: the session is the bearer secret, in localStorage.
		if tok, err := chromedp.Run(a, chromedp.Evaluate[string](stored)); err != nil || !strings.HasPrefix(tok, "cs_"+p+"_") {
			t.Errorf("localStorage cairn.token: %.12q… %v, want the session secret cs_%s_…", tok, err, p)
		}
		if got := cookieNamed(cookies(t, a, in.url+"/"), "cairn_session_"+p); len(got) != 0 {
			t.Errorf("a session cookie for the API's origin: %v, want none", cookieList(got))
		}
	}

	// Sign out, and in again: the list comes back from the server.
	do(a, "a", chromedp.Click(chromedp.CSS("#signout")))
	wait(a, "a", "signed out", signedOut)
	if tok, _ := chromedp.Run(a, chromedp.Evaluate[string](stored)); tok != "" {
		t.Errorf("after sign-out localStorage still holds %.12q…", tok)
	}
	do(a, "a", chromedp.Click(chromedp.CSS("#signin")))
	wait(a, "a", "signed in", signedIn)
	items(a, "a", "milk")

	// The second context signs in as the same user and sees the same list.
	do(b, "b", chromedp.Navigate(site))
	wait(b, "b", "the sign-in form (its own cookie jar)", signedOut)
	do(b, "b", chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")))
	wait(b, "b", "signed in", signedIn)
	items(b, "b", "milk")

	// Live, both ways: a todo added in b shows up in a, a toggle in a shows up in b.
	add(b, "b", "bread")
	items(b, "b", "milk|bread")
	items(a, "a (live create from b)", "milk|bread")
	do(a, "a", chromedp.Click(chromedp.CSS(`#todos li:first-child .toggle`)))
	items(a, "a", "milk✓|bread")
	items(b, "b (live update from a)", "milk✓|bread")

	// An image: uploaded with the todo, its preview shown, in a and, live, in b.
	pic := filepath.Join(t.TempDir(), "photo.png")
	if err := os.WriteFile(pic, testPNG(t), 0o644); err != nil {
		t.Fatal(err)
	}
	do(a, "a", chromedp.SetUploadFiles(chromedp.CSS("#image"), []string{pic}))
	add(a, "a", "photo")
	items(a, "a (upload and preview)", "milk✓|bread|photo+img")
	items(b, "b (live create with an image)", "milk✓|bread|photo+img")
	edgeShot(t, a, r.name+"-a")
	// The preview is the image (the page's own origin: the canvas may read it
	// back): on a site from its own API with the cookie, elsewhere fetched
	// with the bearer session and shown as a blob: URL.
	px, err := chromedp.Run(a, chromedp.Evaluate[string](`(() => { const img = document.querySelector("img.preview");
  const c = document.createElement("canvas"); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0); const d = g.getImageData(5, 5, 1, 1).data;
  return (img.src.startsWith("blob:") ? img.src.slice(0, 5 + location.origin.length) : new URL(img.src).pathname) + " " + [d[0], d[1], d[2]].join(","); })()`))
	origin := strings.TrimSuffix(site, "/")
	from := "/_cairn/…/preview"
	if r.bearer {
		from = "blob:" + origin
	}
	if err != nil || !strings.HasSuffix(px, " 200,40,120") ||
		(!r.bearer && !(strings.HasPrefix(px, "/_cairn/v1/storage/buckets/images/files/") && strings.Contains(px, "/preview "))) ||
		(r.bearer && !strings.HasPrefix(px, "blob:"+origin+" ")) {
		t.Errorf("the preview: %q %v, want the image's colour 200,40,120 from %s", px, err, from)
	}

	// A delete in b leaves a's list too.
	do(b, "b", chromedp.Click(chromedp.CSS(`#todos li:nth-child(2) .delete`)))
	items(b, "b", "milk✓|photo+img")
	items(a, "a (live delete from b)", "milk✓|photo+img")
	edgeShot(t, b, r.name+"-b")
	t.Logf("the app in two browser contexts: %s", time.Since(t0).Round(time.Millisecond))

	// What the server holds, read with the operator key.
	op, _ := as(context.Background(), testAdminKey)
	l, err := in.databases().ListDocuments(op, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "todos", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	var imageID string
	for _, d := range l.GetDocuments() {
		f := d.GetData().GetFields()
		docs = append(docs, f["title"].GetStringValue())
		if id := f["image"].GetStringValue(); id != "" {
			imageID = id
		}
	}
	if strings.Join(docs, ",") != r.server {
		t.Errorf("the server's todos: %v, want %s", docs, r.server)
	}
	if f, err := in.storage().GetFile(op, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "images", FileId: imageID}); err != nil || f.GetFile().GetName() != "photo.png" {
		t.Errorf("the uploaded image %q: %v %v", imageID, f, err)
	}

	// Sign out in a: a reload stays signed out; b's own session goes on.
	do(a, "a", chromedp.Click(chromedp.CSS("#signout")))
	wait(a, "a", "signed out", signedOut)
	do(a, "a", chromedp.Reload())
	wait(a, "a", "still signed out after a reload", signedOut)
	edgeShot(t, a, r.name+"-signed-out")
	do(b, "b", chromedp.Reload())
	wait(b, "b", "still signed in after a reload", signedIn)
	items(b, "b", "milk✓|photo+img")
}

// jsString quotes s for a JavaScript expression (a JSON string is one).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
