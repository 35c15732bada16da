package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"github.com/spf13/cobra"
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

// remote connects to the server resolve finds, with its credential.
func (e *cliEnv) remote() (*remote, error) {
	t, err := e.resolve()
	if err != nil {
		return nil, err
	}
	e.keyFrom = t.keyFrom
	hc := &http.Client{Timeout: 0}
	return &remote{client: connect.NewClient(connecthttp.NewTransport(hc, t.url)), http: hc, url: t.url, token: t.key, out: e.stdout}, nil
}

// ctx attaches the credential to a call.
func (r *remote) ctx(ctx context.Context) context.Context {
	ctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("Authorization", "Bearer "+r.token)
	return ctx
}

// print writes m as multi-line JSON (the format before -o existed).
func (r *remote) print(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(r.out, string(b))
	return err
}

// call is the body of most client commands: connect, then do.
func (e *cliEnv) call(do func(ctx context.Context, r *remote) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if _, err := e.format(); err != nil {
			return err
		}
		r, err := e.remote()
		if err != nil {
			return err
		}
		return do(cmd.Context(), r)
	}
}

// idArg is the ID positional argument of get/update/delete, or the flag
// that may name it instead.
func idArg(args []string, flagValue, what string) (string, error) {
	switch {
	case len(args) == 1 && flagValue != "" && flagValue != args[0]:
		return "", fmt.Errorf("two %ss given: %q and %q", what, flagValue, args[0])
	case len(args) == 1:
		return args[0], nil
	case flagValue != "":
		return flagValue, nil
	}
	return "", fmt.Errorf("want the %s as the argument", what)
}

var (
	projectCols = cols("ID", "id", "NAME", "name", "MAX STREAM BYTES", "limits.maxStreamBytes", "REQUESTS/S", "limits.requestsPerSecond", "BURST", "limits.requestBurst", "IN FLIGHT", "limits.maxConcurrentRequests", "CREATED", "createdAt")
	keyCols     = cols("ID", "id", "NAME", "name", "SCOPES", "scopes", "EXPIRES", "expiresAt", "CREATED", "createdAt")
	eventCols   = cols("SEQ", "seq", "TIME", "time", "SUBJECT", "subject")
)

func projectsCmd(e *cliEnv) *cobra.Command {
	var id, name string
	var maxBytes int64
	var rate, burst, inFlight, deliveries, deliveryBurst int32
	// limits overlays the limit flags that are set on current (nil: none
	// yet); nil when no flag is set.
	anyLimit := func() bool {
		return maxBytes >= 0 || rate >= 0 || burst >= 0 || inFlight >= 0 || deliveries >= 0 || deliveryBurst >= 0
	}
	limits := func(current *cairnv1.ProjectLimits) *cairnv1.ProjectLimits {
		if !anyLimit() {
			return nil
		}
		l := proto.CloneOf(current)
		if l == nil {
			l = &cairnv1.ProjectLimits{}
		}
		if maxBytes >= 0 {
			l.MaxStreamBytes = maxBytes
		}
		if rate >= 0 {
			l.RequestsPerSecond = rate
		}
		if burst >= 0 {
			l.RequestBurst = burst
		}
		if inFlight >= 0 {
			l.MaxConcurrentRequests = inFlight
		}
		if deliveries >= 0 {
			l.RealtimeDeliveriesPerSecond = deliveries
		}
		if deliveryBurst >= 0 {
			l.RealtimeDeliveryBurst = deliveryBurst
		}
		return l
	}
	projects := func(r *remote) cairnv1connect.ProjectsServiceClient {
		return cairnv1connect.NewProjectsServiceClient(r.client)
	}
	withFlags := func(c *cobra.Command, nameUsage string) *cobra.Command {
		c.Flags().StringVar(&id, "id", "", "project id (instead of the argument)")
		if nameUsage != "" {
			c.Flags().StringVar(&name, "name", "", nameUsage)
			c.Flags().Int64Var(&maxBytes, "max-stream-bytes", -1, "stream size limit in bytes; 0 = unlimited, -1 = the default (create) or unchanged (update)")
			c.Flags().Int32Var(&rate, "requests-per-second", -1, "requests per second the project's callers may make on each node; 0 = the instance's --project-rate, -1 = the default (create) or unchanged (update)")
			c.Flags().Int32Var(&burst, "request-burst", -1, "requests the project's callers may make at once above their rate; 0 = the instance's --project-burst, -1 = the default (create) or unchanged (update)")
			c.Flags().Int32Var(&inFlight, "max-concurrent-requests", -1, "calls the project's callers may have running at once on each node (more wait in line); 0 = the instance's --project-concurrency, -1 = the default (create) or unchanged (update)")
			c.Flags().Int32Var(&deliveries, "realtime-deliveries-per-second", -1, "realtime deliveries (an event to one subscriber) per second the project may make on each node (over it, events arrive later); 0 = the instance's --realtime-delivery-rate, -1 = the default (create) or unchanged (update)")
			c.Flags().Int32Var(&deliveryBurst, "realtime-delivery-burst", -1, "realtime deliveries the project may make at once above its rate; 0 = two seconds of its rate, -1 = the default (create) or unchanged (update)")
		}
		return c
	}
	create := withFlags(&cobra.Command{
		Use:   "create [ID]",
		Short: "Create a project (operator)",
		Long:  "Creates a project: its own event stream, object store and read models. Without an ID one is generated.",
		Example: `  cairn projects create acme --name "Acme Corp"
  cairn projects create --id acme --max-stream-bytes 1073741824`,
		Args: cobra.MaximumNArgs(1),
	}, "display name (default the id)")
	create.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			var err error
			if id, err = idArg(args, id, "project id"); err != nil {
				return err
			}
		}
		return e.call(func(ctx context.Context, r *remote) error {
			res, err := projects(r).CreateProject(r.ctx(ctx), &cairnv1.CreateProjectRequest{ProjectId: id, Name: cmp.Or(name, id), Limits: limits(nil)})
			if err != nil {
				return err
			}
			return e.printOne(projectCols, res.GetProject())
		})(cmd, args)
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List projects (operator)",
		Example: "  cairn projects list\n  cairn projects list -o json",
		Args:    cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			var all []proto.Message
			req := &cairnv1.ListProjectsRequest{PageSize: 1000}
			for {
				res, err := projects(r).ListProjects(r.ctx(ctx), req)
				if err != nil {
					return err
				}
				for _, p := range res.GetProjects() {
					all = append(all, p)
				}
				if res.GetNextPageToken() == "" {
					return e.printList(projectCols, all)
				}
				req.PageToken = res.GetNextPageToken()
			}
		}),
	}
	one := func(use, short, example string, do func(ctx context.Context, r *remote, id string) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Example: example, Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				pid, err := idArg(args, id, "project id")
				if err != nil {
					return err
				}
				return e.call(func(ctx context.Context, r *remote) error { return do(ctx, r, pid) })(cmd, args)
			},
		}
	}
	get := withFlags(one("get ID", "Show a project (operator)", "  cairn projects get acme", func(ctx context.Context, r *remote, id string) error {
		res, err := projects(r).GetProject(r.ctx(ctx), &cairnv1.GetProjectRequest{ProjectId: id})
		if err != nil {
			return err
		}
		return e.printOne(projectCols, res.GetProject())
	}), "")
	update := withFlags(one("update ID", "Rename a project or change its limits (operator)", "  cairn projects update acme --name Acme --max-stream-bytes 0\n  cairn projects update acme --requests-per-second 500 --request-burst 1000",
		func(ctx context.Context, r *remote, id string) error {
			req := &cairnv1.UpdateProjectRequest{ProjectId: id}
			if anyLimit() {
				// UpdateProject replaces all limits: keep those no flag names.
				cur, err := projects(r).GetProject(r.ctx(ctx), &cairnv1.GetProjectRequest{ProjectId: id})
				if err != nil {
					return err
				}
				req.Limits = limits(cur.GetProject().GetLimits())
			}
			if name != "" {
				req.Name = &name
			}
			res, err := projects(r).UpdateProject(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			return e.printOne(projectCols, res.GetProject())
		}), "new display name")
	del := withFlags(one("delete ID", "Delete a project and everything in it (operator)", "  cairn projects delete acme", func(ctx context.Context, r *remote, id string) error {
		if _, err := projects(r).DeleteProject(r.ctx(ctx), &cairnv1.DeleteProjectRequest{ProjectId: id}); err != nil {
			return err
		}
		return e.printDone("deleted", "project", id)
	}), "")
	return e.clientFlags(group("projects", "Create, list, change, delete, export, import and fork projects (operator)",
		"Projects are tenants: each has its own stream, object store and read models. These commands need the operator key.",
		create, list, get, update, del, exportCmd(e), importCmd(e), forkCmd(e)))
}

func keysCmd(e *cliEnv) *cobra.Command {
	var name, scopes string
	var noScopes bool
	var expires time.Duration
	keys := func(r *remote) cairnv1connect.KeysServiceClient { return cairnv1connect.NewKeysServiceClient(r.client) }
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a project API key (its secret is shown once)",
		Long: `Creates a server-side API key for the project. Scopes say what it may do
(documents.read, files.write, keys.read, …); a key needs --scopes, or
--no-scopes for a key that can do nothing yet.`,
		Example: `  cairn keys create --project acme --name backend --scopes documents.read,documents.write
  cairn keys create --project acme --name ci --scopes events.read --expires 720h -o json`,
		Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			// A key without scopes can do nothing: say so rather than make
			// one silently.
			if scopes == "" && !noScopes {
				return errors.New("keys create: --scopes is required (e.g. --scopes documents.read,documents.write), or --no-scopes for a key that can do nothing yet")
			}
			req := &cairnv1.CreateKeyRequest{ProjectId: project, Name: name, Scopes: &cairnv1.Scopes{Scopes: splitList(scopes)}}
			if expires > 0 {
				req.ExpiresAt = timestamppb.New(time.Now().Add(expires))
			}
			res, err := keys(r).CreateKey(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			return e.printOne(cols("ID", "key.id", "NAME", "key.name", "SCOPES", "key.scopes", "SECRET", "secret"), res)
		}),
	}
	create.Flags().StringVar(&name, "name", "", "key name")
	create.Flags().StringVar(&scopes, "scopes", "", "comma-separated scopes, e.g. keys.read,events.read")
	create.Flags().BoolVar(&noScopes, "no-scopes", false, "create a key with no scopes at all, on purpose")
	create.Flags().DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h; 0 = never")
	list := &cobra.Command{
		Use: "list", Short: "List a project's API keys", Example: "  cairn keys list --project acme", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			var all []proto.Message
			req := &cairnv1.ListKeysRequest{ProjectId: project, PageSize: 1000}
			for {
				res, err := keys(r).ListKeys(r.ctx(ctx), req)
				if err != nil {
					return err
				}
				for _, k := range res.GetKeys() {
					all = append(all, k)
				}
				if res.GetNextPageToken() == "" {
					return e.printList(keyCols, all)
				}
				req.PageToken = res.GetNextPageToken()
			}
		}),
	}
	get := &cobra.Command{
		Use: "get KEY_ID", Short: "Show an API key (never its secret)", Example: "  cairn keys get --project acme 01J…", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(func(ctx context.Context, r *remote) error {
				project, err := e.needProject()
				if err != nil {
					return err
				}
				res, err := keys(r).GetKey(r.ctx(ctx), &cairnv1.GetKeyRequest{ProjectId: project, KeyId: args[0]})
				if err != nil {
					return err
				}
				return e.printOne(keyCols, res.GetKey())
			})(cmd, args)
		},
	}
	del := &cobra.Command{
		Use: "delete KEY_ID", Short: "Revoke an API key", Example: "  cairn keys delete --project acme 01J…", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(func(ctx context.Context, r *remote) error {
				project, err := e.needProject()
				if err != nil {
					return err
				}
				if _, err := keys(r).DeleteKey(r.ctx(ctx), &cairnv1.DeleteKeyRequest{ProjectId: project, KeyId: args[0]}); err != nil {
					return err
				}
				return e.printDone("deleted", "key", args[0])
			})(cmd, args)
		},
	}
	return e.projectFlag(e.clientFlags(group("keys", "Create, list, show and revoke a project's API keys", "", create, list, get, del)))
}

func eventsCmd(e *cliEnv) *cobra.Command {
	var subject string
	var startSeq uint64
	var limit int
	events := func(r *remote) cairnv1connect.EventsServiceClient {
		return cairnv1connect.NewEventsServiceClient(r.client)
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List a project's audit log (the system log with the operator key and no --project)",
		Example: `  cairn events list --project acme
  cairn events list --project acme --subject 'keys.>' --limit 10 -o json`,
		Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			req := &cairnv1.ListEventsRequest{ProjectId: e.project, Subject: subject, StartSeq: startSeq, PageSize: int32(min(limit, 1000))}
			var all []proto.Message
			for len(all) < limit {
				res, err := events(r).ListEvents(r.ctx(ctx), req)
				if err != nil {
					return err
				}
				for _, ev := range res.GetEvents() {
					if len(all) == limit {
						break
					}
					all = append(all, ev)
				}
				if res.GetNextPageToken() == "" {
					break
				}
				req.PageToken = res.GetNextPageToken()
			}
			return e.printList(eventCols, all)
		}),
	}
	list.Flags().IntVar(&limit, "limit", 100, "events to print")
	tail := &cobra.Command{
		Use:     "tail",
		Short:   "Follow a project's audit log live (Ctrl-C stops)",
		Example: "  cairn events tail --project acme --subject 'databases.>'",
		Args:    cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			stream, err := events(r).StreamEvents(r.ctx(ctx), &cairnv1.StreamEventsRequest{ProjectId: e.project, Subject: subject, StartSeq: startSeq})
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
				// One line per event on a terminal; one JSON document per
				// event (JSON lines) for a script.
				if e.human() {
					ev := res.GetEvent()
					fmt.Fprintf(e.stdout, "%d\t%s\t%s\n", ev.GetSeq(), ev.GetTime().AsTime().UTC().Format(time.DateTime), ev.GetSubject())
					continue
				}
				b, err := protojson.Marshal(res.GetEvent())
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, string(b))
			}
		}),
	}
	g := group("events", "List or follow a project's audit log", "Every write is an event; these read them back, secrets' hashes redacted.", list, tail)
	g.PersistentFlags().StringVar(&subject, "subject", "", "subject filter relative to the project, e.g. 'keys.>'")
	g.PersistentFlags().Uint64Var(&startSeq, "start-seq", 0, "first sequence")
	return e.projectFlag(e.clientFlags(g))
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
