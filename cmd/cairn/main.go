// Command cairn is the Cairn server and its command-line client:
//
//	cairn serve                  run the server (embedded NATS + Badger by default)
//	cairn replay --project ID    rebuild read models from the streams (server stopped)
//	cairn projects|keys|events   manage a running server through its Connect API
//	cairn databases|collections|documents|buckets|files|users|teams   a project's data
//	cairn sites|functions        deploy static sites and server-side functions
//	cairn pull|plan|apply        a project as code: its file (cairn.json)
//	cairn bench                  measure write, replay and project-count figures
//
// The command tree is spf13/cobra's (cli.go registers every command in one
// place). It owns flags, environment and wiring; nothing below cmd reads
// either.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-dev/cairn/fnrun/js"
)

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
