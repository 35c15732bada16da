package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-dev/cairn/transfer/template"
)

// templatesCmd is `cairn pull|plan|apply PROJECT -f cairn.json`: the
// project file of transfer/template, which holds all the logic.
func templatesCmd(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	flags := flag.NewFlagSet(cmd, flag.ContinueOnError)
	flags.SetOutput(stderr)
	file := flags.String("f", "cairn.json", `project file ("-": stdout, pull only)`)
	yes := flags.Bool("yes", false, "apply: make the changes without asking")
	allowDestructive := flags.Bool("allow-destructive", false, "apply: also make changes that lose data (deletes, replaced attributes)")
	createProject := flags.Bool("create-project", false, "apply: create the project first (a template applied to a new project; operator key)")
	exitCode := flags.Bool("exit-code", false, "plan: exit with status 2 when there are changes (0: none, 1: error)")
	// "apply P -f x": the positional argument may come before the flags.
	var project string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		project, args = args[0], args[1:]
	}
	r, err := dial(flags, args, stdout, getenv, false)
	if err != nil {
		return err
	}
	if project == "" {
		if project, err = positional(flags, "project id"); err != nil {
			return err
		}
	} else if flags.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, flags.Args())
	}
	conn := template.NewConn(r.http, r.url, r.token, project)
	switch cmd {
	case "pull":
		return templatePull(ctx, conn, *file, stdout)
	case "plan":
		f, err := template.LoadFile(*file)
		if err != nil {
			return err
		}
		p, err := template.Diff(ctx, conn, f, template.Options{BaseDir: filepath.Dir(*file), Getenv: getenv})
		if err != nil {
			return err
		}
		if err := p.Write(stdout); err != nil {
			return err
		}
		if *exitCode && !p.Empty() {
			return changesPending(len(p.Changes))
		}
		return nil
	}
	f, err := template.LoadFile(*file)
	if err != nil {
		return err
	}
	// A new project is planned before it is created, so that a plan that
	// cannot be applied leaves no empty project behind.
	p, err := template.Diff(ctx, conn, f, template.Options{BaseDir: filepath.Dir(*file), Getenv: getenv, NewProject: *createProject})
	if err != nil {
		return err
	}
	if *createProject {
		if len(p.Problems) > 0 {
			return fmt.Errorf("apply: project %s not created: %s", project, p.Problems[0])
		}
		if err := conn.CreateProject(ctx, ""); err != nil {
			return err
		}
	}
	// With --yes the changes are printed as they are made; without, the
	// plan is shown first for the confirmation.
	if !*yes || p.Empty() {
		if err := p.Write(stdout); err != nil || p.Empty() {
			return err
		}
		if err := confirm(stdout); err != nil {
			return err
		}
	}
	if err := template.Apply(ctx, p, template.ApplyOptions{AllowDestructive: *allowDestructive, Log: stdout}); err != nil {
		if errors.Is(err, template.ErrDestructive) {
			for _, c := range p.Destructive() {
				fmt.Fprintln(stdout, c.String())
			}
		}
		return err
	}
	_, err = fmt.Fprintf(stdout, "Applied %d changes to project %s.\n", len(p.Changes), project)
	return err
}

// templatePull writes the project's file, keeping what only the existing
// file knows (code paths, secrets' variable names); atomically, so a
// failed pull leaves the old file.
func templatePull(ctx context.Context, conn *template.Conn, file string, stdout io.Writer) error {
	f, err := template.Pull(ctx, conn)
	if err != nil {
		return err
	}
	if file != "-" {
		local, err := template.LoadFile(file)
		switch {
		case err == nil:
			template.KeepLocal(f, local)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("pull: the existing file is kept: %w", err)
		}
	}
	b, err := template.Encode(f)
	if err != nil {
		return err
	}
	if file == "-" {
		_, err = stdout.Write(b)
		return err
	}
	tmp := file + ".part"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s from project %s\n", file, conn.Project())
	return err
}

// confirm asks on a terminal; elsewhere (CI, scripts) --yes is required.
func confirm(stdout io.Writer) error {
	if st, err := os.Stdin.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return errors.New("apply: nothing changed: pass --yes to apply without a terminal to confirm on")
	}
	fmt.Fprint(stdout, "Apply these changes? [y/N] ")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		// /dev/null is a character device too: no answer, no changes.
		return errors.New("apply: no answer on stdin, nothing changed: pass --yes to apply without confirming")
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errors.New("apply: cancelled, nothing changed")
	}
	return nil
}

// changesPending is plan --exit-code's answer when the project differs
// from its file: exit status 2, as CI scripts test for.
type changesPending int

func (n changesPending) Error() string {
	return fmt.Sprintf("plan: %d changes pending", int(n))
}

func (changesPending) ExitCode() int { return 2 }
