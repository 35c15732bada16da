package js

import (
	"bufio"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/dop251/goja"

	"github.com/cairn-dev/cairn/fnrun"
)

// WorkerEnv is the environment variable that makes a program a worker: its
// main must call WorkerMain when it is "1" (see SelfCommand).
const WorkerEnv = "CAIRN_FUNCTION_WORKER"

// programCacheSize is how many compiled bundles a worker keeps.
const programCacheSize = 32

// WorkerMain is a worker process's main: it reads jobs from stdin and
// writes one reply for each to stdout (gob), one execution at a time, until
// stdin closes. It never returns.
func WorkerMain() {
	in := gob.NewDecoder(bufio.NewReader(os.Stdin))
	bw := bufio.NewWriter(os.Stdout)
	out := gob.NewEncoder(bw)
	send := func(r reply) {
		if out.Encode(r) != nil || bw.Flush() != nil {
			os.Exit(3)
		}
	}
	w := newWorkerState()
	send(reply{Kind: kindReady})
	for {
		var j job
		if err := in.Decode(&j); err != nil {
			if err == io.EOF {
				os.Exit(0)
			}
			os.Exit(2)
		}
		send(w.handle(&j))
		w.tidy()
	}
}

// workerState is what a worker keeps between executions: compiled programs
// and the fetch transport, never JavaScript values.
type workerState struct {
	prelude  *goja.Program
	programs map[string]*goja.Program
	order    []string // least recently used first
	fetch    *fetcher
}

func newWorkerState() *workerState {
	prelude, err := goja.Compile("prelude.js", preludeSource, true)
	if err != nil {
		panic("js: prelude does not compile: " + err.Error())
	}
	return &workerState{prelude: prelude, programs: map[string]*goja.Program{}}
}

func (w *workerState) handle(j *job) reply {
	start := time.Now()
	prg, ok := w.programs[j.Hash]
	if !ok {
		if j.Code == nil {
			return reply{Kind: kindNeedCode}
		}
		if sum := sha256.Sum256(j.Code); hex.EncodeToString(sum[:]) != j.Hash {
			return reply{Kind: kindCrashed, Message: "internal: code does not match its hash"}
		}
		var err error
		if prg, err = compile(j.Code); err != nil {
			return reply{Kind: kindInvalid, Message: err.Error()}
		}
		w.programs[j.Hash] = prg
	}
	w.touch(j.Hash)

	if w.fetch == nil || !w.fetch.opts.equal(j.Fetch.withDefaults()) {
		if w.fetch != nil {
			w.fetch.transport.CloseIdleConnections()
		}
		w.fetch = newFetcher(j.Fetch)
	}

	lim := j.Limits.WithDefaults()
	debug.SetMemoryLimit(inUse() + lim.MaxMemoryBytes)
	// The worker runs one execution at a time: the process's CPU time
	// across it (its GC and fetches included) is the execution's.
	cpu := fnrun.ProcessCPU()
	out := safeRun(prg, w.prelude, j, w.fetch)
	out.resp.CPUTime = fnrun.ProcessCPU() - cpu
	debug.SetMemoryLimit(math.MaxInt64)
	return reply{Kind: out.kind, Message: out.message, Response: out.resp, Took: time.Since(start)}
}

// safeRun turns a Go panic during an execution (a bug in the runtime, not
// in the code it runs) into a crash of that execution alone.
func safeRun(prg, prelude *goja.Program, j *job, f *fetcher) (out outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = outcome{kind: kindCrashed, message: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	return runExecution(prg, prelude, j, f)
}

func (w *workerState) touch(hash string) {
	for i, h := range w.order {
		if h == hash {
			w.order = append(w.order[:i], w.order[i+1:]...)
			break
		}
	}
	w.order = append(w.order, hash)
	for len(w.order) > programCacheSize {
		delete(w.programs, w.order[0])
		w.order = w.order[1:]
	}
}

// tidy returns memory an execution left behind to the OS, so that the
// parent's reading of the worker's resident set stays close to what the
// next execution uses.
func (w *workerState) tidy() {
	if heapObjects() > 32<<20 {
		debug.FreeOSMemory()
	}
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func heapObjects() uint64 { return readMetric("/memory/classes/heap/objects:bytes") }

// inUse is the memory the Go runtime holds from the OS and has not
// released.
func inUse() int64 {
	return int64(readMetric("/memory/classes/total:bytes") - readMetric("/memory/classes/heap/released:bytes"))
}
