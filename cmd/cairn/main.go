// Command cairn is the Cairn server and its command-line client:
//
//	cairn serve                  run the server (embedded NATS + Badger by default)
//	cairn replay --project ID    rebuild read models from the streams (server stopped)
//	cairn projects|keys|events   manage a running server through its Connect API
//	cairn sites|functions        deploy static sites and server-side functions
//	cairn pull|plan|apply        a project as code: its file (cairn.json)
//	cairn bench                  measure write, replay and project-count figures
//
// It owns flags, environment and wiring; nothing below cmd reads either.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-dev/cairn/fnrun/js"
)

const usage = `usage: cairn <command> [flags]

commands:
  serve        run the server
  replay       rebuild read models from the event streams (server stopped)
  projects     create | list | get | update | delete projects (operator)
  keys         create | list | get | delete project API keys
  operators    create | list | get | roles | revoke | delete operator accounts (operator)
  events       list | tail a project's audit log
  sites        create | list | deploy | rollback static sites
  functions    create | list | deploy | run server-side functions
  pull         write a project's file (cairn.json) from a live project
  plan         show what apply would change to make a project match its file
  apply        make a project match its file (--create-project: a template)
  usage        per-project usage per UTC day, for billing (--csv)
  backup       copy the whole instance while it serves (-o DIR)
  restore      restore a backup into an empty data directory (server stopped)
  bench        measure write, replay and project-count figures
  version      print the version

Run 'cairn <command> -h' for a command's flags.
`

func main() {
	// The server starts this binary again as its JavaScript workers.
	if os.Getenv(js.WorkerEnv) == "1" {
		js.WorkerMain()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "cairn:", err)
	}
	os.Exit(exitCode(err, os.Args[1:]))
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

// run dispatches a command; stdout, stderr and the environment are
// parameters so tests can run the real CLI in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr, getenv)
	case "replay":
		return replay(ctx, rest, stdout, stderr, getenv)
	case "projects":
		return projectsCmd(ctx, rest, stdout, stderr, getenv)
	case "keys":
		return keysCmd(ctx, rest, stdout, stderr, getenv)
	case "operators":
		return operatorsCmd(ctx, rest, stdout, stderr, getenv)
	case "events":
		return eventsCmd(ctx, rest, stdout, stderr, getenv)
	case "sites":
		return sitesCmd(ctx, rest, stdout, stderr, getenv)
	case "functions":
		return functionsCmd(ctx, rest, stdout, stderr, getenv)
	case "pull", "plan", "apply":
		return templatesCmd(ctx, cmd, rest, stdout, stderr, getenv)
	case "usage":
		return usageCmd(ctx, rest, stdout, stderr, getenv)
	case "backup":
		return backupCmd(ctx, rest, stdout, stderr, getenv)
	case "restore":
		return restoreCmd(ctx, rest, stdout, stderr, getenv)
	case "bench":
		return bench(ctx, rest, stdout, stderr, getenv)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version())
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
