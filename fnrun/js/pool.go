package js

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/fnrun"
)

// PoolOptions configure a Pool.
type PoolOptions struct {
	// Command starts a worker: a program whose main calls WorkerMain when
	// WorkerEnv is "1" (SelfCommand returns one for this program). The
	// pool sets its stdin, stdout and stderr.
	Command func() *exec.Cmd
	// Workers is how many executions run at once, each in its own worker
	// (default GOMAXPROCS).
	Workers int
	// Idle is how many warm workers are kept when nothing runs (default
	// 1); more stay warm for IdleTimeout (default 30 s) after a burst.
	Idle        int
	IdleTimeout time.Duration
	// Fetch bounds fetch in every execution.
	Fetch FetchOptions
}

// Timing constants of the supervision.
const (
	// grace is how long past its timeout a worker may take to answer
	// before it is killed.
	grace = 500 * time.Millisecond
	// rssEvery is how often a running worker's memory is read.
	rssEvery = 20 * time.Millisecond
	// startTimeout bounds a worker's start, up to its ready message.
	startTimeout = 15 * time.Second
	// retireGrowth is how far a worker's idle memory may grow above what
	// it was at start before the worker is replaced.
	retireGrowth = 64 << 20
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("js: pool closed")

// Pool runs executions in supervised worker processes, one execution per
// worker at a time, so that code that loops or allocates without end is
// killed without touching the server.
type Pool struct {
	opts PoolOptions
	sem  chan struct{}

	mu       sync.Mutex
	idle     []*worker // most recently used last
	busy     map[*worker]bool
	starting int
	closed   bool

	wg   sync.WaitGroup
	stop chan struct{}
}

// NewPool starts a pool and its Idle warm workers; it fails if a worker
// does not start (for instance because the program's main does not call
// WorkerMain).
func NewPool(opts PoolOptions) (*Pool, error) {
	if opts.Command == nil {
		return nil, errors.New("js: PoolOptions.Command is required")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Idle == 0 {
		opts.Idle = 1
	}
	if opts.Idle < 0 {
		opts.Idle = 0
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	p := &Pool{opts: opts, sem: make(chan struct{}, opts.Workers), busy: map[*worker]bool{}, stop: make(chan struct{})}
	for range opts.Idle {
		w, err := p.spawn(context.Background())
		if err != nil {
			p.Close()
			return nil, err
		}
		p.mu.Lock()
		p.idle = append(p.idle, w)
		p.mu.Unlock()
	}
	p.wg.Add(1)
	go p.reapIdle()
	return p, nil
}

// SelfCommand returns a PoolOptions.Command that starts this program as a
// worker, with an environment holding WorkerEnv only.
func SelfCommand() (func() *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("js: %w", err)
	}
	return func() *exec.Cmd {
		c := exec.Command(exe)
		c.Env = []string{WorkerEnv + "=1"}
		return c
	}, nil
}

// Run runs code (a bundle) for req within lim in a worker. It returns the
// response and, when the execution failed, an error wrapping
// fnrun.ErrTimeout, fnrun.ErrMemory, fnrun.ErrCrashed (an uncaught
// exception; its stack is in Response.Errors), fnrun.ErrInvalidCode or
// fnrun.ErrResponseLarge, with the logs written so far in the response
// where the worker survived to give them; or ctx's error, or ErrClosed.
func (p *Pool) Run(ctx context.Context, code []byte, req fnrun.Request, lim fnrun.Limits) (fnrun.Response, error) {
	lim = lim.WithDefaults()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fnrun.Response{}, ctx.Err()
	}
	defer func() { <-p.sem }()
	w, err := p.take(ctx)
	if err != nil {
		return fnrun.Response{}, err
	}
	resp, err, healthy := p.exec(ctx, w, code, req, lim)
	p.give(w, healthy)
	return resp, err
}

// Close stops the pool: idle workers exit, running ones are killed. Run
// returns ErrClosed afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	for w := range p.busy {
		w.kill()
	}
	p.mu.Unlock()
	close(p.stop)
	for _, w := range idle {
		w.close()
	}
	p.wg.Wait()
	return nil
}

func (p *Pool) take(ctx context.Context) (*worker, error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		w := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if w.alive() {
			p.busy[w] = true
			p.mu.Unlock()
			return w, nil
		}
	}
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.mu.Unlock()
	w, err := p.spawn(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		w.kill()
		return nil, ErrClosed
	}
	p.busy[w] = true
	return w, nil
}

// give takes a worker back after an execution: kept warm if healthy,
// otherwise killed and, if the pool is then short of warm workers,
// replaced.
func (p *Pool) give(w *worker, healthy bool) {
	if healthy {
		if m := rss(w.pid); m > 0 && m > w.base+retireGrowth {
			healthy = false
		}
	}
	p.mu.Lock()
	delete(p.busy, w)
	if healthy && !p.closed {
		w.lastUsed = time.Now()
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if healthy {
		w.close()
	} else {
		w.kill()
	}
	p.refill()
}

// refill starts workers in the background until Idle are warm.
func (p *Pool) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	need := p.opts.Idle - len(p.idle) - p.starting
	for range need {
		p.starting++
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w, err := p.spawn(context.Background())
			p.mu.Lock()
			defer p.mu.Unlock()
			p.starting--
			if err != nil {
				return
			}
			if p.closed {
				w.kill()
				return
			}
			w.lastUsed = time.Now()
			p.idle = append(p.idle, w)
		}()
	}
}

// reapIdle lets warm workers beyond Idle go after IdleTimeout.
func (p *Pool) reapIdle() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		var old []*worker
		p.mu.Lock()
		for len(p.idle) > p.opts.Idle && time.Since(p.idle[0].lastUsed) > p.opts.IdleTimeout {
			old = append(old, p.idle[0])
			p.idle = p.idle[1:]
		}
		p.mu.Unlock()
		for _, w := range old {
			w.close()
		}
	}
}

// exec runs one job on w. healthy reports whether w can be reused.
func (p *Pool) exec(ctx context.Context, w *worker, code []byte, req fnrun.Request, lim fnrun.Limits) (resp fnrun.Response, err error, healthy bool) {
	sum := sha256.Sum256(code)
	j := job{Hash: hex.EncodeToString(sum[:]), Request: req, Limits: lim, Fetch: p.opts.Fetch}
	if !w.known[j.Hash] {
		j.Code = code
	}
	if err := w.send(&j); err != nil {
		return fnrun.Response{}, w.died(), false
	}
	deadline := time.NewTimer(lim.Timeout + grace)
	defer deadline.Stop()
	tick := time.NewTicker(rssEvery)
	defer tick.Stop()
	limit := w.base + lim.MaxMemoryBytes
	for {
		select {
		case r, ok := <-w.replies:
			if !ok {
				return fnrun.Response{}, w.died(), false
			}
			if r.Kind == kindNeedCode {
				j.Code = code
				if err := w.send(&j); err != nil {
					return fnrun.Response{}, w.died(), false
				}
				continue
			}
			if r.Kind != kindInvalid {
				if len(w.known) >= 2*programCacheSize {
					clear(w.known)
				}
				w.known[j.Hash] = true
			}
			return r.Response, replyError(r), true
		case <-tick.C:
			if m := rss(w.pid); m > limit {
				w.kill()
				return fnrun.Response{}, fmt.Errorf("%w: the worker grew to %d MiB, over the limit of %d MiB above its idle %d MiB",
					fnrun.ErrMemory, m>>20, lim.MaxMemoryBytes>>20, w.base>>20), false
			}
		case <-deadline.C:
			w.kill()
			return fnrun.Response{}, fmt.Errorf("%w: no answer %v after the %v timeout; worker killed", fnrun.ErrTimeout, grace, lim.Timeout), false
		case <-ctx.Done():
			w.kill()
			return fnrun.Response{}, ctx.Err(), false
		}
	}
}

func replyError(r reply) error {
	var base error
	switch r.Kind {
	case kindOK:
		return nil
	case kindTimeout:
		base = fnrun.ErrTimeout
	case kindInvalid:
		// The message already wraps fnrun.ErrInvalidCode's text.
		return fmt.Errorf("%w: %s", fnrun.ErrInvalidCode, strings.TrimPrefix(r.Message, fnrun.ErrInvalidCode.Error()+": "))
	case kindLarge:
		base = fnrun.ErrResponseLarge
	default:
		base = fnrun.ErrCrashed
	}
	return fmt.Errorf("%w: %s", base, r.Message)
}

// worker is one worker process, seen from the parent.
type worker struct {
	cmd     *exec.Cmd
	pid     int
	stdin   io.WriteCloser
	enc     *gob.Encoder
	replies chan reply    // closed when the process has exited
	exited  chan struct{} // closed when the process has exited
	exitErr error
	stderr  *tail
	base    int64 // resident set size when idle after start
	known   map[string]bool
	// lastUsed is guarded by the pool's mutex.
	lastUsed time.Time
}

// spawn starts a worker and waits for its ready message.
func (p *Pool) spawn(ctx context.Context) (*worker, error) {
	cmd := p.opts.Command()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("js: worker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("js: worker: %w", err)
	}
	w := &worker{cmd: cmd, stdin: stdin, enc: gob.NewEncoder(stdin), replies: make(chan reply, 1),
		exited: make(chan struct{}), stderr: &tail{max: 4 << 10}, known: map[string]bool{}}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("js: start worker: %w", err)
	}
	w.pid = cmd.Process.Pid
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		dec := gob.NewDecoder(bufio.NewReader(stdout))
		for {
			var r reply
			if err := dec.Decode(&r); err != nil {
				break
			}
			w.replies <- r
		}
		// Reading is over: the process has exited or will be killed.
		w.cmd.Process.Kill()
		w.exitErr = cmd.Wait()
		close(w.exited)
		close(w.replies)
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case r, ok := <-w.replies:
		if ok && r.Kind == kindReady {
			w.base = rss(w.pid)
			return w, nil
		}
		w.kill()
		if ok {
			return nil, fmt.Errorf("js: worker said %q instead of ready", r.Kind)
		}
		<-w.exited
		return nil, fmt.Errorf("js: worker exited at start (does main call js.WorkerMain when %s=1?): exit %v; stderr: %s", WorkerEnv, w.exitErr, strings.TrimSpace(w.stderr.String()))
	case <-t.C:
		w.kill()
		return nil, fmt.Errorf("js: worker not ready after %v", startTimeout)
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

func (w *worker) send(j *job) error { return w.enc.Encode(j) }

func (w *worker) alive() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// kill ends the process now.
func (w *worker) kill() { _ = w.cmd.Process.Kill() }

// close asks the process to exit (its stdin closes) and kills it if it has
// not within a second.
func (w *worker) close() {
	_ = w.stdin.Close()
	select {
	case <-w.exited:
	case <-time.After(time.Second):
		w.kill()
	}
}

// died is the error for a worker that exited during an execution.
func (w *worker) died() error {
	w.kill()
	var exitErr error
	select {
	case <-w.exited:
		exitErr = w.exitErr
	case <-time.After(time.Second):
	}
	return fmt.Errorf("%w: the worker process died (%v)%s", fnrun.ErrCrashed, exitErr, crashLine(w.stderr.String()))
}

// crashLine picks the Go runtime's reason out of a dead worker's stderr.
func crashLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return ": " + l
		}
	}
	return ""
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
