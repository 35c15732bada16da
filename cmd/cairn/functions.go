package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/wasm"
)

// runtimes are the function runtimes of a node (api.FunctionRuntimes).
type runtimes struct {
	wasm *wasm.Runtime
	js   jsRunner
}

// jsRunner runs JavaScript bundles (fnrun/js's worker pool).
type jsRunner interface {
	Check(code []byte) error
	Run(ctx context.Context, code []byte, req fnrun.Request, lim fnrun.Limits) (fnrun.Response, error)
	Close() error
}

// openRuntimes starts the runtimes; compiled wasm is cached under the data
// directory, so a restart does not compile deployments again.
func openRuntimes(ctx context.Context, cfg *config) (*runtimes, error) {
	w, err := wasm.New(ctx, wasm.Options{CacheDir: filepath.Join(cfg.DataDir, "wasm-cache")})
	if err != nil {
		return nil, fmt.Errorf("wasm runtime: %w", err)
	}
	r := &runtimes{wasm: w}
	if r.js, err = openJS(cfg); err != nil {
		_ = w.Close(ctx)
		return nil, err
	}
	return r, nil
}

func (r *runtimes) close(ctx context.Context) {
	_ = r.wasm.Close(ctx)
	if r.js != nil {
		_ = r.js.Close()
	}
}

func (r *runtimes) Check(ctx context.Context, runtime string, code []byte) error {
	switch runtime {
	case "wasm":
		m, err := r.wasm.Compile(ctx, code)
		if err != nil {
			return err
		}
		return m.Close(ctx)
	case "js":
		if r.js == nil {
			return fmt.Errorf("%w: this node runs no JavaScript", fnrun.ErrInvalidCode)
		}
		return r.js.Check(code)
	}
	return fmt.Errorf("%w: unknown runtime %q", fnrun.ErrInvalidCode, runtime)
}

func (r *runtimes) Run(ctx context.Context, runtime, _ string, code []byte, req fnrun.Request, lim fnrun.Limits) (fnrun.Response, error) {
	switch runtime {
	case "wasm":
		// Compile is cached by the code's hash: after the first run of a
		// deployment this is a map lookup.
		m, err := r.wasm.Compile(ctx, code)
		if err != nil {
			return fnrun.Response{}, err
		}
		return m.Run(ctx, req, lim)
	case "js":
		if r.js == nil {
			return fnrun.Response{}, fmt.Errorf("%w: this node runs no JavaScript", fnrun.ErrInvalidCode)
		}
		return r.js.Run(ctx, code, req, lim)
	}
	return fnrun.Response{}, fmt.Errorf("%w: unknown runtime %q", fnrun.ErrInvalidCode, runtime)
}
