//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the side a program writes to (its
// terminal) and the side that reads what it wrote.
func openPTY(t *testing.T) (term, reader *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return s, m
}

// TestCLIOnATerminal: the built binary writes a table when stdout is a
// terminal and JSON when it is a pipe; an upload's progress goes to a
// terminal's stderr, and (TestCLIGolden) not to a pipe.
func TestCLIOnATerminal(t *testing.T) {
	bin := buildBinary(t, "cairn", ".", false)
	in := startInstance(t, t.TempDir())
	env := []string{"CAIRN_URL=" + in.url, "CAIRN_KEY=" + testAdminKey, "HOME=" + t.TempDir()}
	onTTY := func(args ...string) string {
		t.Helper()
		term, reader := openPTY(t)
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, term, term
		// Read while it runs (a terminal's buffer is small); the read ends
		// with EIO once no one holds the terminal open.
		var out bytes.Buffer
		done := make(chan struct{})
		go func() { io.Copy(&out, reader); close(done) }()
		err := cmd.Run()
		term.Close()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("reading the terminal did not end")
		}
		return strings.ReplaceAll(out.String(), "\r\n", "\n")
	}
	onTTY("projects", "create", "tty", "--name", "On a terminal")
	if out := onTTY("projects", "list"); !strings.HasPrefix(out, "ID   NAME           MAX STREAM BYTES  REQUESTS/S  BURST  IN FLIGHT  CREATED\ntty  On a terminal  0                 0           0      0          ") {
		t.Errorf("projects list on a terminal:\n%q", out)
	}
	cmd := exec.Command(bin, "projects", "list")
	cmd.Env = env
	if out, err := cmd.Output(); err != nil || !bytes.HasPrefix(out, []byte("[\n  {")) {
		t.Errorf("projects list into a pipe: %v\n%s", err, out)
	}
	onTTY("buckets", "create", "b", "--project", "tty")
	f := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(f, bytes.Repeat([]byte("x"), 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := onTTY("files", "upload", f, "--project", "tty", "--bucket", "b", "--id", "big"); !strings.Contains(out, "\ruploaded 8.0 MiB of 8.0 MiB\n") {
		t.Errorf("upload on a terminal shows no progress:\n%q", out)
	}
}
