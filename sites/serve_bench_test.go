package sites

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// The serving benchmark: requests/s and p99 latency for a small
// cached asset (~2 KiB) and a 1 MiB asset over keep-alive HTTP on loopback,
// Server.Serve against http.FileServer serving the same files from disk.
// Run both in one go:
//
//	go test -run X -bench . -benchtime 3s ./sites/
//
// Clients send no Accept-Encoding, so both servers send the same bytes.

var benchFiles = []struct{ name, path string }{
	{"small-2KiB", "/assets/app.3f2a9c1b.js"},
	{"large-1MiB", "/assets/video.5e6f7a8b.bin"},
}

func benchContents() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	large := make([]byte, 1<<20)
	for i := range large {
		large[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"assets/app.3f2a9c1b.js":    []byte(big(2048, "export const x = () => 42;\n")),
		"assets/video.5e6f7a8b.bin": large,
	}
}

func BenchmarkServe(b *testing.B) {
	blobs := newMemBlobs()
	files := map[string]tfile{}
	for p, c := range benchContents() {
		files[p] = tfile{body: string(c)}
	}
	d := deploy(blobs, "proj", "dep", files)
	set := &eventsv1.SiteSettings{SpaFallback: true}
	s := NewServer(blobs, ServerOptions{Logger: quietLogger()})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Serve(w, r, set, d, "", r.URL.Path)
	})
	for _, f := range benchFiles {
		b.Run(f.name, func(b *testing.B) { benchHTTP(b, h, f.path) })
	}
}

func BenchmarkFileServer(b *testing.B) {
	dir := b.TempDir()
	for p, c := range benchContents() {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, c, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	h := http.FileServer(http.Dir(dir))
	for _, f := range benchFiles {
		b.Run(f.name, func(b *testing.B) { benchHTTP(b, h, f.path) })
	}
}

// benchHTTP drives h through a real loopback server with one shared
// keep-alive client from parallel goroutines, reporting req/s and the p99
// latency.
func benchHTTP(b *testing.B, h http.Handler, path string) {
	ts := httptest.NewServer(h)
	defer ts.Close()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	url := ts.URL + path

	get := func() (int64, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			b.Errorf("status %d", resp.StatusCode)
		}
		return n, err
	}
	size, err := get() // warm: fills the cache, checks the response
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)

	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4) // 4×GOMAXPROCS concurrent keep-alive connections
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			if _, err := get(); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p99 := lat[(len(lat)*99)/100]
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
}
