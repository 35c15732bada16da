package js

import (
	"container/heap"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"
	nodeurl "github.com/dop251/goja_nodejs/url"

	"github.com/cairn-dev/cairn/fnrun"
)

//go:embed prelude.js
var preludeSource string

// maxCallStack bounds JavaScript recursion (Node's default is about 11k).
const maxCallStack = 10000

// maxFetches bounds one execution's fetches in flight.
const maxFetches = 32

// execution is one run of a handler in a fresh runtime. All its fields are
// used by the goroutine running the event loop only, except inbox and done.
type execution struct {
	vm    *goja.Runtime
	job   *job
	fetch *fetcher
	ctx   context.Context

	logs, errs logBuffer

	timers    timerHeap
	timerByID map[int64]*jsTimer
	nextTimer int64

	// inbox receives completions from other goroutines (fetch); done is
	// closed when the execution ends so that they never block.
	inbox   chan func()
	done    chan struct{}
	pending int

	// fatal is an exception thrown by a callback no one catches; it ends
	// the execution as Node would end the process.
	fatal error

	unhandled []*goja.Promise
}

type jsTimer struct {
	id       int64
	when     time.Time
	interval time.Duration
	repeat   bool
	fn       goja.Callable
	seq      int64
	index    int
}

type timerHeap []*jsTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)   { t := x.(*jsTimer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
func (h timerHeap) peek() *jsTimer { return h[0] }

// outcome is how an execution ended, before it becomes a reply.
type outcome struct {
	kind    string
	message string
	resp    fnrun.Response
}

var errInterrupted = errors.New("execution timed out")

// runExecution runs prg (a compiled bundle) for j and returns the reply.
func runExecution(prg, prelude *goja.Program, j *job, f *fetcher) outcome {
	lim := j.Limits.WithDefaults()
	deadline := time.Now().Add(lim.Timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	e := &execution{
		vm:        goja.New(),
		job:       j,
		fetch:     f,
		ctx:       ctx,
		logs:      logBuffer{max: lim.MaxLogBytes},
		errs:      logBuffer{max: lim.MaxLogBytes},
		timerByID: map[int64]*jsTimer{},
		inbox:     make(chan func(), maxFetches),
		done:      make(chan struct{}),
	}
	defer close(e.done)

	vm := e.vm
	vm.SetMaxCallStackSize(maxCallStack)
	vm.SetPromiseRejectionTracker(e.trackRejection)
	stop := time.AfterFunc(lim.Timeout, func() { vm.Interrupt(errInterrupted) })
	defer stop.Stop()

	out := e.run(prg, prelude, deadline)
	out.resp.Logs = e.logs.String()
	out.resp.Errors = e.errs.String()
	if out.kind == kindOK && int64(len(out.resp.Body)) > lim.MaxResponseBytes {
		out = outcome{kind: kindLarge, message: fmt.Sprintf("response body is %d bytes, over the limit of %d", len(out.resp.Body), lim.MaxResponseBytes),
			resp: fnrun.Response{Logs: out.resp.Logs, Errors: out.resp.Errors}}
	}
	return out
}

func (e *execution) run(prg, prelude *goja.Program, deadline time.Time) outcome {
	vm := e.vm
	glue, err := e.install(prelude)
	if err != nil {
		return e.failure(err)
	}
	wrapper, err := vm.RunProgram(prg)
	if err != nil {
		return e.failure(err)
	}
	fn, ok := goja.AssertFunction(wrapper)
	if !ok {
		return outcome{kind: kindCrashed, message: "bundle did not compile to a module"}
	}
	exports := vm.NewObject()
	module := vm.NewObject()
	if err := module.Set("exports", exports); err != nil {
		return e.failure(err)
	}
	if _, err := fn(goja.Undefined(), exports, module); err != nil {
		return e.failure(err)
	}
	runFn, _ := goja.AssertFunction(glue.Get("run"))
	v, err := runFn(goja.Undefined(), module, e.input())
	if err != nil {
		return e.failure(err)
	}
	p, ok := v.Export().(*goja.Promise)
	if !ok {
		return outcome{kind: kindCrashed, message: "internal: run returned no promise"}
	}

	deadlineTimer := time.NewTimer(time.Until(deadline))
	defer deadlineTimer.Stop()
	for p.State() == goja.PromiseStatePending {
		if e.fatal != nil {
			return e.failure(e.fatal)
		}
		var wake *time.Timer
		var wakeC <-chan time.Time
		if len(e.timers) > 0 {
			t := e.timers.peek()
			d := time.Until(t.when)
			if d <= 0 {
				e.fire(t)
				continue
			}
			wake = time.NewTimer(d)
			wakeC = wake.C
		} else if e.pending == 0 {
			return outcome{kind: kindTimeout, message: "the handler's promise never settles: nothing is pending (no timer, no fetch)"}
		}
		timedOut := false
		select {
		case f := <-e.inbox:
			f()
		case <-wakeC:
		case <-deadlineTimer.C:
			timedOut = true
		}
		if wake != nil {
			wake.Stop()
		}
		if timedOut {
			return outcome{kind: kindTimeout, message: errInterrupted.Error()}
		}
	}
	if e.fatal != nil {
		return e.failure(e.fatal)
	}
	e.reportUnhandled(p)
	if p.State() == goja.PromiseStateRejected {
		return e.thrown(p.Result())
	}
	resp, err := e.response(p.Result())
	if err != nil {
		return outcome{kind: kindCrashed, message: err.Error()}
	}
	return outcome{kind: kindOK, resp: resp}
}

// failure turns an error from goja into an outcome.
func (e *execution) failure(err error) outcome {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		return outcome{kind: kindTimeout, message: errInterrupted.Error()}
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return e.thrown(ex.Value())
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		e.errs.write(err.Error() + "\n")
		return outcome{kind: kindCrashed, message: "maximum call stack size exceeded"}
	}
	return outcome{kind: kindCrashed, message: err.Error()}
}

// thrown records an uncaught exception's stack in Errors.
func (e *execution) thrown(v goja.Value) outcome {
	msg, stack := describe(e.vm, v)
	e.errs.write(stack + "\n")
	return outcome{kind: kindCrashed, message: msg}
}

// describe returns an exception's message and its stack (or the message
// when it has none).
func describe(vm *goja.Runtime, v goja.Value) (msg, stack string) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return fmt.Sprint(v), fmt.Sprint(v)
	}
	msg = v.String()
	if o, ok := v.(*goja.Object); ok {
		if s := o.Get("stack"); s != nil && !goja.IsUndefined(s) && !goja.IsNull(s) {
			stack = cleanStack(s.String())
			if !strings.Contains(stack, msg) {
				stack = msg + "\n" + stack
			}
			return msg, stack
		}
		if o.ClassName() == "Object" {
			if b, err := json.Marshal(o.Export()); err == nil {
				msg = string(b)
			}
		}
	}
	return msg, msg
}

// cleanStack drops the runtime's own frames and trailing blank lines.
func cleanStack(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.Contains(l, "(prelude.js:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (e *execution) trackRejection(p *goja.Promise, op goja.PromiseRejectionOperation) {
	if op == goja.PromiseRejectionReject {
		e.unhandled = append(e.unhandled, p)
		return
	}
	for i, q := range e.unhandled {
		if q == p {
			e.unhandled = append(e.unhandled[:i], e.unhandled[i+1:]...)
			return
		}
	}
}

func (e *execution) reportUnhandled(main *goja.Promise) {
	for _, p := range e.unhandled {
		if p == main {
			continue
		}
		_, stack := describe(e.vm, p.Result())
		e.errs.write("Unhandled promise rejection: " + stack + "\n")
	}
}

// fire runs a due timer.
func (e *execution) fire(t *jsTimer) {
	if t.repeat {
		t.when = time.Now().Add(t.interval)
		t.seq = e.nextTimer
		e.nextTimer++
		heap.Fix(&e.timers, t.index)
	} else {
		heap.Remove(&e.timers, t.index)
		delete(e.timerByID, t.id)
	}
	if _, err := t.fn(goja.Undefined()); err != nil && e.fatal == nil {
		e.fatal = err
	}
}

// post hands f to the event loop from another goroutine; it is dropped if
// the execution is over.
func (e *execution) post(f func()) {
	select {
	case e.inbox <- f:
	case <-e.done:
	}
}

// input is the request as the prelude's run takes it.
func (e *execution) input() *goja.Object {
	vm := e.vm
	r := e.job.Request
	o := vm.NewObject()
	headers := vm.NewObject()
	hs := map[string]string{}
	for k, v := range r.Headers {
		hs[strings.ToLower(k)] = v
	}
	setDefault := func(k, v string) {
		if _, ok := hs[k]; !ok && v != "" {
			hs[k] = v
		}
	}
	setDefault("x-appwrite-trigger", r.Trigger)
	if len(r.EventNames) > 0 {
		setDefault("x-appwrite-event", r.EventNames[0])
	}
	setDefault("x-appwrite-key", r.APIKey)
	setDefault("x-appwrite-user-jwt", r.UserJWT)
	keys := make([]string, 0, len(hs))
	for k := range hs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		_ = headers.Set(k, hs[k])
	}
	query := vm.NewObject()
	qkeys := make([]string, 0, len(r.Query))
	for k := range r.Query {
		qkeys = append(qkeys, k)
	}
	sort.Strings(qkeys)
	for _, k := range qkeys {
		if vs := r.Query[k]; len(vs) > 0 {
			_ = query.Set(k, vs[0])
		}
	}
	qs := url.Values(r.Query).Encode()
	scheme := hs["x-forwarded-proto"]
	if scheme == "" {
		scheme = "http"
	}
	host := hs["host"]
	hostname, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		hostname, port = host[:i], host[i+1:]
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	path := r.Path
	if path == "" {
		path = "/"
	}
	full := scheme + "://" + host + path
	if qs != "" {
		full += "?" + qs
	}
	method := r.Method
	if method == "" {
		method = "GET"
	}
	event := ""
	if len(r.Event) > 0 && json.Valid(r.Event) {
		event = string(r.Event)
	}
	names := make([]any, len(r.EventNames))
	for i, n := range r.EventNames {
		names[i] = n
	}
	set := func(k string, v any) { _ = o.Set(k, v) }
	set("method", method)
	set("scheme", scheme)
	set("host", hostname)
	set("port", port)
	set("path", path)
	set("url", full)
	set("query", query)
	set("queryString", qs)
	set("headers", headers)
	set("body", strings.ToValidUTF8(string(r.Body), "\uFFFD"))
	set("trigger", r.Trigger)
	set("event", event)
	set("eventNames", vm.NewArray(names...))
	set("projectId", r.ProjectID)
	set("functionId", r.FunctionID)
	set("deploymentId", r.DeploymentID)
	set("executionId", r.ExecutionID)
	set("apiEndpoint", r.APIEndpoint)
	set("apiKey", r.APIKey)
	set("userJwt", r.UserJWT)
	return o
}

// env is process.env: the function's variables and Appwrite's
// APPWRITE_FUNCTION_* names.
func (e *execution) env() *goja.Object {
	r := e.job.Request
	env := map[string]string{}
	for k, v := range r.Variables {
		env[k] = v
	}
	for k, v := range map[string]string{
		"APPWRITE_FUNCTION_ID":              r.FunctionID,
		"APPWRITE_FUNCTION_DEPLOYMENT":      r.DeploymentID,
		"APPWRITE_FUNCTION_PROJECT_ID":      r.ProjectID,
		"APPWRITE_FUNCTION_API_ENDPOINT":    r.APIEndpoint,
		"APPWRITE_FUNCTION_RUNTIME_NAME":    "Cairn JavaScript",
		"APPWRITE_FUNCTION_RUNTIME_VERSION": "goja",
	} {
		if v != "" {
			env[k] = v
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := e.vm.NewObject()
	for _, k := range keys {
		_ = o.Set(k, env[k])
	}
	return o
}

// install sets up the globals: URL from goja_nodejs, then the prelude with
// the Go primitives.
func (e *execution) install(prelude *goja.Program) (*goja.Object, error) {
	vm := e.vm
	mod := vm.NewObject()
	if err := mod.Set("exports", vm.NewObject()); err != nil {
		return nil, err
	}
	nodeurl.Require(vm, mod)
	urlExports := mod.Get("exports").ToObject(vm)
	for _, name := range []string{"URL", "URLSearchParams"} {
		if err := vm.Set(name, urlExports.Get(name)); err != nil {
			return nil, err
		}
	}

	host := vm.NewObject()
	fns := map[string]func(goja.FunctionCall) goja.Value{
		"log":        func(c goja.FunctionCall) goja.Value { e.logs.write(c.Argument(0).String() + "\n"); return nil },
		"error":      func(c goja.FunctionCall) goja.Value { e.errs.write(c.Argument(0).String() + "\n"); return nil },
		"setTimer":   e.setTimer,
		"clearTimer": e.clearTimer,
		"utf8Encode": func(c goja.FunctionCall) goja.Value {
			return vm.ToValue(vm.NewArrayBuffer([]byte(c.Argument(0).String())))
		},
		"utf8Decode": e.utf8Decode,
		"atob":       e.atob,
		"btoa":       e.btoa,
		"randomUUID": func(goja.FunctionCall) goja.Value { return vm.ToValue(randomUUID()) },
		"fillRandom": func(c goja.FunctionCall) goja.Value {
			if b, ok := viewBytes(vm, c.Argument(0)); ok {
				_, _ = rand.Read(b)
			}
			return nil
		},
		"bodyBytes": func(goja.FunctionCall) goja.Value {
			return vm.ToValue(vm.NewArrayBuffer(append([]byte(nil), e.job.Request.Body...)))
		},
		"fetch": e.doFetch,
	}
	for name, fn := range fns {
		if err := host.Set(name, fn); err != nil {
			return nil, err
		}
	}
	pv, err := vm.RunProgram(prelude)
	if err != nil {
		return nil, err
	}
	pf, ok := goja.AssertFunction(pv)
	if !ok {
		return nil, errors.New("internal: prelude is not a function")
	}
	gv, err := pf(goja.Undefined(), host)
	if err != nil {
		return nil, err
	}
	glue := gv.ToObject(vm)
	setup, _ := goja.AssertFunction(glue.Get("setup"))
	if _, err := setup(goja.Undefined(), e.env()); err != nil {
		return nil, err
	}
	return glue, nil
}

func (e *execution) setTimer(c goja.FunctionCall) goja.Value {
	fn, ok := goja.AssertFunction(c.Argument(0))
	if !ok {
		panic(e.vm.NewTypeError("callback is not a function"))
	}
	ms := c.Argument(1).ToFloat()
	if ms != ms || ms < 0 { // NaN or negative
		ms = 0
	}
	d := time.Duration(ms * float64(time.Millisecond))
	repeat := c.Argument(2).ToBoolean()
	if repeat && d < time.Millisecond {
		d = time.Millisecond
	}
	e.nextTimer++
	t := &jsTimer{id: e.nextTimer, when: time.Now().Add(d), interval: d, repeat: repeat, fn: fn, seq: e.nextTimer}
	heap.Push(&e.timers, t)
	e.timerByID[t.id] = t
	return e.vm.ToValue(t.id)
}

func (e *execution) clearTimer(c goja.FunctionCall) goja.Value {
	id := c.Argument(0).ToInteger()
	if t, ok := e.timerByID[id]; ok {
		heap.Remove(&e.timers, t.index)
		delete(e.timerByID, id)
	}
	return nil
}

func (e *execution) utf8Decode(c goja.FunctionCall) goja.Value {
	vm := e.vm
	b, ok := viewBytes(vm, c.Argument(0))
	if !ok {
		panic(vm.NewTypeError("input must be a Uint8Array"))
	}
	fatal, ignoreBOM := c.Argument(1).ToBoolean(), c.Argument(2).ToBoolean()
	if !ignoreBOM && len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		b = b[3:]
	}
	if !utf8.Valid(b) {
		if fatal {
			panic(vm.NewTypeError("The encoded data was not valid for encoding utf-8"))
		}
		return vm.ToValue(strings.ToValidUTF8(string(b), "\uFFFD"))
	}
	return vm.ToValue(string(b))
}

func (e *execution) invalidCharacter(msg string) {
	o := e.vm.NewTypeError(msg)
	_ = o.Set("name", "InvalidCharacterError")
	panic(o)
}

func (e *execution) btoa(c goja.FunctionCall) goja.Value {
	s := c.Argument(0).String()
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			e.invalidCharacter("Invalid character: btoa takes Latin-1 strings only")
		}
		b = append(b, byte(r))
	}
	return e.vm.ToValue(base64.StdEncoding.EncodeToString(b))
}

func (e *execution) atob(c goja.FunctionCall) goja.Value {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\f', '\r':
			return -1
		}
		return r
	}, c.Argument(0).String())
	if len(s)%4 == 0 {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
	}
	if len(s)%4 == 1 {
		e.invalidCharacter("The string to be decoded is not correctly encoded.")
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		e.invalidCharacter("The string to be decoded is not correctly encoded.")
	}
	rs := make([]rune, len(b))
	for i, x := range b {
		rs[i] = rune(x)
	}
	return e.vm.ToValue(string(rs))
}

// viewBytes returns the bytes behind an ArrayBuffer or a view of one,
// shared with JavaScript.
func viewBytes(vm *goja.Runtime, v goja.Value) ([]byte, bool) {
	if ab, ok := v.Export().(goja.ArrayBuffer); ok {
		return ab.Bytes(), true
	}
	o, ok := v.(*goja.Object)
	if !ok {
		return nil, false
	}
	ab, ok := o.Get("buffer").Export().(goja.ArrayBuffer)
	if !ok {
		return nil, false
	}
	off, n := o.Get("byteOffset").ToInteger(), o.Get("byteLength").ToInteger()
	all := ab.Bytes()
	if off < 0 || n < 0 || off+n > int64(len(all)) {
		return nil, false
	}
	return all[off : off+n], true
}

// response reads the object a res.* method returned.
func (e *execution) response(v goja.Value) (fnrun.Response, error) {
	o, ok := v.(*goja.Object)
	if !ok {
		return fnrun.Response{}, errors.New("the function returned no response")
	}
	status := int(o.Get("statusCode").ToInteger())
	if status < 100 || status > 599 {
		return fnrun.Response{}, fmt.Errorf("invalid status code %v", o.Get("statusCode"))
	}
	resp := fnrun.Response{Status: status}
	if h, ok := o.Get("headers").(*goja.Object); ok {
		for _, k := range h.Keys() {
			if resp.Headers == nil {
				resp.Headers = map[string]string{}
			}
			resp.Headers[strings.ToLower(k)] = h.Get(k).String()
		}
	}
	switch b := o.Get("body").Export().(type) {
	case string:
		resp.Body = []byte(b)
	case goja.ArrayBuffer:
		resp.Body = append([]byte(nil), b.Bytes()...)
	case nil:
	default:
		resp.Body = []byte(o.Get("body").String())
	}
	return resp, nil
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// logBuffer keeps what the code logged, up to max bytes.
type logBuffer struct {
	max       int
	b         strings.Builder
	truncated bool
}

const truncatedMarker = "\n[truncated]\n"

func (l *logBuffer) write(s string) {
	if l.truncated {
		return
	}
	if room := l.max - l.b.Len(); len(s) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		l.b.WriteString(s[:cut])
		l.b.WriteString(truncatedMarker)
		l.truncated = true
		return
	}
	l.b.WriteString(s)
}

func (l *logBuffer) String() string { return l.b.String() }
