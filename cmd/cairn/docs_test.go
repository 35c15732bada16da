package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/pflag"
)

// TestConfigurationTableListsEveryFlag keeps the configuration table
// (docs/configuration.md) from drifting: every flag of `cairn serve` has a row
// naming it and, when it has one, its environment variable.
func TestConfigurationTableListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		// The first row naming a flag is the table's (a later table may
		// reuse flag names as row labels).
		if m := regexp.MustCompile("^\\| `(--[a-z0-9-]+)`").FindStringSubmatch(line); m != nil && rows[m[1]] == "" {
			rows[m[1]] = line
		}
	}
	// The serve command's own flags, as cobra parses them.
	fs := serveCmd(&cliEnv{getenv: func(string) string { return "" }}).Flags()
	envRe := regexp.MustCompile(`\(?(CAIRN_[A-Z0-9_]+)`)
	fs.VisitAll(func(f *pflag.Flag) {
		row, ok := rows["--"+f.Name]
		if !ok {
			t.Errorf("docs/configuration.md has no row for --%s (%s)", f.Name, f.Usage)
			return
		}
		if m := envRe.FindStringSubmatch(f.Usage); m != nil && !strings.Contains(row, m[1]) {
			t.Errorf("docs/configuration.md's row for --%s does not name %s", f.Name, m[1])
		}
	})
}

// TestDocsHaveNoConflictMarkersOrOutsideLinks: the documentation stays
// readable in a clone (.ci/run checks the whole repository too). A relative
// link may not climb above the repository's root: from README.md no `](../`,
// from docs/*.md and deploy/README.md (one level down) no `](../../`.
func TestDocsHaveNoConflictMarkersOrOutsideLinks(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md found")
	}
	paths := append([]string{"../../README.md", "../../deploy/README.md"}, docs...)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		outside := "](../"
		if p != "../../README.md" {
			outside = "](../../"
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "<<<<<<< ") || strings.HasPrefix(line, ">>>>>>> ") {
				t.Errorf("%s:%d: merge-conflict marker", p, i+1)
			}
			if strings.Contains(line, outside) {
				t.Errorf("%s:%d: a link that leaves the repository", p, i+1)
			}
		}
		// Links into the repository must name something that exists.
		for _, m := range regexp.MustCompile(`\]\(([^)#\s]+)(#[^)\s]*)?\)`).FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), target)); err != nil {
				t.Errorf("%s: link to %s: %v", p, target, err)
			}
		}
		// Links to a heading (#anchor, or file.md#anchor) must find it.
		for _, m := range regexp.MustCompile(`\]\(([^)#\s]*)#([^)\s]+)\)`).FindAllStringSubmatch(string(b), -1) {
			file := p
			if m[1] != "" {
				if strings.Contains(m[1], "://") || !strings.HasSuffix(m[1], ".md") {
					continue
				}
				file = filepath.Join(filepath.Dir(p), m[1])
			}
			if !markdownAnchors(t, file)[m[2]] {
				t.Errorf("%s: link to %s#%s: no such heading", p, m[1], m[2])
			}
		}
	}
}

// markdownAnchors returns the anchors GitHub gives a markdown file's headings:
// lower case, punctuation dropped, spaces as hyphens (headings inside code
// blocks are not headings).
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	code := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			code = !code
		}
		m := regexp.MustCompile(`^#{1,6} (.+)$`).FindStringSubmatch(line)
		if code || m == nil {
			continue
		}
		var s strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ':
				s.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				s.WriteRune(r)
			}
		}
		anchors[s.String()] = true
	}
	return anchors
}

// TestCLIHelpVersionAndScopes: -h asked for exits 0, an incomplete command
// 1; --version prints the version; keys create wants --scopes or
// --no-scopes (a key without scopes used to be made silently).
func TestCLIHelpVersionAndScopes(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{{"-h"}, {"--help"}, {"keys", "create", "-h"}, {"projects", "list", "--help"}, {"plan", "-h"}, {"apply", "P", "--help"}} {
		err := run(context.Background(), args, io.Discard, io.Discard, env)
		if code := exitCode(err, args); code != 0 {
			t.Errorf("cairn %v: exit %d (%v)", args, code, err)
		}
	}
	if err := run(context.Background(), nil, io.Discard, io.Discard, env); exitCode(err, nil) != 1 {
		t.Errorf("cairn with no command: exit %d", exitCode(err, nil))
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, io.Discard, env); err != nil || !strings.Contains(out.String(), "cairn") {
		t.Errorf("--version: %q %v", out.String(), err)
	}
	in := startInstance(t, t.TempDir())
	cli := func(args ...string) error {
		return run(context.Background(), args, io.Discard, io.Discard, func(k string) string {
			return map[string]string{"CAIRN_URL": in.url, "CAIRN_KEY": testAdminKey, "CAIRN_ADMIN_KEY": testAdminKey}[k]
		})
	}
	if err := cli("projects", "create", "--id", "clip", "--name", "Clip"); err != nil {
		t.Fatal(err)
	}
	if err := cli("keys", "create", "--project", "clip", "--name", "k"); err == nil || !strings.Contains(err.Error(), "--scopes is required") {
		t.Fatalf("keys create without scopes: %v", err)
	}
	if err := cli("keys", "create", "--project", "clip", "--name", "k", "--no-scopes"); err != nil {
		t.Fatalf("keys create --no-scopes: %v", err)
	}
	if err := cli("keys", "create", "--project", "clip", "--name", "k2", "--scopes", "keys.read"); err != nil {
		t.Fatalf("keys create --scopes: %v", err)
	}
}
