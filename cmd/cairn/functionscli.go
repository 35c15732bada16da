package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-dev/cairn/fnrun/js"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// functionsCmd is `cairn functions create|list|deploy|run`.
func functionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	sub, rest, err := subcommand(args, "create", "list", "deploy", "run")
	if err != nil {
		return fmt.Errorf("functions: %w", err)
	}
	// "deploy <dir> --function f": the flag package stops at the first
	// positional argument, so move it behind the flags.
	if sub == "deploy" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		rest = append(slices.Clone(rest[1:]), rest[0])
	}
	fs := flag.NewFlagSet("functions "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", getenv("CAIRN_PROJECT"), "project id (CAIRN_PROJECT)")
	fn := fs.String("function", "", "function id")
	// create
	name := fs.String("name", "", "function name (create; default the id)")
	runtime := fs.String("runtime", "js", "js or wasm (create)")
	timeout := fs.Int("timeout", 0, "timeout in seconds; 0 = the default (create)")
	execute := fs.String("execute", "", `comma-separated roles that may execute it, e.g. "any" or "users" (create)`)
	scopes := fs.String("scopes", "", "comma-separated scopes of the key its code receives (create)")
	events := fs.String("events", "", "comma-separated events that trigger it (create)")
	schedule := fs.String("schedule", "", "cron expression, UTC (create)")
	maxConcurrency := fs.Int("max-concurrency", 0, "executions at once per node; 0 = the project's limit (create)")
	var vars []*cairnv1.FunctionVariable
	variable := func(secret bool) func(string) error {
		return func(s string) error {
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				return errors.New("want KEY=VALUE")
			}
			vars = append(vars, &cairnv1.FunctionVariable{Key: k, Value: v, Secret: secret})
			return nil
		}
	}
	fs.Func("var", "a variable KEY=VALUE, repeatable (create)", variable(false))
	fs.Func("secret", "a secret variable KEY=VALUE, never returned, repeatable (create)", variable(true))
	// deploy
	entry := fs.String("entry", "", "entry file of a js function, relative to the directory (deploy; default index.ts, else index.js)")
	activate := fs.Bool("activate", false, "make the deployment the active one (deploy)")
	// run
	body := fs.String("body", "", "request body (run)")
	path := fs.String("path", "/", "request path (run)")
	method := fs.String("method", "POST", "request method (run)")
	async := fs.Bool("async", false, "queue the execution and print it at once (run)")
	r, err := dial(fs, rest, stdout, getenv, false)
	if err != nil {
		return err
	}
	if *project == "" {
		return errors.New("functions: --project is required")
	}
	if *fn == "" && sub != "list" {
		return errors.New("functions: --function is required")
	}
	c := cairnv1connect.NewFunctionsServiceClient(r.client)
	switch sub {
	case "create":
		res, err := c.CreateFunction(r.ctx(ctx), &cairnv1.CreateFunctionRequest{ProjectId: *project, FunctionId: *fn, Name: cmp.Or(*name, *fn),
			Runtime: *runtime, TimeoutSeconds: int32(*timeout), Execute: splitList(*execute), Scopes: splitList(*scopes),
			Events: splitList(*events), Schedule: *schedule, Variables: vars, MaxConcurrency: int32(*maxConcurrency)})
		if err != nil {
			return err
		}
		return r.print(res.GetFunction())
	case "list":
		req := &cairnv1.ListFunctionsRequest{ProjectId: *project, Limit: 1000}
		for {
			res, err := c.ListFunctions(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			for _, f := range res.GetFunctions() {
				fmt.Fprintf(stdout, "%s\t%s\tactive=%s\t%s\n", f.GetId(), f.GetRuntime(), cmp.Or(f.GetActiveDeploymentId(), "-"), f.GetName())
			}
			if len(res.GetFunctions()) < 1000 {
				return nil
			}
			req.CursorAfter = res.GetFunctions()[len(res.GetFunctions())-1].GetId()
		}
	case "deploy":
		dir, err := positional(fs, "directory or .wasm file")
		if err != nil {
			return err
		}
		return functionsDeploy(ctx, r, c, *project, *fn, dir, *entry, *activate)
	default:
		return functionsRun(ctx, r, c, stderr, &cairnv1.CreateExecutionRequest{ProjectId: *project, FunctionId: *fn,
			Body: []byte(*body), Path: *path, Method: strings.ToUpper(*method), Async: *async})
	}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// functionsDeploy builds the code for the function's runtime (a bundle of
// dir's entry for js; the .wasm file for wasm) and uploads it.
func functionsDeploy(ctx context.Context, r *remote, c cairnv1connect.FunctionsServiceClient, project, fn, dir, entry string, activate bool) error {
	f, err := c.GetFunction(r.ctx(ctx), &cairnv1.GetFunctionRequest{ProjectId: project, FunctionId: fn})
	if err != nil {
		return err
	}
	var code []byte
	switch rt := f.GetFunction().GetRuntime(); rt {
	case "js":
		if entry == "" {
			entry = "index.ts"
			if _, err := os.Stat(filepath.Join(dir, entry)); err != nil {
				entry = "index.js"
			}
		}
		if code, err = js.Bundle(dir, entry); err != nil {
			return err
		}
	case "wasm":
		file := dir
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			file = filepath.Join(dir, "main.wasm")
		}
		if code, err = os.ReadFile(file); err != nil {
			return err
		}
	default:
		return fmt.Errorf("functions deploy: function %s has runtime %q, which the CLI cannot build", fn, rt)
	}
	u := r.url + "/v1/projects/" + url.PathEscape(project) + "/functions/" + url.PathEscape(fn) + "/deployments"
	if activate {
		u += "?activate=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(code))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("functions deploy: %s: %s", res.Status, bytes.TrimSpace(out))
	}
	d := &cairnv1.FunctionDeployment{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(out, d); err != nil {
		return fmt.Errorf("functions deploy: answer: %w", err)
	}
	if err := r.print(d); err != nil {
		return err
	}
	if d.GetStatus() != "ready" {
		return fmt.Errorf("functions deploy: deployment %s %s: %s", d.GetId(), d.GetStatus(), d.GetError())
	}
	return nil
}

// functionsRun executes a function: synchronously, the response body goes
// to stdout and a summary with the logs to stderr; asynchronously, the
// queued execution is printed.
func functionsRun(ctx context.Context, r *remote, c cairnv1connect.FunctionsServiceClient, stderr io.Writer, req *cairnv1.CreateExecutionRequest) error {
	res, err := c.CreateExecution(r.ctx(ctx), req)
	if err != nil {
		return err
	}
	e := res.GetExecution()
	if req.GetAsync() {
		return r.print(e)
	}
	fmt.Fprintf(stderr, "execution %s: %s, status %d, %d ms\n", e.GetId(),
		strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "EXECUTION_STATUS_")), e.GetResponseStatus(), e.GetDurationMs())
	if e.GetLogs() != "" {
		fmt.Fprint(stderr, e.GetLogs())
	}
	if e.GetStatus() == cairnv1.ExecutionStatus_EXECUTION_STATUS_FAILED {
		return fmt.Errorf("execution %s failed: %s", e.GetId(), strings.TrimSpace(e.GetErrors()))
	}
	if e.GetErrors() != "" {
		fmt.Fprint(stderr, e.GetErrors())
	}
	_, err = r.out.Write(e.GetResponseBody())
	return err
}
