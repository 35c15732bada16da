package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// remote is a CLI command's connection to a running server.
type remote struct {
	client *connect.Client
	http   *http.Client
	url    string
	token  string
	out    io.Writer
}

// dial reads CAIRN_URL and the credential: CAIRN_KEY, else CAIRN_ADMIN_KEY,
// else the admin key a local 'cairn serve' generated in its data directory.
func dial(fs *flag.FlagSet, args []string, stdout io.Writer, getenv func(string) string, operator bool) (*remote, error) {
	url := fs.String("url", envOr(getenv, "CAIRN_URL", "http://localhost:8080"), "server URL (CAIRN_URL)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	token := getenv("CAIRN_KEY")
	if operator || token == "" {
		token = getenv("CAIRN_ADMIN_KEY")
	}
	if token == "" {
		dir := envOr(getenv, "CAIRN_DATA_DIR", "./cairn_data")
		if b, err := os.ReadFile(filepath.Join(dir, "admin.key")); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" {
		return nil, errors.New("no credential: set CAIRN_KEY or CAIRN_ADMIN_KEY")
	}
	hc := &http.Client{Timeout: 0}
	return &remote{client: connect.NewClient(connecthttp.NewTransport(hc, *url)), http: hc, url: strings.TrimSuffix(*url, "/"), token: token, out: stdout}, nil
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// ctx attaches the credential to a call.
func (r *remote) ctx(ctx context.Context) context.Context {
	ctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("Authorization", "Bearer "+r.token)
	return ctx
}

func (r *remote) print(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(r.out, string(b))
	return err
}

func subcommand(args []string, names ...string) (string, []string, error) {
	if len(args) == 0 || !contains(names, args[0]) {
		return "", nil, fmt.Errorf("want one of: %s", strings.Join(names, ", "))
	}
	return args[0], args[1:], nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// positional takes the one positional argument after the flags.
func positional(fs *flag.FlagSet, what string) (string, error) {
	if fs.NArg() != 1 {
		return "", fmt.Errorf("%s: want exactly one %s argument", fs.Name(), what)
	}
	return fs.Arg(0), nil
}

func projectsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 && contains([]string{"export", "import", "fork"}, args[0]) {
		return transferCmd(ctx, args, stdout, stderr, getenv)
	}
	sub, rest, err := subcommand(args, "create", "list", "get", "update", "delete")
	if err != nil {
		return fmt.Errorf("projects: %w", err)
	}
	fs := flag.NewFlagSet("projects "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "project id (create: empty for a generated one)")
	name := fs.String("name", "", "display name")
	maxBytes := fs.Int64("max-stream-bytes", -1, "stream size limit in bytes (0 = unlimited)")
	r, err := dial(fs, rest, stdout, getenv, true)
	if err != nil {
		return err
	}
	c := cairnv1connect.NewProjectsServiceClient(r.client)
	if *id == "" && sub != "create" && sub != "list" {
		if *id, err = positional(fs, "project id"); err != nil {
			return err
		}
	}
	var limits *cairnv1.ProjectLimits
	if *maxBytes >= 0 {
		limits = &cairnv1.ProjectLimits{MaxStreamBytes: *maxBytes}
	}
	switch sub {
	case "create":
		if *name == "" {
			*name = *id
		}
		res, err := c.CreateProject(r.ctx(ctx), &cairnv1.CreateProjectRequest{ProjectId: *id, Name: *name, Limits: limits})
		if err != nil {
			return err
		}
		return r.print(res.GetProject())
	case "list":
		req := &cairnv1.ListProjectsRequest{PageSize: 1000}
		for {
			res, err := c.ListProjects(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			for _, p := range res.GetProjects() {
				if err := r.print(p); err != nil {
					return err
				}
			}
			if res.GetNextPageToken() == "" {
				return nil
			}
			req.PageToken = res.GetNextPageToken()
		}
	case "get":
		res, err := c.GetProject(r.ctx(ctx), &cairnv1.GetProjectRequest{ProjectId: *id})
		if err != nil {
			return err
		}
		return r.print(res.GetProject())
	case "update":
		req := &cairnv1.UpdateProjectRequest{ProjectId: *id, Limits: limits}
		if *name != "" {
			req.Name = name
		}
		res, err := c.UpdateProject(r.ctx(ctx), req)
		if err != nil {
			return err
		}
		return r.print(res.GetProject())
	default:
		_, err := c.DeleteProject(r.ctx(ctx), &cairnv1.DeleteProjectRequest{ProjectId: *id})
		if err == nil {
			fmt.Fprintf(stdout, "deleted project %s\n", *id)
		}
		return err
	}
}

func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	sub, rest, err := subcommand(args, "create", "list", "get", "delete")
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", getenv("CAIRN_PROJECT"), "project id (CAIRN_PROJECT)")
	name := fs.String("name", "", "key name (create)")
	scopes := fs.String("scopes", "", "comma-separated scopes, e.g. keys.read,events.read (create)")
	noScopes := fs.Bool("no-scopes", false, "create a key with no scopes at all, on purpose (create)")
	expires := fs.Duration("expires", 0, "lifetime, e.g. 720h; 0 = never (create)")
	r, err := dial(fs, rest, stdout, getenv, false)
	if err != nil {
		return err
	}
	if *project == "" {
		return errors.New("keys: --project is required")
	}
	c := cairnv1connect.NewKeysServiceClient(r.client)
	switch sub {
	case "create":
		// A key without scopes can do nothing: say so rather than make one
		// silently.
		if *scopes == "" && !*noScopes {
			return errors.New("keys create: --scopes is required (e.g. --scopes documents.read,documents.write), or --no-scopes for a key that can do nothing yet")
		}
		req := &cairnv1.CreateKeyRequest{ProjectId: *project, Name: *name, Scopes: &cairnv1.Scopes{}}
		if *scopes != "" {
			req.Scopes.Scopes = strings.Split(*scopes, ",")
		}
		if *expires > 0 {
			req.ExpiresAt = timestamppb.New(time.Now().Add(*expires))
		}
		res, err := c.CreateKey(r.ctx(ctx), req)
		if err != nil {
			return err
		}
		return r.print(res)
	case "list":
		req := &cairnv1.ListKeysRequest{ProjectId: *project, PageSize: 1000}
		for {
			res, err := c.ListKeys(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			for _, k := range res.GetKeys() {
				if err := r.print(k); err != nil {
					return err
				}
			}
			if res.GetNextPageToken() == "" {
				return nil
			}
			req.PageToken = res.GetNextPageToken()
		}
	case "get":
		id, err := positional(fs, "key id")
		if err != nil {
			return err
		}
		res, err := c.GetKey(r.ctx(ctx), &cairnv1.GetKeyRequest{ProjectId: *project, KeyId: id})
		if err != nil {
			return err
		}
		return r.print(res.GetKey())
	default:
		id, err := positional(fs, "key id")
		if err != nil {
			return err
		}
		if _, err := c.DeleteKey(r.ctx(ctx), &cairnv1.DeleteKeyRequest{ProjectId: *project, KeyId: id}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted key %s\n", id)
		return nil
	}
}

func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	sub, rest, err := subcommand(args, "list", "tail")
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	fs := flag.NewFlagSet("events "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", getenv("CAIRN_PROJECT"), "project id; empty with the operator key = the system log (CAIRN_PROJECT)")
	subject := fs.String("subject", "", "subject filter relative to the project, e.g. 'keys.>'")
	startSeq := fs.Uint64("start-seq", 0, "first sequence")
	limit := fs.Int("limit", 100, "list: events to print")
	r, err := dial(fs, rest, stdout, getenv, false)
	if err != nil {
		return err
	}
	c := cairnv1connect.NewEventsServiceClient(r.client)
	if sub == "list" {
		req := &cairnv1.ListEventsRequest{ProjectId: *project, Subject: *subject, StartSeq: *startSeq, PageSize: int32(min(*limit, 1000))}
		printed := 0
		for printed < *limit {
			res, err := c.ListEvents(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			for _, e := range res.GetEvents() {
				if printed == *limit {
					break
				}
				if err := r.print(e); err != nil {
					return err
				}
				printed++
			}
			if res.GetNextPageToken() == "" {
				break
			}
			req.PageToken = res.GetNextPageToken()
		}
		return nil
	}
	stream, err := c.StreamEvents(r.ctx(ctx), &cairnv1.StreamEventsRequest{ProjectId: *project, Subject: *subject, StartSeq: *startSeq})
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		res, err := stream.Receive()
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.print(res.GetEvent()); err != nil {
			return err
		}
	}
}
