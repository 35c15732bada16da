package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The crash test runs the real binary as a child process, kills it with
// SIGKILL in the middle of sustained writes, and checks on restart that every
// acknowledged write is in the log exactly once and that the read models
// agree with the log and with a fresh rebuild (DESIGN.md §5, §8).

const (
	crashProject  = "crash"
	crashKeys     = 16
	crashWriters  = 8
	crashLoadTime = 1500 * time.Millisecond
	// crashStopBound is how long a graceful stop may take: the 30 s drain bound
	// in serve is for slow clients; with only unary writes in flight it
	// should take well under a second.
	crashStopBound = 20 * time.Second
)

// crashRaceEnabled reports whether this test binary was built with -race; the
// child is then built with -race too, so the server's own goroutines are
// checked under the crash load.
func crashRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// buildCrashBinary builds cairn from this package (with -race when the
// tests run with it).
func buildCrashBinary(t *testing.T) string {
	t.Helper()
	return buildBinary(t, "cairn", ".", crashRaceEnabled())
}

// built is one binary built for the tests.
type built struct {
	once sync.Once
	path string
	err  error
}

// builds holds the binaries built by this test process, by package.
var builds sync.Map

// buildBinary builds pkg (resolved from this package's directory, so the
// main module's go.mod picks versions) once per test process, at a fixed
// path per source tree under the temp dir, so repeated runs rebuild
// incrementally and leave no pile of binaries.
func buildBinary(t *testing.T, name, pkg string, race bool) string {
	t.Helper()
	v, _ := builds.LoadOrStore(fmt.Sprintf("%s|race=%v", pkg, race), &built{})
	b := v.(*built)
	b.once.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			b.err = err
			return
		}
		h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|race=%v|%d", wd, pkg, race, os.Getuid())))
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("cairn-test-%s-%x", name, h[:6]))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.err = err
			return
		}
		args := []string{"build", "-o", filepath.Join(dir, name)}
		if race {
			args = append(args, "-race")
		}
		// go test puts its own GOROOT/bin first on PATH.
		if out, err := exec.Command("go", append(args, pkg)...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			return
		}
		b.path = filepath.Join(dir, name)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// crashChild is `cairn serve` running as a separate process.
type crashChild struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	logPath string
	done    chan struct{} // closed when the process has exited
	state   *os.ProcessState
	clients
}

// crashFreeAddr returns a loopback address with a port nobody listens on now.
func crashFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCrashChild starts the binary on dataDir and waits until /readyz answers
// 200. A port taken between crashFreeAddr and the child's listen is retried.
func startCrashChild(t *testing.T, bin, dataDir, logName string, extra ...string) *crashChild {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryStartCrashChild(t, bin, dataDir, fmt.Sprintf("%s-%d.log", logName, attempt), extra...)
		if err == nil {
			return c
		}
		if attempt < 3 && strings.Contains(c.logTail(), "address already in use") {
			continue
		}
		t.Fatalf("%v\n--- child log ---\n%s", err, c.logTail())
	}
}

func tryStartCrashChild(t *testing.T, bin, dataDir, logName string, extra ...string) (*crashChild, error) {
	c, _, err := launchChild(t, childSpec{owner: t, bin: bin, dataDir: dataDir, logName: logName,
		args: append([]string{"--log-level", "warn"}, extra...), env: []string{"CAIRN_ADMIN_KEY=" + testAdminKey}})
	return c, err
}

// childSpec is one `cairn serve` child process to start.
type childSpec struct {
	// owner's Cleanup kills the process if it still runs.
	owner            *testing.T
	bin, dataDir     string
	logName          string   // log file beside the data dir
	args             []string // after serve --data-dir --http-addr
	env              []string // CAIRN_* settings; the rest of the environment is inherited, less CAIRN_*
	onReady          func(*crashChild)
	readyPoll, probe time.Duration
}

// readyObservation is what /readyz answered until the first 200.
type readyObservation struct {
	notReady int         // 503 answers
	other    map[int]int // any other status (want none)
	took     time.Duration
}

// launchChild starts `cairn serve` on a free loopback port and waits until
// /readyz answers 200, recording every answer before.
func launchChild(t *testing.T, s childSpec) (*crashChild, readyObservation, error) {
	obs := readyObservation{other: map[int]int{}}
	addr := crashFreeAddr(t)
	c := &crashChild{t: t, url: "http://" + addr, logPath: filepath.Join(filepath.Dir(s.dataDir), s.logName), done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(s.dataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(s.bin, append([]string{"serve", "--data-dir", s.dataDir, "--http-addr", addr}, s.args...)...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	env := slices.Clone(s.env)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			env = append(env, kv)
		}
	}
	c.cmd.Env = env
	start := time.Now()
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		c.state = c.cmd.ProcessState
		logf.Close()
		close(c.done)
	}()
	s.owner.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	c.client = connect.NewClient(connecthttp.NewTransport(h2cClient(), c.url))
	probe := &http.Client{Timeout: cmp.Or(s.probe, time.Second), Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			return c, obs, fmt.Errorf("cairn serve exited during start: %v", c.state)
		default:
		}
		if time.Now().After(deadline) {
			return c, obs, fmt.Errorf("not ready within 60s (%d× 503, other statuses %v)", obs.notReady, obs.other)
		}
		if resp, err := probe.Get(c.url + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				obs.took = time.Since(start)
				if s.onReady != nil {
					s.onReady(c)
				}
				return c, obs, nil
			case http.StatusServiceUnavailable:
				obs.notReady++
			default:
				obs.other[resp.StatusCode]++
			}
		}
		time.Sleep(cmp.Or(s.readyPoll, 20*time.Millisecond))
	}
}

func (c *crashChild) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// signal sends sig and waits (up to bound) for the process to exit.
func (c *crashChild) signal(sig os.Signal, bound time.Duration) (*os.ProcessState, time.Duration) {
	c.t.Helper()
	start := time.Now()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-c.done:
		return c.state, time.Since(start)
	case <-time.After(bound):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Fatalf("cairn serve did not exit within %s of %v\n--- child log ---\n%s", bound, sig, c.logTail())
		return nil, 0
	}
}

// stopGracefully sends SIGTERM and requires exit status 0 within crashStopBound.
func (c *crashChild) stopGracefully() {
	c.t.Helper()
	st, took := c.signal(syscall.SIGTERM, crashStopBound)
	if !st.Success() {
		c.t.Fatalf("cairn serve exited with %v after SIGTERM (want status 0)\n--- child log ---\n%s", st, c.logTail())
	}
	c.t.Logf("graceful stop took %s", took.Round(time.Millisecond))
}

// crashAck is one acknowledged write.
type crashAck struct {
	key, name string
	seq       uint64
}

// crashLoad runs crashWriters goroutines renaming random keys until stop is
// closed. Every acknowledged rename is returned. Errors before `down` is set
// (the test is about to signal the server) are unexpected, except Aborted
// (too many concurrent writers on one key, which the API may answer).
type crashLoad struct {
	stop       chan struct{}
	down       atomic.Bool
	wg         sync.WaitGroup
	mu         sync.Mutex
	acks       []crashAck
	unexpected []error
	aborted    atomic.Int64
	failed     atomic.Int64
}

func startCrashLoad(c *crashChild, phase string, keyIDs []string) *crashLoad {
	l := &crashLoad{stop: make(chan struct{})}
	for g := range crashWriters {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := keyIDs[rand.IntN(len(keyIDs))]
				name := fmt.Sprintf("%s-w%d-%d", phase, g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				op, info := as(ctx, testAdminKey)
				_, err := c.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: crashProject, KeyId: key, Name: &name})
				cancel()
				if err == nil {
					seq, perr := strconv.ParseUint(info.ResponseHeader().Get("Cairn-Seq"), 10, 64)
					l.mu.Lock()
					if perr != nil || seq == 0 {
						l.unexpected = append(l.unexpected, fmt.Errorf("write of %s acknowledged without a valid Cairn-Seq %q", name, info.ResponseHeader().Get("Cairn-Seq")))
					} else {
						l.acks = append(l.acks, crashAck{key: key, name: name, seq: seq})
					}
					l.mu.Unlock()
					continue
				}
				switch {
				case connect.CodeOf(err) == connect.CodeAborted:
					l.aborted.Add(1)
				case l.down.Load():
					l.failed.Add(1)
					time.Sleep(5 * time.Millisecond) // the server is gone; do not spin
				default:
					l.mu.Lock()
					l.unexpected = append(l.unexpected, fmt.Errorf("write of %s: %w", name, err))
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

// finish stops the writers and returns the acknowledged writes.
func (l *crashLoad) finish(t *testing.T, phase string) []crashAck {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for i, err := range l.unexpected {
		if i == 5 {
			t.Errorf("… and %d more unexpected errors", len(l.unexpected)-5)
			break
		}
		t.Errorf("%s: unexpected write error while the server was up: %v", phase, err)
	}
	t.Logf("%s: %d writes acknowledged, %d aborted (conflict), %d failed after the signal",
		phase, len(l.acks), l.aborted.Load(), l.failed.Load())
	if len(l.acks) == 0 {
		t.Fatalf("%s: no write was acknowledged; the test proves nothing", phase)
	}
	return l.acks
}

// crashKeyEvent is one event of a key's audit log.
type crashKeyEvent struct {
	seq  uint64
	id   string
	name string
}

func crashKeyOf(env *eventsv1.Envelope) *eventsv1.Key {
	switch p := env.GetPayload().(type) {
	case *eventsv1.Envelope_KeyCreated:
		return p.KeyCreated.GetKey()
	case *eventsv1.Envelope_KeyUpdated:
		return p.KeyUpdated.GetKey()
	case *eventsv1.Envelope_KeyDeleted:
		return p.KeyDeleted.GetKey()
	}
	return nil
}

// crashKeyLog reads a key's whole audit log, page by page.
func crashKeyLog(t *testing.T, c *crashChild, keyID string) []crashKeyEvent {
	t.Helper()
	var out []crashKeyEvent
	token := ""
	for {
		op, _ := as(context.Background(), testAdminKey)
		res, err := c.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: crashProject,
			Subject: "keys." + keyID + ".>", PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("list events of key %s: %v", keyID, err)
		}
		for _, e := range res.GetEvents() {
			k := crashKeyOf(e.GetEnvelope())
			if k == nil || k.GetId() != keyID {
				t.Fatalf("key %s: event seq %d on %s is not about this key: %v", keyID, e.GetSeq(), e.GetSubject(), e.GetEnvelope())
			}
			out = append(out, crashKeyEvent{seq: e.GetSeq(), id: e.GetEnvelope().GetId(), name: k.GetName()})
		}
		if token = res.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// crashVerify checks, against a running child, that every acknowledged write is
// in the log at its acknowledged sequence exactly once, that no event id
// repeats, and that the read model of every key is its log's last event.
func crashVerify(t *testing.T, c *crashChild, keyIDs []string, acks []crashAck) {
	t.Helper()
	byKey := map[string][]crashAck{}
	for _, a := range acks {
		byKey[a.key] = append(byKey[a.key], a)
	}
	ids := map[string]uint64{}
	total := 0
	for _, keyID := range keyIDs {
		evs := crashKeyLog(t, c, keyID)
		total += len(evs)
		if len(evs) == 0 {
			t.Errorf("key %s: empty log", keyID)
			continue
		}
		atSeq := map[uint64]crashKeyEvent{}
		names := map[string]int{}
		for i, e := range evs {
			if i > 0 && e.seq <= evs[i-1].seq {
				t.Errorf("key %s: sequences not increasing: %d after %d", keyID, e.seq, evs[i-1].seq)
			}
			if prev, dup := ids[e.id]; dup {
				t.Errorf("key %s: event id %s stored twice (seq %d and %d)", keyID, e.id, prev, e.seq)
			}
			ids[e.id] = e.seq
			atSeq[e.seq] = e
			names[e.name]++
		}
		for _, a := range byKey[keyID] {
			e, ok := atSeq[a.seq]
			switch {
			case !ok:
				t.Errorf("LOST: acknowledged write %q to key %s at seq %d is not in the log", a.name, keyID, a.seq)
			case e.name != a.name:
				t.Errorf("key %s: seq %d holds %q, but %q was acknowledged at that seq", keyID, a.seq, e.name, a.name)
			}
			if n := names[a.name]; n != 1 {
				t.Errorf("key %s: acknowledged name %q appears %d times in the log (want exactly once)", keyID, a.name, n)
			}
		}
		op, _ := as(context.Background(), testAdminKey)
		got, err := c.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: crashProject, KeyId: keyID})
		if err != nil {
			t.Errorf("get key %s: %v", keyID, err)
			continue
		}
		if last := evs[len(evs)-1]; got.GetKey().GetName() != last.name {
			t.Errorf("key %s: read model has name %q, its log's last event (seq %d) %q",
				keyID, got.GetKey().GetName(), last.seq, last.name)
		}
	}
	t.Logf("verified %d acknowledged writes against %d logged key events", len(acks), total)
}

// crashCheckRebuild opens the stopped data dir in-process and requires that the
// read models the server built incrementally, across the crash, equal a
// fresh rebuild from the streams, byte for byte.
func crashCheckRebuild(t *testing.T, dataDir string, extra []string) {
	t.Helper()
	cfg := &config{DataDir: dataDir, Sync: defaultSync}
	for i := 0; i+1 < len(extra); i++ {
		if extra[i] == "--sync" {
			cfg.Sync = extra[i+1]
		}
	}
	ctx := context.Background()
	n, err := openNode(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open data dir in-process: %v", err)
	}
	defer n.close()
	checkRebuild(t, n, "", "after the crash")
	checkRebuild(t, n, crashProject, "after the crash")
}

// crashDiffKV describes the first difference between two snapshots ("" if equal).
func crashDiffKV(a, b []projections.KV) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		x, y := a[i], b[i]
		if x.Key != y.Key || !bytes.Equal(x.Value, y.Value) || x.ExpiresAt != y.ExpiresAt {
			return fmt.Sprintf("entry %d: incremental %q (%d bytes, expires %d), rebuilt %q (%d bytes, expires %d)",
				i, x.Key, len(x.Value), x.ExpiresAt, y.Key, len(y.Value), y.ExpiresAt)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("incremental has %d entries, rebuilt %d", len(a), len(b))
	}
	return ""
}

func TestCrashDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills real cairn processes; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL/SIGTERM semantics")
	}
	bin := buildCrashBinary(t)
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"sync=always", []string{"--sync", "always"}},
		{"sync=default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			crashScenario(t, bin, tc.extra)
		})
	}
}

func crashScenario(t *testing.T, bin string, extra []string) {
	dataDir := filepath.Join(t.TempDir(), "data")

	// 1. A project and its keys.
	c := startCrashChild(t, bin, dataDir, "start1", extra...)
	op, _ := as(context.Background(), testAdminKey)
	if _, err := c.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: crashProject, Name: "Crash"}); err != nil {
		t.Fatal(err)
	}
	var keyIDs []string
	var acks []crashAck
	for i := range crashKeys {
		op, info := as(context.Background(), testAdminKey)
		res, err := c.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: crashProject, Name: fmt.Sprintf("key-%d", i),
			Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
		if err != nil {
			t.Fatal(err)
		}
		seq, _ := strconv.ParseUint(info.ResponseHeader().Get("Cairn-Seq"), 10, 64)
		keyIDs = append(keyIDs, res.GetKey().GetId())
		acks = append(acks, crashAck{key: res.GetKey().GetId(), name: res.GetKey().GetName(), seq: seq})
	}

	// 2. Sustained writes, then SIGKILL mid-load.
	l := startCrashLoad(c, "kill", keyIDs)
	time.Sleep(crashLoadTime)
	l.down.Store(true)
	if st, _ := c.signal(syscall.SIGKILL, 10*time.Second); st.Success() {
		t.Fatalf("SIGKILL: exit %v", st)
	}
	acks = append(acks, l.finish(t, "SIGKILL phase")...)

	// 3. Restart: every acknowledged write is there; read models agree.
	c = startCrashChild(t, bin, dataDir, "start2", extra...)
	crashVerify(t, c, keyIDs, acks)

	// 4. Sustained writes, then a graceful SIGTERM mid-load: exit 0.
	l = startCrashLoad(c, "term", keyIDs)
	time.Sleep(crashLoadTime / 2)
	l.down.Store(true)
	c.stopGracefully()
	acks = append(acks, l.finish(t, "SIGTERM phase")...)

	// 5. A second start sees everything, and stops cleanly again.
	c = startCrashChild(t, bin, dataDir, "start3", extra...)
	crashVerify(t, c, keyIDs, acks)
	c.stopGracefully()
	// The restarted projectors resumed from their checkpoints: a read model
	// ahead of (or foreign to) its stream after a mere process crash would
	// mean the stream lost messages it had stored.
	logs, _ := filepath.Glob(filepath.Join(filepath.Dir(dataDir), "start[23]-*.log"))
	for _, name := range logs {
		b, _ := os.ReadFile(name)
		if bytes.Contains(b, []byte("inconsistent with its stream")) || bytes.Contains(b, []byte("PROJECTOR STOPPED")) {
			t.Errorf("%s: after a process crash the read model disagreed with its stream:\n%s", filepath.Base(name), b)
		}
	}

	// 6. Read models equal a fresh rebuild.
	crashCheckRebuild(t, dataDir, extra)
}
