package template

import (
	"context"
	"fmt"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// Conn is one project of a running server, reached through the generated
// Connect clients with one credential: an operator key, or a project key
// with the read scopes (pull, plan) and write scopes (apply) it needs.
type Conn struct {
	project   string
	token     string
	projects  cairnv1connect.ProjectsServiceClient
	users     cairnv1connect.UsersServiceClient
	teams     cairnv1connect.TeamsServiceClient
	databases cairnv1connect.DatabasesServiceClient
	storage   cairnv1connect.StorageServiceClient
	functions cairnv1connect.FunctionsServiceClient
	sites     cairnv1connect.SitesServiceClient
	webhooks  cairnv1connect.WebhooksServiceClient
}

// NewConn returns a connection to project through client, authenticated
// with the bearer token.
func NewConn(client *connect.Client, token, project string) *Conn {
	return &Conn{
		project:   project,
		token:     token,
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

// auth attaches the credential to one call.
func (c *Conn) auth(ctx context.Context) context.Context {
	ctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("Authorization", "Bearer "+c.token)
	return ctx
}

// CreateProject creates the connection's project (an operator call), for
// applying a template to a new project. A project that exists already is
// an error: a template is for a new project.
func (c *Conn) CreateProject(ctx context.Context, name string) error {
	if name == "" {
		name = c.project
	}
	if _, err := c.projects.CreateProject(c.auth(ctx), &cairnv1.CreateProjectRequest{ProjectId: c.project, Name: name}); err != nil {
		return fmt.Errorf("create project %s: %w", c.project, err)
	}
	return nil
}
