package sites

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

const pngMagic = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

var (
	mainCSS = big(4000, "body { color: red; } ")
	bigJS   = big(8000, "function f(){return 1}\n")
)

func siteFiles() map[string]tfile {
	return map[string]tfile{
		"index.html":             {body: "<html>home</html>", ctype: "text/html; charset=utf-8"},
		"about/index.html":       {body: "<html>about-index</html>"},
		"contact.html":           {body: "<html>contact</html>"},
		"blog/post.html":         {body: "<html>post</html>"},
		"assets/app.3f2a9c1b.js": {body: "console.log(1)"},
		"assets/index-BxT2k9aQ.css": {
			body: "a{}",
		},
		"robots.txt":         {body: "User-agent: *"},
		"404.html":           {body: "<html>custom-404</html>"},
		"data.json":          {body: `{"a":1}`, ctype: "application/json"},
		"blob":               {body: pngMagic + "rest"},
		"styles/main.css":    {body: mainCSS},
		"styles/main.css.br": {body: "BROTLI-BYTES"},
		"styles/main.css.gz": {body: "GZIP-BYTES"},
		"onlygz.css":         {body: mainCSS + "x"},
		"onlygz.css.gz":      {body: "PRE-GZ"},
		"onlybr.css":         {body: mainCSS + "y"},
		"onlybr.css.br":      {body: "PRE-BR"},
		"js/big.js":          {body: bigJS},
		"data.tar":           {body: "tarball"},
		"data.tar.gz":        {body: "a gzipped tarball"},
	}
}

func newTestServer(t *testing.T, opts ServerOptions) (*Server, *memBlobs, *eventsv1.Deployment) {
	t.Helper()
	b := newMemBlobs()
	d := deploy(b, "proj1", "dep1", siteFiles())
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	return NewServer(b, opts), b, d
}

func TestLookup(t *testing.T) {
	s, _, d := newTestServer(t, ServerOptions{})
	spa := &eventsv1.SiteSettings{SpaFallback: true}
	nf := &eventsv1.SiteSettings{NotFoundPage: "404.html"}
	spaNF := &eventsv1.SiteSettings{SpaFallback: true, NotFoundPage: "404.html"}
	add := &eventsv1.SiteSettings{TrailingSlash: eventsv1.TrailingSlash_TRAILING_SLASH_ADD}
	rem := &eventsv1.SiteSettings{TrailingSlash: eventsv1.TrailingSlash_TRAILING_SLASH_REMOVE}
	tests := []struct {
		name     string
		set      *eventsv1.SiteSettings
		q        req
		status   int
		body     string // substring
		location string
	}{
		{"root", nil, req{path: "/"}, 200, "home", ""},
		{"exact file", nil, req{path: "/robots.txt"}, 200, "User-agent", ""},
		{"exact html", nil, req{path: "/contact.html"}, 200, "contact", ""},
		{"directory index", nil, req{path: "/about"}, 200, "about-index", ""},
		{"directory index slash", nil, req{path: "/about/"}, 200, "about-index", ""},
		{"explicit index.html", nil, req{path: "/about/index.html"}, 200, "about-index", ""},
		{"pretty url", nil, req{path: "/contact"}, 200, "contact", ""},
		{"pretty url nested", nil, req{path: "/blog/post"}, 200, "post", ""},
		{"pretty url slash unspecified", nil, req{path: "/contact/"}, 200, "contact", ""},
		{"file with slash", nil, req{path: "/robots.txt/"}, 308, "", "/robots.txt"},
		{"miss", nil, req{path: "/nope"}, 404, "404 page not found", ""},
		{"nil deployment-like miss of dir", nil, req{path: "/assets/"}, 404, "", ""},

		{"add: dir redirects", add, req{path: "/about"}, 308, "", "/about/"},
		{"add: dir slash serves", add, req{path: "/about/"}, 200, "about-index", ""},
		{"add: page without slash", add, req{path: "/contact"}, 200, "contact", ""},
		{"add: page with slash redirects", add, req{path: "/contact/"}, 308, "", "/contact"},
		{"add: keeps query", add, req{path: "/about?x=1&y=2"}, 308, "", "/about/?x=1&y=2"},
		{"add: base prefix", add, req{path: "/about", base: "/_sites/p1/s1"}, 308, "", "/_sites/p1/s1/about/"},
		{"add: file", add, req{path: "/robots.txt"}, 200, "User-agent", ""},
		{"remove: dir slash redirects", rem, req{path: "/about/"}, 308, "", "/about"},
		{"remove: dir serves", rem, req{path: "/about"}, 200, "about-index", ""},
		{"remove: page slash redirects", rem, req{path: "/contact/"}, 308, "", "/contact"},
		{"remove: root stays", rem, req{path: "/"}, 200, "home", ""},

		{"spa route", spa, req{path: "/dashboard/settings"}, 200, "home", ""},
		{"spa route .html", spa, req{path: "/x.html"}, 200, "home", ""},
		{"spa route slash", spa, req{path: "/dashboard/"}, 200, "home", ""},
		{"spa real file wins", spa, req{path: "/robots.txt"}, 200, "User-agent", ""},
		{"spa dir wins", spa, req{path: "/about"}, 200, "about-index", ""},
		{"spa asset miss 404", spa, req{path: "/assets/x.js"}, 404, "404 page not found", ""},
		{"spa asset miss css 404", spa, req{path: "/assets/missing.3f2a9c1b.css"}, 404, "", ""},
		{"spa dotfile miss 404", spa, req{path: "/.well-known"}, 404, "", ""},
		{"spa ignores 404 page", spaNF, req{path: "/assets/x.js"}, 404, "404 page not found", ""},
		{"custom 404", nf, req{path: "/nope"}, 404, "custom-404", ""},
		{"custom 404 for asset", nf, req{path: "/nope.js"}, 404, "custom-404", ""},
		{"custom 404 missing from manifest", &eventsv1.SiteSettings{NotFoundPage: "missing.html"}, req{path: "/nope"}, 404, "404 page not found", ""},

		{"clean dot-dot", nil, req{path: "/assets/../robots.txt"}, 308, "", "/robots.txt"},
		{"clean double slash", nil, req{path: "/about//"}, 308, "", "/about/"},
		{"clean escape above root", nil, req{path: "/../../etc/passwd"}, 308, "", "/etc/passwd"},
		{"clean encoded dot-dot", nil, req{path: "/assets/%2e%2e/robots.txt"}, 308, "", "/robots.txt"},
		{"clean with base", nil, req{path: "/a/./b", base: "/_sites/p/s"}, 308, "", "/_sites/p/s/a/b"},
		{"escaped location", nil, req{path: "/a%20b/../c%20d"}, 308, "", "/c%20d"},
		{"no traversal after cleaning", nil, req{path: "/etc/passwd"}, 404, "", ""},
		{"backslash is just a name", nil, req{path: "/..%5crobots.txt"}, 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, s, tt.set, d, tt.q)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %q", w.Code, tt.status, w.Body.String())
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body %q, want it to contain %q", w.Body.String(), tt.body)
			}
			if got := w.Header().Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
		})
	}
}

func TestSiteBaseAndRawPath(t *testing.T) {
	// Serve gets the path within the site; a path given without a leading
	// slash (or empty) is the root.
	s, _, d := newTestServer(t, ServerOptions{})
	for _, p := range []string{"", "robots.txt"} {
		r := httptest.NewRequest("GET", "/_sites/p/s/"+p, nil)
		w := httptest.NewRecorder()
		s.Serve(w, r, nil, d, "/_sites/p/s", p)
		if w.Code != 200 {
			t.Errorf("%q: status %d", p, w.Code)
		}
	}
	// No deployment at all: a 404, not a panic.
	w := serve(t, s, nil, nil, req{path: "/"})
	if w.Code != 404 {
		t.Errorf("nil deployment: %d", w.Code)
	}
}

func TestRedirects(t *testing.T) {
	s, _, d := newTestServer(t, ServerOptions{})
	set := &eventsv1.SiteSettings{Redirects: []*eventsv1.Redirect{
		{From: "/old", To: "/new", Status: 301},
		{From: "/robots.txt", To: "/robots2.txt", Status: 302}, // before files
		{From: "/blog/*", To: "/news/:splat", Status: 308},
		{From: "/ext/*", To: "https://example.com/x/:splat", Status: 307},
		{From: "/q", To: "/target?a=b", Status: 302},
		{From: "/dflt", To: "/somewhere"},
		{From: "/old", To: "/never", Status: 302}, // first match wins
	}}
	tests := []struct {
		path, base string
		status     int
		location   string
	}{
		{"/old", "", 301, "/new"},
		{"/old/", "", 301, "/new"},
		{"/old?x=1", "", 301, "/new?x=1"},
		{"/robots.txt", "", 302, "/robots2.txt"},
		{"/blog/2024/hello", "", 308, "/news/2024/hello"},
		{"/blog/a%20b", "", 308, "/news/a%20b"},
		{"/blog/", "", 308, "/news/"},
		{"/blog", "", 308, "/news/"},
		{"/blogger", "", 404, ""},
		{"/ext/a/b", "", 307, "https://example.com/x/a/b"},
		{"/q?z=9", "", 302, "/target?a=b"},
		{"/dflt", "", 301, "/somewhere"},
		{"/old", "/_sites/p/s", 301, "/_sites/p/s/new"},
		{"/blog/x", "/_sites/p/s", 308, "/_sites/p/s/news/x"},
	}
	for _, tt := range tests {
		t.Run(tt.path+tt.base, func(t *testing.T) {
			w := serve(t, s, set, d, req{path: tt.path, base: tt.base})
			if w.Code != tt.status || w.Header().Get("Location") != tt.location {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Header().Get("Location"), tt.status, tt.location)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	s, _, d := newTestServer(t, ServerOptions{})
	set := &eventsv1.SiteSettings{Headers: []*eventsv1.HeaderRule{
		{Pattern: "/assets/*", Name: "X-Asset", Value: "yes"},
		{Pattern: "/*.txt", Name: "X-Txt", Value: "1"},
		{Pattern: "/about", Name: "x-frame-options", Value: "DENY"},
		{Pattern: "/data.json", Name: "Cache-Control", Value: "no-store"}, // overrides ours
		{Pattern: "/*", Name: "Content-Length", Value: "1"},               // protected
		{Pattern: "/*", Name: "X-Robots-Tag", Value: "noindex"},
		// Stored before headers.Check refused them: not served.
		{Pattern: "/*", Name: "Strict-Transport-Security", Value: "max-age=1"},
		{Pattern: "/*", Name: "Set-Cookie", Value: "cairn_session_p=x"},
	}}
	tests := []struct {
		path string
		want map[string]string
	}{
		{"/", map[string]string{
			"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache",
			"X-Content-Type-Options": "nosniff", "Etag": `"` + shaOf("<html>home</html>")[:32] + `"`,
			"Last-Modified": testCreated.Format(http.TimeFormat), "X-Robots-Tag": "noindex",
			"Strict-Transport-Security": "", "Set-Cookie": "",
			"X-Asset": "", "Content-Length": "17", "Accept-Ranges": "bytes",
		}},
		{"/about/", map[string]string{"Content-Type": "text/html; charset=utf-8", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}},
		{"/contact", map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", "X-Frame-Options": ""}},
		{"/assets/app.3f2a9c1b.js", map[string]string{
			"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=31536000, immutable", "X-Asset": "yes",
		}},
		{"/assets/index-BxT2k9aQ.css", map[string]string{"Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=31536000, immutable"}},
		{"/robots.txt", map[string]string{"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "public, max-age=3600", "X-Txt": "1"}},
		{"/data.json", map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}},
		{"/blob", map[string]string{"Content-Type": "image/png", "X-Content-Type-Options": "nosniff"}},
		{"/nope", map[string]string{"Cache-Control": "no-cache", "X-Robots-Tag": "noindex", "Strict-Transport-Security": "", "X-Content-Type-Options": "nosniff"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := serve(t, s, set, d, req{path: tt.path})
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestConditionalAndRange(t *testing.T) {
	s, _, d := newTestServer(t, ServerOptions{})
	etag := `"` + shaOf("User-agent: *")[:32] + `"`
	lm := testCreated.Format(http.TimeFormat)
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		body   string
		check  map[string]string
	}{
		{"plain", nil, 200, "User-agent: *", map[string]string{"Etag": etag, "Last-Modified": lm}},
		{"if-none-match", map[string]string{"If-None-Match": etag}, 304, "", map[string]string{"Etag": etag, "Cache-Control": "public, max-age=3600"}},
		{"if-none-match weak", map[string]string{"If-None-Match": "W/" + etag}, 304, "", nil},
		{"if-none-match list", map[string]string{"If-None-Match": `"other", ` + etag}, 304, "", nil},
		{"if-none-match star", map[string]string{"If-None-Match": "*"}, 304, "", nil},
		{"if-none-match other", map[string]string{"If-None-Match": `"other"`}, 200, "User-agent: *", nil},
		{"if-modified-since same", map[string]string{"If-Modified-Since": lm}, 304, "", nil},
		{"if-modified-since later", map[string]string{"If-Modified-Since": testCreated.Add(time.Hour).Format(http.TimeFormat)}, 304, "", nil},
		{"if-modified-since earlier", map[string]string{"If-Modified-Since": testCreated.Add(-time.Hour).Format(http.TimeFormat)}, 200, "User-agent: *", nil},
		{"inm wins over ims", map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": lm}, 200, "User-agent: *", nil},
		{"range", map[string]string{"Range": "bytes=0-4"}, 206, "User-", map[string]string{"Content-Range": "bytes 0-4/13", "Content-Length": "5"}},
		{"range suffix", map[string]string{"Range": "bytes=-1"}, 206, "*", nil},
		{"range unsatisfiable", map[string]string{"Range": "bytes=100-200"}, 416, "", map[string]string{"Content-Range": "bytes */13"}},
		{"if-range etag match", map[string]string{"Range": "bytes=0-4", "If-Range": etag}, 206, "User-", nil},
		{"if-range etag mismatch", map[string]string{"Range": "bytes=0-4", "If-Range": `"old"`}, 200, "User-agent: *", nil},
		{"if-range date match", map[string]string{"Range": "bytes=0-4", "If-Range": lm}, 206, "User-", nil},
		{"if-range date old", map[string]string{"Range": "bytes=0-4", "If-Range": testCreated.Add(-time.Hour).Format(http.TimeFormat)}, 200, "User-agent: *", nil},
		{"if-match fails", map[string]string{"If-Match": `"other"`}, 412, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, s, nil, d, req{path: "/robots.txt", hdr: tt.hdr})
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status != 416 && tt.status != 412 && w.Body.String() != tt.body {
				t.Errorf("body %q, want %q", w.Body.String(), tt.body)
			}
			for k, v := range tt.check {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestRevalidationNeedsNoLoad(t *testing.T) {
	s, b, d := newTestServer(t, ServerOptions{})
	etag := `"` + shaOf("User-agent: *")[:32] + `"`
	w := serve(t, s, nil, d, req{path: "/robots.txt", hdr: map[string]string{"If-None-Match": etag}})
	if w.Code != 304 || b.totalLoads() != 0 {
		t.Fatalf("status %d after %d loads; want 304 with no load", w.Code, b.totalLoads())
	}
}

func TestEncodingSelection(t *testing.T) {
	s, _, d := newTestServer(t, ServerOptions{})
	tag := shaOf(mainCSS)[:32]
	tests := []struct {
		path, ae string
		enc      string // Content-Encoding
		body     string // identity body, or the precompressed bytes; "gunzip" for on-the-fly
		etag     string
	}{
		{"/styles/main.css", "", "", mainCSS, `"` + tag + `"`},
		{"/styles/main.css", "gzip, deflate, br", "br", "BROTLI-BYTES", `"` + tag + `-br"`},
		{"/styles/main.css", "gzip", "gzip", "GZIP-BYTES", `"` + tag + `-gz"`},
		{"/styles/main.css", "br", "br", "BROTLI-BYTES", ""},
		{"/styles/main.css", "br;q=0, gzip", "gzip", "GZIP-BYTES", ""},
		{"/styles/main.css", "br;q=0.5, gzip;q=0.8", "gzip", "GZIP-BYTES", ""},
		{"/styles/main.css", "br;q=0.8, gzip;q=0.8", "br", "BROTLI-BYTES", ""},
		{"/styles/main.css", "BR ; Q=1.0 , GZIP;q=0.1", "br", "BROTLI-BYTES", ""},
		{"/styles/main.css", "*", "br", "BROTLI-BYTES", ""},
		{"/styles/main.css", "*;q=0", "", mainCSS, ""},
		{"/styles/main.css", "br;q=0, *", "gzip", "GZIP-BYTES", ""},
		{"/styles/main.css", "gzip;q=0, br;q=0", "", mainCSS, ""},
		{"/styles/main.css", "deflate, identity", "", mainCSS, ""},
		{"/styles/main.css", "x-gzip", "gzip", "GZIP-BYTES", ""},
		{"/styles/main.css", "br;q=garbage, gzip", "gzip", "GZIP-BYTES", ""},
		{"/onlygz.css", "br, gzip", "gzip", "PRE-GZ", ""},
		{"/onlybr.css", "br", "br", "PRE-BR", ""},
		{"/onlybr.css", "gzip", "gzip", "gunzip", ""}, // no .gz: on the fly
		{"/onlybr.css", "br;q=0.5, gzip", "gzip", "gunzip", ""},
		{"/onlybr.css", "br, gzip;q=0.5", "br", "PRE-BR", ""},
		{"/js/big.js", "gzip", "gzip", "gunzip", `"` + shaOf(bigJS)[:32] + `-gz"`},
		{"/js/big.js", "br", "", bigJS, ""},              // no brotli on the fly
		{"/robots.txt", "gzip", "", "User-agent: *", ""}, // under 1 KiB
		{"/data.tar", "gzip", "", "tarball", ""},         // .gz next to a non-text file is a download
		{"/data.tar.gz", "gzip", "", "a gzipped tarball", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.ae, func(t *testing.T) {
			w := serve(t, s, nil, d, req{path: tt.path, hdr: map[string]string{"Accept-Encoding": tt.ae}})
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			if got := w.Header().Get("Content-Encoding"); got != tt.enc {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.enc)
			}
			body := w.Body.String()
			if tt.body == "gunzip" {
				body = gunzip(t, w.Body.Bytes())
				if want := strings.TrimPrefix(tt.path, "/"); body != siteFiles()[want].body {
					t.Fatalf("gunzipped body differs from %s", want)
				}
			} else if body != tt.body {
				t.Fatalf("body %.40q, want %.40q", body, tt.body)
			}
			if got := w.Header().Get("Content-Length"); got != fmt.Sprint(w.Body.Len()) {
				t.Errorf("Content-Length %q for %d bytes", got, w.Body.Len())
			}
			if tt.etag != "" && w.Header().Get("Etag") != tt.etag {
				t.Errorf("Etag %q, want %q", w.Header().Get("Etag"), tt.etag)
			}
			wantVary := tt.path != "/robots.txt" && !strings.HasPrefix(tt.path, "/data.tar")
			if got := w.Header().Get("Vary") == "Accept-Encoding"; got != wantVary {
				t.Errorf("Vary %q, want it: %v", w.Header().Get("Vary"), wantVary)
			}
			if ct := w.Header().Get("Content-Type"); strings.HasSuffix(tt.path, ".css") && ct != "text/css; charset=utf-8" {
				t.Errorf("Content-Type %q: want the original's", ct)
			}
		})
	}
}

func TestEncodedConditionalAndRange(t *testing.T) {
	s, _, d := newTestServer(t, ServerOptions{})
	tag := shaOf(mainCSS)[:32]
	ae := map[string]string{"Accept-Encoding": "br, gzip"}
	// The variant's own ETag revalidates it.
	w := serve(t, s, nil, d, req{path: "/styles/main.css", hdr: map[string]string{"Accept-Encoding": "br", "If-None-Match": `"` + tag + `-br"`}})
	if w.Code != 304 || w.Header().Get("Content-Encoding") != "" || w.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("br revalidation: %d %v", w.Code, w.Header())
	}
	// The identity ETag does not match the br variant.
	w = serve(t, s, nil, d, req{path: "/styles/main.css", hdr: map[string]string{"Accept-Encoding": "br", "If-None-Match": `"` + tag + `"`}})
	if w.Code != 200 || w.Body.String() != "BROTLI-BYTES" {
		t.Fatalf("identity tag against br: %d", w.Code)
	}
	// Ranges are served on identity only, even when the client accepts
	// encodings (on-the-fly gzip or precompressed).
	for _, p := range []string{"/styles/main.css", "/js/big.js"} {
		r := map[string]string{"Range": "bytes=0-3", "Accept-Encoding": ae["Accept-Encoding"]}
		w = serve(t, s, nil, d, req{path: p, hdr: r})
		if w.Code != 206 || w.Header().Get("Content-Encoding") != "" || w.Body.Len() != 4 {
			t.Fatalf("%s range with gzip accepted: %d %q %q", p, w.Code, w.Header().Get("Content-Encoding"), w.Body.String())
		}
	}
}

func TestOnTheFlyGzipOnce(t *testing.T) {
	s, b, d := newTestServer(t, ServerOptions{})
	sha := shaOf(bigJS)
	var first []byte
	for i := range 5 {
		w := serve(t, s, nil, d, req{path: "/js/big.js", hdr: map[string]string{"Accept-Encoding": "gzip"}})
		if w.Header().Get("Content-Encoding") != "gzip" {
			t.Fatal("not gzipped")
		}
		if i == 0 {
			first = w.Body.Bytes()
		} else if !bytes.Equal(first, w.Body.Bytes()) {
			t.Fatal("gzip output differs between requests")
		}
	}
	// And identity from the same cached content.
	serve(t, s, nil, d, req{path: "/js/big.js"})
	if n := b.loadsOf(sha); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
	if _, ok := s.blobs.get(s.index(d).files["js/big.js"].gzKey); !ok {
		t.Fatal("gzipped bytes not cached")
	}
}

func TestGzipNotSmaller(t *testing.T) {
	// Text that does not compress is served as identity.
	b := newMemBlobs()
	rnd := make([]byte, 4096)
	for i := range rnd {
		rnd[i] = byte('!' + (i*7919+i*i*31)%90)
	}
	noise := string(rnd)
	var sb strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&sb, "%c", rune(0x4e00+(i*7919)%20000))
	}
	d := deploy(b, "p", "d", map[string]tfile{"noise.txt": {body: sb.String()}, "n.txt": {body: noise}})
	s := NewServer(b, ServerOptions{Logger: quietLogger()})
	for _, p := range []string{"/noise.txt", "/n.txt"} {
		for range 2 {
			w := serve(t, s, nil, d, req{path: p, hdr: map[string]string{"Accept-Encoding": "gzip"}})
			if w.Code != 200 {
				t.Fatal(w.Code)
			}
			enc := w.Header().Get("Content-Encoding")
			body := w.Body.String()
			if enc == "gzip" {
				body = gunzip(t, w.Body.Bytes())
			}
			if body != siteFile(d, b, p) {
				t.Fatalf("%s: wrong body (enc %q)", p, enc)
			}
		}
	}
}

func siteFile(d *eventsv1.Deployment, b *memBlobs, p string) string {
	for _, f := range d.Files {
		if "/"+f.Path == p {
			return string(b.objs[d.ProjectId+"/"+f.Sha256])
		}
	}
	return ""
}

func TestHeadAndMethods(t *testing.T) {
	s, _, d := newTestServer(t, ServerOptions{})
	set := &eventsv1.SiteSettings{NotFoundPage: "404.html"}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Serve(w, r, set, d, "", r.URL.Path)
	}))
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	do := func(method, p string, hdr map[string]string) (*http.Response, string) {
		r, _ := http.NewRequest(method, ts.URL+p, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	for _, tc := range []struct {
		path string
		hdr  map[string]string
	}{
		{"/", nil},
		{"/styles/main.css", map[string]string{"Accept-Encoding": "br"}},
		{"/js/big.js", map[string]string{"Accept-Encoding": "gzip"}},
		{"/nope", nil},
	} {
		get, gbody := do("GET", tc.path, tc.hdr)
		head, hbody := do("HEAD", tc.path, tc.hdr)
		if hbody != "" {
			t.Errorf("%s: HEAD has a body", tc.path)
		}
		if gbody == "" || get.StatusCode != head.StatusCode {
			t.Errorf("%s: GET %d (%d bytes), HEAD %d", tc.path, get.StatusCode, len(gbody), head.StatusCode)
		}
		for _, k := range []string{"Content-Type", "Content-Length", "Etag", "Last-Modified", "Cache-Control", "Content-Encoding", "Vary", "X-Content-Type-Options"} {
			if get.Header.Get(k) != head.Header.Get(k) {
				t.Errorf("%s %s: GET %q, HEAD %q", tc.path, k, get.Header.Get(k), head.Header.Get(k))
			}
		}
		if get.Header.Get("Content-Length") != fmt.Sprint(len(gbody)) {
			t.Errorf("%s: Content-Length %q for %d bytes", tc.path, get.Header.Get("Content-Length"), len(gbody))
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		resp, _ := do(m, "/", nil)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

// logBuffer collects log records for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestLoadErrors(t *testing.T) {
	var logs logBuffer
	now := testCreated
	b := newMemBlobs()
	d := deploy(b, "p", "d", map[string]tfile{"index.html": {body: "<p>hi</p>"}, "gone.js": {body: "x"}, "bad.js": {body: "good"}})
	delete(b.objs, "p/"+shaOf("x"))
	b.objs["p/"+shaOf("good")] = []byte("evil") // same size, wrong content
	s := NewServer(b, ServerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})

	w := serve(t, s, nil, d, req{path: "/gone.js"})
	if w.Code != 502 || !strings.Contains(w.Body.String(), "missing") || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("missing blob: %d %q", w.Code, w.Body.String())
	}
	if !strings.Contains(logs.String(), "missing object") || !strings.Contains(logs.String(), shaOf("x")) {
		t.Fatalf("log: %s", logs.String())
	}
	serve(t, s, nil, d, req{path: "/gone.js"})
	if n := strings.Count(logs.String(), "missing object"); n != 1 {
		t.Fatalf("%d log lines within a minute, want 1", n)
	}
	now = now.Add(2 * time.Minute)
	serve(t, s, nil, d, req{path: "/gone.js"})
	if n := strings.Count(logs.String(), "missing object"); n != 2 {
		t.Fatalf("%d log lines after a minute, want 2", n)
	}

	w = serve(t, s, nil, d, req{path: "/bad.js"})
	if w.Code != 502 || !strings.Contains(logs.String(), "not matching the manifest") {
		t.Fatalf("corrupt blob: %d; log %s", w.Code, logs.String())
	}

	b.err = errors.New("store down")
	w = serve(t, s, nil, d, req{path: "/"})
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(logs.String(), "store down") {
		t.Fatalf("store down: %d", w.Code)
	}
}

func TestCrossProjectIsolation(t *testing.T) {
	// Project B's manifest naming an object only project A holds is not
	// served from A's cached copy.
	b := newMemBlobs()
	da := deploy(b, "A", "d1", map[string]tfile{"secret.txt": {body: "A's secret"}})
	s := NewServer(b, ServerOptions{Logger: quietLogger()})
	if w := serve(t, s, nil, da, req{path: "/secret.txt"}); w.Code != 200 {
		t.Fatal(w.Code)
	}
	db := &eventsv1.Deployment{Id: "d1", ProjectId: "B", Files: da.Files, TotalSize: da.TotalSize}
	if w := serve(t, s, nil, db, req{path: "/secret.txt"}); w.Code != 502 {
		t.Fatalf("B got %d: %q", w.Code, w.Body.String())
	}
}

func TestSingleflight(t *testing.T) {
	s, b, d := newTestServer(t, ServerOptions{})
	gate := make(chan struct{})
	b.gate = gate
	const n = 50
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			hdr := map[string]string{}
			if i%2 == 0 {
				hdr["Accept-Encoding"] = "gzip" // waits on the same identity load
			}
			codes[i] = serve(t, s, nil, d, req{path: "/js/big.js", hdr: hdr}).Code
		})
	}
	// Let every request reach the load before it completes.
	deadline := time.Now().Add(2 * time.Second)
	for b.loadsOf(shaOf(bigJS)) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	b.mu.Lock()
	b.gate = nil
	b.mu.Unlock()
	close(gate)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if got := b.loadsOf(shaOf(bigJS)); got != 1 {
		t.Fatalf("%d loads for %d concurrent requests, want 1", got, n)
	}
}

func TestSingleflightCallerCancel(t *testing.T) {
	// A waiter whose request goes away leaves; the load goes on for the
	// others and fills the cache.
	s, b, d := newTestServer(t, ServerOptions{})
	gate := make(chan struct{})
	b.gate = gate
	r := httptest.NewRequest("GET", "/robots.txt", nil)
	ctx, cancel := context.WithCancel(r.Context())
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		s.Serve(w, r.WithContext(ctx), nil, d, "", "/robots.txt")
		close(done)
	}()
	for b.loadsOf(shaOf("User-agent: *")) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if w.Code != 503 {
		t.Fatalf("cancelled: %d", w.Code)
	}
	b.mu.Lock()
	b.gate = nil
	b.mu.Unlock()
	close(gate)
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, ok := s.blobs.get(s.index(d).files["robots.txt"].key); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("load did not complete after its caller left")
		}
		time.Sleep(time.Millisecond)
	}
	if w := serve(t, s, nil, d, req{path: "/robots.txt"}); w.Code != 200 || b.loadsOf(shaOf("User-agent: *")) != 1 {
		t.Fatalf("after: %d, %d loads", w.Code, b.loadsOf(shaOf("User-agent: *")))
	}
}
