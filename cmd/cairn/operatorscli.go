package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cairn-dev/cairn/domain/operator"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// operatorsCmd manages operator accounts with the operator key: create
// (with a generated initial password, printed once, unless
// CAIRN_OPERATOR_PASSWORD is set), invite (a one-time link, mailed or
// printed), revoke-invitation, list, get, roles (replace them all),
// revoke (end every session), reset-mfa (a lost authenticator), delete;
// and password, which changes the caller's own (a co_ session's account)
// from CAIRN_OPERATOR_PASSWORD to CAIRN_OPERATOR_NEW_PASSWORD, so that
// neither is in the shell's history.
func operatorsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	sub, rest, err := subcommand(args, "create", "invite", "list", "get", "roles", "revoke", "reset-mfa", "revoke-invitation", "password", "delete")
	if err != nil {
		return fmt.Errorf("operators: %w", err)
	}
	fs := flag.NewFlagSet("operators "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "sign-in email (create, invite)")
	name := fs.String("name", "", "display name (create, invite)")
	admin := fs.Bool("admin", false, "instance administrator: everything the operator key may do (create, invite, roles)")
	roles := fs.String("role", "", "roles, comma-separated PROJECT=viewer|developer|owner (create, invite, roles)")
	r, err := dial(fs, rest, stdout, getenv, true)
	if err != nil {
		return err
	}
	c := cairnv1connect.NewOperatorsServiceClient(r.client)
	parsed, err := parseRoles(*roles)
	if err != nil {
		return err
	}
	var id string
	if sub != "create" && sub != "invite" && sub != "list" && sub != "password" {
		if id, err = positional(fs, "account id or email"); err != nil {
			return err
		}
		if strings.Contains(id, "@") {
			id = operator.ID(id)
		}
	}
	switch sub {
	case "create":
		pw := getenv("CAIRN_OPERATOR_PASSWORD")
		generated := pw == ""
		if generated {
			pw = rand.Text()
		}
		res, err := c.CreateOperator(r.ctx(ctx), &cairnv1.CreateOperatorRequest{Email: *email, Name: *name, Password: pw, Admin: *admin, Roles: parsed})
		if err != nil {
			return err
		}
		if generated {
			fmt.Fprintf(stdout, "initial password (shown once; pass it on privately): %s\n", pw)
		}
		return r.print(res.GetOperator())
	case "invite":
		res, err := c.InviteOperator(r.ctx(ctx), &cairnv1.InviteOperatorRequest{Email: *email, Name: *name, Admin: *admin, Roles: parsed})
		if err != nil {
			return err
		}
		switch {
		case res.GetExistingAccount():
			fmt.Fprintf(stdout, "%s has an account: the roles were added\n", res.GetOperator().GetEmail())
		case res.GetEmailed():
			fmt.Fprintf(stdout, "invitation mailed to %s (the link works once, for 7 days)\n", res.GetOperator().GetEmail())
		default:
			fmt.Fprintf(stdout, "invitation link (no instance SMTP; works once, for 7 days; pass it on privately): %s\n", res.GetInvitationUrl())
		}
		return r.print(res.GetOperator())
	case "list":
		req := &cairnv1.ListOperatorsRequest{PageSize: 1000}
		for {
			res, err := c.ListOperators(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			for _, o := range res.GetOperators() {
				if err := r.print(o); err != nil {
					return err
				}
			}
			if res.GetNextPageToken() == "" {
				return nil
			}
			req.PageToken = res.GetNextPageToken()
		}
	case "get":
		res, err := c.GetOperator(r.ctx(ctx), &cairnv1.GetOperatorRequest{OperatorId: id})
		if err != nil {
			return err
		}
		return r.print(res.GetOperator())
	case "roles":
		req := &cairnv1.UpdateOperatorRequest{OperatorId: id, Roles: &cairnv1.OperatorRoles{Roles: parsed}}
		// Only an explicit --admin flag changes the administrator flag.
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "admin" {
				req.Admin = admin
			}
		})
		res, err := c.UpdateOperator(r.ctx(ctx), req)
		if err != nil {
			return err
		}
		return r.print(res.GetOperator())
	case "revoke":
		_, err := c.RevokeOperatorSessions(r.ctx(ctx), &cairnv1.RevokeOperatorSessionsRequest{OperatorId: id})
		if err == nil {
			fmt.Fprintf(stdout, "ended every session of operator %s\n", id)
		}
		return err
	case "revoke-invitation":
		_, err := c.RevokeOperatorInvitation(r.ctx(ctx), &cairnv1.RevokeOperatorInvitationRequest{OperatorId: id})
		if err == nil {
			fmt.Fprintf(stdout, "revoked the invitation of %s\n", id)
		}
		return err
	case "reset-mfa":
		res, err := c.ResetOperatorMfa(r.ctx(ctx), &cairnv1.ResetOperatorMfaRequest{OperatorId: id})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "two-factor sign-in of operator %s is off and its sessions ended\n", id)
		return r.print(res.GetOperator())
	case "password":
		cur, next := getenv("CAIRN_OPERATOR_PASSWORD"), getenv("CAIRN_OPERATOR_NEW_PASSWORD")
		if cur == "" || next == "" {
			return fmt.Errorf("operators password: set CAIRN_OPERATOR_PASSWORD (the current password) and CAIRN_OPERATOR_NEW_PASSWORD")
		}
		if _, err := c.UpdateCurrentOperatorPassword(r.ctx(ctx), &cairnv1.UpdateCurrentOperatorPasswordRequest{CurrentPassword: cur, NewPassword: next}); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "password changed; every other session of the account has ended")
		return nil
	default:
		_, err := c.DeleteOperator(r.ctx(ctx), &cairnv1.DeleteOperatorRequest{OperatorId: id})
		if err == nil {
			fmt.Fprintf(stdout, "deleted operator %s\n", id)
		}
		return err
	}
}

// parseRoles reads "p1=developer,p2=viewer".
func parseRoles(s string) ([]*cairnv1.OperatorRole, error) {
	var out []*cairnv1.OperatorRole
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, role, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("--role %q: want PROJECT=viewer|developer|owner", part)
		}
		out = append(out, &cairnv1.OperatorRole{ProjectId: p, Role: role})
	}
	return out, nil
}
