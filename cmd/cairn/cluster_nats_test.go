package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A real three-node NATS cluster on loopback for the cluster tests: the
// nats-server binary is built once per test process from the module version
// in go.mod, each node runs as a child process from a small config file,
// with its own JetStream store directory.

// buildNATSServer builds github.com/nats-io/nats-server/v2 at the version
// go.mod requires.
func buildNATSServer(t *testing.T) string {
	t.Helper()
	return buildBinary(t, "nats-server", "github.com/nats-io/nats-server/v2", false)
}

// natsProc is one nats-server of the cluster; it keeps its ports and store
// across a kill and restart.
type natsProc struct {
	name                          string
	clientPort, routePort, hcPort int
	storeDir, confPath, logPath   string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

func (p *natsProc) clientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.clientPort) }

func (p *natsProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// natsCluster is three (or more) clustered nats-servers on 127.0.0.1.
type natsCluster struct {
	owner *testing.T // the top-level test: the processes live as long as it
	bin   string
	dir   string
	procs []*natsProc
}

// freePorts returns n distinct loopback ports nobody listens on now (all
// held open together, so none is handed out twice).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startNATSCluster writes one config per node, starts them all, and waits
// until every node reports JetStream healthy with a meta leader elected. The
// processes are killed when t ends.
func startNATSCluster(t *testing.T, size int) *natsCluster {
	t.Helper()
	return startNATSClusterConf(t, size, func(p *natsProc, routes string) string {
		return fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
max_payload: 8MB
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: "cairn-test"
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, p.name, p.clientPort, p.hcPort, p.storeDir, p.routePort, routes)
	})
}

// startNATSClusterConf is startNATSCluster with each node's config file
// written by conf, given the node (ports, store) and its routes to the
// others, quoted and comma-separated.
func startNATSClusterConf(t *testing.T, size int, conf func(p *natsProc, routes string) string) *natsCluster {
	t.Helper()
	c := &natsCluster{owner: t, bin: buildNATSServer(t), dir: filepath.Join(t.TempDir(), "nats")}
	ports := freePorts(t, 3*size)
	for i := range size {
		p := &natsProc{name: fmt.Sprintf("n%d", i+1), clientPort: ports[3*i], routePort: ports[3*i+1], hcPort: ports[3*i+2]}
		p.storeDir = filepath.Join(c.dir, p.name, "js")
		p.confPath = filepath.Join(c.dir, p.name, "nats.conf")
		c.procs = append(c.procs, p)
	}
	for _, p := range c.procs {
		var routes []string
		for _, q := range c.procs {
			if q != p {
				routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", q.routePort)))
			}
		}
		conf := conf(p, strings.Join(routes, ", "))
		if err := os.MkdirAll(p.storeDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.procs {
		c.start(t, i)
	}
	for i := range c.procs {
		c.waitHealthy(t, i, 30*time.Second)
	}
	return c
}

// urls is the --nats-url a Cairn node gets: every node of the cluster.
func (c *natsCluster) urls() string {
	var us []string
	for _, p := range c.procs {
		us = append(us, p.clientURL())
	}
	return strings.Join(us, ",")
}

// start (re)starts node i on its own ports and store directory.
func (c *natsCluster) start(t *testing.T, i int) {
	t.Helper()
	p := c.procs[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	p.logPath = filepath.Join(c.dir, fmt.Sprintf("%s-start%d.log", p.name, p.starts))
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", p.confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start nats-server %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	c.owner.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// kill sends SIGKILL to node i and waits for it to be gone.
func (c *natsCluster) kill(t *testing.T, i int) {
	t.Helper()
	p := c.procs[i]
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill nats-server %s: %v", p.name, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("nats-server %s did not die within 10s of SIGKILL", p.name)
	}
}

// waitHealthy waits until node i answers /healthz 200 (JetStream enabled,
// a meta leader known, its streams current) and reports a meta leader.
func (c *natsCluster) waitHealthy(t *testing.T, i int, bound time.Duration) {
	t.Helper()
	p := c.procs[i]
	hc := &http.Client{Timeout: time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", p.hcPort)
	deadline := time.Now().Add(bound)
	last := ""
	for {
		if !p.running() {
			t.Fatalf("nats-server %s exited while waiting for it to be healthy\n%s", p.name, tailFile(p.logPath, 4<<10))
		}
		status, body := httpGet(hc, base+"/healthz")
		if status == http.StatusOK {
			var jsz struct {
				Meta *struct {
					Leader string `json:"leader"`
				} `json:"meta_cluster"`
			}
			_, jb := httpGet(hc, base+"/jsz")
			if json.Unmarshal([]byte(jb), &jsz) == nil && jsz.Meta != nil && jsz.Meta.Leader != "" {
				return
			}
			last = "no meta leader in /jsz: " + jb
		} else {
			last = fmt.Sprintf("/healthz %d %s", status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server %s not healthy within %s: %s\n%s", p.name, bound, last, tailFile(p.logPath, 4<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpGet(hc *http.Client, url string) (int, string) {
	res, err := hc.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, strings.TrimSpace(string(b))
}

// connect returns a plain NATS connection to the cluster, for inspecting
// streams from the test.
func (c *natsCluster) connect(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.urls(), nats.Name("cairn-cluster-test"), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamInfo returns a stream's info, retrying through a leader election.
func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var s jetstream.Stream
		if s, err = js.Stream(ctx, name); err == nil {
			var info *jetstream.StreamInfo
			info, err = s.Info(ctx)
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				cancel()
				return info
			}
			if err == nil {
				err = fmt.Errorf("no leader")
			}
		}
		cancel()
	}
	t.Fatalf("stream %s info: %v", name, err)
	return nil
}

// index returns the position of the node named name.
func (c *natsCluster) index(t *testing.T, name string) int {
	t.Helper()
	for i, p := range c.procs {
		if p.name == name {
			return i
		}
	}
	t.Fatalf("no nats node named %q", name)
	return -1
}

// tailFile returns the last n bytes of a file, without the lines that
// contain any of skip (a restarting node's route-dial noise).
func tailFile(path string, n int, skip ...string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	s := string(b)
	if len(skip) > 0 {
		var keep []string
	lines:
		for _, l := range strings.SplitAfter(s, "\n") {
			for _, sk := range skip {
				if strings.Contains(l, sk) {
					continue lines
				}
			}
			keep = append(keep, l)
		}
		s = strings.Join(keep, "")
	}
	if len(s) > n {
		s = s[len(s)-n:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		return "…\n" + s
	}
	return s
}

// metaLeader names the JetStream meta leader as a running node sees it.
func (c *natsCluster) metaLeader() string {
	hc := &http.Client{Timeout: time.Second}
	for _, p := range c.procs {
		if !p.running() {
			continue
		}
		var jsz struct {
			Meta *struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		_, body := httpGet(hc, fmt.Sprintf("http://127.0.0.1:%d/jsz", p.hcPort))
		if json.Unmarshal([]byte(body), &jsz) == nil && jsz.Meta != nil && jsz.Meta.Leader != "" {
			return jsz.Meta.Leader
		}
	}
	return "?"
}
