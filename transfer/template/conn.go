package template

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// Conn is one project of a running server, reached through the generated
// Connect clients with one credential: an operator key, or a project key
// with the read scopes (pull, plan) and write scopes (apply) it needs.
//
// Every call carries the highest sequence the connection's writes were
// answered with (Cairn-Min-Seq, and Cairn-Min-Sys-Seq after a project was
// created), so that behind a load balancer each call sees the writes
// before it on whichever node serves it: a collection is created only
// where its database is known, a schema is polled where it was changed.
type Conn struct {
	project   string
	baseURL   string
	http      *http.Client
	seqs      *seqTransport
	projects  cairnv1connect.ProjectsServiceClient
	users     cairnv1connect.UsersServiceClient
	teams     cairnv1connect.TeamsServiceClient
	databases cairnv1connect.DatabasesServiceClient
	storage   cairnv1connect.StorageServiceClient
	functions cairnv1connect.FunctionsServiceClient
	sites     cairnv1connect.SitesServiceClient
	webhooks  cairnv1connect.WebhooksServiceClient
}

// NewConn returns a connection to project on the server at baseURL, over
// hc (nil: http.DefaultClient), authenticated with the bearer token.
func NewConn(hc *http.Client, baseURL, token, project string) *Conn {
	if hc == nil {
		hc = http.DefaultClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	seqs := &seqTransport{base: base, token: token}
	wrapped := *hc
	wrapped.Transport = seqs
	baseURL = strings.TrimSuffix(baseURL, "/")
	client := connect.NewClient(connecthttp.NewTransport(&wrapped, baseURL))
	return &Conn{
		project:   project,
		baseURL:   baseURL,
		http:      &wrapped,
		seqs:      seqs,
		projects:  cairnv1connect.NewProjectsServiceClient(client),
		users:     cairnv1connect.NewUsersServiceClient(client),
		teams:     cairnv1connect.NewTeamsServiceClient(client),
		databases: cairnv1connect.NewDatabasesServiceClient(client),
		storage:   cairnv1connect.NewStorageServiceClient(client),
		functions: cairnv1connect.NewFunctionsServiceClient(client),
		sites:     cairnv1connect.NewSitesServiceClient(client),
		webhooks:  cairnv1connect.NewWebhooksServiceClient(client),
	}
}

// Project is the id of the project the connection is to.
func (c *Conn) Project() string { return c.project }

// Header names of the server's read-your-writes protocol (docs/api.md).
const (
	headerSeq       = "Cairn-Seq"
	headerMinSeq    = "Cairn-Min-Seq"
	headerMinSysSeq = "Cairn-Min-Sys-Seq"
)

// seqTransport adds the credential and the sequences seen so far to each
// request, and records the sequence each write was answered with: a
// ProjectsService write's is of the system stream, any other's of the
// project's.
type seqTransport struct {
	base        http.RoundTripper
	token       string
	seq, sysSeq atomic.Uint64
}

func (t *seqTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.token)
	if s := t.seq.Load(); s > 0 {
		req.Header.Set(headerMinSeq, strconv.FormatUint(s, 10))
	}
	if s := t.sysSeq.Load(); s > 0 {
		req.Header.Set(headerMinSysSeq, strconv.FormatUint(s, 10))
	}
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if s, perr := strconv.ParseUint(res.Header.Get(headerSeq), 10, 64); perr == nil {
		into := &t.seq
		if strings.Contains(req.URL.Path, "ProjectsService/") {
			into = &t.sysSeq
		}
		for {
			cur := into.Load()
			if s <= cur || into.CompareAndSwap(cur, s) {
				break
			}
		}
	}
	return res, nil
}

// CreateProject creates the connection's project (an operator call), for
// applying a template to a new project. A project that exists already is
// an error: a template is for a new project.
func (c *Conn) CreateProject(ctx context.Context, name string) error {
	if name == "" {
		name = c.project
	}
	if _, err := c.projects.CreateProject(ctx, &cairnv1.CreateProjectRequest{ProjectId: c.project, Name: name}); err != nil {
		return fmt.Errorf("create project %s: %w", c.project, err)
	}
	return nil
}
