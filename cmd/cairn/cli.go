package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect/v2"
	"github.com/spf13/cobra"
)

// cliEnv is what every command reads: its streams, the environment and
// the flags shared by the client commands. One is made per run, so tests
// run the real CLI in-process and nothing is global.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// Client flags (clientFlags); only one command runs per cliEnv.
	url, key, dataDir string
	output            string
	json              bool
	project           string
	// keyFrom names where the credential came from, for the error when
	// the server refuses it.
	keyFrom string
}

// commands is the one place a top-level command is registered. A command
// written against the standard flag package (func(ctx, args, stdout,
// stderr, getenv) error, e.g. with dial) joins with legacy(e, name,
// short, fn): it keeps parsing its own flags and printing its own help.
func commands(e *cliEnv) []*cobra.Command {
	return []*cobra.Command{
		serveCmd(e),
		replayCmd(e),
		loginCmd(e),
		logoutCmd(e),
		projectsCmd(e),
		keysCmd(e),
		eventsCmd(e),
		databasesCmd(e),
		collectionsCmd(e),
		attributesCmd(e),
		indexesCmd(e),
		documentsCmd(e),
		bucketsCmd(e),
		filesCmd(e),
		usersCmd(e),
		teamsCmd(e),
		sitesCmd(e),
		functionsCmd(e),
		webhooksCmd(e),
		// Commands in the old style (templatescli.go, usagecli.go, backupcli.go), each one line.
		legacy(e, "pull", "Write a project's file (cairn.json) from a live project", templates("pull")),
		legacy(e, "plan", "Show what apply would change to make a project match its file", templates("plan")),
		legacy(e, "apply", "Make a project match its file (--create-project: a template)", templates("apply")),
		legacy(e, "operators", "Operator accounts: create | list | get | roles | revoke | delete (operatorscli.go)", operatorsCmd),
		legacy(e, "usage", "Per-project usage per UTC day, for billing (--csv)", usageCmd),
		legacy(e, "backup", "Copy the whole instance while it serves (-o DIR)", backupCmd),
		legacy(e, "restore", "Restore a backup into an empty data directory (server stopped)", restoreCmd),
		benchCmd(e),
		versionCmd(e),
	}
}

// run runs the CLI; stdout, stderr and the environment are parameters so
// tests can run the real CLI in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	e := &cliEnv{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	return e.execute(ctx, args)
}

func (e *cliEnv) execute(ctx context.Context, args []string) error {
	root := newRoot(e)
	root.SetArgs(longFlags(root, args))
	err := root.ExecuteContext(ctx)
	// A present credential that is refused is an error that says where it
	// came from: CAIRN_KEY=bogus never falls back to another one.
	if connect.CodeOf(err) == connect.CodeUnauthenticated && e.keyFrom != "" {
		err = fmt.Errorf("%w (the credential came from %s)", err, e.keyFrom)
	}
	return err
}

func newRoot(e *cliEnv) *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn",
		Short: "Cairn, a self-hosted event-sourced backend: the server and its command-line client",
		Long: `Cairn is a self-hosted backend platform: authentication, documents, files, functions,
permissions, realtime and sites for many isolated projects, in one binary.

'cairn serve' runs the server; every other command talks to a running one
through its API. Client commands find the server in --url, $CAIRN_URL, the
file 'cairn login' wrote, then http://localhost:8080; and the credential in
--key, $CAIRN_KEY, $CAIRN_ADMIN_KEY, <--data-dir>/admin.key, then that file.`,
		Example: `  cairn serve
  cairn projects create acme --name "Acme Corp"
  cairn keys create --project acme --name backend --scopes documents.read
  cairn completion bash > /etc/bash_completion.d/cairn`,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			_ = cmd.Usage()
			return errNoCommand
		},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	// Help lists commands in groups; one not named here (a newly ported
	// one) appears under "Additional Commands".
	root.AddGroup(
		&cobra.Group{ID: "server", Title: "Run the server:"},
		&cobra.Group{ID: "operator", Title: "Projects, keys and the audit log:"},
		&cobra.Group{ID: "data", Title: "A project's data:"},
		&cobra.Group{ID: "deploy", Title: "Deploy code:"},
		&cobra.Group{ID: "code", Title: "A project as code (cairn.json):"},
		&cobra.Group{ID: "setup", Title: "Set up this CLI:"},
	)
	groups := map[string]string{
		"serve": "server", "replay": "server", "bench": "server",
		"projects": "operator", "keys": "operator", "events": "operator",
		"databases": "data", "collections": "data", "attributes": "data", "indexes": "data", "documents": "data",
		"buckets": "data", "files": "data", "users": "data", "teams": "data",
		"sites": "deploy", "functions": "deploy", "webhooks": "operator",
		"pull": "code", "plan": "code", "apply": "code",
		"usage": "operator", "operators": "operator", "backup": "server", "restore": "server",
		"login": "setup", "logout": "setup", "version": "setup",
	}
	for _, c := range commands(e) {
		c.GroupID = groups[c.Name()]
		root.AddCommand(c)
	}
	// Wrong arguments or flags: say which command wanted what.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see '%s -h')", strings.TrimPrefix(c.CommandPath(), "cairn "), err, c.CommandPath())
	})
	var explainArgs func(c *cobra.Command)
	explainArgs = func(c *cobra.Command) {
		if check := c.Args; check != nil && c != root {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return fmt.Errorf("%s: %w; usage: %s", strings.TrimPrefix(cmd.CommandPath(), "cairn "), err, cmd.UseLine())
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			explainArgs(sub)
		}
	}
	explainArgs(root)
	root.SetCompletionCommandGroupID("setup")
	root.SetHelpCommandGroupID("setup")
	return root
}

// errNoCommand: help printed because a command was missing, a failure
// (exit 1), unlike help someone asked for.
var errNoCommand = errors.New("no command given")

// group is a command whose subcommands do the work; alone, or with an
// unknown subcommand, it prints its help on stderr and fails.
func group(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Usage()
			names := make([]string, 0, len(cmd.Commands()))
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			if len(args) > 0 {
				return fmt.Errorf("%s: unknown subcommand %q; want one of: %s", cmd.Name(), args[0], strings.Join(names, ", "))
			}
			return fmt.Errorf("%s: want one of: %s", cmd.Name(), strings.Join(names, ", "))
		},
	}
	g.AddCommand(subs...)
	return g
}

// clientFlags gives cmd (and its subcommands) the flags every client
// command has: where the server is, the credential, the output format.
func (e *cliEnv) clientFlags(cmd *cobra.Command) *cobra.Command {
	f := cmd.PersistentFlags()
	f.StringVar(&e.url, "url", "", "server URL (default $CAIRN_URL, else the login's, else http://localhost:8080)")
	f.StringVar(&e.key, "key", "", "credential (default $CAIRN_KEY, $CAIRN_ADMIN_KEY, <data-dir>/admin.key, then the login's)")
	f.StringVar(&e.dataDir, "data-dir", "", "a local server's data directory, whose admin.key is a credential (default $CAIRN_DATA_DIR, else ./cairn_data)")
	f.StringVarP(&e.output, "output", "o", "", "output format: table, json or yaml (default table on a terminal, else json)")
	f.BoolVar(&e.json, "json", false, "output JSON, same as -o json")
	return cmd
}

// projectFlag adds --project (CAIRN_PROJECT) to cmd and its subcommands.
func (e *cliEnv) projectFlag(cmd *cobra.Command) *cobra.Command {
	cmd.PersistentFlags().StringVar(&e.project, "project", e.getenv("CAIRN_PROJECT"), "project id (default $CAIRN_PROJECT)")
	return cmd
}

// needProject returns --project or says it is missing.
func (e *cliEnv) needProject() (string, error) {
	if e.project == "" {
		return "", errors.New("--project is required (or set CAIRN_PROJECT)")
	}
	return e.project, nil
}

// templates is `cairn pull|plan|apply` (templatescli.go) as a legacyFunc.
func templates(name string) legacyFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
		return templatesCmd(ctx, name, args, stdout, stderr, getenv)
	}
}

// legacyFunc is a command in the style before cobra.
type legacyFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error

// legacy registers fn as command name: its arguments reach it untouched
// and -h is its own; flag.ErrHelp after -h is success.
func legacy(e *cliEnv, name, short string, fn legacyFunc) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := fn(cmd.Context(), args, e.stdout, e.stderr, e.getenv)
			if errors.Is(err, flag.ErrHelp) && exitCode(err, args) == 0 {
				return nil
			}
			// `cairn name -h` of a command that wants a subcommand first
			// fails in its own dispatch: show what it is and succeed.
			if err != nil && len(args) == 1 && exitCode(flag.ErrHelp, args) == 0 {
				fmt.Fprintf(e.stderr, "%v\n", err)
				return cmd.Help()
			}
			return err
		},
	}
}

// longFlags lets `-project x` (the standard flag package's spelling, which
// earlier versions took) mean `--project x` wherever the command has a
// long flag of that name.
func longFlags(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd.DisableFlagParsing {
		return args
	}
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && cmd.Flag(name) != nil {
			out[i] = "-" + a
		}
	}
	return out
}

// exitCoder is an error that chooses the process's exit status.
type exitCoder interface {
	error
	ExitCode() int
}

// exitCode is 0 for success and for help someone asked for (-h), the
// error's own code when it has one, 1 otherwise (help printed because the
// command was incomplete is a failure).
func exitCode(err error, args []string) int {
	if err == nil {
		return 0
	}
	// A command with an exit status of its own (plan --exit-code).
	if ec, ok := errors.AsType[exitCoder](err); ok {
		return ec.ExitCode()
	}
	if errors.Is(err, flag.ErrHelp) {
		for _, a := range args {
			if a == "-h" || a == "-help" || a == "--help" {
				return 0
			}
		}
	}
	return 1
}

func versionCmd(e *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(e.stdout, version())
			return err
		},
	}
}
