package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/cairn-dev/cairn/fnrun"
)

// errModuleClosed is returned by Run after the last Close.
var errModuleClosed = errors.New("wasm: module closed")

// The environment variables every execution gets, over the function's own.
const (
	envProjectID   = "CAIRN_PROJECT_ID"
	envFunctionID  = "CAIRN_FUNCTION_ID"
	envAPIEndpoint = "CAIRN_API_ENDPOINT"
	envAPIKey      = "CAIRN_API_KEY"
)

// responseOverhead is what stdout may hold beyond twice the body limit:
// the JSON around the body and the headers.
const responseOverhead = 64 << 10

// Module is a compiled function, ready to run any number of times, also
// concurrently.
type Module struct {
	r    *Runtime
	sum  [sha256.Size]byte
	code []byte
	refs int // guarded by r.mu; 0 once closed

	mu       sync.Mutex
	closed   bool
	compiled map[uint32]compiled // by memory limit in pages
}

// compiled is the module compiled in the engine of one memory limit.
type compiled struct {
	e  *engine
	cm wazero.CompiledModule
}

// Close gives back the reference Compile took. The last Close releases the
// compiled code; Run fails after it, executions under way finish.
func (m *Module) Close(ctx context.Context) error {
	r := m.r
	r.mu.Lock()
	if m.refs == 0 {
		r.mu.Unlock()
		return nil
	}
	m.refs--
	if m.refs > 0 {
		r.mu.Unlock()
		return nil
	}
	if c, ok := r.modules[m.sum]; ok && c.m == m {
		delete(r.modules, m.sum)
	}
	r.mu.Unlock()

	return m.closeCompiled(ctx)
}

// closeCompiled releases the compiled code; Run fails after it.
func (m *Module) closeCompiled(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	var errs []error
	for _, c := range m.compiled {
		errs = append(errs, c.cm.Close(ctx))
	}
	m.compiled = nil
	return errors.Join(errs...)
}

// compiledFor returns the module compiled under a memory limit of pages.
// Returns an error wrapping fnrun.ErrMemory if the module needs more.
func (m *Module) compiledFor(ctx context.Context, pages uint32) (compiled, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return compiled{}, errModuleClosed
	}
	if c, ok := m.compiled[pages]; ok {
		return c, nil
	}
	e, done, err := m.r.engineFor(ctx, pages)
	if err != nil {
		return compiled{}, err
	}
	// Machine code is shared through the cache: this decodes and checks
	// the module against the limit, without compiling it again.
	cm, err := e.rt.CompileModule(ctx, m.code)
	done()
	if err != nil {
		if ctx.Err() != nil {
			return compiled{}, ctx.Err()
		}
		// The module compiled under the largest limit, so what fails
		// now is its memory.
		return compiled{}, fmt.Errorf("%w: %v", fnrun.ErrMemory, err)
	}
	c := compiled{e: e, cm: cm}
	m.compiled[pages] = c
	return c, nil
}

// Run executes one request in a fresh instance of the module, within lim
// (zero fields take fnrun.DefaultLimits). See the package documentation for
// the ABI. An execution that fails returns an error wrapping
// fnrun.ErrTimeout, ErrMemory, ErrCrashed or ErrResponseLarge (or the
// context's error if ctx ended first), with a Response holding what the
// module wrote on stderr in Errors. Safe for concurrent use.
func (m *Module) Run(ctx context.Context, req fnrun.Request, lim fnrun.Limits) (fnrun.Response, error) {
	lim = lim.WithDefaults()
	if m.r.isClosed() {
		return fnrun.Response{}, errClosed
	}
	env, err := environ(req)
	if err != nil {
		return fnrun.Response{}, err
	}
	in, err := json.Marshal(req)
	if err != nil {
		return fnrun.Response{}, fmt.Errorf("wasm: encode request: %w", err)
	}
	pages := limitPages(lim.MaxMemoryBytes)
	c, err := m.compiledFor(ctx, pages)
	if err != nil {
		return fnrun.Response{}, err
	}

	runCtx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	stdout := &capWriter{max: 2*int(lim.MaxResponseBytes) + responseOverhead}
	stderr := &capWriter{max: lim.MaxLogBytes}
	cfg := wazero.NewModuleConfig().
		WithName("").         // anonymous: any number of instances at once
		WithStartFunctions(). // _start is called below, to see memory after
		WithStdin(bytes.NewReader(in)).
		WithStdout(stdout).
		WithStderr(stderr).
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sleeper(runCtx)).
		WithOsyield(runtime.Gosched)
	for _, kv := range env {
		cfg = cfg.WithEnv(kv[0], kv[1])
	}

	started := time.Now()
	// The module runs on this goroutine: pinned to its thread, the
	// thread's CPU time across the call is the execution's.
	runtime.LockOSThread()
	cpu := fnrun.ThreadCPU()
	memBytes, instantiated, runErr := execute(runCtx, c, cfg)
	cpu = fnrun.ThreadCPU() - cpu
	runtime.UnlockOSThread()
	if runErr != nil {
		resp := fnrun.Response{Errors: stderr.String(), CPUTime: cpu}
		return resp, failure(ctx, runCtx, lim, started, memBytes, instantiated, runErr, stderr, &resp)
	}

	resp, err := parseResponse(stdout, lim.MaxResponseBytes)
	if err != nil {
		return fnrun.Response{Errors: stderr.String(), CPUTime: cpu}, err
	}
	resp.Logs = stderr.String()
	resp.CPUTime = cpu
	return resp, nil
}

// execute instantiates c and calls _start, returning the memory the
// instance had at the end, whether it got as far as running, and why it
// failed. It never panics: a panic in wazero or in the writers becomes an
// error.
func execute(ctx context.Context, c compiled, cfg wazero.ModuleConfig) (memBytes uint64, instantiated bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: wasm: host panic: %v", fnrun.ErrCrashed, p)
		}
	}()
	mod, err := c.e.rt.InstantiateModule(ctx, c.cm, cfg)
	if err != nil {
		return 0, false, err
	}
	defer mod.Close(context.WithoutCancel(ctx))
	_, err = mod.ExportedFunction(startFunction).Call(ctx)
	memBytes = memorySize(mod)
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	return memBytes, true, err
}

// memorySize is the size of mod's memory, 0 if it has none. (wazero's
// Memory returns a typed nil for a module without memory.)
func memorySize(mod api.Module) uint64 {
	mem := mod.Memory()
	if mem == nil {
		return 0
	}
	if v := reflect.ValueOf(mem); v.Kind() == reflect.Pointer && v.IsNil() {
		return 0
	}
	return uint64(mem.Size())
}

// failure classifies why an execution failed and adds a trap's detail to
// resp.Errors.
func failure(ctx, runCtx context.Context, lim fnrun.Limits, started time.Time, memBytes uint64, instantiated bool, err error, stderr *capWriter, resp *fnrun.Response) error {
	if errors.Is(err, fnrun.ErrCrashed) { // a recovered panic
		return err
	}
	if runCtx.Err() != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wasm: execution stopped: %w", ctx.Err())
		}
		return fmt.Errorf("%w after %v (limit %v)", fnrun.ErrTimeout, time.Since(started).Round(time.Millisecond), lim.Timeout)
	}
	if !instantiated {
		return fmt.Errorf("%w: instantiate: %v", fnrun.ErrInvalidCode, err)
	}
	var reason string
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		reason = fmt.Sprintf("exit code %d", exit.ExitCode())
	} else {
		// A trap: wazero's message is its kind then a stack trace; the
		// trace is for the function's author.
		msg := err.Error()
		reason, _, _ = strings.Cut(msg, "\n")
		if resp.Errors != "" && !strings.HasSuffix(resp.Errors, "\n") {
			resp.Errors += "\n"
		}
		resp.Errors += msg
	}
	if outOfMemory(memBytes, uint64(limitPages(lim.MaxMemoryBytes))*pageSize, stderr.Bytes()) {
		return fmt.Errorf("%w: %s with %d MiB of memory in use (limit %d MiB)", fnrun.ErrMemory, reason, memBytes>>20, lim.MaxMemoryBytes>>20)
	}
	return fmt.Errorf("%w: %s", fnrun.ErrCrashed, reason)
}

// outOfMemory tells whether a failed execution failed for want of memory:
// its memory grew to within an eighth of the limit (a runtime asks for
// memory in chunks, so the last grow can fail short of the limit), or it
// said so on stderr (Go: "out of memory"; Rust: "memory allocation of N
// bytes failed").
func outOfMemory(memBytes, limitBytes uint64, stderr []byte) bool {
	if memBytes >= limitBytes-limitBytes/8 {
		return true
	}
	return bytes.Contains(stderr, []byte("out of memory")) ||
		(bytes.Contains(stderr, []byte("memory allocation of")) && bytes.Contains(stderr, []byte("failed")))
}

// limitPages is a memory limit in whole pages, between 1 and 4 GiB's worth.
func limitPages(maxBytes int64) uint32 {
	p := (maxBytes + pageSize - 1) / pageSize
	return uint32(min(max(p, 1), maxPages))
}

// environ is the execution's environment, sorted by name: the function's
// variables, then Cairn's own over them.
func environ(req fnrun.Request) ([][2]string, error) {
	own := map[string]string{
		envProjectID:   req.ProjectID,
		envFunctionID:  req.FunctionID,
		envAPIEndpoint: req.APIEndpoint,
		envAPIKey:      req.APIKey,
	}
	env := make([][2]string, 0, len(req.Variables)+len(own))
	for k, v := range req.Variables {
		if _, ok := own[k]; ok {
			continue
		}
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("wasm: variable %q: a name must be non-empty without '=' or NUL, a value without NUL", k)
		}
		env = append(env, [2]string{k, v})
	}
	for k, v := range own {
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("wasm: %s holds a NUL", k)
		}
		env = append(env, [2]string{k, v})
	}
	slices.SortFunc(env, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return env, nil
}

// sleeper is WASI's sleep, cut short when ctx ends so that a sleeping
// module is stopped at its timeout like a busy one.
func sleeper(ctx context.Context) sys.Nanosleep {
	return func(ns int64) {
		t := time.NewTimer(time.Duration(ns))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}
