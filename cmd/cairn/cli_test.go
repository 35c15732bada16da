package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// runCLI runs the CLI in-process with exactly env as its environment.
func runCLI(env map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), err
}

// ids reads the "id" of every object of a JSON array.
func ids(t *testing.T, out string) []string {
	t.Helper()
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.ID)
	}
	slices.Sort(got)
	return got
}

// TestCLIHelpEveryCommand: every command answers -h with its usage and
// exit 0, every command that does something shows examples, a group
// without its subcommand fails, completion scripts come out for the three
// shells.
func TestCLIHelpEveryCommand(t *testing.T) {
	env := map[string]string{}
	root := newRoot(&cliEnv{getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		path := strings.Fields(c.CommandPath())[1:]
		args := append(slices.Clone(path), "-h")
		out, stderr, err := runCLI(env, args...)
		if c.DisableFlagParsing {
			// A command in the old style (legacy) prints the flag
			// package's help, on stderr.
			out += stderr
		}
		if code := exitCode(err, args); code != 0 || !strings.Contains(strings.ToLower(out), "usage") {
			t.Errorf("cairn %s: exit %d (%v), output:\n%s", strings.Join(args, " "), code, err, out)
		}
		if c.Runnable() && !c.HasSubCommands() && c.Example == "" && !c.DisableFlagParsing && c.Name() != "version" && c.Name() != "logout" {
			t.Errorf("cairn %s has no examples in its help", strings.Join(path, " "))
		}
		if c.HasSubCommands() && c != root {
			if _, _, err := runCLI(env, path...); exitCode(err, path) != 1 {
				t.Errorf("cairn %s without a subcommand: want exit 1, got %v", strings.Join(path, " "), err)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for shell, want := range map[string]string{"bash": "__start_cairn", "zsh": "#compdef cairn", "fish": "complete -c cairn"} {
		out, _, err := runCLI(env, "completion", shell)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completion %s: %v, output lacks %q", shell, err, want)
		}
	}
	// Secrets from the environment never show as defaults in -h.
	secrets := map[string]string{"CAIRN_ADMIN_KEY": "admin-secret-value", "CAIRN_MASTER_KEY": "master-secret-value", "CAIRN_NATS_TOKEN": "token-secret-value"}
	for _, args := range [][]string{{"serve", "-h"}, {"replay", "-h"}} {
		out, _, err := runCLI(secrets, args...)
		if err != nil || strings.Contains(out, "secret-value") || !strings.Contains(out, "--admin-key") {
			t.Errorf("cairn %v shows a secret from the environment (or fails: %v):\n%s", args, err, out)
		}
	}
	if _, _, err := runCLI(env, "nosuch"); err == nil || !strings.Contains(err.Error(), `unknown command "nosuch"`) {
		t.Errorf("unknown command: %v", err)
	}
}

// TestCLICredentialOrder: flag > CAIRN_KEY > CAIRN_ADMIN_KEY > the data
// directory's admin.key > the login file, for the server too; the error
// names every place looked; a login's key never goes to another server.
func TestCLICredentialOrder(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "admin.key"), []byte("file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	lp := loginPath(func(k string) string { return map[string]string{"HOME": home}[k] })
	if err := os.MkdirAll(filepath.Dir(lp), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lp, []byte(`{"url":"http://login.example","key":"login-key"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(dir, "none")
	for _, c := range []struct {
		name               string
		url, key, dataDir  string
		env                map[string]string
		wantURL, wantKey   string
		wantFrom, wantErrs string
	}{
		{"flag first", "http://flag", "k1", data, map[string]string{"CAIRN_URL": "http://env", "CAIRN_KEY": "k2", "CAIRN_ADMIN_KEY": "k3"},
			"http://flag", "k1", "--key", ""},
		{"CAIRN_KEY", "", "", data, map[string]string{"CAIRN_URL": "http://env", "CAIRN_KEY": "k2", "CAIRN_ADMIN_KEY": "k3"},
			"http://env", "k2", "CAIRN_KEY", ""},
		{"CAIRN_ADMIN_KEY", "", "", data, map[string]string{"CAIRN_ADMIN_KEY": "k3"}, "http://login.example", "k3", "CAIRN_ADMIN_KEY", ""},
		{"--data-dir", "", "", data, nil, "http://login.example", "file-key", filepath.Join(data, "admin.key"), ""},
		{"CAIRN_DATA_DIR", "", "", "", map[string]string{"CAIRN_DATA_DIR": data}, "http://login.example", "file-key", filepath.Join(data, "admin.key"), ""},
		{"login", "", "", none, nil, "http://login.example", "login-key", lp, ""},
		{"login is for its own server only", "http://other/", "", none, nil, "", "", "",
			"no credential for http://other; looked in --key (not set), CAIRN_KEY (not set), CAIRN_ADMIN_KEY (not set), " +
				filepath.Join(none, "admin.key") + " (no such file), " + lp + " (a login for http://login.example, not http://other)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"HOME": home}
			for k, v := range c.env {
				env[k] = v
			}
			e := &cliEnv{getenv: func(k string) string { return env[k] }, url: c.url, key: c.key, dataDir: c.dataDir}
			got, err := e.resolve()
			if c.wantErrs != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErrs) {
					t.Fatalf("want an error naming every place:\n%s\ngot %v", c.wantErrs, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != (target{url: c.wantURL, key: c.wantKey, keyFrom: c.wantFrom}) {
				t.Fatalf("got %+v, want %s %s from %s", got, c.wantURL, c.wantKey, c.wantFrom)
			}
		})
	}
	// Without HOME and anything else: the default server, and an error
	// naming each place.
	e := &cliEnv{getenv: func(string) string { return "" }, dataDir: none}
	if _, err := e.resolve(); err == nil || !strings.Contains(err.Error(), "no credential for http://localhost:8080") ||
		!strings.Contains(err.Error(), "no user config directory") {
		t.Fatalf("nothing anywhere: %v", err)
	}

	// Against a server: a refused credential is an error naming its
	// source, even with the good key on disk; login then works alone.
	in := startInstance(t, t.TempDir())
	good := t.TempDir()
	if err := os.WriteFile(filepath.Join(good, "admin.key"), []byte(testAdminKey), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(map[string]string{"CAIRN_URL": in.url, "CAIRN_KEY": "bogus", "CAIRN_DATA_DIR": good}, "projects", "list")
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "the credential came from CAIRN_KEY") {
		t.Fatalf("CAIRN_KEY=bogus with admin.key on disk: %v", err)
	}
	if _, _, err := runCLI(map[string]string{"CAIRN_URL": in.url}, "projects", "list", "--data-dir", good); err != nil {
		t.Fatalf("admin.key of --data-dir: %v", err)
	}
	home2 := t.TempDir()
	if _, _, err := runCLI(map[string]string{"HOME": home2}, "login", "--url", in.url, "--key", "bogus"); err == nil || !strings.Contains(err.Error(), "refused the credential") {
		t.Fatalf("login with a bogus key: %v", err)
	}
	if _, err := os.Stat(loginPath(func(k string) string { return map[string]string{"HOME": home2}[k] })); err == nil {
		t.Fatal("a refused login was saved")
	}
	var out bytes.Buffer
	le := &cliEnv{stdin: strings.NewReader(testAdminKey + "\n"), stdout: &out, stderr: io.Discard,
		getenv: func(k string) string { return map[string]string{"HOME": home2}[k] }}
	if err := le.execute(context.Background(), []string{"login", "--url", in.url}); err != nil || !strings.Contains(out.String(), "operator credential") {
		t.Fatalf("login: %v %s", err, out.String())
	}
	if fi, err := os.Stat(loginPath(le.getenv)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login file: %v %v", fi, err)
	}
	if _, _, err := runCLI(map[string]string{"HOME": home2}, "projects", "create", "viaLogin"); err == nil {
		t.Fatal("an invalid project id was accepted")
	}
	if _, _, err := runCLI(map[string]string{"HOME": home2}, "projects", "create", "via-login"); err != nil {
		t.Fatalf("after login, with nothing else set: %v", err)
	}
	if _, _, err := runCLI(map[string]string{"HOME": home2}, "logout"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(map[string]string{"HOME": home2}, "projects", "list", "--data-dir", none); err == nil || !strings.Contains(err.Error(), "no credential") {
		t.Fatalf("after logout: %v", err)
	}
}

// normalizeTimes replaces timestamps, which change every run.
func normalizeTimes(s string) string {
	s = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`).ReplaceAllString(s, "<time>")
	return regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).ReplaceAllString(s, "<time>")
}

// golden compares out with testdata/cli/name (CAIRN_UPDATE_GOLDEN=1
// rewrites it).
func golden(t *testing.T, name, out string) {
	t.Helper()
	path := filepath.Join("testdata", "cli", name)
	if os.Getenv("CAIRN_UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != out {
		t.Errorf("%s: got\n%s\nwant\n%s", path, out, want)
	}
}

// TestCLIGolden: the table, JSON and YAML of a listing, the same in-process
// and from the built binary; the binary's -h, --version, completion and
// exit codes; no progress on a stderr that is not a terminal.
func TestCLIGolden(t *testing.T) {
	in := startInstance(t, t.TempDir())
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_KEY": testAdminKey}
	for _, args := range [][]string{
		{"projects", "create", "alpha", "--name", "Alpha Corp", "--max-stream-bytes", "1048576"},
		{"projects", "create", "--id", "beta"},
		{"databases", "create", "main", "--project", "alpha"},
	} {
		if _, _, err := runCLI(env, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	bin := buildBinary(t, "cairn", ".", false)
	binary := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"CAIRN_URL=" + in.url, "CAIRN_KEY=" + testAdminKey, "HOME=" + t.TempDir()}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	for _, g := range []struct {
		file string
		args []string
	}{
		{"projects-list.table", []string{"projects", "list", "-o", "table"}},
		{"projects-list.json", []string{"projects", "list"}},
		{"projects-list.json", []string{"projects", "list", "--json"}},
		{"projects-list.yaml", []string{"projects", "list", "-o", "yaml"}},
		{"databases-get.table", []string{"databases", "get", "main", "--project", "alpha", "-o", "table"}},
		{"databases-delete.json", []string{"databases", "delete", "nosuch", "--project", "alpha"}},
	} {
		out, _, err := runCLI(env, g.args...)
		bout, _, berr := binary(g.args...)
		if g.file == "databases-delete.json" {
			// A failure: nothing on stdout, a Connect code in the error.
			if connect.CodeOf(err) != connect.CodeNotFound || out != "" || berr == nil || bout != "" {
				t.Errorf("delete of a missing database: %v %q / %v %q", err, out, berr, bout)
			}
			continue
		}
		if err != nil || berr != nil {
			t.Fatalf("%v: %v / %v", g.args, err, berr)
		}
		golden(t, g.file, normalizeTimes(out))
		golden(t, g.file, normalizeTimes(bout))
	}

	// The binary's exit codes and texts.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "Usage:"},
		{[]string{"keys", "create", "-h"}, 0, "--scopes"},
		{[]string{"--version"}, 0, "cairn "},
		{[]string{"version"}, 0, "cairn "},
		{[]string{"completion", "bash"}, 0, "__start_cairn"},
		{nil, 1, ""},
		{[]string{"projects"}, 1, ""},
		{[]string{"nosuch"}, 1, ""},
		{[]string{"keys", "create", "--project", "alpha", "--name", "x"}, 1, ""},
	} {
		out, _, err := binary(c.args...)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("cairn %v: exit %d, want %d; output %q", c.args, code, c.code, out)
		}
	}

	// Progress is for terminals: a piped stderr gets none.
	if _, _, err := runCLI(env, "buckets", "create", "b", "--project", "alpha"); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "blob.bin")
	if err := os.WriteFile(f, bytes.Repeat([]byte("x"), 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := binary("files", "upload", f, "--project", "alpha", "--bucket", "b", "--id", "blob")
	if err != nil || stderr != "" || !strings.Contains(out, `"id": "blob"`) {
		t.Fatalf("upload through a pipe: %v, stderr %q, stdout %s", err, stderr, out)
	}
}

// TestCLIDataCommands runs the data commands against a real server: the
// query operators of --where, versions on update, files both ways, users
// and teams, and bad input named by flag or field.
func TestCLIDataCommands(t *testing.T) {
	in := startInstance(t, t.TempDir())
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_ADMIN_KEY": testAdminKey, "CAIRN_PROJECT": "data"}
	c := func(args ...string) string {
		t.Helper()
		out, stderr, err := runCLI(env, args...)
		if err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		if _, _, err := runCLI(env, args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("cairn %s: want an error saying %q, got %v", strings.Join(args, " "), want, err)
		}
	}
	c("projects", "create", "data")
	c("databases", "create", "main")
	if out := c("databases", "list", "-o", "yaml"); !strings.Contains(out, "id: main") {
		t.Fatalf("databases list -o yaml:\n%s", out)
	}
	// The standard flag package's single-dash spelling still works.
	if got := ids(t, c("databases", "list", "-project", "data", "-json")); !slices.Equal(got, []string{"main"}) {
		t.Fatalf("-project: %v", got)
	}
	var y []map[string]any
	if err := yaml.Unmarshal([]byte(c("databases", "list", "-o", "yaml")), &y); err != nil || len(y) != 1 || y[0]["id"] != "main" {
		t.Fatalf("YAML: %v %v", y, err)
	}
	coll := []string{"--database", "main", "--collection", "todos"}
	c("collections", "create", "todos", "--database", "main", "--permission", `read("any")`)
	c(append([]string{"attributes", "create", "title", "--type", "string", "--size", "100", "--required"}, coll...)...)
	c(append([]string{"attributes", "create", "done", "--type", "boolean", "--default", "false"}, coll...)...)
	c(append([]string{"attributes", "create", "n", "--type", "integer"}, coll...)...)
	c(append([]string{"attributes", "create", "at", "--type", "point"}, coll...)...)
	c(append([]string{"attributes", "create", "scores", "--type", "integer", "--array"}, coll...)...)
	c(append([]string{"indexes", "create", "by_n", "--attributes", "n"}, coll...)...)
	c(append([]string{"indexes", "create", "by_at", "--attributes", "at"}, coll...)...)
	if out := c(append([]string{"attributes", "list"}, coll...)...); len(ids(t, strings.ReplaceAll(out, `"key"`, `"id"`))) != 5 {
		t.Fatalf("attributes list: %s", out)
	}
	c(append([]string{"documents", "create", "a", "--data", `{"title":"alpha","n":1,"at":[2.35,48.85],"scores":[70,95]}`}, coll...)...)
	c(append([]string{"documents", "create", "b", "--data", `{"title":"beta","n":2,"done":true,"at":[-0.13,51.51],"scores":[85]}`}, coll...)...)
	c(append([]string{"documents", "create", "c", "--data", `{"title":"gamma","n":3,"at":{"type":"Point","coordinates":[13.4,52.52]}}`}, coll...)...)
	for _, q := range []struct {
		args []string
		want []string
	}{
		{[]string{"--where", "n > 1"}, []string{"b", "c"}},
		{[]string{"--where", "n>=2", "--where", "n <= 2"}, []string{"b"}},
		{[]string{"--where", "n between [1,2]"}, []string{"a", "b"}},
		{[]string{"--where", "n not-between [1,2]"}, []string{"c"}},
		{[]string{"--where", "title starts-with ga"}, []string{"c"}},
		{[]string{"--where", "title ends-with ta"}, []string{"b"}},
		{[]string{"--where", "done = true"}, []string{"b"}},
		{[]string{"--where", "done != true"}, []string{"a", "c"}},
		{[]string{"--where", "n = [1,3]"}, []string{"a", "c"}},
		{[]string{"--where", "title = beta"}, []string{"b"}},
		{[]string{"--where", "n exists"}, []string{"a", "b", "c"}},
		{[]string{"--where", "title regex ^[ab]"}, []string{"a", "b"}},
		{[]string{"--where", `title contains-all ["a","l"]`}, []string{"a"}},
		{[]string{"--where", "$createdAt created-after 2000-01-01T00:00:00Z", "--where", "n < 3"}, []string{"a", "b"}},
		{[]string{"--where", "at distance-less-than [[2.35,48.85],400000]"}, []string{"a", "b"}},
		{[]string{"--where", "at distance-greater-than [[2.35,48.85],400000]"}, []string{"c"}},
		{[]string{"--where", "at intersects [[0,45],[20,45],[20,55],[0,55],[0,45]]"}, []string{"a", "c"}},
		{[]string{"--where", "at not-intersects [[0,45],[20,45],[20,55],[0,55],[0,45]]"}, []string{"b"}},
		{[]string{"--where", "scores elem-match > 80; < 90"}, []string{"b"}},
		{[]string{"--filter", `{"op":"OPERATOR_OR","filters":[{"op":"OPERATOR_EQUAL","attribute":"n","values":[1]},{"op":"OPERATOR_EQUAL","attribute":"title","values":["gamma"]}]}`}, []string{"a", "c"}},
		{[]string{"--order", "-n", "--limit", "1"}, []string{"c"}},
		{[]string{"--order", "n", "--offset", "2"}, []string{"c"}},
	} {
		out := c(append(append([]string{"documents", "list"}, coll...), q.args...)...)
		if got := ids(t, out); !slices.Equal(got, q.want) {
			t.Errorf("documents list %v: got %v, want %v", q.args, got, q.want)
		}
	}
	if out := c(append([]string{"documents", "list", "--where", "n > 0", "--explain", "--total"}, coll...)...); !strings.Contains(out, `"total": "3"`) || !strings.Contains(out, "by_n") {
		t.Errorf("--explain --total: %s", out)
	}
	// The geo index answers a distance filter, and --explain says so.
	if out := c(append([]string{"documents", "list", "--where", "at distance-less-than [[2.35,48.85],400000]", "--explain"}, coll...)...); !strings.Contains(out, "by_at") ||
		!strings.Contains(out, "distanceLessThan(at)") || !strings.Contains(out, "geo cell ranges") {
		t.Errorf("geo --explain: %s", out)
	}
	if out := c(append([]string{"documents", "list", "--where", "n > 0", "-o", "table", "--total"}, coll...)...); !strings.Contains(out, "total: 3") || !strings.Contains(out, `"title":"alpha"`) {
		t.Errorf("table with --total: %s", out)
	}
	fails("its version is 11, not 1", append([]string{"documents", "update", "b", "--data", `{"done":false}`, "--expected-version", "1"}, coll...)...)
	if out := c(append([]string{"documents", "update", "b", "--data", `{"done":false}`}, coll...)...); !strings.Contains(out, `"done": false`) {
		t.Errorf("update: %s", out)
	}
	c(append([]string{"documents", "delete", "a"}, coll...)...)
	_, _, err := runCLI(env, append([]string{"documents", "get", "a"}, coll...)...)
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("get after delete: %v", err)
	}
	// Bad input: the flag or the field, never a 500.
	fails("--where", append([]string{"documents", "list", "--where", "n ~ 1"}, coll...)...)
	fails("not valid RE2", append([]string{"documents", "list", "--where", "title regex a("}, coll...)...)
	fails("createdBefore compares $createdAt", append([]string{"documents", "list", "--where", "n created-before 2000-01-01T00:00:00Z"}, coll...)...)
	fails("--data: want a JSON object", append([]string{"documents", "create", "--data", "not json"}, coll...)...)
	fails(`"nope"`, append([]string{"documents", "list", "--where", "nope = 1"}, coll...)...)
	fails("--collection is required", "documents", "list", "--database", "main")
	fails("latitude must be between -90 and 90", append([]string{"documents", "list", "--where", "at distance-less-than [[0,91],5]"}, coll...)...)
	fails("must be closed", append([]string{"documents", "list", "--where", "at intersects [[0,0],[1,0],[1,1],[0,1]]"}, coll...)...)
	fails("--type: want one of boolean, datetime, email, enum, float, integer, ip, point, relationship, string, url", append([]string{"attributes", "create", "x", "--type", "text"}, coll...)...)
	fails("-o: want table, json or yaml", "databases", "list", "-o", "xml")

	// A two-way relationship from the CLI: its partner appears on the
	// related collection; a bad relation type is named.
	c("collections", "create", "authors", "--database", "main")
	c("collections", "create", "books", "--database", "main")
	books := []string{"--database", "main", "--collection", "books"}
	fails("relation_type", append([]string{"attributes", "create", "author", "--type", "relationship", "--related-collection", "authors", "--relation", "sideways"}, books...)...)
	if out := c(append([]string{"attributes", "create", "author", "--type", "relationship", "--related-collection", "authors", "--relation", "manyToOne",
		"--two-way", "--two-way-key", "books", "--on-delete", "cascade"}, books...)...); !strings.Contains(out, `"relatedCollection": "authors"`) {
		t.Errorf("relationship attribute: %s", out)
	}
	if out := c("attributes", "list", "--database", "main", "--collection", "authors"); !strings.Contains(out, `"key": "books"`) || !strings.Contains(out, `"relationType": "oneToMany"`) {
		t.Errorf("the partner attribute: %s", out)
	}

	// Files both ways, the bytes unchanged.
	c("buckets", "create", "docs", "--compression", "zstd", "--encryption")
	src := filepath.Join(t.TempDir(), "notes.txt")
	body := bytes.Repeat([]byte("cairn notes\n"), 50000)
	if err := os.WriteFile(src, body, 0o600); err != nil {
		t.Fatal(err)
	}
	c("files", "upload", src, "--bucket", "docs", "--id", "notes")
	if got := ids(t, c("files", "list", "--bucket", "docs", "--where", "size > 1000")); !slices.Equal(got, []string{"notes"}) {
		t.Errorf("files list: %v", got)
	}
	dst := filepath.Join(t.TempDir(), "copy.txt")
	c("files", "download", "notes", "--bucket", "docs", "-o", dst)
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, body) {
		t.Error("download differs from upload")
	}
	if out := c("files", "download", "notes", "--bucket", "docs", "-o", "-"); out != string(body) {
		t.Error("download to stdout differs from upload")
	}
	c("files", "delete", "notes", "--bucket", "docs")

	// Users and teams.
	c("users", "create", "--id", "ada", "--email", "ada@example.com", "--name", "Ada", "--password", "correct horse battery staple")
	if got := ids(t, c("users", "list", "--search", "ada")); !slices.Equal(got, []string{"ada"}) {
		t.Errorf("users list: %v", got)
	}
	c("teams", "create", "editors", "--name", "Editors")
	c("teams", "add", "editors", "--user", "ada", "--role", "owner")
	if out := c("teams", "members", "editors"); !strings.Contains(out, `"userId": "ada"`) {
		t.Errorf("teams members: %s", out)
	}
	fails("exactly one of --user or --email", "teams", "add", "editors")
	if out := c("teams", "delete", "editors"); !strings.Contains(out, `"deleted": "editors"`) {
		t.Errorf("teams delete: %s", out)
	}
	c("users", "delete", "ada")
}

// TestCLILegacyCommand: a command written against the standard flag
// package (as commands on other branches are) joins the tree with one
// call, keeps its flags and help, and gets the one credential order.
func TestCLILegacyCommand(t *testing.T) {
	count := func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
		sub, rest, err := subcommand(args, "count")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		fs := flag.NewFlagSet("demo "+sub, flag.ContinueOnError)
		fs.SetOutput(stderr)
		suffix := fs.String("suffix", envOr(getenv, "DEMO_SUFFIX", ""), "count only projects ending so")
		r, err := dial(fs, rest, stdout, getenv, true)
		if err != nil {
			return err
		}
		prefix, err := positional(fs, "prefix")
		if err != nil {
			return err
		}
		if !contains([]string{"count"}, sub) {
			return errors.New("unreachable")
		}
		out, _, err := runCLI(map[string]string{"CAIRN_URL": r.url, "CAIRN_KEY": r.token}, "projects", "list", "--json")
		if err != nil {
			return err
		}
		n := 0
		for _, id := range ids(t, out) {
			if strings.HasPrefix(id, prefix) && strings.HasSuffix(id, *suffix) {
				n++
			}
		}
		return r.print(wrapperspb.Int64(int64(n)))
	}
	in := startInstance(t, t.TempDir())
	exec := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		e := &cliEnv{stdout: &out, stderr: io.Discard, getenv: func(k string) string { return env[k] }}
		root := newRoot(e)
		root.AddCommand(legacy(e, "demo", "Count projects (a command in the old style)", count))
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "admin.key"), []byte(testAdminKey), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_DATA_DIR": dataDir}
	if _, _, err := runCLI(map[string]string{"CAIRN_URL": in.url, "CAIRN_KEY": testAdminKey}, "projects", "create", "demo-one"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec(env, "demo", "count", "--suffix", "one", "demo"); err != nil || strings.TrimSpace(out) != `"1"` {
		t.Fatalf("demo count: %q %v", out, err)
	}
	if _, err := exec(env, "demo", "count", "-h"); err != nil {
		t.Fatalf("-h of a legacy command: %v", err)
	}
	if out, err := exec(env, "demo", "-h"); err != nil || !strings.Contains(out, "Count projects") {
		t.Fatalf("-h of a legacy command before its subcommand: %v\n%s", err, out)
	}
	if out, err := exec(env, "-h"); err != nil || !strings.Contains(out, "demo") {
		t.Fatalf("root help lists the legacy command: %v\n%s", err, out)
	}
	if _, err := exec(map[string]string{"CAIRN_URL": in.url, "CAIRN_KEY": "bogus", "CAIRN_DATA_DIR": dataDir}, "demo", "count", "x"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("CAIRN_KEY=bogus through dial: %v", err)
	}
}

// TestStdFlags: serve's flags on a standard flag set (for old-style
// commands), values, booleans and environment twins alike.
func TestStdFlags(t *testing.T) {
	var cfg config
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	cfg.stdFlags(fs, func(k string) string { return map[string]string{"CAIRN_SYNC": "always"}[k] })
	if err := fs.Parse([]string{"--data-dir", "/srv/cairn", "-request-log=false", "--nats-insecure"}); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/cairn" || cfg.RequestLog || !cfg.NATSInsecure || cfg.Sync != "always" {
		t.Fatalf("got %+v", cfg)
	}
}
