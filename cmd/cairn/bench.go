package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const benchLong = `Measures, against one in-process server on this machine:
  (a) raw JetStream publish rate (js.Publish awaiting the ack) to a project stream
  (b) end-to-end UpdateKey rate through Connect over loopback h2c, with p50/p99
  (c) projection apply rate during a rebuild vs. the raw ordered read rate
for each --sync mode, a sync-interval curve of (a) and (b), and with
--projects (d) project creation time, server RSS and restart time, the
server then running as a child process ('<bin> serve').`

func benchCmd(e *cliEnv) *cobra.Command {
	var o benchOpts
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure write, replay and project-count figures on this machine",
		Long:  benchLong,
		Example: `  cairn bench --duration 5s
  cairn bench --ops 2000 --sync always --curve '' --projects 1000`,
		Args: cobra.NoArgs,
	}
	finish := o.flags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := finish(); err != nil {
			return err
		}
		return bench(cmd.Context(), o, e.stdout, e.stderr, e.getenv)
	}
	return cmd
}

// benchOpts are the parsed flags of cairn bench.
type benchOpts struct {
	dataDir    string
	duration   time.Duration
	warmup     time.Duration
	ops        int
	conc       []int
	syncs      []string
	curve      []string
	curveConc  int
	keys       int
	msgBytes   int
	events     int
	rounds     int
	projects   []int
	projConc   int
	projSync   string
	bin        string
	cpuprofile string
	logLevel   string
}

// flags registers bench's flags on fs; finish, after parsing, turns the
// lists into values and checks them.
func (o *benchOpts) flags(fs *pflag.FlagSet) (finish func() error) {
	fs.StringVar(&o.dataDir, "data-dir", "", "keep the servers' data under this (empty) directory; default a temp dir, removed after")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured load")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each measurement")
	fs.IntVar(&o.ops, "ops", 0, "run each load for this many operations instead of --duration (no warm-up)")
	conc := fs.String("concurrency", "1,64", "concurrent clients of (a) and (b)")
	syncs := fs.String("sync", "always,"+defaultSync, "JetStream sync modes measured in full: 'always' or intervals")
	curve := fs.String("curve", "10ms,100ms,1s,always", "sync modes of the (a)/(b) curve at --curve-concurrency; empty for none")
	fs.IntVar(&o.curveConc, "curve-concurrency", 64, "concurrency of the sync-interval curve")
	fs.IntVar(&o.keys, "keys", 64, "distinct API keys renamed by (b)'s workers (worker i renames key i mod keys)")
	fs.IntVar(&o.msgBytes, "msg-bytes", 256, "payload size of (a)'s messages")
	fs.IntVar(&o.events, "events", 50_000, "events in the stream rebuilt by (c)")
	fs.IntVar(&o.rounds, "rounds", 5, "repetitions of (c)'s read and rebuild; the median is reported")
	projects := fs.String("projects", "", "(d): project counts to reach, e.g. 1000,10000 (cumulative, one server)")
	fs.IntVar(&o.projConc, "project-concurrency", 16, "concurrent CreateProject calls of (d)")
	fs.StringVar(&o.projSync, "projects-sync", defaultSync, "--sync of (d)'s server")
	fs.StringVar(&o.bin, "bin", "", "cairn binary run as (d)'s server; default this executable")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each measurement to <this>.<phase>.sync-<mode>[.c<N>].pprof")
	fs.StringVar(&o.logLevel, "log-level", "warn", "server log level")
	return func() error {
		var err error
		if o.conc, err = intList(*conc, "--concurrency"); err != nil {
			return err
		}
		if len(o.conc) == 0 {
			return errors.New("bench: --concurrency: want at least one value")
		}
		if o.projects, err = intList(*projects, "--projects"); err != nil {
			return err
		}
		slices.Sort(o.projects)
		if o.syncs, err = syncList(*syncs); err != nil {
			return err
		}
		if o.curve, err = syncList(*curve); err != nil {
			return err
		}
		switch {
		case o.duration <= 0 && o.ops <= 0:
			return errors.New("bench: give a positive --duration or --ops")
		case o.keys <= 0 || o.msgBytes < 0 || o.events <= 0 || o.rounds <= 0 || o.projConc <= 0 || o.curveConc <= 0:
			return errors.New("bench: --keys, --events, --rounds and the concurrencies must be positive")
		}
		return nil
	}
}

// intList parses "1,64"; empty means none.
func intList(s, flagName string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bench: %s: %q is not a positive integer", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// syncList parses sync modes into canonical spellings ("always", "100ms",
// "1s"), so the same mode given twice is measured once.
func syncList(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		c := config{Sync: f}
		always, d, err := c.syncMode()
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		if !always {
			f = d.String()
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// benchRun is one run of cairn bench and the figures it collected.
type benchRun struct {
	o        benchOpts
	root     string
	adminKey string
	logger   *slog.Logger
	stderr   io.Writer
	seq      atomic.Uint64 // operation numbers, unique across the run
	profiles []string
	// The machine's load average at start and end: figures taken while
	// something else competes for the CPUs are not comparable.
	loadStart, loadEnd string

	loads    []loadRow
	replays  []replayRow
	projects []projectRow
}

// loadRow is one (a) or (b) measurement.
type loadRow struct {
	phase string // "publish" (a) or "write" (b)
	sync  string
	conc  int
	s     sample
}

func bench(ctx context.Context, o benchOpts, stdout, stderr io.Writer, getenv func(string) string) error {
	logger, err := newLogger(stderr, o.logLevel, "")
	if err != nil {
		return err
	}
	r := &benchRun{o: o, logger: logger, stderr: stderr, adminKey: getenv("CAIRN_ADMIN_KEY")}
	if r.adminKey == "" {
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		r.adminKey = "cak_bench_" + hex.EncodeToString(raw)
	}
	if o.dataDir != "" {
		r.root = o.dataDir
	} else {
		if r.root, err = os.MkdirTemp("", "cairn-bench-"); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(r.root)
	}
	began := time.Now()
	r.loadStart = loadAvg()
	r.progress("bench: data under %s", r.root)

	err = r.runAll(ctx)
	// Whatever was measured before a failure is still worth printing.
	r.loadEnd = loadAvg()
	r.report(stdout, time.Since(began))
	return err
}

// runAll runs every phase in turn.
func (r *benchRun) runAll(ctx context.Context) error {
	o := r.o
	// Each mode needs its own server: the sync interval is a server option.
	// Curve-only modes measure just (a) and (b) at the curve's concurrency.
	for _, mode := range o.syncs {
		concs := slices.Clone(o.conc)
		if slices.Contains(o.curve, mode) && !slices.Contains(concs, o.curveConc) {
			concs = append(concs, o.curveConc)
		}
		if err := r.runMode(ctx, mode, concs, true); err != nil {
			return fmt.Errorf("bench sync %s: %w", mode, err)
		}
	}
	for _, mode := range o.curve {
		if slices.Contains(o.syncs, mode) {
			continue
		}
		if err := r.runMode(ctx, mode, []int{o.curveConc}, false); err != nil {
			return fmt.Errorf("bench sync %s: %w", mode, err)
		}
	}
	if len(o.projects) > 0 {
		if err := r.runProjects(ctx); err != nil {
			return fmt.Errorf("bench projects: %w", err)
		}
	}
	return nil
}

// runMode starts a server in the given sync mode on a fresh directory and
// measures (a) and (b) at each concurrency, and (c) when full.
func (r *benchRun) runMode(ctx context.Context, mode string, concs []int, full bool) error {
	dir := filepath.Join(r.root, "sync-"+mode)
	if err := emptyDir(dir); err != nil {
		return err
	}
	cfg := config{DataDir: dir, HTTPAddr: "127.0.0.1:0", AdminKey: r.adminKey, Sync: mode,
		LogLevel: r.o.logLevel, MaxRequestBytes: 1 << 20}
	h, err := startBenchServer(ctx, &cfg, r.logger)
	if err != nil {
		return err
	}
	defer h.shutdown(r.logger)
	r.progress("bench: sync %s: server at %s", mode, h.url)

	publish, err := r.publishOp(ctx, h)
	if err != nil {
		return err
	}
	for _, c := range concs {
		if err := r.load(ctx, "publish", mode, c, publish); err != nil {
			return err
		}
	}
	get, write, err := r.writeOp(ctx, h)
	if err != nil {
		return err
	}
	for _, c := range concs {
		if err := r.load(ctx, "write", mode, c, write); err != nil {
			return err
		}
	}
	if !full {
		return nil
	}
	if err := r.load(ctx, "getkey", mode, slices.Max(r.o.conc), get); err != nil {
		return err
	}
	rr, err := r.replay(ctx, h, mode)
	if err != nil {
		return err
	}
	r.replays = append(r.replays, rr)
	return nil
}

func (r *benchRun) load(ctx context.Context, phase, mode string, conc int, op opFunc) error {
	s, err := r.measure(ctx, fmt.Sprintf("%s.sync-%s.c%d", phase, mode, conc), conc, op)
	if err != nil {
		return err
	}
	r.loads = append(r.loads, loadRow{phase: phase, sync: mode, conc: conc, s: s})
	r.progress("bench: sync %-6s %-7s c=%-3d %9.0f ops/s  p50 %s  p99 %s  errors %d",
		mode, phase, conc, s.rate(), fmtDur(s.pct(0.50)), fmtDur(s.pct(0.99)), s.errs)
	return nil
}

// emptyDir creates dir, refusing one that holds anything: every mode's
// figures must come from a fresh server.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("data dir %s is not empty; give a fresh --data-dir", dir)
	}
	return nil
}

func (r *benchRun) progress(format string, args ...any) {
	fmt.Fprintf(r.stderr, format+"\n", args...)
}

// goInfo describes the machine for the report header.
func goInfo() string {
	return fmt.Sprintf("%s/%s, %d CPUs, GOMAXPROCS %d, %s", runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
}

// loadAvg returns the 1, 5 and 15-minute load averages, or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
