package sites

import (
	"fmt"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"strings"
	"sync"
	"testing"
)

func TestLRU(t *testing.T) {
	c := newLRU[string, int](10)
	c.add("a", 1, 4)
	c.add("b", 2, 4)
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.add("c", 3, 4) // evicts b, the least recently used
	if _, ok := c.get("b"); ok {
		t.Fatal("b should be evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Fatalf("%s missing", k)
		}
	}
	c.add("huge", 9, 11) // larger than the bound: not stored, nothing evicted
	if n, cost := c.stats(); n != 2 || cost != 8 {
		t.Fatalf("stats %d %d", n, cost)
	}
	c.add("a", 10, 7) // replace with a new cost: evicts c
	if v, _ := c.get("a"); v != 10 {
		t.Fatal("a not replaced")
	}
	if n, cost := c.stats(); n != 1 || cost != 7 {
		t.Fatalf("stats after replace %d %d", n, cost)
	}
}

func TestLRUConcurrent(t *testing.T) {
	c := newLRU[string, int](100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := fmt.Sprint((g * i) % 50)
				c.add(k, i, int64(1+i%5))
				c.get(k)
			}
		})
	}
	wg.Wait()
	if _, cost := c.stats(); cost > 100 {
		t.Fatalf("cost %d over the bound", cost)
	}
}

func TestBlobCacheBounds(t *testing.T) {
	b := newMemBlobs()
	files := map[string]tfile{}
	for i := range 40 {
		files[fmt.Sprintf("f%02d.bin", i)] = tfile{body: strings.Repeat(string(rune('a'+i%26)), 1000) + fmt.Sprint(i)}
	}
	files["large.bin"] = tfile{body: strings.Repeat("L", 3000)}
	d := deploy(b, "p", "d", files)
	const bound = 5000
	s := NewServer(b, ServerOptions{CacheBytes: bound, MaxCachedFile: 2000, Logger: quietLogger()})
	for round := range 2 {
		for i := range 40 {
			p := fmt.Sprintf("/f%02d.bin", i)
			if w := serve(t, s, nil, d, req{path: p}); w.Code != 200 || w.Body.String() != files[p[1:]].body {
				t.Fatalf("round %d %s: %d", round, p, w.Code)
			}
			if _, cost := s.blobs.stats(); cost > bound {
				t.Fatalf("cache holds %d bytes, bound %d", cost, bound)
			}
		}
	}
	// 40 files of ~1 KiB through a ~5 KB cache: the first ones were evicted
	// and loaded again on the second round.
	if n := b.totalLoads(); n != 80 {
		t.Fatalf("%d loads, want 80 (LRU thrash)", n)
	}
	n, _ := s.blobs.stats()
	if n == 0 || n > 5 {
		t.Fatalf("%d cached blobs", n)
	}
	// The last file is hot: served from the cache.
	serve(t, s, nil, d, req{path: "/f39.bin"})
	if b.totalLoads() != 80 {
		t.Fatal("a cached file was loaded again")
	}

	// A file over MaxCachedFile is served correctly but loaded each time.
	sha := shaOf(files["large.bin"].body)
	for range 3 {
		if w := serve(t, s, nil, d, req{path: "/large.bin", hdr: map[string]string{"Range": "bytes=2990-"}}); w.Code != 206 || w.Body.String() != strings.Repeat("L", 10) {
			t.Fatalf("large: %d %q", w.Code, w.Body.String())
		}
	}
	if n := b.loadsOf(sha); n != 3 {
		t.Fatalf("large file loaded %d times, want 3 (not cached)", n)
	}
}

func TestIndexCache(t *testing.T) {
	b := newMemBlobs()
	s := NewServer(b, ServerOptions{IndexEntries: 10, Logger: quietLogger()})
	d1 := deploy(b, "p", "d1", map[string]tfile{"a.txt": {body: "1"}, "b.txt": {body: "2"}})
	x := s.index(d1)
	if s.index(d1) != x {
		t.Fatal("index rebuilt for the same deployment")
	}
	// Same deployment id in another project: another index.
	other := &eventsv1.Deployment{Id: "d1", ProjectId: "q", Files: d1.Files}
	if s.index(other) == x {
		t.Fatal("index shared across projects")
	}
	for i := range 10 {
		s.index(deploy(b, "p", fmt.Sprintf("n%d", i), map[string]tfile{"a.txt": {body: "1"}}))
	}
	if n, cost := s.indexes.stats(); cost > 10 || n > 5 {
		t.Fatalf("%d indexes costing %d, bound 10", n, cost)
	}
	if s.index(d1) == x {
		t.Fatal("old index not evicted")
	}
}

func TestHashedName(t *testing.T) {
	for p, want := range map[string]bool{
		"assets/app.3f2a9c1b.js":                               true,
		"assets/index-BxT2k9aQ.js":                             true,
		"assets/index-B-x_T2k9.js":                             true, // Vite base64url with '-' and '_'
		"static/js/main.8e5a3c2f.chunk.js":                     true,
		"_next/static/chunks/pages/_app-3f2a9c1b2e3d4f5a.js":   true,
		"_next/static/Xk3b9Q2mZp7LwT1vR5nYc/_buildManifest.js": true,
		"chunk-ABCD1234.js":                                    true, // esbuild
		"styles.3f2a9c1b.css.map":                              true,
		"app.js":                                               false,
		"index.html":                                           false,
		"favicon.ico":                                          false,
		"manifest.webmanifest":                                 false,
		"screenshot.png":                                       false,
		"utf8test.js":                                          false,
		"html5shiv.min.js":                                     false,
		"report-20240101.pdf":                                  false,
		"jquery-3.7.1.min.js":                                  false,
		"Roboto-Regular400.woff2":                              false,
		"fonts/inter-v12-latin.woff2":                          false,
		"img/hero-banner-2x.webp":                              false,
		"deadbeef":                                             false, // no digit: could be a word
	} {
		if got := hashedName(p); got != want {
			t.Errorf("hashedName(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestAcceptQ(t *testing.T) {
	for _, tc := range []struct {
		h      string
		br, gz float64
	}{
		{"", 0, 0},
		{"gzip", 0, 1},
		{"gzip, deflate, br, zstd", 1, 1},
		{"br;q=0", 0, 0},
		{"br;q=0, gzip;q=0.5", 0, 0.5},
		{" br ; q = 0.3 ,gzip", 0.3, 1},
		{"*", 1, 1},
		{"*;q=0.2, br", 1, 0.2},
		{"gzip;q=1.5", 0, 0},
		{"x-gzip;q=0.4", 0, 0.4},
		{"BR", 1, 0},
	} {
		br, gz := acceptQ([]string{tc.h})
		if br != tc.br || gz != tc.gz {
			t.Errorf("%q: br %v gz %v, want %v %v", tc.h, br, gz, tc.br, tc.gz)
		}
	}
}
