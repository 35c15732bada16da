package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quickstartScript turns the ```sh blocks of a markdown guide into one
// bash script, in order (later blocks use earlier blocks' variables). A
// guide's commands are meant for a person at a terminal, so three kinds of
// line are changed, and only these:
//   - `cairn serve` lines are dropped: the test runs the server;
//   - `xdg-open` lines are dropped: there is no browser;
//   - `events tail` follows forever: it runs for 3 s (exit 124 is success).
//
// `go run ./cmd/cairn` becomes the built binary and http://localhost:8080
// the test server's URL.
func quickstartScript(md, bin, url string) (script string, blocks int) {
	var out strings.Builder
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			blocks++
			continue
		case in && strings.HasPrefix(line, "```"):
			in = false
			continue
		case !in:
			continue
		case strings.Contains(line, "cairn serve"), strings.HasPrefix(line, "xdg-open "):
			out.WriteString("# (not run here) " + line + "\n")
			continue
		case strings.Contains(line, "events tail"):
			cmd, _, _ := strings.Cut(line, "#")
			line = "timeout 3 " + strings.TrimSpace(cmd) + " || [ $? = 124 ]"
		}
		line = strings.ReplaceAll(line, "go run ./cmd/cairn", bin)
		line = strings.ReplaceAll(line, "http://localhost:8080", url)
		out.WriteString(line + "\n")
	}
	return out.String(), blocks
}

// TestQuickstart runs every command of docs/quickstart.md against a real
// server, as a newcomer would from the repository (the operator key in
// ./cairn_data/admin.key), so the quickstart cannot rot. curl fails on an
// HTTP error here, which the guide's curl -sS would not show.
func TestQuickstart(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "timeout", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	bin := buildBinary(t, "cairn", ".", false)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn_data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The key the first start would have generated.
	if err := os.WriteFile(filepath.Join(dataDir, "admin.key"), []byte(testAdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startInstance(t, dataDir)
	for _, name := range []string{"README.md", "examples"} {
		if err := os.Symlink(filepath.Join(repo, name), filepath.Join(work, name)); err != nil {
			t.Fatal(err)
		}
	}
	md, err := os.ReadFile(filepath.Join(repo, "docs", "quickstart.md"))
	if err != nil {
		t.Fatal(err)
	}
	body, blocks := quickstartScript(string(md), bin, in.url)
	if blocks < 4 {
		t.Fatalf("docs/quickstart.md has %d sh blocks; the test expects the guide's four or more", blocks)
	}
	script := `set -euo pipefail
curl() { command curl --fail-with-body "$@" || { rc=$?; [ "$rc" = 23 ] || return "$rc"; }; }  # 23: head closed the pipe
set -x
` + body
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = work
	// A newcomer's shell: no CAIRN_ variables, a home without a login
	// file; setup.sh reads CAIRN_URL for its server.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "CAIRN_URL=" + in.url}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("quickstart failed: %v\n--- stdout\n%s\n--- trace\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{`"Ship it"`, "scan of index by_done", `"id": "readme"`, `"id": "editors"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("quickstart output lacks %s:\n%s", want, out.String())
		}
	}
	copied, err := os.ReadFile(filepath.Join(work, "README.copy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if readme, _ := os.ReadFile(filepath.Join(repo, "README.md")); !bytes.Equal(copied, readme) {
		t.Error("files download did not give README.md back")
	}
}
