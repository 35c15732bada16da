package wasm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/wasm"
)

// The test function, testdata/fn, is built once per test binary with the
// go toolchain running the tests.
var (
	buildOnce sync.Once
	fnCode    []byte
	buildErr  error

	sharedOnce sync.Once
	sharedRT   *wasm.Runtime
	sharedMod  *wasm.Module
	sharedErr  error
	// sharedTook is how long compiling sharedMod took.
	sharedTook time.Duration
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRT != nil {
		_ = sharedRT.Close(context.Background())
	}
	os.Exit(code)
}

// fnModule returns the test function's bytes, skipping the test if this
// toolchain cannot build for wasip1.
func fnModule(tb testing.TB) []byte {
	tb.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("no go toolchain on PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "cairn-wasm-test")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "fn.wasm")
		cmd := exec.Command(goBin, "build", "-o", out, "./testdata/fn")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("GOOS=wasip1 GOARCH=wasm go build: %v\n%s", err, msg)
			return
		}
		fnCode, buildErr = os.ReadFile(out)
	})
	if buildErr != nil {
		tb.Skipf("cannot build the wasip1 test function (needs a go toolchain with wasip1/wasm): %v", buildErr)
	}
	return fnCode
}

// shared returns one Runtime and the test function compiled in it, for the
// tests that only run it (compiling under -race takes seconds).
func shared(tb testing.TB) *wasm.Module {
	tb.Helper()
	code := fnModule(tb)
	sharedOnce.Do(func() {
		ctx := context.Background()
		sharedRT, sharedErr = wasm.New(ctx, wasm.Options{})
		if sharedErr == nil {
			start := time.Now()
			sharedMod, sharedErr = sharedRT.Compile(ctx, code)
			sharedTook = time.Since(start)
		}
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return sharedMod
}

func run(t *testing.T, m *wasm.Module, path string, lim fnrun.Limits) (fnrun.Response, error) {
	t.Helper()
	return m.Run(context.Background(), fnrun.Request{Method: "GET", Path: path}, lim)
}

func TestEcho(t *testing.T) {
	m := shared(t)
	req := fnrun.Request{
		Method:    "POST",
		Path:      "/echo",
		Query:     map[string][]string{"a": {"1", "2"}},
		Headers:   map[string]string{"x-in": "header value"},
		Body:      []byte("hello body"),
		Variables: map[string]string{"GREETING": "hi there"},
		ProjectID: "proj1",
	}
	resp, err := m.Run(context.Background(), req, fnrun.Limits{})
	if err != nil {
		t.Fatalf("Run: %v (errors %q)", err, resp.Errors)
	}
	if resp.Status != 201 {
		t.Errorf("status %d, want 201", resp.Status)
	}
	if resp.Headers["x-echo"] != "yes" || resp.Headers["content-type"] != "application/json" {
		t.Errorf("headers %v", resp.Headers)
	}
	var got struct {
		Method, Path, Body, Header, Variable, Env, ProjectID string
		Query                                                map[string][]string
	}
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	want := map[string][2]string{
		"method":    {got.Method, "POST"},
		"path":      {got.Path, "/echo"},
		"body":      {got.Body, "hello body"},
		"header":    {got.Header, "header value"},
		"variable":  {got.Variable, "hi there"},
		"env":       {got.Env, "hi there"},
		"projectId": {got.ProjectID, "proj1"},
	}
	for name, w := range want {
		if w[0] != w[1] {
			t.Errorf("%s = %q, want %q", name, w[0], w[1])
		}
	}
	if q := got.Query["a"]; len(q) != 2 || q[0] != "1" || q[1] != "2" {
		t.Errorf("query %v", got.Query)
	}
	if resp.Logs != "" || resp.Errors != "" {
		t.Errorf("logs %q errors %q, want none", resp.Logs, resp.Errors)
	}
}

func TestBinaryBody(t *testing.T) {
	resp, err := run(t, shared(t), "/binary", fnrun.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != 256 || resp.Body[0] != 0 || resp.Body[255] != 255 {
		t.Errorf("body %v", resp.Body)
	}
}

func TestLogs(t *testing.T) {
	m := shared(t)
	resp, err := m.Run(context.Background(), fnrun.Request{Path: "/logs", Query: map[string][]string{"n": {"10"}}}, fnrun.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Logs != "hello log\nxxxxxxxxxx" {
		t.Errorf("logs %q", resp.Logs)
	}

	const limit = 1000
	resp, err = m.Run(context.Background(), fnrun.Request{Path: "/logs", Query: map[string][]string{"n": {"100000"}}}, fnrun.Limits{MaxLogBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Logs, "hello log\nxxx") || !strings.HasSuffix(resp.Logs, "…[truncated]") || len(resp.Logs) > limit {
		t.Errorf("logs of %d bytes: %q…%q", len(resp.Logs), resp.Logs[:20], resp.Logs[len(resp.Logs)-20:])
	}
	if string(resp.Body) != "ok" {
		t.Errorf("body %q", resp.Body)
	}
}

func TestTimeout(t *testing.T) {
	m := shared(t)
	for _, path := range []string{"/loop", "/sleep"} {
		t.Run(path, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			start := time.Now()
			_, err := run(t, m, path, fnrun.Limits{Timeout: timeout})
			took := time.Since(start)
			if !errors.Is(err, fnrun.ErrTimeout) {
				t.Fatalf("err %v, want ErrTimeout", err)
			}
			if took > timeout+200*time.Millisecond {
				t.Errorf("took %v, want about %v", took, timeout)
			}
			t.Logf("%v after %v", err, took)
		})
	}
	// The host still works.
	if resp, err := run(t, m, "/echo", fnrun.Limits{}); err != nil || resp.Status != 201 {
		t.Fatalf("echo after timeouts: %v %v", resp.Status, err)
	}
}

func TestCallerContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := shared(t).Run(ctx, fnrun.Request{Path: "/sleep"}, fnrun.Limits{Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fnrun.ErrTimeout) {
		t.Fatalf("err %v, want the caller's context.DeadlineExceeded", err)
	}
}

func TestMemory(t *testing.T) {
	m := shared(t)
	start := time.Now()
	resp, err := run(t, m, "/oom", fnrun.Limits{MaxMemoryBytes: 64 << 20})
	if !errors.Is(err, fnrun.ErrMemory) {
		t.Fatalf("err %v, want ErrMemory (errors %q)", err, resp.Errors)
	}
	t.Logf("%v after %v; stderr %.200q", err, time.Since(start), resp.Errors)
	if resp, err := run(t, m, "/echo", fnrun.Limits{MaxMemoryBytes: 64 << 20}); err != nil || resp.Status != 201 {
		t.Fatalf("echo after running out of memory: %v %v", resp.Status, err)
	}
}

func TestMinimumMemoryOverLimit(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	m, err := rt.Compile(ctx, module(memorySection(2048), exportSection("_start", 0)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(ctx, fnrun.Request{}, fnrun.Limits{MaxMemoryBytes: 64 << 20}); !errors.Is(err, fnrun.ErrMemory) {
		t.Fatalf("err %v, want ErrMemory", err)
	}
	// Within the limit, the same module runs (and writes no response).
	if _, err := m.Run(ctx, fnrun.Request{}, fnrun.Limits{MaxMemoryBytes: 256 << 20}); !errors.Is(err, fnrun.ErrCrashed) || !strings.Contains(err.Error(), "no response") {
		t.Fatalf("err %v, want ErrCrashed: no response", err)
	}
}

func TestCrash(t *testing.T) {
	m := shared(t)
	resp, err := run(t, m, "/exit", fnrun.Limits{})
	if !errors.Is(err, fnrun.ErrCrashed) || !strings.Contains(err.Error(), "exit code 3") {
		t.Fatalf("err %v, want ErrCrashed with exit code 3", err)
	}
	if resp.Errors != "boom: something broke\n" || resp.Logs != "" {
		t.Errorf("errors %q logs %q", resp.Errors, resp.Logs)
	}

	resp, err = run(t, m, "/panic", fnrun.Limits{})
	if !errors.Is(err, fnrun.ErrCrashed) || !strings.Contains(resp.Errors, "panic: kaboom") {
		t.Fatalf("err %v errors %q, want ErrCrashed with the panic", err, resp.Errors)
	}

	_, err = run(t, m, "/nothing", fnrun.Limits{})
	if !errors.Is(err, fnrun.ErrCrashed) {
		t.Fatalf("err %v, want ErrCrashed", err)
	}
}

func TestTrap(t *testing.T) {
	ctx := context.Background()
	// _start is `unreachable`.
	m, err := newRuntime(t).Compile(ctx, module(exportSection("_start", 0), codeSection(0x00)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := m.Run(ctx, fnrun.Request{}, fnrun.Limits{})
	if !errors.Is(err, fnrun.ErrCrashed) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err %v, want ErrCrashed: unreachable", err)
	}
	if !strings.Contains(resp.Errors, "unreachable") {
		t.Errorf("errors %q, want the trap", resp.Errors)
	}
}

func TestResponseTooLarge(t *testing.T) {
	m := shared(t)
	req := fnrun.Request{Path: "/big", Query: map[string][]string{"n": {"2000"}}}
	if _, err := m.Run(context.Background(), req, fnrun.Limits{MaxResponseBytes: 1000}); !errors.Is(err, fnrun.ErrResponseLarge) {
		t.Fatalf("err %v, want ErrResponseLarge", err)
	}
	req.Query["n"] = []string{"1000000"}
	if _, err := m.Run(context.Background(), req, fnrun.Limits{MaxResponseBytes: 1000}); !errors.Is(err, fnrun.ErrResponseLarge) {
		t.Fatalf("err %v, want ErrResponseLarge", err)
	}
	resp, err := m.Run(context.Background(), req, fnrun.Limits{MaxResponseBytes: 1000000})
	if err != nil || len(resp.Body) != 1000000 {
		t.Fatalf("err %v, body of %d bytes", err, len(resp.Body))
	}
}

func TestInvalidCode(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	for name, code := range map[string][]byte{
		"not wasm":    []byte("#!/bin/sh\necho hi\n"),
		"empty":       nil,
		"no _start":   module(exportSection("main", 0)),
		"env imports": module(importSection("env", "host_call"), exportSection("_start", 1)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := rt.Compile(ctx, code)
			if !errors.Is(err, fnrun.ErrInvalidCode) {
				t.Fatalf("err %v, want ErrInvalidCode", err)
			}
			t.Log(err)
		})
	}
}

func TestNoHostAccess(t *testing.T) {
	t.Setenv("HOME", "/root-of-the-host")
	req := fnrun.Request{Path: "/host", Variables: map[string]string{"ONLY": "this"}, ProjectID: "p", FunctionID: "f", APIEndpoint: "http://api", APIKey: "k"}
	resp, err := shared(t).Run(context.Background(), req, fnrun.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ReadErr, DirErr, Home, Path, RandErr string
		Environ, Args                        []string
		Year                                 int
		Rand                                 []byte
	}
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	if got.ReadErr == "" || got.DirErr == "" {
		t.Errorf("reading the host's files: errors %q, %q, want both to fail", got.ReadErr, got.DirErr)
	}
	if got.Home != "" || got.Path != "" {
		t.Errorf("HOME=%q PATH=%q, want both empty", got.Home, got.Path)
	}
	wantEnv := []string{"CAIRN_API_ENDPOINT=http://api", "CAIRN_API_KEY=k", "CAIRN_FUNCTION_ID=f", "CAIRN_PROJECT_ID=p", "ONLY=this"}
	if strings.Join(got.Environ, " ") != strings.Join(wantEnv, " ") {
		t.Errorf("environ %q, want %q", got.Environ, wantEnv)
	}
	if len(got.Args) != 0 {
		t.Errorf("args %q, want none", got.Args)
	}
	if got.Year < 2024 || got.RandErr != "" || bytes.Equal(got.Rand, make([]byte, 16)) {
		t.Errorf("clock year %d, random %x (%s)", got.Year, got.Rand, got.RandErr)
	}
}

func TestInvalidVariable(t *testing.T) {
	req := fnrun.Request{Path: "/echo", Variables: map[string]string{"A=B": "x"}}
	if _, err := shared(t).Run(context.Background(), req, fnrun.Limits{}); err == nil {
		t.Fatal("a variable named A=B ran")
	}
}

func TestCompileCache(t *testing.T) {
	ctx := context.Background()
	m1 := shared(t)
	start := time.Now()
	m2, err := sharedRT.Compile(ctx, bytes.Clone(fnModule(t)))
	if err != nil {
		t.Fatal(err)
	}
	second := time.Since(start)
	defer m2.Close(ctx)
	t.Logf("first Compile %v, second %v", sharedTook, second)
	if m1 != m2 {
		t.Error("second Compile of the same bytes returned another Module")
	}
	if second > sharedTook/5 {
		t.Errorf("second Compile took %v, first %v", second, sharedTook)
	}
}

func TestModuleClose(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	code := module(exportSection("_start", 0))
	m1, err := rt.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := rt.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	// Each Compile holds a reference: the module runs until both are given
	// back. (It writes no response, hence ErrCrashed.)
	if err := m1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Run(ctx, fnrun.Request{}, fnrun.Limits{}); !errors.Is(err, fnrun.ErrCrashed) {
		t.Fatalf("Run after one of two Closes: %v, want ErrCrashed", err)
	}
	if err := m2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Run(ctx, fnrun.Request{}, fnrun.Limits{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Run after the last Close: %v, want closed", err)
	}
	m3, err := rt.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if m3 == m1 {
		t.Fatal("Compile after the last Close returned the closed Module")
	}
	if _, err := m3.Run(ctx, fnrun.Request{}, fnrun.Limits{}); !errors.Is(err, fnrun.ErrCrashed) {
		t.Fatalf("Run of a fresh Compile: %v, want ErrCrashed", err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	m := shared(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			body := fmt.Sprintf("request %d", i)
			req := fnrun.Request{Method: "PUT", Path: "/echo", Body: []byte(body), Variables: map[string]string{"GREETING": body}}
			resp, err := m.Run(context.Background(), req, fnrun.Limits{})
			if err != nil {
				errs <- fmt.Errorf("%d: %w", i, err)
				return
			}
			var got struct{ Body, Variable string }
			if err := json.Unmarshal(resp.Body, &got); err != nil || resp.Status != 201 || got.Body != body || got.Variable != body {
				errs <- fmt.Errorf("%d: status %d body %q (%v)", i, resp.Status, resp.Body, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	rt, err := wasm.New(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.Compile(ctx, module(exportSection("_start", 0)))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(ctx, fnrun.Request{}, fnrun.Limits{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Run after the Runtime's Close: %v, want closed", err)
	}
	if _, err := rt.Compile(ctx, module(exportSection("_start", 0))); err == nil {
		t.Error("Compile after Close succeeded")
	}
}

// TestCloseDuringCompile: a node that stops while deployments compile
// closes its Runtime under them; the compiles end (with a module or
// closed), nothing panics. wazero panicked here (a nil map in its engine)
// before Close waited for compiles under way.
func TestCloseDuringCompile(t *testing.T) {
	ctx := context.Background()
	// A function long enough to take wazero a while to compile; each
	// module differs in length, so each is its own compile.
	long := func(n int) []byte {
		var instrs []byte
		for range n {
			instrs = append(instrs, 0x41, 0x00, 0x1a) // i32.const 0; drop
		}
		return module(exportSection("_start", 0), codeSection(instrs...))
	}
	for round := range 3 {
		rt, err := wasm.New(ctx, wasm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for i := range 3 {
			code := long(100_000 + 10*round + i)
			wg.Go(func() {
				m, err := rt.Compile(ctx, code)
				if err == nil {
					err = m.Close(ctx)
				}
				errs <- err
			})
		}
		time.Sleep(time.Duration(1+round*5) * time.Millisecond)
		start := time.Now()
		if err := rt.Close(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: Close took %s", round, time.Since(start))
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !strings.Contains(err.Error(), "closed") {
				t.Errorf("round %d: a compile cut by Close: %v", round, err)
			}
		}
	}
}

func TestCacheDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	code := module(exportSection("_start", 0), codeSection(0x00))
	for i := range 2 {
		rt, err := wasm.New(ctx, wasm.Options{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		m, err := rt.Compile(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Run(ctx, fnrun.Request{}, fnrun.Limits{}); !errors.Is(err, fnrun.ErrCrashed) {
			t.Fatalf("run %d: %v, want ErrCrashed (unreachable)", i, err)
		}
		if err := rt.Close(ctx); err != nil {
			t.Fatal(err)
		}
		var files int
		_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				files++
			}
			return nil
		})
		if files == 0 {
			t.Fatalf("nothing in the cache dir after run %d", i)
		}
	}
}

func BenchmarkRun(b *testing.B) {
	m := shared(b)
	req := fnrun.Request{Method: "POST", Path: "/echo", Body: []byte("hello"), Variables: map[string]string{"GREETING": "hi"}}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Run(ctx, req, fnrun.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}

func BenchmarkColdCompile(b *testing.B) {
	code := fnModule(b)
	ctx := context.Background()
	for b.Loop() {
		rt, err := wasm.New(ctx, wasm.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rt.Compile(ctx, code); err != nil {
			b.Fatal(err)
		}
		if err := rt.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}

func newRuntime(t *testing.T) *wasm.Runtime {
	t.Helper()
	rt, err := wasm.New(context.Background(), wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	return rt
}

// Hand-written modules, for what Go cannot produce. Each has one type,
// () -> (), and one function of it, whose body is codeSection's (by default
// just `end`); sections are put in the order the format requires.

func module(sections ...[]byte) []byte {
	order := map[byte]int{2: 0, 1: -1, 3: 1, 5: 2, 7: 3, 10: 4}
	all := [][]byte{section(1, []byte{1, 0x60, 0, 0}), section(3, []byte{1, 0})}
	hasCode := false
	for _, s := range sections {
		all = append(all, s)
		hasCode = hasCode || s[0] == 10
	}
	if !hasCode {
		all = append(all, codeSection())
	}
	// Stable insertion sort by section order.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && order[all[j][0]] < order[all[j-1][0]]; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	for _, s := range all {
		out = append(out, s...)
	}
	return out
}

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(content)))...), content...)
}

func uleb(v uint32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func memorySection(minPages uint32) []byte {
	return section(5, append([]byte{1, 0}, uleb(minPages)...))
}

func exportSection(fn string, index byte) []byte {
	return section(7, append(append([]byte{1}, name(fn)...), 0, index))
}

// importSection imports one function of type 0.
func importSection(mod, fn string) []byte {
	c := append([]byte{1}, name(mod)...)
	c = append(c, name(fn)...)
	return section(2, append(c, 0, 0))
}

// codeSection is the body of the one function: instrs, then end.
func codeSection(instrs ...byte) []byte {
	body := append(append([]byte{0}, instrs...), 0x0b)
	return section(10, append(append([]byte{1}, uleb(uint32(len(body)))...), body...))
}
