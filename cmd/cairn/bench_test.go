package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchSmoke runs cairn bench with tiny counts so it cannot rot: every
// phase runs against a real in-process server and prints its figures.
func TestBenchSmoke(t *testing.T) {
	args := []string{"bench", "--data-dir", t.TempDir(), "--ops", "10", "--concurrency", "1,4",
		"--sync", "100ms", "--curve", "100ms,always", "--curve-concurrency", "4", "--keys", "3",
		"--events", "200", "--rounds", "1", "--cpuprofile", filepath.Join(t.TempDir(), "cpu")}
	if !testing.Short() {
		// (d) runs `cairn serve` as a child process: build the binary.
		bin := filepath.Join(t.TempDir(), "cairn")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		args = append(args, "--projects", "3,5", "--bin", bin)
	}
	var out bytes.Buffer
	env := map[string]string{"CAIRN_ADMIN_KEY": testAdminKey}
	if err := run(context.Background(), args, &out, io.Discard, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	want := []string{
		"raw load phase=publish sync=100ms conc=1 ops=10 errors=0",
		"raw load phase=write sync=100ms conc=4 ops=10 errors=0",
		"raw load phase=write sync=always conc=4 ops=10 errors=0",
		"raw load phase=getkey sync=100ms conc=4 ops=10 errors=0",
		"raw replay sync=100ms events=200",
		"(b)/(a) at concurrency 4",
		"Sync-interval curve at concurrency 4",
	}
	if !testing.Short() {
		want = append(want, "raw projects total=5 created=2")
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if t.Failed() {
		return
	}
	for line := range strings.Lines(out.String()) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "cpu profile: "); ok {
			if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
				t.Errorf("cpu profile %s missing or empty: %v", p, err)
			}
		}
	}
}
