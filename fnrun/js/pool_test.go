package js_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/js"
)

// fetchHandler fetches req.bodyText's URL and answers with what it got or
// the error's message.
var fetchHandler = cjs(`async ({ req, res }) => {
	try {
		const r = await fetch(req.bodyText, { method: 'POST', body: 'ping', headers: { 'X-Test': 'yes' } });
		return res.json({ status: r.status, ok: r.ok, type: r.headers.get('content-type'), body: await r.json() });
	} catch (e) {
		return res.json({ error: e.name + ': ' + e.message });
	}
}`)

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
			return
		}
		if r.URL.Path == "/big" {
			w.Write([]byte(strings.Repeat("x", 5000)))
			return
		}
		body := make([]byte, 100)
		n, _ := r.Body.Read(body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"header":%q,"body":%q}`, r.Method, r.Header.Get("X-Test"), body[:n])
	}))
	defer srv.Close()

	t.Run("loopback refused by default", func(t *testing.T) {
		p := newPool(t, js.PoolOptions{})
		resp := mustRun(t, p, fetchHandler, fnrun.Request{Body: []byte(srv.URL)})
		if !strings.Contains(string(resp.Body), `"error":"TypeError: fetch `) || !strings.Contains(string(resp.Body), "blocked") ||
			!strings.Contains(string(resp.Body), "loopback") {
			t.Errorf("body = %s", resp.Body)
		}
	})
	t.Run("metadata address refused", func(t *testing.T) {
		p := newPool(t, js.PoolOptions{Fetch: js.FetchOptions{Timeout: 2 * time.Second}})
		resp := mustRun(t, p, fetchHandler, fnrun.Request{Body: []byte("http://169.254.169.254/latest/meta-data/")})
		if !strings.Contains(string(resp.Body), "blocked") || !strings.Contains(string(resp.Body), "link-local") {
			t.Errorf("body = %s", resp.Body)
		}
	})
	t.Run("allowlisted", func(t *testing.T) {
		p := newPool(t, js.PoolOptions{Fetch: js.FetchOptions{Allow: []string{"127.0.0.1"}, MaxResponseBytes: 1000}})
		resp := mustRun(t, p, fetchHandler, fnrun.Request{Body: []byte(srv.URL + "/echo")})
		want := `{"status":200,"ok":true,"type":"application/json","body":{"method":"POST","header":"yes","body":"ping"}}`
		if string(resp.Body) != want {
			t.Errorf("body = %s\nwant   %s", resp.Body, want)
		}
		// A redirect is checked again: the allowlist covers 127.0.0.1 only.
		resp = mustRun(t, p, fetchHandler, fnrun.Request{Body: []byte(srv.URL + "/redirect")})
		if !strings.Contains(string(resp.Body), "blocked") || !strings.Contains(string(resp.Body), "169.254.169.254") {
			t.Errorf("redirect: body = %s", resp.Body)
		}
		// Response bodies are capped.
		resp = mustRun(t, p, fetchHandler, fnrun.Request{Body: []byte(srv.URL + "/big")})
		if !strings.Contains(string(resp.Body), "over the limit") {
			t.Errorf("big: body = %s", resp.Body)
		}
	})
	t.Run("allowlisted by CIDR, response helpers", func(t *testing.T) {
		p := newPool(t, js.PoolOptions{Fetch: js.FetchOptions{Allow: []string{"127.0.0.0/8"}}})
		resp := mustRun(t, p, cjs(`async ({ req, res }) => {
			const r = await fetch(new URL(req.bodyText), { method: 'PUT', body: new Uint8Array([104, 105]) });
			const copy = r.clone();
			const buf = await r.arrayBuffer();
			return res.json({ n: buf.byteLength, text: (await copy.json()).body, used: r.bodyUsed });
		}`), fnrun.Request{Body: []byte(srv.URL)})
		if want := `{"n":40,"text":"hi","used":true}`; string(resp.Body) != want {
			t.Errorf("body = %s, want %s", resp.Body, want)
		}
	})
}

func TestMemoryLimit(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := run(t, p, cjs(`() => {
		const keep = [];
		for (let i = 0; ; i++) keep.push(String(i).repeat(1 << 18) + i);
	}`), fnrun.Request{}, fnrun.Limits{MaxMemoryBytes: 64 << 20, Timeout: 20 * time.Second})
	if !errors.Is(err, fnrun.ErrMemory) {
		t.Fatalf("err = %v, want ErrMemory", err)
	}
	t.Logf("killed after %v: %v", time.Since(start), err)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Errorf("the test process's heap grew by %d MiB", grew>>20)
	}
	resp := mustRun(t, p, cjs(`({ res }) => res.text('still here')`), fnrun.Request{})
	if string(resp.Body) != "still here" {
		t.Errorf("after the kill: %q", resp.Body)
	}
	// Garbage (50 MiB here) that is freed again stays within the limit.
	resp, err = run(t, p, cjs(`({ res }) => {
		let n = 0;
		for (let i = 0; i < 400; i++) n += ('y'.repeat(1 << 17) + i).length;
		return res.json(n);
	}`), fnrun.Request{}, fnrun.Limits{MaxMemoryBytes: 32 << 20})
	if err != nil || resp.Status != 200 {
		t.Errorf("garbage: %v %d %s", err, resp.Status, resp.Body)
	}
}

func TestConcurrencyAndIsolation(t *testing.T) {
	p := newPool(t, js.PoolOptions{Workers: 8, Idle: 2})
	code := cjs(`async ({ req, res }) => {
		const seen = typeof globalThis.leak;
		globalThis.leak = req.bodyText;
		Array.prototype.polluted = true;
		await new Promise(r => setTimeout(r, 20));
		return res.json({ id: req.bodyText, seen, leak: globalThis.leak });
	}`)
	const n = 8
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("r%d-%d", round, i)
				resp, err := run(t, p, code, fnrun.Request{Body: []byte(id)}, fnrun.Limits{})
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf(`{"id":%q,"seen":"undefined","leak":%q}`, id, id); string(resp.Body) != want {
					errs <- fmt.Errorf("got %s, want %s", resp.Body, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	resp := mustRun(t, p, cjs(`({ res }) => res.json([typeof leak, [].polluted === undefined])`), fnrun.Request{})
	if string(resp.Body) != `["undefined",true]` {
		t.Errorf("state leaked: %s", resp.Body)
	}
}

func TestClose(t *testing.T) {
	p, err := js.NewPool(js.PoolOptions{Command: command(t)})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, p, cjs(`({ res }) => res.empty()`), fnrun.Request{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, p, cjs(`({ res }) => res.empty()`), fnrun.Request{}, fnrun.Limits{}); !errors.Is(err, js.ErrClosed) {
		t.Errorf("Run after Close = %v", err)
	}
}

func BenchmarkWarm(b *testing.B) {
	p := newPool(b, js.PoolOptions{Workers: 1})
	code := cjs(`({ req, res }) => res.json({ ok: true, path: req.path })`)
	mustRun(b, p, code, fnrun.Request{})
	b.ResetTimer()
	for b.Loop() {
		mustRun(b, p, code, fnrun.Request{})
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/run")
}

func BenchmarkCold(b *testing.B) {
	cmd := command(b)
	code := cjs(`({ req, res }) => res.json({ ok: true, path: req.path })`)
	for b.Loop() {
		p, err := js.NewPool(js.PoolOptions{Command: cmd, Workers: 1})
		if err != nil {
			b.Fatal(err)
		}
		mustRun(b, p, code, fnrun.Request{})
		b.StopTimer()
		p.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/run")
}

func TestProgramCacheEviction(t *testing.T) {
	// One worker; more distinct bundles than it caches, then the first
	// again: the worker asks for code it evicted.
	p := newPool(t, js.PoolOptions{Workers: 1})
	for i := range 40 {
		resp := mustRun(t, p, cjs(fmt.Sprintf(`({ res }) => res.json(%d)`, i)), fnrun.Request{})
		if string(resp.Body) != fmt.Sprint(i) {
			t.Fatalf("run %d: %s", i, resp.Body)
		}
	}
	resp := mustRun(t, p, cjs(`({ res }) => res.json(0)`), fnrun.Request{})
	if string(resp.Body) != "0" {
		t.Fatalf("again: %s", resp.Body)
	}
}
