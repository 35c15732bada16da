package js_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/js"
)

func TestRequestAndResponses(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	req := fnrun.Request{
		Method:      "POST",
		Path:        "/hello",
		Query:       map[string][]string{"a": {"1", "2"}, "b": {"x y"}},
		Headers:     map[string]string{"Content-Type": "application/json", "X-Thing": "T"},
		Body:        []byte(`{"name":"cairn","n":3}`),
		Variables:   map[string]string{"GREETING": "hi"},
		ProjectID:   "p1",
		FunctionID:  "f1",
		Trigger:     "event",
		Event:       []byte(`{"$id":"doc1"}`),
		EventNames:  []string{"databases.db.collections.c.documents.doc1.create"},
		APIEndpoint: "http://cairn.test/v1",
		APIKey:      "key-1",
		UserJWT:     "jwt-1",
	}
	cases := []struct {
		name    string
		handler string
		status  int
		headers map[string]string
		body    string
	}{
		{"json echo with status and header", `async ({ req, res }) => res.json({
			method: req.method, path: req.path, query: req.query, qs: req.queryString,
			ct: req.headers['content-type'], thing: req.headers['x-thing'], json: req.bodyJson,
			text: req.bodyText, trigger: req.trigger, event: req.event, names: req.eventNames,
			key: req.headers['x-appwrite-key'], jwt: req.headers['x-appwrite-user-jwt'],
		}, 201, { 'X-Made-By': 'test' })`, 201,
			map[string]string{"content-type": "application/json", "x-made-by": "test"},
			`{"method":"POST","path":"/hello","query":{"a":"1","b":"x y"},"qs":"a=1&a=2&b=x+y","ct":"application/json","thing":"T","json":{"name":"cairn","n":3},"text":"{\"name\":\"cairn\",\"n\":3}","trigger":"event","event":{"$id":"doc1"},"names":["databases.db.collections.c.documents.doc1.create"],"key":"key-1","jwt":"jwt-1"}`},
		{"redirect", `({ res }) => res.redirect('https://example.com/next')`, 301,
			map[string]string{"location": "https://example.com/next"}, ""},
		{"redirect with status", `({ res }) => res.redirect('/x', 302)`, 302, map[string]string{"location": "/x"}, ""},
		{"empty", `({ res }) => res.empty()`, 204, nil, ""},
		{"text", `({ res }) => res.text('plain', 202)`, 202, map[string]string{"content-type": "text/plain; charset=utf-8"}, "plain"},
		{"send", `({ res }) => res.send('raw', 200, { 'content-type': 'text/csv' })`, 200, map[string]string{"content-type": "text/csv"}, "raw"},
		{"several values are field lines", `({ res }) => res.send('c', 200, { 'Set-Cookie': ['a=1', 'b=2'] })`, 200,
			map[string]string{"set-cookie": "a=1\nb=2"}, "c"},
		{"binary", `({ res }) => res.binary(new Uint8Array([104, 105]))`, 200, map[string]string{"content-type": "application/octet-stream"}, "hi"},
		{"variables", `({ res, env, variables }) => res.json([env.GREETING, variables.GREETING, process.env.GREETING,
			process.env.APPWRITE_FUNCTION_PROJECT_ID, process.env.APPWRITE_FUNCTION_API_ENDPOINT])`, 200, nil,
			`["hi","hi","hi","p1","http://cairn.test/v1"]`},
		{"context credentials", `(c) => c.res.json([c.projectId, c.functionId, c.apiEndpoint, c.apiKey, c.userJwt])`, 200, nil,
			`["p1","f1","http://cairn.test/v1","key-1","jwt-1"]`},
		{"module.exports.default", `{ default: async ({ res }) => res.text('d') }`, 200, nil, "d"},
		{"no return uses the last response", `({ res }) => { res.text('late') }`, 200, nil, "late"},
		{"text encoder round trip", `({ res }) => {
			const s = 'héllo ✓ 😀';
			const b = new TextEncoder().encode(s);
			const back = new TextDecoder().decode(b);
			const into = new Uint8Array(4);
			const r = new TextEncoder().encodeInto('héllo', into);
			return res.json({ len: b.length, same: back === s, read: r.read, written: r.written });
		}`, 200, nil, `{"len":15,"same":true,"read":3,"written":4}`},
		{"base64", `({ res }) => res.json([btoa('hello'), atob('aGVsbG8='), atob('aGVsbG8')])`, 200, nil, `["aGVsbG8=","hello","hello"]`},
		{"timers order with await", `async ({ res }) => {
			const order = [];
			const sleep = (ms, tag) => new Promise(r => setTimeout(() => { order.push(tag); r(); }, ms));
			setTimeout(() => order.push('t30'), 30);
			const i = setInterval(() => { order.push('i'); if (order.filter(x => x === 'i').length === 2) clearInterval(i); }, 5);
			const c = setTimeout(() => order.push('cleared'), 1);
			clearTimeout(c);
			queueMicrotask(() => order.push('micro'));
			await sleep(20, 's20');
			await sleep(20, 's40');
			return res.json(order);
		}`, 200, nil, `["micro","i","i","s20","t30","s40"]`},
		{"url", `({ res }) => {
			const u = new URL('https://a.example/p/q?x=1&y=2#h');
			u.searchParams.append('z', '3');
			return res.json([u.host, u.pathname, u.searchParams.get('y'), u.toString(), new URLSearchParams({a: 'b c'}).toString()]);
		}`, 200, nil, `["a.example","/p/q","2","https://a.example/p/q?x=1&y=2&z=3#h","a=b+c"]`},
		{"crypto values", `({ res }) => {
			const a = crypto.getRandomValues(new Uint8Array(32));
			return res.json({ n: a.length, nonzero: a.some(x => x !== 0) });
		}`, 200, nil, `{"n":32,"nonzero":true}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := mustRun(t, p, cjs(c.handler), req)
			if resp.Status != c.status {
				t.Errorf("status = %d, want %d (errors: %s)", resp.Status, c.status, resp.Errors)
			}
			for k, v := range c.headers {
				if resp.Headers[k] != v {
					t.Errorf("header %s = %q, want %q (all: %v)", k, resp.Headers[k], v, resp.Headers)
				}
			}
			if string(resp.Body) != c.body {
				t.Errorf("body = %s\nwant   %s", resp.Body, c.body)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	resp := mustRun(t, p, cjs(`({ res, log, error }) => {
		log('hello', { a: 1 }, [1, 2], 3);
		console.log('from console');
		console.info('info');
		error('bad thing');
		console.error('console error', new Error('boom').message);
		console.warn('careful');
		return res.empty();
	}`), fnrun.Request{})
	wantLogs := "hello {\"a\":1} [1,2] 3\nfrom console\ninfo\n"
	wantErrors := "bad thing\nconsole error boom\ncareful\n"
	if resp.Logs != wantLogs {
		t.Errorf("logs = %q, want %q", resp.Logs, wantLogs)
	}
	if resp.Errors != wantErrors {
		t.Errorf("errors = %q, want %q", resp.Errors, wantErrors)
	}
}

func TestLogsTruncated(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	resp, err := run(t, p, cjs(`({ res, log }) => { for (let i = 0; i < 1000; i++) log('0123456789'); return res.empty(); }`),
		fnrun.Request{}, fnrun.Limits{MaxLogBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Logs, "0123456789\n") || !strings.HasSuffix(resp.Logs, "[truncated]\n") || len(resp.Logs) > 120 {
		t.Errorf("logs = %q", resp.Logs)
	}
}

func TestRandomUUID(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	resp := mustRun(t, p, cjs(`({ res }) => res.json([crypto.randomUUID(), crypto.randomUUID()])`), fnrun.Request{})
	var ids []string
	if err := json.Unmarshal(resp.Body, &ids); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, id := range ids {
		if !re.MatchString(id) {
			t.Errorf("%q is not a v4 UUID", id)
		}
	}
	if ids[0] == ids[1] {
		t.Error("two UUIDs are equal")
	}
}

func TestThrownError(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	code := []byte("function fail() {\n  throw new Error('kaboom');\n}\nmodule.exports = async ({ res }) => {\n  await null;\n  fail();\n  return res.empty();\n};\n")
	resp, err := run(t, p, code, fnrun.Request{}, fnrun.Limits{})
	if !errors.Is(err, fnrun.ErrCrashed) || !strings.Contains(err.Error(), "kaboom") {
		t.Fatalf("err = %v, want ErrCrashed with the message", err)
	}
	if !strings.Contains(resp.Errors, "Error: kaboom") || !strings.Contains(resp.Errors, "at fail (index.js:2:") {
		t.Errorf("errors lack the message or stack: %q", resp.Errors)
	}
}

func TestBadBodyJSONThrows(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	resp := mustRun(t, p, cjs(`({ req, res }) => {
		try { return res.json(req.bodyJson); } catch (e) { return res.text(e.name, 400); }
	}`), fnrun.Request{Body: []byte("{not json")})
	if resp.Status != 400 || string(resp.Body) != "SyntaxError" {
		t.Errorf("got %d %s", resp.Status, resp.Body)
	}
}

func TestFailures(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	cases := []struct {
		name string
		code string
		lim  fnrun.Limits
		want error
		msg  string
	}{
		{"no export", "module.exports = 1;", fnrun.Limits{}, fnrun.ErrCrashed, "exports no function"},
		{"no response", "module.exports = () => 1;", fnrun.Limits{}, fnrun.ErrCrashed, "returned no response"},
		{"syntax", "module.exports = () => {", fnrun.Limits{}, fnrun.ErrInvalidCode, ""},
		{"top-level throw", "throw new TypeError('at load');", fnrun.Limits{}, fnrun.ErrCrashed, "at load"},
		{"thrown in timer", "module.exports = () => new Promise(() => setTimeout(() => { throw new Error('in timer') }, 1));", fnrun.Limits{}, fnrun.ErrCrashed, "in timer"},
		{"bad status", "module.exports = ({ res }) => res.send('x', 99);", fnrun.Limits{}, fnrun.ErrCrashed, "status"},
		{"large response", "module.exports = ({ res }) => res.send('x'.repeat(2000));", fnrun.Limits{MaxResponseBytes: 1000}, fnrun.ErrResponseLarge, "2000"},
		{"recursion", "function f() { return f() + 1 } module.exports = ({ res }) => res.json(f());", fnrun.Limits{}, fnrun.ErrCrashed, "stack"},
		{"no require", "module.exports = ({ res }) => res.text(typeof require + typeof fs + typeof process.exit);", fnrun.Limits{}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := run(t, p, []byte(c.code), fnrun.Request{}, c.lim)
			if c.want == nil {
				if err != nil || string(resp.Body) != "undefinedundefinedundefined" {
					t.Fatalf("err = %v, body %q", err, resp.Body)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v containing %q (errors: %s)", err, c.want, c.msg, resp.Errors)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	if err := js.Check(cjs(`({ res }) => res.empty()`)); err != nil {
		t.Errorf("Check(valid) = %v", err)
	}
	if err := js.Check([]byte("module.exports = ({ res }) => {")); !errors.Is(err, fnrun.ErrInvalidCode) {
		t.Errorf("Check(invalid) = %v, want ErrInvalidCode", err)
	}
}

func TestTimeout(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	lim := fnrun.Limits{Timeout: 300 * time.Millisecond}
	for _, c := range []struct{ name, code string }{
		{"busy loop", "module.exports = () => { while (true) {} };"},
		{"busy loop after await", "module.exports = async () => { await new Promise(r => setTimeout(r, 10)); for (;;) {} };"},
		{"never settles", "module.exports = () => new Promise(() => {});"},
		{"waits on a timer past the deadline", "module.exports = ({ res }) => new Promise(r => setTimeout(() => r(res.empty()), 60000));"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := run(t, p, []byte(c.code), fnrun.Request{}, lim)
			if !errors.Is(err, fnrun.ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			if took := time.Since(start); took > lim.Timeout+time.Second {
				t.Errorf("took %v", took)
			}
			// The pool still serves.
			resp := mustRun(t, p, cjs(`({ res }) => res.text('ok')`), fnrun.Request{})
			if string(resp.Body) != "ok" {
				t.Errorf("after timeout: %q", resp.Body)
			}
		})
	}
}

func TestUnhandledRejectionIsLogged(t *testing.T) {
	p := newPool(t, js.PoolOptions{})
	resp := mustRun(t, p, cjs(`async ({ res }) => {
		Promise.reject(new Error('nobody listens'));
		const handled = Promise.reject(new Error('handled'));
		handled.catch(() => {});
		await new Promise(r => setTimeout(r, 1));
		return res.json(performance.now() >= 0);
	}`), fnrun.Request{})
	if !strings.Contains(resp.Errors, "Unhandled promise rejection: Error: nobody listens") || strings.Contains(resp.Errors, "handled\n") {
		t.Errorf("errors = %q", resp.Errors)
	}
	if string(resp.Body) != "true" {
		t.Errorf("body = %s", resp.Body)
	}
}
