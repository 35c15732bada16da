package main

import (
	"cmp"
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

var (
	userCols       = cols("ID", "id", "EMAIL", "email", "NAME", "name", "VERIFIED", "emailVerified", "LABELS", "labels", "CREATED", "createdAt")
	teamCols       = cols("ID", "id", "NAME", "name", "CREATED", "createdAt")
	membershipCols = cols("ID", "id", "USER", "userId", "EMAIL", "email", "ROLES", "roles", "CONFIRMED", "confirmed")
)

func usersCmd(e *cliEnv) *cobra.Command {
	users := func(r *remote) cairnv1connect.UsersServiceClient {
		return cairnv1connect.NewUsersServiceClient(r.client)
	}
	var search, email, name, password, passwordFile, userID string
	var labels []string
	list := &cobra.Command{
		Use: "list", Short: "List a project's end users", Args: cobra.NoArgs,
		Example: "  cairn users list --project acme\n  cairn users list --project acme --search ada -o json",
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			var all []proto.Message
			req := &cairnv1.ListUsersRequest{ProjectId: project, PageSize: 1000, Search: search}
			for {
				res, err := users(r).ListUsers(r.ctx(ctx), req)
				if err != nil {
					return err
				}
				for _, u := range res.GetUsers() {
					all = append(all, u)
				}
				if res.GetNextPageToken() == "" {
					return e.printList(userCols, all)
				}
				req.PageToken = res.GetNextPageToken()
			}
		}),
	}
	list.Flags().StringVar(&search, "search", "", "only users whose email, name or id matches")
	get := e.withArg("get ID", "Show an end user", "  cairn users get ada --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		res, err := users(r).GetUser(r.ctx(ctx), &cairnv1.GetUserRequest{ProjectId: project, UserId: id})
		if err != nil {
			return err
		}
		return e.printOne(userCols, res.GetUser())
	})
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an end user",
		Example: `  cairn users create --project acme --email ada@example.com --name Ada --password-file pw.txt
  cairn users create --project acme --id ada --email ada@example.com --label admin`,
		Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			if passwordFile != "" {
				if password, err = readSecretFile(passwordFile); err != nil {
					return err
				}
			}
			res, err := users(r).CreateUser(r.ctx(ctx), &cairnv1.CreateUserRequest{ProjectId: project, UserId: cmp.Or(userID, "unique()"),
				Email: email, Name: name, Password: password, Labels: labels})
			if err != nil {
				return err
			}
			return e.printOne(userCols, res.GetUser())
		}),
	}
	create.Flags().StringVar(&userID, "id", "", "user id (default a generated one)")
	create.Flags().StringVar(&email, "email", "", "email address")
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&password, "password", "", "password; prefer --password-file, flags show in ps")
	create.Flags().StringVar(&passwordFile, "password-file", "", "file holding the password")
	create.Flags().StringSliceVar(&labels, "label", nil, "labels (for label:<name> permissions), comma-separated or repeated")
	del := e.withArg("delete ID", "Delete an end user and their sessions", "  cairn users delete ada --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		if _, err := users(r).DeleteUser(r.ctx(ctx), &cairnv1.DeleteUserRequest{ProjectId: project, UserId: id}); err != nil {
			return err
		}
		return e.printDone("deleted", "user", id)
	})
	return e.projectFlag(e.clientFlags(group("users", "List, show, create and delete a project's end users", "", list, get, create, del)))
}

// readSecretFile reads a one-line secret (a trailing newline is not part
// of it).
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	if s == "" {
		return "", errors.New(path + " is empty")
	}
	return s, nil
}

func teamsCmd(e *cliEnv) *cobra.Command {
	teams := func(r *remote) cairnv1connect.TeamsServiceClient {
		return cairnv1connect.NewTeamsServiceClient(r.client)
	}
	var search, name string
	var roles []string
	list := &cobra.Command{
		Use: "list", Short: "List a project's teams", Example: "  cairn teams list --project acme", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			var all []proto.Message
			req := &cairnv1.ListTeamsRequest{ProjectId: project, PageSize: 1000, Search: search}
			for {
				res, err := teams(r).ListTeams(r.ctx(ctx), req)
				if err != nil {
					return err
				}
				for _, t := range res.GetTeams() {
					all = append(all, t)
				}
				if res.GetNextPageToken() == "" {
					return e.printList(teamCols, all)
				}
				req.PageToken = res.GetNextPageToken()
			}
		}),
	}
	list.Flags().StringVar(&search, "search", "", "only teams whose name or id matches")
	get := e.withArg("get ID", "Show a team", "  cairn teams get editors --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		res, err := teams(r).GetTeam(r.ctx(ctx), &cairnv1.GetTeamRequest{ProjectId: project, TeamId: id})
		if err != nil {
			return err
		}
		return e.printOne(teamCols, res.GetTeam())
	})
	create := e.withArg("create ID", "Create a team (ID may be unique())", `  cairn teams create editors --project acme --name Editors`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			res, err := teams(r).CreateTeam(r.ctx(ctx), &cairnv1.CreateTeamRequest{ProjectId: project, TeamId: id, Name: cmp.Or(name, id)})
			if err != nil {
				return err
			}
			return e.printOne(teamCols, res.GetTeam())
		})
	create.Flags().StringVar(&name, "name", "", "display name (default the id)")
	del := e.withArg("delete ID", "Delete a team and its memberships", "  cairn teams delete editors --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		if _, err := teams(r).DeleteTeam(r.ctx(ctx), &cairnv1.DeleteTeamRequest{ProjectId: project, TeamId: id}); err != nil {
			return err
		}
		return e.printDone("deleted", "team", id)
	})
	members := e.withArg("members TEAM", "List a team's memberships", "  cairn teams members editors --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		var all []proto.Message
		req := &cairnv1.ListMembershipsRequest{ProjectId: project, TeamId: id, PageSize: 1000}
		for {
			res, err := teams(r).ListMemberships(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			for _, m := range res.GetMemberships() {
				all = append(all, m)
			}
			if res.GetNextPageToken() == "" {
				return e.printList(membershipCols, all)
			}
			req.PageToken = res.GetNextPageToken()
		}
	})
	var userID, invite string
	add := e.withArg("add TEAM", "Add an end user to a team (by --user) or invite one (by --email)",
		`  cairn teams add editors --project acme --user ada --role owner`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			if (userID == "") == (invite == "") {
				return errors.New("teams add: give exactly one of --user or --email")
			}
			res, err := teams(r).CreateMembership(r.ctx(ctx), &cairnv1.CreateMembershipRequest{ProjectId: project, TeamId: id, UserId: userID, Email: invite, Roles: roles})
			if err != nil {
				return err
			}
			return e.printOne(membershipCols, res.GetMembership())
		})
	add.Flags().StringVar(&userID, "user", "", "the end user's id")
	add.Flags().StringVar(&invite, "email", "", "invite this address")
	add.Flags().StringSliceVar(&roles, "role", nil, "roles in the team (team:<id>/<role> permissions), comma-separated or repeated")
	return e.projectFlag(e.clientFlags(group("teams", "List, show, create and delete teams; list and add members", "", list, get, create, del, members, add)))
}
