// Command pbcompare runs one document workload against Cairn and against
// PocketBase on this machine, in the same run, and prints both figures and
// their ratio: the measurements issue 19 asks for (create, get by id, a
// filtered list sorted by a field no index covers and then one that does,
// memory after many documents). Both servers run as child processes with
// their defaults and are driven over HTTP/1.1 keep-alive with JSON, as a
// browser or a server-side client would. With -floor a third server, the
// design card's own cost with none of Cairn's work (floor.go), runs beside
// them for create and get.
//
// It is its own module so that PocketBase (and SQLite) never enter Cairn's
// dependencies: run it with `cd tools/pbcompare && go run . [flags]`.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase"
)

type config struct {
	docs, rssDocs, clients, tags int
	duration                     time.Duration
	only                         string
	cairnArgs                    string
	baseBin, baseArgs            string
	baseAfter                    bool
	pbFirst                      bool
	alternate                    bool
	cairnEnv, baseEnv            string
	keep                         bool
	heapProfile                  string
	cpuProfile                   string
	pin                          bool
	leanClient                   bool
	loadProfile                  string
	floor                        bool
}

func main() {
	// Re-executed as the PocketBase server (a plain pocketbase.New(), as
	// Go users embed it).
	if len(os.Args) > 1 && os.Args[1] == "pocketbase" {
		os.Args = append(os.Args[:1], os.Args[2:]...)
		if err := pocketbase.New().Start(); err != nil {
			log.Fatal(err)
		}
		return
	}
	// Re-executed as the design's floor (floor.go).
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		if err := runFloor(ctx, os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	var c config
	flag.IntVar(&c.docs, "docs", 20_000, "documents created before the read loads")
	flag.IntVar(&c.rssDocs, "rss-docs", 60_000, "documents in the collection when memory is read (more are created after the read loads); 0 skips it")
	flag.IntVar(&c.clients, "clients", 64, "concurrent HTTP/1.1 keep-alive clients")
	flag.IntVar(&c.tags, "tags", 10, "distinct tag values: a filtered list matches docs/tags documents")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each read load")
	flag.StringVar(&c.only, "only", "", "run only 'cairn' (with cairn-base) or 'pocketbase'")
	flag.StringVar(&c.cairnArgs, "cairn-args", "", "extra flags for cairn serve, space-separated")
	flag.StringVar(&c.cairnEnv, "cairn-env", "", "environment variables for cairn, space-separated (e.g. GOGC=50)")
	flag.StringVar(&c.baseEnv, "base-env", "", "environment variables for cairn-base, space-separated")
	flag.BoolVar(&c.keep, "keep", false, "keep the servers' data directories")
	flag.StringVar(&c.heapProfile, "heap-profile", "", "write Cairn's heap profile to this file when its memory is read at rest (collected first), -load halfway through the writes and -early after the 2–7 s reading (as of the last collection) beside it (cairn-base's too, with -base)")
	flag.StringVar(&c.baseBin, "base-bin", "", "also run this cairn binary (e.g. built from main), as cairn-base, before the checkout's: a baseline from the same run")
	flag.BoolVar(&c.baseAfter, "base-after", false, "run cairn-base after the checkout's cairn instead of before (two runs, one each way, show what the order itself does on a busy machine)")
	flag.BoolVar(&c.pbFirst, "pb-first", false, "run PocketBase first instead of last: whichever server runs later in a run can lose 10–20 % on a busy machine, so compare both orders")
	flag.BoolVar(&c.alternate, "alternate", false, "run every server at once and give them each load in turns (1 s windows, reads after 0.5 s not counted), the order rotating: the ratios then hold on a machine whose speed drifts; memory is still measured one server after the other")
	flag.StringVar(&c.baseArgs, "base-args", "", "extra flags for cairn-base's serve, space-separated; without -base-bin, cairn-base is the checkout's binary with these flags")
	flag.StringVar(&c.cpuProfile, "cpu-profile", "", "write Cairn's CPU and allocation profiles of the first -duration of the create load, the get load and the two list loads to this prefix + -create.pb.gz / -create-allocs.pb.gz / -get.pb.gz / -list.pb.gz / -cover.pb.gz … (cairn-base's with -cairn-base in the name)")
	flag.BoolVar(&c.leanClient, "lean-client", false, "drive the loads with a lean HTTP/1.1 client (one goroutine per connection, the request written by hand) instead of net/http's Transport, which costs about as much CPU per get as Cairn does: unpinned, the ratios then show the servers more than the generator")
	flag.BoolVar(&c.pin, "pin", false, "run every server on CPU 0 and the load generator on CPU 1 (the issue's ceiling ladder): the throughput ratio then shows the servers, not the clients sharing their cores")
	flag.BoolVar(&c.floor, "floor", false, "also run the design's floor (floor.go: HTTP, a JetStream append with its acknowledgement, a projector writing it to Badger, nothing else) for create and get: what any server built on Cairn's design card costs on this machine")
	flag.StringVar(&c.loadProfile, "load-profile", "", "write the load generator's own CPU profile of the whole run to this file")
	flag.Parse()
	stopProfile := func() {}
	if c.loadProfile != "" {
		f, err := os.Create(c.loadProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			log.Fatal(err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	err := run(context.Background(), c)
	stopProfile()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, c config) error {
	work, err := os.MkdirTemp("", "pbcompare-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(work)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cairnBin := filepath.Join(work, "cairn-server")
	log.Printf("building cairn from %s", root)
	build := exec.CommandContext(ctx, "go", "build", "-o", cairnBin+".built", "./cmd/cairn")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build cairn: %w", err)
	}
	// Both binaries run from copies written just now: the same bytes
	// written minutes earlier read 12–16 MiB less "executable" resident
	// than when just written (43–47 against 58–59 MiB, same code, same
	// run; the page cache's folios change meanwhile), which favoured an
	// older -base-bin.
	if err := copyFile(cairnBin+".built", cairnBin); err != nil {
		return err
	}
	if c.baseBin != "" {
		c.baseBin, err = filepath.Abs(c.baseBin)
		if err == nil {
			err = copyFile(c.baseBin, filepath.Join(work, "cairn-base-server"))
		}
		if err != nil {
			return err
		}
		c.baseBin = filepath.Join(work, "cairn-base-server")
	}
	cpu := -1
	if c.pin {
		cpu = pinServerCPU
		if err := pinSelf(pinLoadCPU); err != nil {
			return err
		}
		log.Printf("load generator runs on CPU %s, servers on CPU %d", cpusAllowed(os.Getpid()), pinServerCPU)
	}
	var results []*result
	targets := []target{newCairn("cairn", cairnBin, work, c.cairnArgs, c.cairnEnv, cpu), newPocketBase(self, work, cpu)}
	if c.floor {
		targets = slices.Insert(targets, 1, target(newFloor(self, work, cpu)))
	}
	if c.baseBin != "" || c.baseArgs != "" || c.baseEnv != "" {
		base := newCairn("cairn-base", cmp.Or(c.baseBin, cairnBin), work, c.baseArgs, c.baseEnv, cpu)
		if c.baseAfter {
			targets = slices.Insert(targets, 1, target(base))
		} else {
			targets = append([]target{base}, targets...)
		}
	}
	if c.pbFirst {
		pb := targets[len(targets)-1]
		targets = append([]target{pb}, targets[:len(targets)-1]...)
	}
	if c.alternate {
		if c.cpuProfile != "" {
			return fmt.Errorf("-cpu-profile profiles one server's loads: run it without -alternate")
		}
		var ts []target
		for _, t := range targets {
			if c.only == "" || strings.HasPrefix(t.name(), c.only) {
				ts = append(ts, t)
			}
		}
		rs, err := measureAlternating(ctx, ts, c)
		if err != nil {
			return err
		}
		printResults(os.Stdout, c, rs)
		return nil
	}
	for _, t := range targets {
		if c.only != "" && !strings.HasPrefix(t.name(), c.only) {
			continue
		}
		r, err := measure(ctx, t, c)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name(), err)
		}
		results = append(results, r)
	}
	printResults(os.Stdout, c, results)
	return nil
}

// repoRoot is the Cairn checkout this tool lives in.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	// tools/pbcompare/go.mod → the repository's root.
	return filepath.Dir(filepath.Dir(filepath.Dir(strings.TrimSpace(string(out))))), nil
}

// copyFile writes a copy of the executable src at dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	// Through a plain buffer: io.Copy between files would use
	// copy_file_range, sharing the source's page cache state.
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, make([]byte, 1<<20)); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}
