package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
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
	"github.com/coder/websocket"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// fanoutServerEnv makes the test binary a fan-out benchmark server
// (TestMain): "cairn" runs `cairn serve`, "bare" a bare per-message
// coder/websocket broadcast. Each is its own process, so that its CPU time
// is the server's alone, not the subscribers'.
const fanoutServerEnv = "CAIRN_FANOUT_SERVER"

// fanoutProfileEnv names a file prefix: each server writes a CPU profile of
// each phase to <prefix>.<mode>.<phase>.cpu (idle, steady, burst: the
// phase alone, not the set-up) and its allocations to <prefix>.<mode>.allocs.
const fanoutProfileEnv = "CAIRN_FANOUT_PROFILE"

// fanoutBaseEnv names a test binary of this package built from another
// commit, whose Cairn server runs beside this one (server=cairn-base).
const fanoutBaseEnv = "CAIRN_FANOUT_BASE_EXE"

// fanoutConfig is the benchmark's load; environment variables change it
// (the defaults keep a run short).
type fanoutConfig struct {
	subs  int           // CAIRN_FANOUT_SUBS: WebSocket subscribers
	rate  int           // CAIRN_FANOUT_RATE: writes per second of the steady phase
	dur   time.Duration // CAIRN_FANOUT_DURATION: length of the steady phase
	burst int           // CAIRN_FANOUT_BURST: events written at once to saturate the fan-out
	procs string        // CAIRN_FANOUT_SERVER_PROCS: the servers' GOMAXPROCS (default: all cores)
}

func fanoutConfigFromEnv(b *testing.B) fanoutConfig {
	c := fanoutConfig{subs: 100, rate: 10, dur: 2 * time.Second, burst: 100, procs: os.Getenv("CAIRN_FANOUT_SERVER_PROCS")}
	num := func(name string, into *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				b.Fatalf("%s=%q: want a positive number", name, v)
			}
			*into = n
		}
	}
	num("CAIRN_FANOUT_SUBS", &c.subs)
	num("CAIRN_FANOUT_RATE", &c.rate)
	num("CAIRN_FANOUT_BURST", &c.burst)
	if v := os.Getenv("CAIRN_FANOUT_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("CAIRN_FANOUT_DURATION=%q: want a duration", v)
		}
		c.dur = d
	}
	return c
}

// BenchmarkRealtimeFanout runs Cairn's WebSocket fan-out beside a bare
// per-message coder/websocket broadcast of the same frames (captured from
// Cairn), each server in its own process, the subscribers in this one, all
// on loopback. Per server it reports, for a steady phase of rate writes/s
// to subs subscribers: p50/p99 latency from the write's start to each
// receipt and the server's CPU per delivery; and for a burst of events
// written at once (saturation): deliveries/s from the burst's first
// delivery to its last, and the server's CPU per delivery. One run per invocation; defaults are small (100 subscribers,
// 10 writes/s for 2 s, a burst of 100 events). The figures:
//
//	CAIRN_FANOUT_SUBS=1000 CAIRN_FANOUT_DURATION=5s CAIRN_FANOUT_BURST=300 \
//	  go test ./cmd/cairn -run '^$' -bench RealtimeFanout -benchtime=1x
//
// CAIRN_FANOUT_PROFILE=/tmp/fanout adds CPU and allocation profiles of each
// server. CAIRN_FANOUT_BASE_EXE names this benchmark's test binary built
// from another commit (go test -c): its Cairn runs first as
// server=cairn-base, so a change is measured beside its baseline in the
// same run (with -count N the servers alternate).
func BenchmarkRealtimeFanout(b *testing.B) {
	cfg := fanoutConfigFromEnv(b)
	b.Logf("%d subscribers, %d writes/s for %v, bursts of %d events", cfg.subs, cfg.rate, cfg.dur, cfg.burst)
	if exe := os.Getenv(fanoutBaseEnv); exe != "" {
		b.Run("server=cairn-base", func(b *testing.B) { benchFanoutExe(b, cfg, exe, "cairn", "cairn-base", nil) })
	}
	// Cairn first: the bare broadcast sends the frames Cairn sent.
	var frame []byte
	b.Run("server=cairn", func(b *testing.B) { frame = benchFanout(b, cfg, "cairn", nil) })
	// The fan-out without its budget (every core, no deliveries budget),
	// as it was before: what the budget costs a project alone.
	b.Run("server=cairn-unbounded", func(b *testing.B) { benchFanout(b, cfg, "cairn-unbounded", nil) })
	if frame == nil {
		// Run alone (-bench .../server=bare): a frame of the same shape.
		frame = []byte(`{"event":{"sequence":"12","events":["databases.main.collections.posts.documents.d1.create","databases.*.collections.*.documents.*.create","databases.main.collections.posts.documents.d1"],"channels":["databases.main.collections.posts.documents"],"timestamp":"2026-01-01T00:00:00.000000000Z","kind":"EVENT_KIND_CREATE","payload":{"id":"d1","collectionId":"posts","databaseId":"main","projectId":"bench","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","permissions":[],"sequence":"12","data":{"title":"0000000000000000000"}}}}`)
	}
	b.Run("server=bare", func(b *testing.B) { benchFanout(b, cfg, "bare", frame) })
}

// fanoutChild is a benchmark server process.
type fanoutChild struct {
	cmd *exec.Cmd
	url string
	in  io.WriteCloser
	// acks has a line for each command the child carried out.
	acks chan string
}

// command tells the child to start ("profile <phase>") or stop ("stop")
// a CPU profile and waits until it has.
func (c *fanoutChild) command(b *testing.B, cmd string) {
	if os.Getenv(fanoutProfileEnv) == "" {
		return
	}
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		b.Fatal(err)
	}
	select {
	case <-c.acks:
	case <-time.After(30 * time.Second):
		b.Fatalf("the server did not carry out %q", cmd)
	}
}

// startFanoutChild starts exe (a test binary of this package) as the
// server mode; profiles are named after name.
func startFanoutChild(b *testing.B, exe, mode, name, procs string) *fanoutChild {
	b.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CAIRN_NATS_") || strings.HasPrefix(kv, "GOMAXPROCS=")
	})
	cmd.Env = append(env, fanoutServerEnv+"="+mode, "CAIRN_ADMIN_KEY="+testAdminKey, "CAIRN_DATA_DIR="+b.TempDir())
	if p := os.Getenv(fanoutProfileEnv); p != "" && name != mode {
		// The child names its profiles after its mode.
		cmd.Env = append(cmd.Env, fanoutProfileEnv+"="+p+"."+name)
	}
	if procs != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+procs)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &fanoutChild{cmd: cmd, in: stdin, acks: make(chan string, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), " listening on "); ok {
				urlc <- u
			} else if ack, ok := strings.CutPrefix(sc.Text(), fanoutAck); ok {
				c.acks <- ack
			}
		}
	}()
	b.Cleanup(func() {
		// Closing stdin stops the server, which then writes its profiles.
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	select {
	case c.url = <-urlc:
	case <-time.After(time.Minute):
		b.Fatalf("%s server did not start", mode)
	}
	return c
}

// cpu is the child's user+system CPU time so far (from /proc).
func (c *fanoutChild) cpu(b *testing.B) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th, in clock ticks (100 per second here).
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// fanoutSubs are the subscribers: each counts its events and records the
// latency of those written in the steady phase.
type fanoutSubs struct {
	got     atomic.Int64
	ended   atomic.Int64
	measure atomic.Bool // record latencies
	// first is when the first frame after arm arrived (Unix ns).
	arm, first atomic.Int64
	frame      atomic.Pointer[[]byte]
	mu         sync.Mutex
	lat        []time.Duration
	closers    []func()
}

var titleKey = []byte(`"title":"`)

// sentAt reads the write's start time that the title of frame carries.
func sentAt(frame []byte) (int64, bool) {
	i := bytes.Index(frame, titleKey)
	if i < 0 || len(frame) < i+len(titleKey)+19 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(frame[i+len(titleKey):i+len(titleKey)+19]), 10, 64)
	return n, err == nil
}

func (fs *fanoutSubs) open(b *testing.B, url string, header http.Header, n int) {
	b.Helper()
	live := make(chan error, n)
	sem := make(chan struct{}, 32)
	for range n {
		sem <- struct{}{}
		go func() {
			conn, br, err := dialRawWebSocket(url, header)
			<-sem
			if err != nil {
				live <- err
				return
			}
			var closed atomic.Bool
			fs.mu.Lock()
			fs.closers = append(fs.closers, func() { closed.Store(true); conn.Close() })
			fs.mu.Unlock()
			var lat []time.Duration
			isLive := false
			var buf []byte
			for {
				var data []byte
				data, buf, err = readServerFrame(br, buf)
				if err != nil {
					if !closed.Load() {
						fs.ended.Add(1)
					}
					fs.mu.Lock()
					fs.lat = append(fs.lat, lat...)
					fs.mu.Unlock()
					if !isLive {
						live <- err
					}
					return
				}
				if !isLive {
					if bytes.Contains(data, []byte("CONNECTION_STATUS_LIVE")) {
						isLive = true
						live <- nil
					}
					continue
				}
				if sent, ok := sentAt(data); ok {
					if fs.measure.Load() {
						lat = append(lat, time.Duration(time.Now().UnixNano()-sent))
					}
					if fs.frame.Load() == nil {
						f := slices.Clone(data)
						fs.frame.CompareAndSwap(nil, &f)
					}
					if fs.arm.Load() != 0 && fs.first.Load() == 0 {
						fs.first.CompareAndSwap(0, time.Now().UnixNano())
					}
					fs.got.Add(1)
				}
			}
		}()
	}
	for range n {
		select {
		case err := <-live:
			if err != nil {
				b.Fatalf("subscriber: %v", err)
			}
		case <-time.After(2 * time.Minute):
			b.Fatal("subscribers not live after 2 minutes")
		}
	}
}

// dialRawWebSocket opens a WebSocket with a minimal client: the
// subscribers share the machine with the servers, and a reader that only
// walks frame headers in a large buffer keeps the load generator from
// being what saturates (coder/websocket's client costs more per frame
// than Cairn's server does).
func dialRawWebSocket(url string, header http.Header) (net.Conn, *bufio.Reader, error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return nil, nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", u.RequestURI(), u.Host)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := conn.Write(req.Bytes()); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, nil, fmt.Errorf("websocket handshake: %s", res.Status)
	}
	return conn, br, nil
}

// readServerFrame reads one unfragmented, unmasked server frame's payload
// into buf; a close frame is an error.
func readServerFrame(br *bufio.Reader, buf []byte) ([]byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, buf, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return nil, buf, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return nil, buf, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		return nil, buf, fmt.Errorf("frame of %d bytes", n)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, buf, err
	}
	if op := h[0] & 0x0f; op == 0x8 {
		return nil, buf, fmt.Errorf("closed by the server: %q", buf)
	}
	return buf, buf, nil
}

func (fs *fanoutSubs) close() {
	fs.mu.Lock()
	closers := fs.closers
	fs.mu.Unlock()
	for _, c := range closers {
		c()
	}
}

// wait waits until want events arrived in all.
func (fs *fanoutSubs) wait(b *testing.B, want int64) bool {
	deadline := time.Now().Add(time.Minute)
	for fs.got.Load() < want {
		if time.Now().After(deadline) {
			b.Logf("only %d of %d deliveries within a minute (%d subscribers cut off)", fs.got.Load(), want, fs.ended.Load())
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// fanoutTarget writes events to a server under test.
type fanoutTarget interface {
	// write writes one event whose title is the time now.
	write(b *testing.B)
	// burst writes n events as fast as the server takes them.
	burst(b *testing.B, n int)
}

// benchFanout measures one server; it returns the first event frame a
// subscriber received.
func benchFanout(b *testing.B, cfg fanoutConfig, mode string, frame []byte) []byte {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	return benchFanoutExe(b, cfg, exe, mode, mode, frame)
}

// benchFanoutExe is benchFanout with the server run by exe.
func benchFanoutExe(b *testing.B, cfg fanoutConfig, exe, mode, name string, frame []byte) []byte {
	child := startFanoutChild(b, exe, mode, name, cfg.procs)
	fs := &fanoutSubs{}
	defer fs.close()
	var target fanoutTarget
	switch mode {
	case "cairn", "cairn-unbounded":
		in := &instance{t: b, url: child.url}
		in.client = connect.NewClient(connecthttp.NewTransport(h2cClient(), in.url))
		const p = "bench"
		key := newProjectWithKey(b, in, p, rtScopes...)
		k, _ := as(context.Background(), key)
		benchCollection(b, in, k, p)
		h := http.Header{}
		h.Set("Authorization", "Bearer "+key)
		fs.open(b, in.rtURL("project="+p+"&channels=databases.main.collections.posts.documents"), h, cfg.subs)
		target = &cairnTarget{in: in, key: key, project: p}
	case "bare":
		fs.open(b, strings.Replace(child.url, "http", "ws", 1)+"/ws", nil, cfg.subs)
		target = &bareTarget{url: child.url, frame: frame}
	}
	// One event to warm up (and to capture the frame).
	target.write(b)
	fs.wait(b, int64(cfg.subs))

	// The server's own CPU with subscribers open and nothing written
	// (Cairn's JetStream, projector and timers): part of the steady
	// phase's CPU per delivery that is no delivery's.
	child.command(b, "profile idle")
	idle0 := child.cpu(b)
	time.Sleep(2 * time.Second)
	idle := child.cpu(b) - idle0
	child.command(b, "stop")

	writes := cfg.rate * int(cfg.dur/time.Second)
	b.ResetTimer()
	fs.measure.Store(true)
	base := fs.got.Load()
	child.command(b, "profile steady")
	cpu0 := child.cpu(b)
	tick := time.NewTicker(time.Second / time.Duration(cfg.rate))
	var wg sync.WaitGroup
	var wmu sync.Mutex
	var writeLat []time.Duration
	for range writes {
		<-tick.C
		wg.Go(func() {
			start := time.Now()
			target.write(b)
			wmu.Lock()
			writeLat = append(writeLat, time.Since(start))
			wmu.Unlock()
		})
	}
	tick.Stop()
	wg.Wait()
	fs.wait(b, base+int64(writes*cfg.subs))
	steadyCPU := child.cpu(b) - cpu0
	steady := fs.got.Load() - base
	fs.measure.Store(false)
	child.command(b, "stop")

	// Saturation: the burst's deliveries over the time from its first
	// delivery to its last, while the server has a backlog.
	base = fs.got.Load()
	child.command(b, "profile burst")
	cpu0 = child.cpu(b)
	fs.arm.Store(1)
	burstStart := time.Now()
	target.burst(b, cfg.burst)
	burstWritten := time.Since(burstStart)
	fs.wait(b, base+int64(cfg.burst*cfg.subs))
	burstDone := time.Since(burstStart)
	elapsed := time.Since(time.Unix(0, fs.first.Load()))
	burstCPU := child.cpu(b) - cpu0
	burst := fs.got.Load() - base
	child.command(b, "stop")
	b.StopTimer()

	fs.mu.Lock()
	lat := slices.Clone(fs.lat)
	fs.mu.Unlock()
	fs.close()
	// Latencies are collected as each subscriber ends.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		fs.mu.Lock()
		lat = slices.Clone(fs.lat)
		fs.mu.Unlock()
		if len(lat) >= int(steady) {
			break
		}
	}
	slices.Sort(lat)
	q := func(f float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1000
	}
	perDelivery := func(cpu time.Duration, n int64) float64 {
		if n == 0 {
			return 0
		}
		return float64(cpu.Nanoseconds()) / float64(n) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	// The write call's own p99 (Cairn: CreateDocument; bare: the publish
	// POST), a part of the latency above.
	slices.Sort(writeLat)
	b.ReportMetric(float64(writeLat[min(len(writeLat)-1, len(writeLat)*99/100)].Microseconds())/1000, "write-p99-ms")
	b.ReportMetric(perDelivery(steadyCPU, steady), "steady-cpu-µs/delivery")
	b.ReportMetric(float64(idle.Milliseconds())/2, "idle-cpu-ms/s")
	b.ReportMetric(float64(burst)/elapsed.Seconds(), "burst-deliveries/s")
	b.ReportMetric(perDelivery(burstCPU, burst), "burst-cpu-µs/delivery")
	// How long writing the burst took, and how long after the writes
	// the last delivery came: the fan-out is what bounds burst
	// deliveries/s only while the second is not small.
	b.ReportMetric(float64(burstWritten.Microseconds())/1000, "burst-write-ms")
	b.ReportMetric(float64((burstDone-burstWritten).Microseconds())/1000, "burst-drain-ms")
	b.ReportMetric(float64(fs.ended.Load()), "cut-off")
	if f := fs.frame.Load(); f != nil {
		return *f
	}
	return nil
}

type cairnTarget struct {
	in           *instance
	key, project string
	n            atomic.Int64
}

func (t *cairnTarget) write(b *testing.B) {
	k, _ := as(context.Background(), t.key)
	sent := strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := t.in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: t.project, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", t.n.Add(1)), Data: data(b, map[string]any{"title": sent})}}); err != nil {
		b.Error(err)
	}
}

// burst writes n documents in batches of 100, all at once, so the events
// reach the stream faster than they are fanned out.
func (t *cairnTarget) burst(b *testing.B, n int) {
	k, _ := as(context.Background(), t.key)
	var wg sync.WaitGroup
	for n > 0 {
		batch := min(n, 100)
		n -= batch
		docs := make([]*cairnv1.DocumentInput, batch)
		sent := strconv.FormatInt(time.Now().UnixNano(), 10)
		for i := range docs {
			docs[i] = &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", t.n.Add(1)), Data: data(b, map[string]any{"title": sent})}
		}
		wg.Go(func() {
			if _, err := t.in.databases().CreateDocuments(k, &cairnv1.CreateDocumentsRequest{ProjectId: t.project, DatabaseId: "main", CollectionId: "posts", Documents: docs}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// bareTarget posts frames to the bare broadcast, the time now in the
// title.
type bareTarget struct {
	url   string
	frame []byte
}

func (t *bareTarget) post(b *testing.B, n int) {
	f := slices.Clone(t.frame)
	if i := bytes.Index(f, titleKey); i >= 0 {
		copy(f[i+len(titleKey):], strconv.FormatInt(time.Now().UnixNano(), 10))
	}
	res, err := http.Post(fmt.Sprintf("%s/publish?n=%d", t.url, n), "application/json", bytes.NewReader(f))
	if err != nil {
		b.Error(err)
		return
	}
	res.Body.Close()
}

func (t *bareTarget) write(b *testing.B)        { t.post(b, 1) }
func (t *bareTarget) burst(b *testing.B, n int) { t.post(b, n) }

// fanoutAck starts the line a benchmark server prints once it carried out
// a command read from stdin.
const fanoutAck = "fanout-ack "

// fanoutServerMain runs a benchmark server until stdin closes. With
// fanoutProfileEnv set it reads commands from stdin: "profile <phase>"
// starts a CPU profile, "stop" ends it.
func fanoutServerMain(mode string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	prefix := os.Getenv(fanoutProfileEnv)
	go func() {
		defer cancel()
		var f *os.File
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmd, phase, _ := strings.Cut(sc.Text(), " ")
			switch {
			case prefix == "":
			case cmd == "profile" && f == nil:
				var err error
				if f, err = os.Create(prefix + "." + mode + "." + phase + ".cpu"); err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "fan-out profile:", err)
				}
			case cmd == "stop" && f != nil:
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
			fmt.Println(fanoutAck + sc.Text())
		}
	}()
	if prefix != "" {
		defer func() {
			if a, err := os.Create(prefix + "." + mode + ".allocs"); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(a, 0)
				a.Close()
			}
		}()
	}
	switch mode {
	case "cairn", "cairn-unbounded":
		args := []string{"serve", "--data-dir", os.Getenv("CAIRN_DATA_DIR"), "--http-addr", "127.0.0.1:0", "--log-level", "error",
			"--max-connections-per-address", "0"}
		if mode == "cairn-unbounded" {
			args = append(args, fairFanoutUnbounded...)
		}
		return run(ctx, args, os.Stdout, os.Stderr, os.Getenv)
	case "bare":
		return serveBareBroadcast(ctx)
	}
	return fmt.Errorf("unknown fan-out server %q", mode)
}

// bareHub is the bare broadcast: a goroutine and a queue per connection,
// one coder/websocket Write (with its own timeout) per message, as a
// WebSocket server without any application does it.
type bareHub struct {
	mu    sync.Mutex
	conns map[chan []byte]struct{}
}

func serveBareBroadcast(ctx context.Context) error {
	h := &bareHub{conns: map[chan []byte]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := conn.CloseRead(context.Background())
		q := make(chan []byte, 1024)
		h.mu.Lock()
		h.conns[q] = struct{}{}
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			delete(h.conns, q)
			h.mu.Unlock()
		}()
		write := func(b []byte) error {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return conn.Write(wctx, websocket.MessageText, b)
		}
		if write([]byte(`{"state":{"status":"CONNECTION_STATUS_LIVE"}}`)) != nil {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-q:
				if write(b) != nil {
					return
				}
			}
		}
	})
	mux.HandleFunc("/publish", func(w http.ResponseWriter, r *http.Request) {
		frame, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		h.mu.Lock()
		for range max(n, 1) {
			for q := range h.conns {
				select {
				case q <- frame:
				default: // a slow consumer misses frames
				}
			}
		}
		h.mu.Unlock()
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("bare listening on http://%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
