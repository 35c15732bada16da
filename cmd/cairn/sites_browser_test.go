package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// chromiumPath is Debian's chromium package; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

// browserSite is a small build output: index.html loads a hashed script and
// stylesheet; the script fetches data.json from the site and writes what it
// read into the page, with the background colour the stylesheet set. Asset
// URLs are relative, so the page works at the site's root on its host name
// and under /_sites/<project>/<site>/. abs.html uses root-absolute URLs
// (what bundlers emit by default), which only the host name can serve.
var browserSite = map[string]string{
	"index.html": `<!doctype html>
<html><head><meta charset="utf-8"><title>cairn browser test</title>
<link rel="stylesheet" href="assets/style.8d7e6f5a.css">
<script src="assets/app.3f2a9c1b.js" defer></script>
</head><body><p id="out">loading</p></body></html>
`,
	"abs.html": `<!doctype html>
<html><head><meta charset="utf-8"><title>cairn browser test (absolute)</title>
<link rel="stylesheet" href="/assets/style.8d7e6f5a.css">
<script src="/assets/app.3f2a9c1b.js" defer></script>
</head><body><p id="out">loading</p></body></html>
`,
	"assets/app.3f2a9c1b.js": `"use strict";
fetch("data.json")
  .then(function (r) { if (!r.ok) throw new Error("data.json: " + r.status); return r.json(); })
  .then(function (d) {
    document.getElementById("out").textContent = d.message + " #" + d.n;
    document.body.dataset.bg = getComputedStyle(document.body).backgroundColor;
    document.body.dataset.ok = "yes";
  })
  .catch(function (e) { document.body.dataset.ok = "error: " + e; });
`,
	"assets/style.8d7e6f5a.css": "body { background-color: rgb(12, 34, 56); color: white; }\n",
	"data.json":                 `{"message": "rendered from data.json by the site's script", "n": 42}`,
}

// TestSiteInBrowser deploys a site and loads it in a real headless
// Chromium: its script and stylesheet come from the site, the script runs
// and fetches JSON from the site, by path and by host name.
func TestSiteInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("%s is missing: CI must install Debian's chromium package (.ci/run does: apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s not installed (apt-get install chromium); CI runs this test", chromiumPath)
	}
	in := startInstance(t, t.TempDir())
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "browse", Name: "Browse"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "browse", SiteId: "web", Name: "Web"}); err != nil {
		t.Fatal(err)
	}
	res, body := in.httpDo(t, "POST", "/v1/sites/browse/web/deployments?activate=true", testAdminKey, tarGz(t, browserSite), nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("deploy: %d %s", res.StatusCode, body)
	}
	// What the browser depends on: types it accepts for a script and a
	// stylesheet (Chromium refuses others under nosniff).
	for p, want := range map[string]string{"assets/app.3f2a9c1b.js": "javascript", "assets/style.8d7e6f5a.css": "text/css", "data.json": "application/json"} {
		res, _ := in.httpDo(t, "GET", "/_sites/browse/web/"+p, "", nil, nil)
		if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), want) {
			t.Errorf("%s: %d, Content-Type %q, want %s", p, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
	}
	u, err := url.Parse(in.url)
	if err != nil {
		t.Fatal(err)
	}
	pages := []struct{ name, url string }{
		{"path", in.url + "/_sites/browse/web/"},
		// Chromium resolves *.localhost to loopback itself.
		{"host", "http://web.browse.localhost:" + u.Port() + "/"},
		{"host-absolute-urls", "http://web.browse.localhost:" + u.Port() + "/abs.html"},
	}
	for _, pg := range pages {
		t.Run(pg.name, func(t *testing.T) {
			dom := chromium(t, "--dump-dom", pg.url)
			for _, want := range []string{
				`data-ok="yes"`, // the script ran and its fetch succeeded
				"rendered from data.json by the site's script #42",
				`data-bg="rgb(12, 34, 56)"`, // the stylesheet applied
			} {
				if !strings.Contains(dom, want) {
					t.Errorf("%s: DOM lacks %q:\n%s", pg.url, want, dom)
				}
			}
		})
	}
	// A screenshot of the page on its host name: a rendered PNG.
	png := filepath.Join(t.TempDir(), "site.png")
	chromium(t, "--window-size=800,600", "--screenshot="+png, pages[1].url)
	b, err := os.ReadFile(png)
	if err != nil || len(b) < 100 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s: %d bytes, %v", png, len(b), err)
	}
}

// chromium runs headless Chromium once with a fresh profile and returns its
// standard output. --virtual-time-budget makes it wait until the page is
// idle (the fetch done) before dumping, without a wall-clock sleep; the
// context bounds the whole run.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd := exec.CommandContext(ctx, chromiumPath, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--virtual-time-budget=10000",
	}, args...)...)
	// Files, not pipes: a helper process that outlives the browser cannot
	// hold Wait up.
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	runErr := cmd.Run()
	stdout, _ := os.ReadFile(out.Name())
	if runErr != nil || ctx.Err() != nil {
		stderr, _ := os.ReadFile(errf.Name())
		t.Fatalf("chromium %v: %v (context: %v)\n--- stderr ---\n%s", args, runErr, ctx.Err(), stderr)
	}
	t.Logf("chromium %s: %s", args[len(args)-1], time.Since(t0).Round(time.Millisecond))
	return string(stdout)
}
