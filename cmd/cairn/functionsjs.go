package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/js"
)

// jsPool adapts fnrun/js's worker pool to jsRunner.
type jsPool struct{ *js.Pool }

func (jsPool) Check(code []byte) error { return js.Check(code) }

func (p jsPool) Run(ctx context.Context, code []byte, req fnrun.Request, lim fnrun.Limits) (fnrun.Response, error) {
	return p.Pool.Run(ctx, code, req, lim)
}

// openJS starts the JavaScript worker pool: this very binary, started as a
// worker (main calls js.WorkerMain when CAIRN_FUNCTION_WORKER=1).
func openJS(cfg *config) (jsRunner, error) {
	cmd, err := js.SelfCommand()
	if err != nil {
		return nil, err
	}
	var allow []string
	for _, a := range strings.Split(cfg.FunctionFetchAllow, ",") {
		if a = strings.TrimSpace(a); a != "" {
			allow = append(allow, a)
		}
	}
	p, err := js.NewPool(js.PoolOptions{Command: cmd, Fetch: js.FetchOptions{Allow: allow}})
	if err != nil {
		return nil, fmt.Errorf("javascript workers: %w", err)
	}
	return jsPool{p}, nil
}
