package js_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/js"
)

// TestMain makes the test binary a worker when the pool starts it as one.
func TestMain(m *testing.M) {
	if os.Getenv(js.WorkerEnv) == "1" {
		js.WorkerMain()
	}
	os.Exit(m.Run())
}

// command starts this test binary as a worker.
func command(t testing.TB) func() *exec.Cmd {
	t.Helper()
	self, err := js.SelfCommand()
	if err != nil {
		t.Fatal(err)
	}
	return func() *exec.Cmd {
		c := self()
		// Under -race a process sleeps a second before it exits, unless
		// told otherwise.
		c.Env = append(c.Env, "GORACE=atexit_sleep_ms=0")
		return c
	}
}

func newPool(t testing.TB, o js.PoolOptions) *js.Pool {
	t.Helper()
	if o.Command == nil {
		o.Command = command(t)
	}
	p, err := js.NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// cjs turns a handler expression into a deployable CommonJS bundle.
func cjs(handler string) []byte {
	return []byte("module.exports = " + strings.TrimSpace(handler) + ";\n")
}

func run(t testing.TB, p *js.Pool, code []byte, req fnrun.Request, lim fnrun.Limits) (fnrun.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Path == "" {
		req.Path = "/"
	}
	return p.Run(ctx, code, req, lim)
}

func mustRun(t testing.TB, p *js.Pool, code []byte, req fnrun.Request) fnrun.Response {
	t.Helper()
	resp, err := run(t, p, code, req, fnrun.Limits{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("run: %v\nlogs: %s\nerrors: %s", err, resp.Logs, resp.Errors)
	}
	return resp
}
