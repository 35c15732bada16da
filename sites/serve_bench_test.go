package sites

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
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
	{"medium-128KiB", "/assets/photo.9a8b7c6d.bin"},
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
		"assets/photo.9a8b7c6d.bin": large[:128<<10],
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

// BenchmarkServeVsFileServer calls http.FileServer, Server.Serve and
// Server.Serve writing every file from its bytes (SendfileMin -1, the path
// before large files were sent from in-memory files; "copy") (the same
// files, each behind its own loopback server) in turn, a chunk of requests
// each, so all meet the same load from the rest of a shared machine, and
// reports the process's CPU time per request of each (cpu-ns/op, client
// included: the same requests and bytes for all) and pct-of-fileserver
// (copy-pct-of-fileserver), FileServer's CPU per request over Serve's: the
// throughput ratio when the CPU is the limit. At or above 100, Serve costs
// no more than FileServer.
func BenchmarkServeVsFileServer(b *testing.B) {
	blobs := newMemBlobs()
	files := map[string]tfile{}
	dir := b.TempDir()
	for p, c := range benchContents() {
		files[p] = tfile{body: string(c)}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, c, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	d := deploy(blobs, "proj", "dep", files)
	set := &eventsv1.SiteSettings{SpaFallback: true}
	s := NewServer(blobs, ServerOptions{Logger: quietLogger()})
	copying := NewServer(blobs, ServerOptions{SendfileMin: -1, Logger: quietLogger()})
	servers := [3]*httptest.Server{
		httptest.NewServer(http.FileServer(http.Dir(dir))),
		httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.Serve(w, r, set, d, "", r.URL.Path)
		})),
		httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			copying.Serve(w, r, set, d, "", r.URL.Path)
		})),
	}
	for _, ts := range servers {
		b.Cleanup(ts.Close)
	}
	const clients = 16
	tr := &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: clients, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	for _, f := range benchFiles {
		b.Run(f.name, func(b *testing.B) {
			get := func(url string) error {
				resp, err := client.Get(url)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: status %d", url, resp.StatusCode)
				}
				return err
			}
			for _, ts := range servers {
				if err := get(ts.URL + f.path); err != nil { // warm: fills the cache
					b.Fatal(err)
				}
			}
			const chunk = 8 * clients
			var cpu [3]time.Duration
			var calls [3]int
			b.ResetTimer()
			for i := 0; calls[0]+calls[1]+calls[2] < b.N; i++ {
				which := i % 3
				n := min(chunk, b.N-calls[0]-calls[1]-calls[2])
				url := servers[which].URL + f.path
				var wg sync.WaitGroup
				cpu0 := processCPU(b)
				for g := range clients {
					wg.Go(func() {
						for j := g; j < n; j += clients {
							if err := get(url); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				cpu[which] += processCPU(b) - cpu0
				calls[which] += n
			}
			b.StopTimer()
			if calls[0] == 0 || calls[1] == 0 || calls[2] == 0 {
				return
			}
			fsCPU := float64(cpu[0].Nanoseconds()) / float64(calls[0])
			serveCPU := float64(cpu[1].Nanoseconds()) / float64(calls[1])
			copyCPU := float64(cpu[2].Nanoseconds()) / float64(calls[2])
			b.ReportMetric(fsCPU, "fileserver-cpu-ns/op")
			b.ReportMetric(serveCPU, "serve-cpu-ns/op")
			b.ReportMetric(copyCPU, "copy-cpu-ns/op")
			b.ReportMetric(100*fsCPU/serveCPU, "pct-of-fileserver")
			b.ReportMetric(100*fsCPU/copyCPU, "copy-pct-of-fileserver")
		})
	}
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
