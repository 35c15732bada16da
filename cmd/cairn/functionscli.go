package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/fnrun/js"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

var functionCols = cols("ID", "id", "RUNTIME", "runtime", "ACTIVE", "activeDeploymentId", "NAME", "name")

// functionsCmd is `cairn functions create|list|deploy|run`.
func functionsCmd(e *cliEnv) *cobra.Command {
	var fn string
	needFn := func() (project string, err error) {
		if project, err = e.needProject(); err != nil {
			return "", err
		}
		if fn == "" {
			return "", errors.New("--function is required")
		}
		return project, nil
	}
	fns := func(r *remote) cairnv1connect.FunctionsServiceClient {
		return cairnv1connect.NewFunctionsServiceClient(r.client)
	}

	var name, runtime, execute, scopes, events, schedule string
	var timeout, maxConcurrency int
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
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a server-side function",
		Example: `  cairn functions create --project acme --function hello --runtime js --execute any
  cairn functions create --project acme --function nightly --schedule '0 3 * * *' --scopes documents.write
  cairn functions create --project acme --function onsignup --events 'users.*.create' --secret SMTP_PASS=…`,
		Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := needFn()
			if err != nil {
				return err
			}
			res, err := fns(r).CreateFunction(r.ctx(ctx), &cairnv1.CreateFunctionRequest{ProjectId: project, FunctionId: fn, Name: cmp.Or(name, fn),
				Runtime: runtime, TimeoutSeconds: int32(timeout), Execute: splitList(execute), Scopes: splitList(scopes),
				Events: splitList(events), Schedule: schedule, Variables: vars, MaxConcurrency: int32(maxConcurrency)})
			if err != nil {
				return err
			}
			return e.printOne(functionCols, res.GetFunction())
		}),
	}
	f := create.Flags()
	f.StringVar(&name, "name", "", "function name (default the id)")
	f.StringVar(&runtime, "runtime", "js", "js or wasm")
	f.IntVar(&timeout, "timeout", 0, "timeout in seconds; 0 = the default")
	f.StringVar(&execute, "execute", "", `comma-separated roles that may execute it, e.g. "any" or "users"`)
	f.StringVar(&scopes, "scopes", "", "comma-separated scopes of the key its code receives")
	f.StringVar(&events, "events", "", "comma-separated events that trigger it")
	f.StringVar(&schedule, "schedule", "", "cron expression, UTC")
	f.IntVar(&maxConcurrency, "max-concurrency", 0, "executions at once per node; 0 = the project's limit")
	f.Func("var", "a variable KEY=VALUE, repeatable", variable(false))
	f.Func("secret", "a secret variable KEY=VALUE, never returned, repeatable", variable(true))

	list := &cobra.Command{
		Use: "list", Short: "List a project's functions", Example: "  cairn functions list --project acme", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			req := &cairnv1.ListFunctionsRequest{ProjectId: project, Limit: 1000}
			return listAll(e, functionCols, func(cursor string) ([]proto.Message, int, error) {
				req.CursorAfter = cursor
				res, err := fns(r).ListFunctions(r.ctx(ctx), req)
				return messages(res.GetFunctions()), int(req.GetLimit()), err
			})
		}),
	}

	var entry string
	var activate bool
	deploy := &cobra.Command{
		Use:   "deploy DIR|FILE.wasm",
		Short: "Build and upload a function's code (a js bundle of DIR's entry, or a .wasm file)",
		Example: `  cairn functions deploy ./hello --project acme --function hello --activate
  cairn functions deploy main.wasm --project acme --function resize`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(func(ctx context.Context, r *remote) error {
				project, err := needFn()
				if err != nil {
					return err
				}
				return e.functionsDeploy(ctx, r, fns(r), project, fn, args[0], entry, activate)
			})(cmd, args)
		},
	}
	deploy.Flags().StringVar(&entry, "entry", "", "entry file of a js function, relative to the directory (default index.ts, else index.js)")
	deploy.Flags().BoolVar(&activate, "activate", false, "make the deployment the active one")

	var body, path, method string
	var async bool
	runCmd := &cobra.Command{
		Use:   "run",
		Short: "Execute a function: its response body to stdout, a summary and its logs to stderr",
		Example: `  cairn functions run --project acme --function hello --path /greet --body '{"name":"Ada"}'
  cairn functions run --project acme --function nightly --async`,
		Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := needFn()
			if err != nil {
				return err
			}
			return e.functionsRun(ctx, r, fns(r), &cairnv1.CreateExecutionRequest{ProjectId: project, FunctionId: fn,
				Body: []byte(body), Path: path, Method: strings.ToUpper(method), Async: async})
		}),
	}
	runCmd.Flags().StringVar(&body, "body", "", "request body")
	runCmd.Flags().StringVar(&path, "path", "/", "request path")
	runCmd.Flags().StringVar(&method, "method", "POST", "request method")
	runCmd.Flags().BoolVar(&async, "async", false, "queue the execution and print it at once")

	g := group("functions", "Create, deploy and run server-side functions", "", create, list, deploy, runCmd)
	g.PersistentFlags().StringVar(&fn, "function", "", "function id")
	return e.projectFlag(e.clientFlags(g))
}

// functionsDeploy builds the code for the function's runtime (a bundle of
// dir's entry for js; the .wasm file for wasm) and uploads it.
func (e *cliEnv) functionsDeploy(ctx context.Context, r *remote, c cairnv1connect.FunctionsServiceClient, project, fn, dir, entry string, activate bool) error {
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
	if err := e.printOne(cols("ID", "id", "STATUS", "status", "SIZE", "size", "CREATED", "createdAt"), d); err != nil {
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
func (cli *cliEnv) functionsRun(ctx context.Context, r *remote, c cairnv1connect.FunctionsServiceClient, req *cairnv1.CreateExecutionRequest) error {
	res, err := c.CreateExecution(r.ctx(ctx), req)
	if err != nil {
		return err
	}
	e := res.GetExecution()
	if req.GetAsync() {
		return cli.printOne(cols("ID", "id", "STATUS", "status", "TRIGGER", "trigger"), e)
	}
	stderr := cli.stderr
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
