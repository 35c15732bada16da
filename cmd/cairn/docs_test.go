package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestConfigurationTableListsEveryFlag keeps the README's configuration
// table from drifting: every flag of `cairn serve` has a row naming it and,
// when it has one, its environment variable.
func TestConfigurationTableListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		// The configuration table comes first; later tables (Durability)
		// reuse flag names as row labels.
		if m := regexp.MustCompile("^\\| `(--[a-z0-9-]+)`").FindStringSubmatch(line); m != nil && rows[m[1]] == "" {
			rows[m[1]] = line
		}
	}
	var cfg config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.flags(fs, func(string) string { return "" })
	envRe := regexp.MustCompile(`\(?(CAIRN_[A-Z0-9_]+)`)
	fs.VisitAll(func(f *flag.Flag) {
		row, ok := rows["--"+f.Name]
		if !ok {
			t.Errorf("README's Configuration table has no row for --%s (%s)", f.Name, f.Usage)
			return
		}
		if m := envRe.FindStringSubmatch(f.Usage); m != nil && !strings.Contains(row, m[1]) {
			t.Errorf("README's row for --%s does not name %s", f.Name, m[1])
		}
	})
}

// TestDocsHaveNoConflictMarkersOrOutsideLinks: the documentation stays
// readable in a clone (.ci/run checks the whole repository too).
func TestDocsHaveNoConflictMarkersOrOutsideLinks(t *testing.T) {
	for _, p := range []string{"../../README.md", "../../docs/browser-apps.md", "../../deploy/README.md"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "<<<<<<< ") || strings.HasPrefix(line, ">>>>>>> ") {
				t.Errorf("%s:%d: merge-conflict marker", p, i+1)
			}
			if strings.Contains(line, "](../") {
				t.Errorf("%s:%d: a link that leaves the repository", p, i+1)
			}
		}
	}
}
