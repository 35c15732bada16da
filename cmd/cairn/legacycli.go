package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Helpers for commands written against the standard flag package (see
// legacy in cli.go): they keep compiling, and get the same credential
// order as every other command.

// dial adds --url, --key and --data-dir to fs, parses args and connects
// with the one credential order (resolve). operator is no longer used:
// operator and project commands look in the same places.
func dial(fs *flag.FlagSet, args []string, stdout io.Writer, getenv func(string) string, operator bool) (*remote, error) {
	_ = operator
	e := &cliEnv{stdout: stdout, getenv: getenv}
	fs.StringVar(&e.url, "url", "", "server URL (default $CAIRN_URL, else the login's, else http://localhost:8080)")
	fs.StringVar(&e.key, "key", "", "credential (default $CAIRN_KEY, $CAIRN_ADMIN_KEY, <data-dir>/admin.key, then the login's)")
	fs.StringVar(&e.dataDir, "data-dir", "", "a local server's data directory, whose admin.key is a credential")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return e.remote()
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

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// stdFlags registers serve's flags (with their environment twins) on a
// standard flag set, for a command in the old style that opens the data
// directory itself as replay does (cfg.flags takes cobra's pflag set).
func (c *config) stdFlags(fs *flag.FlagSet, getenv func(string) string) {
	ps := pflag.NewFlagSet(fs.Name(), pflag.ContinueOnError)
	c.flags(ps, getenv)
	ps.VisitAll(func(f *pflag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
}
