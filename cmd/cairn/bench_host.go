package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
)

// benchChild is `cairn serve` run as a child process, for the project-count
// figures: its RSS and restart time are the server's alone, not mixed with
// the bench's own heap and client.
type benchChild struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

// startBenchChild execs bin serve on dataDir and returns once it listens.
func startBenchChild(ctx context.Context, bin, dataDir, adminKey, sync string, stderr io.Writer) (*benchChild, error) {
	cmd := exec.CommandContext(ctx, bin, "serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0",
		"--nats-url=", "--sync", sync, "--log-level", "warn")
	// The child runs embedded NATS: credentials meant for --nats-url in the
	// bench's environment would make it refuse to start.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CAIRN_NATS_") })
	cmd.Env = append(env, "CAIRN_ADMIN_KEY="+adminKey)
	cmd.Stderr = stderr
	// On the bench's cancellation, stop the server gracefully, not SIGKILL.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("serve child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	c := &benchChild{cmd: cmd, done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "cairn listening on "); ok {
				urlc <- u
			}
		}
		c.done <- cmd.Wait()
	}()
	select {
	case c.url = <-urlc:
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("serve child exited during start: %v", err)
	case <-time.After(10 * time.Minute):
		_ = cmd.Process.Kill()
		return nil, errors.New("serve child did not listen within 10 minutes")
	}
}

// stop sends SIGTERM and waits for the child to exit.
func (c *benchChild) stop() error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop serve child: %w", err)
	}
	if err := <-c.done; err != nil {
		return fmt.Errorf("serve child: %w", err)
	}
	return nil
}

// procStats is what /proc says about a process.
type procStats struct {
	RSSKiB, HWMKiB int64
	Threads        int64
	FDs            int
}

// readProcStats reads VmRSS, VmHWM and Threads from /proc/<pid>/status and
// counts its open file descriptors.
func readProcStats(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("read process status: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch name {
		case "VmRSS":
			st.RSSKiB = n
		case "VmHWM":
			st.HWMKiB = n
		case "Threads":
			st.Threads = n
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		st.FDs = len(fds)
	}
	return st, nil
}

// benchHTTPClient speaks HTTP/2 without TLS (h2c), as gRPC clients do; all
// calls share one connection, multiplexed.
func benchHTTPClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

func benchConnect(url string) *connect.Client {
	return connect.NewClient(connecthttp.NewTransport(benchHTTPClient(), url))
}

// authed attaches the bearer credential to a call.
func authed(ctx context.Context, token string) context.Context {
	ctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("Authorization", "Bearer "+token)
	return ctx
}

// waitReady polls GET /readyz until it answers 200.
func waitReady(ctx context.Context, hc *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if err != nil {
			return err
		}
		if res, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/readyz did not answer 200 within %s: %w", url, timeout, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startBenchServer runs the server in-process, so the raw JetStream figures
// and the end-to-end ones come from one server: the bench reaches the
// node's store and projections directly and the API over loopback HTTP.
func startBenchServer(ctx context.Context, cfg *config, logger *slog.Logger) (*server, error) {
	s, err := startServer(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, benchHTTPClient(), s.url, time.Minute); err != nil {
		s.shutdown(logger)
		return nil, err
	}
	return s, nil
}
