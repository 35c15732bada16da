package main

// The example app (examples/todo), built with @cairn/client and deployed
// as a Cairn site the way its README says, used in a real headless
// Chromium: sign-up, sign-in and sign-out with the site's first-party
// cookie, todos created, listed, toggled and deleted, live updates from a
// second browser context signed in as the same user, an image uploaded and
// its preview shown.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	site := "http://todo." + p + ".localhost:" + port + "/"

	a := edgeBrowser(t, 100*time.Second)
	// A second browser context: its own cookie jar, as another device.
	b, cancelB := chromedp.NewContext(a, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelB)

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
	const email, password = "ada@example.com", "todo password 8812"
	add := func(ctx context.Context, name, title string) {
		t.Helper()
		do(ctx, name, chromedp.SendKeys(chromedp.CSS("#title"), title), chromedp.Click(chromedp.CSS("#add button[type=submit]")))
	}

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
	if got := cookieNamed(cookies(t, a, site+"_cairn/"), "cairn_session_"+p); len(got) != 1 || !got[0].HTTPOnly {
		t.Errorf("the site's session cookie: %v, want one, HttpOnly", cookieList(got))
	}
	if jsCookie, _ := chromedp.Run(a, chromedp.Evaluate[string](`document.cookie + JSON.stringify(localStorage)`)); strings.Contains(jsCookie, "cs_") {
		t.Errorf("the session secret is readable by the page: %q", jsCookie)
	}

	// Sign out, and in again: the list comes back from the server.
	do(a, "a", chromedp.Click(chromedp.CSS("#signout")))
	wait(a, "a", "signed out", signedOut)
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

	// An image: uploaded with the todo, its preview shown (from /_cairn/ with
	// the cookie), in a and, live, in b.
	pic := filepath.Join(t.TempDir(), "photo.png")
	if err := os.WriteFile(pic, testPNG(t), 0o644); err != nil {
		t.Fatal(err)
	}
	do(a, "a", chromedp.SetUploadFiles(chromedp.CSS("#image"), []string{pic}))
	add(a, "a", "photo")
	items(a, "a (upload and preview)", "milk✓|bread|photo+img")
	items(b, "b (live create with an image)", "milk✓|bread|photo+img")
	edgeShot(t, a, "a")
	// The preview is the image (same origin: the canvas may read it back), from the site's own API.
	px, err := chromedp.Run(a, chromedp.Evaluate[string](`(() => { const img = document.querySelector("img.preview");
  const c = document.createElement("canvas"); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0); const d = g.getImageData(5, 5, 1, 1).data;
  return new URL(img.src).pathname + " " + [d[0], d[1], d[2]].join(","); })()`))
	if err != nil || !strings.HasPrefix(px, "/_cairn/v1/storage/buckets/images/files/") || !strings.Contains(px, "/preview ") || !strings.HasSuffix(px, " 200,40,120") {
		t.Errorf("the preview: %q %v, want /_cairn/…/preview showing the image's colour 200,40,120", px, err)
	}

	// A delete in b leaves a's list too.
	do(b, "b", chromedp.Click(chromedp.CSS(`#todos li:nth-child(2) .delete`)))
	items(b, "b", "milk✓|photo+img")
	items(a, "a (live delete from b)", "milk✓|photo+img")
	edgeShot(t, b, "b")
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
	if strings.Join(docs, ",") != "milk,photo" {
		t.Errorf("the server's todos: %v, want milk, photo", docs)
	}
	if f, err := in.storage().GetFile(op, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "images", FileId: imageID}); err != nil || f.GetFile().GetName() != "photo.png" {
		t.Errorf("the uploaded image %q: %v %v", imageID, f, err)
	}

	// Sign out in a: a reload stays signed out; b's own session goes on.
	do(a, "a", chromedp.Click(chromedp.CSS("#signout")))
	wait(a, "a", "signed out", signedOut)
	do(a, "a", chromedp.Reload())
	wait(a, "a", "still signed out after a reload", signedOut)
	edgeShot(t, a, "signed-out")
	do(b, "b", chromedp.Reload())
	wait(b, "b", "still signed in after a reload", signedIn)
	items(b, "b", "milk✓|photo+img")
}

// jsString quotes s for a JavaScript expression (a JSON string is one).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
