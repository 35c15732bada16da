package wasm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/cairn-dev/cairn/fnrun"
)

const (
	// wasiModule is the only module a function may import from.
	wasiModule = wasi_snapshot_preview1.ModuleName
	// startFunction is the command entry point every function exports.
	startFunction = "_start"
	// pageSize is WebAssembly's memory page, maxPages the most a 32-bit
	// memory can have.
	pageSize = 64 << 10
	maxPages = 1 << 16
)

// errClosed is returned by Compile and Run after Close.
var errClosed = errors.New("wasm: runtime closed")

// Options configure a Runtime.
type Options struct {
	// CacheDir keeps compiled machine code on disk, so a restarted node
	// skips compiling the modules it has seen; "" keeps it in memory only.
	CacheDir string
}

// Runtime compiles and runs WASI modules. One per node; safe for concurrent
// use.
//
// wazero fixes a memory limit per wazero.Runtime, at compile time, so a
// Runtime keeps one wazero runtime per distinct limit in pages (created on
// first use). They share one compilation cache, and through it one engine:
// machine code is compiled once per module whatever the limit.
type Runtime struct {
	cache wazero.CompilationCache

	mu      sync.Mutex
	closed  bool
	engines map[uint32]*engine
	modules map[[sha256.Size]byte]*compileCall
	// compiling counts compiles under way: Close waits for them, because
	// wazero panics when a runtime closes under a compile (seen when a
	// node stopped while a deployment was being compiled).
	compiling sync.WaitGroup
}

// engine is a wazero runtime with one memory limit, with WASI instantiated.
type engine struct {
	rt wazero.Runtime
}

// compileCall is one Compile of some bytes; later Compiles of the same bytes
// wait for it and share its Module.
type compileCall struct {
	done chan struct{}
	m    *Module
	err  error
}

// New returns a Runtime. Close it to release compiled code.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	cache := wazero.NewCompilationCache()
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache %s: %w", opts.CacheDir, err)
		}
		cache = c
	}
	return &Runtime{
		cache:   cache,
		engines: make(map[uint32]*engine),
		modules: make(map[[sha256.Size]byte]*compileCall),
	}, nil
}

// Close releases every compiled module and instance; executions still
// running fail. Compile and Run fail after it.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	engines := r.engines
	r.engines, r.modules = nil, nil
	r.mu.Unlock()
	r.compiling.Wait()

	var errs []error
	for _, e := range engines {
		errs = append(errs, e.rt.Close(ctx))
	}
	errs = append(errs, r.cache.Close(ctx))
	return errors.Join(errs...)
}

func (r *Runtime) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// engineFor returns the engine whose memory limit is pages, creating it,
// for one compile: call done when the compile has returned.
func (r *Runtime) engineFor(ctx context.Context, pages uint32) (e *engine, done func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, errClosed
	}
	if e, ok := r.engines[pages]; ok {
		r.compiling.Add(1)
		return e, r.compiling.Done, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(r.cache).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(true)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, nil, fmt.Errorf("wasm: instantiate WASI: %w", err)
	}
	e = &engine{rt: rt}
	r.engines[pages] = e
	r.compiling.Add(1)
	return e, r.compiling.Done, nil
}

// Compile validates and compiles a module. The result is cached by the
// SHA-256 of code: compiling the same bytes again returns the same *Module
// at once (each Compile takes a reference that Module.Close gives back).
// Returns an error wrapping fnrun.ErrInvalidCode, with wazero's reason, if
// code is not a WebAssembly module, does not export _start, or imports
// anything from outside wasi_snapshot_preview1.
func (r *Runtime) Compile(ctx context.Context, code []byte) (*Module, error) {
	sum := sha256.Sum256(code)
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, errClosed
		}
		c, ok := r.modules[sum]
		if !ok {
			c = &compileCall{done: make(chan struct{})}
			r.modules[sum] = c
			r.mu.Unlock()
			return r.compileOnce(ctx, c, sum, code)
		}
		r.mu.Unlock()

		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c.err != nil {
			if ctx.Err() == nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
				continue // the other caller gave up; compile for this one
			}
			return nil, c.err
		}
		r.mu.Lock()
		if c.m.refs > 0 {
			c.m.refs++
			r.mu.Unlock()
			return c.m, nil
		}
		r.mu.Unlock()
		// Closed by its last holder meanwhile: compile afresh.
	}
}

// compileOnce runs the compile that c stands for and publishes its result.
func (r *Runtime) compileOnce(ctx context.Context, c *compileCall, sum [sha256.Size]byte, code []byte) (*Module, error) {
	m, err := r.compile(ctx, sum, code)
	r.mu.Lock()
	c.m, c.err = m, err
	if err != nil {
		// Forget failures: a cancelled compile must not stick, and invalid
		// code is refused again as cheaply.
		if r.modules[sum] == c {
			delete(r.modules, sum)
		}
	} else {
		m.refs = 1
	}
	r.mu.Unlock()
	close(c.done)
	return m, err
}

func (r *Runtime) compile(ctx context.Context, sum [sha256.Size]byte, code []byte) (*Module, error) {
	// Validate with the largest limit, so that a module is refused here only
	// for what it is; a minimum memory beyond an execution's limit is that
	// execution's failure (ErrMemory).
	e, done, err := r.engineFor(ctx, maxPages)
	if err != nil {
		return nil, err
	}
	cm, err := e.rt.CompileModule(ctx, code)
	done()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", fnrun.ErrInvalidCode, err)
	}
	if err := checkCommand(cm); err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	m := &Module{
		r:        r,
		sum:      sum,
		code:     append([]byte(nil), code...),
		compiled: map[uint32]compiled{maxPages: {e: e, cm: cm}},
	}
	// Ready it for the default limit too, which most executions run
	// under, so that their first Run does not decode it. A module needing
	// more memory than that is still valid: it fails only executions
	// limited below its need.
	if _, err := m.compiledFor(ctx, limitPages(fnrun.DefaultLimits().MaxMemoryBytes)); err != nil && !errors.Is(err, fnrun.ErrMemory) {
		_ = m.closeCompiled(ctx)
		return nil, err
	}
	return m, nil
}

// checkCommand refuses a module that is not a WASI preview 1 command.
func checkCommand(cm wazero.CompiledModule) error {
	var bad []string
	for _, f := range cm.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod != wasiModule {
			bad = append(bad, fmt.Sprintf("function %s.%s", mod, name))
		}
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		bad = append(bad, fmt.Sprintf("memory %s.%s", mod, name))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: imports other than %s: %s", fnrun.ErrInvalidCode, wasiModule, strings.Join(bad, ", "))
	}
	start, ok := cm.ExportedFunctions()[startFunction]
	if !ok {
		return fmt.Errorf("%w: no %s export: not a WASI command", fnrun.ErrInvalidCode, startFunction)
	}
	if len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
		return fmt.Errorf("%w: %s must take and return nothing", fnrun.ErrInvalidCode, startFunction)
	}
	return nil
}
