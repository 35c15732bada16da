package sites

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// sendfileFiles are siteFiles plus files large enough for any threshold,
// one without a content type (sniffed from the cachedFile).
func sendfileFiles() map[string]tfile {
	files := siteFiles()
	rng := rand.New(rand.NewPCG(3, 4))
	raw := make([]byte, 300<<10)
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	files["media/clip.bin"] = tfile{body: string(raw)}
	files["media/sniffed"] = tfile{body: pngMagic + string(raw[:200<<10])}
	files["js/huge.js"] = tfile{body: big(400<<10, "export function g(){return 2}\n")}
	return files
}

// TestServeSendfileAgrees serves the same requests over loopback HTTP from
// a server that writes every file from its bytes and one that sends every
// cached file from a cachedFile (sendfile), and wants the same status,
// headers and body from both: the zero-copy path changes no behaviour
// (ETags, ranges, conditions, encodings, sniffed types, HEAD, 404 pages).
func TestServeSendfileAgrees(t *testing.T) {
	b := newMemBlobs()
	d := deploy(b, "proj1", "dep1", sendfileFiles())
	set := &eventsv1.SiteSettings{NotFoundPage: "404.html"}
	var urls [2]string
	var servers [2]*Server
	dir := t.TempDir()
	for i, min := range []int64{-1, 1} {
		s := NewServer(b, ServerOptions{SendfileMin: min, FileDir: dir, Logger: quietLogger()})
		servers[i] = s
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.Serve(w, r, set, d, "", r.URL.Path)
		}))
		t.Cleanup(ts.Close)
		urls[i] = ts.URL
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	do := func(url, method string, hdr map[string]string) (int, http.Header, string) {
		t.Helper()
		r, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		res, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		res.Header.Del("Date")
		return res.StatusCode, res.Header, string(body)
	}
	paths := []string{"/media/clip.bin", "/media/sniffed", "/js/huge.js", "/js/big.js", "/styles/main.css", "/robots.txt", "/missing-page"}
	checked := 0
	for _, p := range paths {
		_, h, _ := do(urls[0]+p, http.MethodGet, nil)
		etag, lastMod := h.Get("Etag"), h.Get("Last-Modified")
		variants := []map[string]string{
			nil,
			{"Range": "bytes=10-99"},
			{"Range": "bytes=-5000"},
			{"Range": "bytes=1000-"},
			{"Range": "bytes=999999999-"},
			{"If-None-Match": etag},
			{"If-None-Match": `"other"`},
			{"If-Match": `"other"`},
			{"If-Modified-Since": lastMod},
			{"If-Range": etag, "Range": "bytes=0-9"},
			{"If-Range": `"old"`, "Range": "bytes=0-9"},
			{"Accept-Encoding": "gzip"},
			{"Accept-Encoding": "br, gzip"},
			{"Accept-Encoding": "gzip", "Range": "bytes=0-9"},
		}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			for _, hdr := range variants {
				// Twice: a cold cache, then a warm one.
				for round := range 2 {
					code0, h0, body0 := do(urls[0]+p, method, hdr)
					code1, h1, body1 := do(urls[1]+p, method, hdr)
					what := fmt.Sprintf("%s %s %v (round %d)", method, p, hdr, round)
					if code0 != code1 {
						t.Errorf("%s: status %d from bytes, %d from sendfile", what, code0, code1)
					}
					if !headersEqual(h0, h1) {
						t.Errorf("%s: headers differ:\nbytes    %v\nsendfile %v", what, h0, h1)
					}
					if body0 != body1 {
						t.Errorf("%s: bodies differ (%d vs %d bytes)", what, len(body0), len(body1))
					}
					checked++
				}
			}
		}
	}
	// The files really went the two ways.
	for i, want := range []bool{false, true} {
		c, ok := servers[i].blobs.get(servers[i].index(d).files["media/clip.bin"].key)
		if !ok || (c.kept != nil) != want {
			t.Errorf("server %d: cached %v, in a file %v; want %v", i, ok, ok && c.kept != nil, want)
		}
		if ok && c.kept != nil {
			// An unnamed file in FileDir, not the memfd fallback.
			if l, err := os.Readlink(c.kept.path); err != nil || !strings.HasPrefix(l, dir+"/") {
				t.Errorf("cached file is %q (%v), want an unnamed file in %s", l, err, dir)
			}
		}
	}
	_, h, body := do(urls[1]+"/media/sniffed", http.MethodGet, nil)
	if h.Get("Content-Type") != "image/png" || len(body) != len(pngMagic)+200<<10 {
		t.Errorf("sniffed: type %q, %d bytes", h.Get("Content-Type"), len(body))
	}
	t.Logf("%d requests agree", checked)
}

// headersEqual compares two responses' headers, multipart boundaries
// (random) aside.
func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv := b[k]
		if k == "Content-Type" && len(av) == 1 && strings.HasPrefix(av[0], "multipart/") {
			continue
		}
		if !slices.Equal(av, bv) {
			return false
		}
	}
	return true
}

// TestServeSendfileEviction serves many large files at once through a cache
// that holds only a few, so cachedFiles are dropped while responses
// are using handles of them: every body must still be whole and right
// (run with -race).
func TestServeSendfileEviction(t *testing.T) {
	b := newMemBlobs()
	files := map[string]tfile{}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 12 {
		raw := make([]byte, 150<<10+i)
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		files[fmt.Sprintf("f%d.bin", i)] = tfile{body: string(raw)}
	}
	d := deploy(b, "proj1", "dep1", files)
	s := NewServer(b, ServerOptions{CacheBytes: 3 * 160 << 10, MaxCachedFile: 160 << 10, SendfileMin: 1, Logger: quietLogger()})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Serve(w, r, nil, d, "", r.URL.Path)
	}))
	t.Cleanup(ts.Close)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				name := fmt.Sprintf("f%d.bin", (g*7+i)%12)
				want := files[name].body
				r, _ := http.NewRequest(http.MethodGet, ts.URL+"/"+name, nil)
				lo := 0
				if i%3 == 1 {
					lo = 1000 + i
					r.Header.Set("Range", fmt.Sprintf("bytes=%d-", lo))
				}
				res, err := client.Do(r)
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || string(body) != want[lo:] {
					t.Errorf("%s from %d: %d bytes, err %v; want %d", name, lo, len(body), err, len(want)-lo)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, cost := s.blobs.stats(); n > 3 || cost > 3*160<<10 {
		t.Errorf("cache holds %d files, %d bytes", n, cost)
	}
}
