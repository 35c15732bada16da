package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"github.com/coder/websocket"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// BenchmarkFairness: project B's GetDocument alone and while project A
// floods the same node (fairWriters CreateDocument callers in a loop and
// fairSubs realtime subscribers of the written collection), with A's own
// figures. The server and B's readers run in this process, A's flood in
// a process of its own (TestFairnessFlood), all on loopback and sharing
// the machine's cores, as on a small node. B's readers and A's writers
// speak HTTP/1.1 on their own connections; A's subscribers are WebSockets.
// "Alone" and "flood" alternate in 5 windows each (A's writers paused,
// then running; its subscribers stay), so that the rest of the machine's
// load, which swings by the second, weighs on both alike; the ratio of
// B's p99s is B-p99-flood/alone. Then B alternates between alone and
// beside a process burning as much CPU as A's clients did
// (B-p99-burn/alone): the part of B's loss that is only the machine's
// cores being shared with the load generator.
//
// Sub-benchmarks: limits=none gives A unlimited requests and concurrency
// (the Go scheduler alone), limits=default keeps the instance's default
// per-project rate and concurrency (16 calls at once), limits=A-4-at-once
// lets A run 4 calls at once, limits=A-20 caps A at 20 requests/s (its
// flood is then mostly refused, and its fan-out shrinks with its writes).
// Each runs with the realtime fan-out's defaults (at most one fewer
// fan-out workers than cores, a deliveries budget per project);
// ",fanout=unbounded" is the fan-out without them (as before the budget),
// and limits=A-5000-deliveries holds A to 5,000 deliveries/s;
// ",share=off" is the fan-out that does not pause for other projects'
// calls (--realtime-fanout-share 100).
//
//	go test ./cmd/cairn -run '^$' -bench Fairness -benchtime 1x
//
// CAIRN_FAIR_DURATION sets each phase's total length (default 3s);
// CAIRN_FAIR_PROFILE=/tmp/fair writes a CPU profile of the alternating
// alone/flood windows (its samples carry a project label: go tool pprof
// -tags) and a mutex profile of the same windows; CAIRN_FAIR_BLOCK=1 adds
// a block profile (who waited, and where). Each phase also reports this
// process's cores, collections and their assists, and lock waits.
func BenchmarkFairness(b *testing.B) {
	dur := 3 * time.Second
	if v := os.Getenv("CAIRN_FAIR_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	for _, tc := range []struct {
		name   string
		limits *cairnv1.ProjectLimits // A's
		serve  []string
	}{
		{"limits=none", fairUnlimited, nil},
		{"limits=default", nil, nil},
		// The fan-out without its share (it no longer pauses while other
		// projects' calls run), beside the default in the same run.
		{"limits=default,share=off", nil, fairShareOff},
		{"limits=none,share=off", fairUnlimited, fairShareOff},
		{"limits=A-4-at-once", &cairnv1.ProjectLimits{MaxConcurrentRequests: 4}, nil},
		{"limits=A-20", &cairnv1.ProjectLimits{RequestsPerSecond: 20, RequestBurst: 40}, nil},
		// The realtime fan-out as it was before its budget (every core
		// for one project's fan-out, no deliveries budget) beside the
		// default, in the same run.
		{"limits=none,fanout=unbounded", fairUnlimited, fairFanoutUnbounded},
		{"limits=default,fanout=unbounded", nil, fairFanoutUnbounded},
		{"limits=A-5000-deliveries", &cairnv1.ProjectLimits{RealtimeDeliveriesPerSecond: 5000}, nil},
		// Held to 5,000 deliveries/s alone, A's writers take the CPU its
		// fan-out left: both bounds together.
		{"limits=A-4-at-once-5000-deliveries", &cairnv1.ProjectLimits{MaxConcurrentRequests: 4, RealtimeDeliveriesPerSecond: 5000}, nil},
	} {
		b.Run(tc.name, func(b *testing.B) { benchFairness(b, tc.name, tc.limits, dur, tc.serve...) })
	}
}

// fairFanoutUnbounded are the serve flags of the fan-out without its
// budget: no bound on fan-out workers, no deliveries budget.
var fairFanoutUnbounded = []string{"--realtime-fanout-workers", "-1", "--realtime-delivery-rate", "-1"}

// fairShareOff are the serve flags of the fan-out that never pauses for
// other projects' calls.
var fairShareOff = []string{"--realtime-fanout-share", "100"}

// fairUnlimited is the highest rate a project may have: in effect no limit.
var fairUnlimited = &cairnv1.ProjectLimits{RequestsPerSecond: 1_000_000, RequestBurst: 1_000_000, MaxConcurrentRequests: 100_000}

const (
	fairWriters = 64
	fairSubs    = 500
	fairReaders = 8
)

func benchFairness(b *testing.B, name string, limitsA *cairnv1.ProjectLimits, dur time.Duration, serve ...string) {
	// One address holds all the loads connections.
	in := startInstance(b, b.TempDir(), append([]string{"--log-level", "error", "--max-connections-per-address", "0"}, serve...)...)
	keys := map[string]string{}
	for _, p := range []string{"a", "b"} {
		keys[p] = newProjectWithKey(b, in, p, rtScopes...)
		k, _ := as(context.Background(), keys[p])
		benchCollection(b, in, k, p)
	}
	k, _ := as(context.Background(), keys["b"])
	if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: "b", DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data(b, map[string]any{"title": "hello"})}}); err != nil {
		b.Fatal(err)
	}
	h1 := func() cairnv1connect.DatabasesServiceClient {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, DialContext: dialLocalhost}}
		b.Cleanup(hc.CloseIdleConnections)
		return cairnv1connect.NewDatabasesServiceClient(connect.NewClient(connecthttp.NewTransport(hc, in.url)))
	}
	dbB := h1()

	// readB runs fairReaders readers of B's document for d and adds
	// what they saw to ph.
	readB := func(ph *fairPhase, d time.Duration) {
		sched0 := schedLatencies()
		rt0 := readRuntimeCounters()
		cpu0, err := procCPU(os.Getpid())
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		t0 := time.Now()
		stop := t0.Add(d)
		var wg sync.WaitGroup
		for range fairReaders {
			wg.Go(func() {
				var l []time.Duration
				var failed int64
				for time.Now().Before(stop) {
					ctx, _ := as(context.Background(), keys["b"])
					t0 := time.Now()
					_, err := dbB.GetDocument(ctx, &cairnv1.GetDocumentRequest{ProjectId: "b", DatabaseId: "main", CollectionId: "posts", DocumentId: "d1"})
					if err != nil {
						failed++
						continue
					}
					l = append(l, time.Since(t0))
				}
				mu.Lock()
				ph.lat = append(ph.lat, l...)
				ph.failed += failed
				mu.Unlock()
			})
		}
		wg.Wait()
		cpu1, err := procCPU(os.Getpid())
		if err != nil {
			b.Fatal(err)
		}
		ph.elapsed += time.Since(t0)
		ph.cpu += cpu1 - cpu0
		ph.sched = ph.sched.add(schedLatencies().sub(sched0))
		ph.rt = ph.rt.add(readRuntimeCounters().sub(rt0))
	}

	b.ResetTimer()

	// A's flood, from a process of its own (TestFairnessFlood): its
	// clients' CPU is not this process's, as on a real node.
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFairnessFlood$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "CAIRN_FAIR_FLOOD="+in.url+" "+keys["a"])
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	// tell sends the flood process a line ("pause", "run" or nothing) and
	// returns its counts so far.
	tell := func(line string) (written, delivered, refused int64) {
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			b.Fatal(err)
		}
		for lines.Scan() {
			if n, _ := fmt.Sscan(lines.Text(), &written, &delivered, &refused); n == 3 {
				return
			}
		}
		b.Fatalf("flood process: %v", lines.Err())
		return
	}
	tell("pause") // answers once its subscribers are live
	// A's limits from now: its 500 subscribers' connects are requests
	// too, which a low rate would spread over many seconds.
	if limitsA != nil {
		op, _ := as(context.Background(), testAdminKey)
		if _, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "a", Limits: limitsA}); err != nil {
			b.Fatal(err)
		}
	}
	stopMutexProfile := func() {}
	if dir := os.Getenv("CAIRN_FAIR_PROFILE"); dir != "" {
		f, err := os.Create(fmt.Sprintf("%s-%s.cpu", dir, strings.NewReplacer("limits=", "", ",", "-", "=", "-").Replace(name)))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
		// And who holds the locks others wait for, in the same windows.
		runtime.SetMutexProfileFraction(10)
		if os.Getenv("CAIRN_FAIR_BLOCK") != "" {
			runtime.SetBlockProfileRate(int(100 * time.Microsecond))
		}
		stopMutexProfile = func() {
			if runtime.SetMutexProfileFraction(0) == 0 {
				return
			}
			if os.Getenv("CAIRN_FAIR_BLOCK") != "" {
				runtime.SetBlockProfileRate(0)
				if bf, err := os.Create(strings.TrimSuffix(f.Name(), ".cpu") + ".block"); err == nil {
					_ = pprof.Lookup("block").WriteTo(bf, 0)
					_ = bf.Close()
				}
			}
			mf, err := os.Create(strings.TrimSuffix(f.Name(), ".cpu") + ".mutex")
			if err != nil {
				b.Error(err)
				return
			}
			defer mf.Close()
			if err := pprof.Lookup("mutex").WriteTo(mf, 0); err != nil {
				b.Error(err)
			}
		}
		defer stopMutexProfile()
	}
	// B alone and B under A's flood in alternating windows, so that the
	// load of the rest of the machine, which swings by the second, weighs
	// on both alike. A's subscribers stay connected throughout; its
	// writers pause in B's "alone" windows.
	var alone, flood fairPhase
	var floodCPU time.Duration
	var written, delivered, refused int64
	const rounds = 5
	settle := 300 * time.Millisecond
	for range rounds {
		tell("pause")
		time.Sleep(settle)
		readB(&alone, dur/rounds)
		tell("run")
		time.Sleep(settle)
		w0, d0, r0 := tell("")
		c0, err := procCPU(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		readB(&flood, dur/rounds)
		c1, err := procCPU(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		w1, d1, r1 := tell("")
		floodCPU += c1 - c0
		written, delivered, refused = written+w1-w0, delivered+d1-d0, refused+r1-r0
	}
	pprof.StopCPUProfile()
	stopMutexProfile()
	floodCores := floodCPU.Seconds() / flood.elapsed.Seconds()
	alone.report(b, name, "alone")
	flood.report(b, name, "flood")
	b.ReportMetric(float64(written)/flood.elapsed.Seconds(), "A-writes/s")
	b.ReportMetric(float64(refused)/flood.elapsed.Seconds(), "A-refused/s")
	b.ReportMetric(float64(delivered)/flood.elapsed.Seconds(), "A-deliveries/s")
	b.ReportMetric(floodCores, "A-client-cores")
	if len(alone.lat) > 0 && len(flood.lat) > 0 {
		b.ReportMetric(flood.quantile(0.99)/alone.quantile(0.99), "B-p99-flood/alone")
	}
	_ = stdin.Close()
	_ = cmd.Wait()

	// How much of B's loss is only the flood's clients competing for the
	// cores: B again, alternating alone and beside a process that burns as
	// much CPU as A's clients did and sends nothing.
	var calm, burnt fairPhase
	for range rounds {
		readB(&calm, dur/rounds)
		burn := exec.Command(os.Args[0], "-test.run", "^TestFairnessBurn$", "-test.count", "1")
		burn.Env = append(os.Environ(), fmt.Sprintf("CAIRN_FAIR_BURN=%.3f", floodCores))
		burn.Stderr = os.Stderr
		if err := burn.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(settle)
		readB(&burnt, dur/rounds)
		_ = burn.Process.Kill()
		_ = burn.Wait()
	}
	if len(calm.lat) > 0 && len(burnt.lat) > 0 {
		b.ReportMetric(burnt.quantile(0.99)/calm.quantile(0.99), "B-p99-burn/alone")
	}
	b.StopTimer()
}

// fairPhase is what B's readers saw in one phase's windows.
type fairPhase struct {
	lat     []time.Duration
	failed  int64
	elapsed time.Duration
	cpu     time.Duration // this process's: the server and B's readers
	sched   schedHist
	rt      runtimeCounters
}

// quantile is the q-quantile of the phase's latencies, in ms.
func (ph *fairPhase) quantile(q float64) float64 {
	if len(ph.lat) == 0 {
		return 0
	}
	slices.Sort(ph.lat)
	return float64(ph.lat[min(len(ph.lat)-1, int(q*float64(len(ph.lat))))].Microseconds()) / 1000
}

func (ph *fairPhase) report(b *testing.B, name, phase string) {
	b.ReportMetric(float64(len(ph.lat))/ph.elapsed.Seconds(), "B-"+phase+"-ops/s")
	b.ReportMetric(ph.quantile(0.5), "B-"+phase+"-p50-ms")
	b.ReportMetric(ph.quantile(0.99), "B-"+phase+"-p99-ms")
	if ph.failed > 0 {
		b.ReportMetric(float64(ph.failed), "B-"+phase+"-failed")
	}
	// The Go scheduler's wait (runnable → running) of every goroutine of
	// this process (server and B's readers) during the phase.
	b.ReportMetric(ph.sched.quantile(0.99)*1000, "sched-"+phase+"-p99-ms")
	// Where else B's goroutines may wait: collections (their mark
	// assists draft any allocating goroutine, B's included), and
	// contended locks of this process.
	secs := ph.elapsed.Seconds()
	b.ReportMetric(float64(ph.rt.gcCycles)/secs, "gc-"+phase+"-cycles/s")
	b.ReportMetric(ph.rt.gcCPU/secs, "gc-"+phase+"-cores")
	b.ReportMetric(ph.rt.assistCPU/secs, "gc-assist-"+phase+"-cores")
	b.ReportMetric(ph.rt.mutexWait*1000/secs, "mutex-wait-"+phase+"-ms/s")
	// This process's CPU: the server's (both projects') and B's readers'.
	b.ReportMetric(ph.cpu.Seconds()/secs, "cpu-"+phase+"-cores")
	if phase == "alone" && len(ph.lat) > 0 {
		// Server and reader CPU together: A's writers are paused.
		b.ReportMetric(float64(ph.cpu.Microseconds())/float64(len(ph.lat)), "B-alone-cpu-µs/op")
	}
	b.Logf("%s: B %s: %d calls in %v, p50 %.2f ms, p99 %.2f ms, %d failed, scheduler wait p99 %.2f ms, this process's CPU %v",
		name, phase, len(ph.lat), ph.elapsed.Round(time.Millisecond), ph.quantile(0.5), ph.quantile(0.99), ph.failed, ph.sched.quantile(0.99)*1000, ph.cpu)
}

// runtimeCounters are cumulative runtime/metrics counters of this process.
type runtimeCounters struct {
	gcCycles                    uint64
	gcCPU, assistCPU, mutexWait float64 // seconds
}

func readRuntimeCounters() runtimeCounters {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"}, {Name: "/sync/mutex/wait/total:seconds"}}
	metrics.Read(s)
	return runtimeCounters{gcCycles: s[0].Value.Uint64(), gcCPU: s[1].Value.Float64(), assistCPU: s[2].Value.Float64(), mutexWait: s[3].Value.Float64()}
}

func (c runtimeCounters) sub(o runtimeCounters) runtimeCounters {
	return runtimeCounters{c.gcCycles - o.gcCycles, c.gcCPU - o.gcCPU, c.assistCPU - o.assistCPU, c.mutexWait - o.mutexWait}
}

func (c runtimeCounters) add(o runtimeCounters) runtimeCounters {
	return runtimeCounters{c.gcCycles + o.gcCycles, c.gcCPU + o.gcCPU, c.assistCPU + o.assistCPU, c.mutexWait + o.mutexWait}
}

// TestFairnessBurn is BenchmarkFairness's stand-in for A's clients: it
// burns CAIRN_FAIR_BURN cores' worth of CPU (skipped without it) until
// killed, spread over as many goroutines as that needs, each spinning a
// share of every 2 ms and sleeping the rest.
func TestFairnessBurn(t *testing.T) {
	cores, err := strconv.ParseFloat(os.Getenv("CAIRN_FAIR_BURN"), 64)
	if err != nil {
		t.Skip("the CPU burner of BenchmarkFairness")
	}
	n := max(1, int(cores+0.999))
	duty := cores / float64(n)
	const period = 2 * time.Millisecond
	spin := time.Duration(duty * float64(period))
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			x := 0
			for {
				t0 := time.Now()
				for time.Since(t0) < spin {
					x++
				}
				time.Sleep(period - spin)
			}
		})
	}
	wg.Wait()
}

// procCPU is a process's user+system CPU time so far (from /proc).
func procCPU(pid int) (time.Duration, error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// utime and stime are the 12th and 13th fields after the command name
	// (which may hold spaces), in clock ticks (100 per second here).
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

// schedHist is a snapshot of runtime/metrics' scheduler latencies.
type schedHist struct {
	counts  []uint64
	buckets []float64
}

func schedLatencies() schedHist {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return schedHist{counts: slices.Clone(h.Counts), buckets: h.Buckets}
}

// sub is the histogram of what was recorded between o and h.
func (h schedHist) sub(o schedHist) schedHist {
	d := schedHist{counts: slices.Clone(h.counts), buckets: h.buckets}
	for i := range o.counts {
		d.counts[i] -= o.counts[i]
	}
	return d
}

// add is h with o's counts added (o may be the zero schedHist).
func (h schedHist) add(o schedHist) schedHist {
	if h.counts == nil {
		return o
	}
	d := schedHist{counts: slices.Clone(h.counts), buckets: h.buckets}
	for i := range o.counts {
		d.counts[i] += o.counts[i]
	}
	return d
}

// quantile is the upper bound (seconds) of the bucket holding quantile q.
func (h schedHist) quantile(q float64) float64 {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(q * float64(total))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > want {
			return h.buckets[i+1]
		}
	}
	return h.buckets[len(h.buckets)-1]
}

// TestFairnessFlood is BenchmarkFairness's flood of project A in a
// process of its own (CAIRN_FAIR_FLOOD="<url> <key>"; skipped without
// it): fairSubs WebSocket subscribers and fairWriters writers until stdin
// closes. It answers each line on stdin, once the subscribers are live,
// with "<written> <delivered> <refused>"; a line "pause" pauses the
// writers, "run" resumes them.
func TestFairnessFlood(t *testing.T) {
	url, key, ok := strings.Cut(os.Getenv("CAIRN_FAIR_FLOOD"), " ")
	if !ok {
		t.Skip("the flood process of BenchmarkFairness")
	}
	keys := map[string]string{"a": key}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, DialContext: dialLocalhost}}
	dbA := cairnv1connect.NewDatabasesServiceClient(connect.NewClient(connecthttp.NewTransport(hc, url)))
	// A's subscribers.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var delivered atomic.Int64
	live := make(chan struct{}, fairSubs)
	var swg sync.WaitGroup
	h := http.Header{"Authorization": {"Bearer " + keys["a"]}}
	for range fairSubs {
		swg.Go(func() {
			conn, _, err := websocket.Dial(ctx, (&instance{url: url}).rtURL("project=a&channels=databases.main.collections.posts.documents"), &websocket.DialOptions{HTTPHeader: h})
			if err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
			defer conn.CloseNow()
			conn.SetReadLimit(1 << 20)
			// Frames are only recognised, not decoded: the subscribers'
			// cost stays small beside the server's.
			for {
				_, m, err := conn.Read(ctx)
				if err != nil {
					return
				}
				switch {
				case bytes.Contains(m, []byte(`"event"`)):
					delivered.Add(1)
				case bytes.Contains(m, []byte("CONNECTION_STATUS_LIVE")):
					live <- struct{}{}
				}
			}
		})
	}
	for i := range fairSubs {
		select {
		case <-live:
		case <-time.After(time.Minute):
			t.Fatalf("%d of %d subscribers live after a minute", i, fairSubs)
		}
	}
	// A's writers, until the end.
	var written, refused atomic.Int64
	var n atomic.Int64
	var paused atomic.Bool
	var wwg sync.WaitGroup
	for range fairWriters {
		wwg.Go(func() {
			for ctx.Err() == nil {
				if paused.Load() {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				wctx, _ := as(ctx, keys["a"])
				_, err := dbA.CreateDocument(wctx, &cairnv1.CreateDocumentRequest{ProjectId: "a", DatabaseId: "main", CollectionId: "posts",
					Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", n.Add(1)), Data: data(t, map[string]any{"title": "flood"})}})
				switch {
				case err == nil:
					written.Add(1)
				case connect.CodeOf(err) == connect.CodeResourceExhausted:
					refused.Add(1)
					time.Sleep(10 * time.Millisecond) // a client backs off
				case ctx.Err() == nil:
					t.Errorf("A: %v", err)
					return
				}
			}
		})
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "pause":
			paused.Store(true)
		case "run":
			paused.Store(false)
		}
		fmt.Println(written.Load(), delivered.Load(), refused.Load())
	}
	cancel()
	wwg.Wait()
	swg.Wait()
}
