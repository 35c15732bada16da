package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// target is one server under test, driven over HTTP with JSON.
type target interface {
	name() string
	// start runs the server and returns once it answers.
	start(ctx context.Context) error
	stop()
	pid() int
	// setup creates the collection {title, n, tag} with an index on tag.
	setup(ctx context.Context) error
	create(ctx context.Context, hc *http.Client, i int, tag string) (id string, err error)
	get(ctx context.Context, hc *http.Client, id string) error
	// list asks for 25 documents with this tag, sorted by n descending,
	// and, when check is set, decodes the answer and checks it holds 25.
	list(ctx context.Context, hc *http.Client, tag string, check bool) error
	// coverSort adds an index on (tag, n desc) and waits until it is used.
	coverSort(ctx context.Context) error
}

// server is a child process listening on a loopback port.
type server struct {
	cmd  *exec.Cmd
	base string
	logf *os.File
	env  []string // added to this process's environment
	cpu  int      // the CPU it runs on (-pin), or -1 for any
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.logf.Close()
}

func (s *server) run(ctx context.Context, logPath, health string, bin string, args ...string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	s.logf = f
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.Env = append(os.Environ(), s.env...)
	if err := startOn(s.cmd.Start, s.cpu); err != nil {
		return err
	}
	if s.cpu >= 0 {
		log.Printf("%s runs on CPU %s", filepath.Base(logPath), cpusAllowed(s.cmd.Process.Pid))
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err := http.Get(s.base + health)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("no answer on %s%s within 60 s (log: %s)", s.base, health, logPath)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// call sends a JSON request (in, or in's bytes if it is already []byte)
// and decodes a JSON answer into out (if not nil).
func call(ctx context.Context, hc *http.Client, method, u, token string, in, out any) error {
	var body io.Reader
	if b, ok := in.([]byte); ok {
		body = bytes.NewReader(b)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, u, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// cairn runs `cairn serve` with its defaults.
type cairn struct {
	server
	label                string
	bin, dir, admin, key string
	extra, env           []string
	pprof                string // --pprof-addr: memory statistics and heap profiles
	// bodies holds the read loads' requests, encoded once each: encoding a
	// map per request cost the load generator more than some calls cost
	// the server.
	bodies sync.Map // string → []byte
}

// body is the JSON of the request build returns, encoded the first time
// key is asked for.
func (c *cairn) body(key string, build func() any) ([]byte, error) {
	if b, ok := c.bodies.Load(key); ok {
		return b.([]byte), nil
	}
	b, err := json.Marshal(build())
	if err != nil {
		return nil, err
	}
	c.bodies.Store(key, b)
	return b, nil
}

// newCairn runs bin as the target called label (its data directory is
// named after it), with extra flags for cairn serve.
func newCairn(label, bin, work, extra, env string, cpu int) *cairn {
	admin := make([]byte, 32)
	_, _ = rand.Read(admin)
	t := &cairn{label: label, bin: bin, dir: filepath.Join(work, label), admin: hex.EncodeToString(admin), extra: strings.Fields(extra), env: strings.Fields(env)}
	t.cpu = cpu
	t.pprof, _ = freeAddr()
	return t
}

func (c *cairn) name() string { return c.label }

// logMemStats logs the Go runtime's view of the server's memory (without
// forcing a collection), to set beside its resident set: how much is live
// heap, heap kept for reuse, heap returned to the OS, stacks, and the next
// collection's goal.
func (c *cairn) logMemStats(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.pprof+"/debug/pprof/heap?debug=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("memory statistics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var parts []string
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(l, "# "), " = ")
		if !ok {
			continue
		}
		switch k {
		case "Sys", "HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased", "Stack", "MSpan", "OtherSys", "GCSys", "NextGC", "NumGC":
			parts = append(parts, k+"="+mib(v))
		}
	}
	log.Printf("%s Go memory: %s", c.label, strings.Join(parts, " "))
	return nil
}

// mib shows a byte count (or "inuse / sys" pair) in MiB; other values as
// they are.
func mib(v string) string {
	var out []string
	for _, f := range strings.Split(v, " / ") {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 1<<20 {
			out = append(out, f)
			continue
		}
		out = append(out, fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)))
	}
	return strings.Join(out, "/")
}

// writeHeapProfile saves the server's heap profile to path: after a
// collection it forces (gc), or as of the last one (what was live then).
func (c *cairn) writeHeapProfile(ctx context.Context, path string, gc bool) error {
	if gc {
		return c.saveProfile(ctx, "heap?gc=1", path)
	}
	return c.saveProfile(ctx, "heap", path)
}

// writeCPUProfile saves the server's CPU profile over the next d to path.
func (c *cairn) writeCPUProfile(ctx context.Context, d time.Duration, path string) error {
	return c.saveProfile(ctx, fmt.Sprintf("profile?seconds=%d", max(1, int(d.Seconds()))), path)
}

// writeAllocProfile saves the server's allocations over the next d to path.
func (c *cairn) writeAllocProfile(ctx context.Context, d time.Duration, path string) error {
	return c.saveProfile(ctx, fmt.Sprintf("allocs?seconds=%d", max(1, int(d.Seconds()))), path)
}

// saveProfile saves the pprof profile named what to path.
func (c *cairn) saveProfile(ctx context.Context, what, path string) error {
	if c.pprof == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.pprof+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", what, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *cairn) start(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	c.base = "http://" + addr
	args := append([]string{"serve", "--data-dir", c.dir, "--http-addr", addr, "--admin-key", c.admin, "--log-level", "warn", "--pprof-addr", c.pprof}, c.extra...)
	c.server.env = c.env
	return c.run(ctx, c.dir+".log", "/healthz", c.bin, args...)
}

func (c *cairn) rpc(ctx context.Context, hc *http.Client, method, token string, in, out any) error {
	return call(ctx, hc, http.MethodPost, c.base+"/cairn.v1."+method, "Bearer "+token, in, out)
}

const project, database, collection = "bench", "main", "posts"

func (c *cairn) ids() map[string]any {
	return map[string]any{"projectId": project, "databaseId": database, "collectionId": collection}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func (c *cairn) setup(ctx context.Context) error {
	hc := http.DefaultClient
	if err := c.rpc(ctx, hc, "ProjectsService/CreateProject", c.admin, map[string]any{"projectId": project, "name": project}, nil); err != nil {
		return err
	}
	var key struct{ Secret string }
	if err := c.rpc(ctx, hc, "KeysService/CreateKey", c.admin, map[string]any{"projectId": project, "name": "bench",
		"scopes": map[string]any{"scopes": []string{"databases.read", "databases.write", "collections.read", "collections.write", "documents.read", "documents.write"}}}, &key); err != nil {
		return err
	}
	c.key = key.Secret
	if err := c.rpc(ctx, hc, "DatabasesService/CreateDatabase", c.key, map[string]any{"projectId": project, "databaseId": database, "name": database}, nil); err != nil {
		return err
	}
	if err := c.rpc(ctx, hc, "DatabasesService/CreateCollection", c.key, map[string]any{"projectId": project, "databaseId": database, "collectionId": collection, "name": collection}, nil); err != nil {
		return err
	}
	for _, a := range []map[string]any{
		{"key": "title", "type": "ATTRIBUTE_TYPE_STRING", "size": 256},
		{"key": "n", "type": "ATTRIBUTE_TYPE_INTEGER"},
		{"key": "tag", "type": "ATTRIBUTE_TYPE_STRING", "size": 32},
	} {
		if err := c.rpc(ctx, hc, "DatabasesService/CreateAttribute", c.key, with(c.ids(), "attribute", a), nil); err != nil {
			return err
		}
		if err := c.waitAvailable(ctx, "GetAttribute", a["key"].(string), "attribute"); err != nil {
			return err
		}
	}
	return c.index(ctx, map[string]any{"key": "tag", "type": "INDEX_TYPE_KEY", "attributes": []string{"tag"}})
}

func (c *cairn) index(ctx context.Context, ix map[string]any) error {
	if err := c.rpc(ctx, http.DefaultClient, "DatabasesService/CreateIndex", c.key, with(c.ids(), "index", ix), nil); err != nil {
		return err
	}
	return c.waitAvailable(ctx, "GetIndex", ix["key"].(string), "index")
}

func (c *cairn) waitAvailable(ctx context.Context, method, key, field string) error {
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var out map[string]map[string]any
		if err := c.rpc(ctx, http.DefaultClient, "DatabasesService/"+method, c.key, with(c.ids(), "key", key), &out); err != nil {
			return err
		}
		switch out[field]["status"] {
		case "available":
			return nil
		case "failed":
			return fmt.Errorf("%s %s failed: %v", field, key, out[field]["error"])
		}
	}
	return fmt.Errorf("%s %s not available after 5 minutes", field, key)
}

func (c *cairn) create(ctx context.Context, hc *http.Client, i int, tag string) (string, error) {
	id := fmt.Sprintf("d%d", i)
	err := c.rpc(ctx, hc, "DatabasesService/CreateDocument", c.key, with(c.ids(), "document", map[string]any{
		"documentId": id, "data": map[string]any{"title": fmt.Sprintf("document number %d", i), "n": i * 7919 % 1_000_003, "tag": tag}}), nil)
	return id, err
}

func (c *cairn) get(ctx context.Context, hc *http.Client, id string) error {
	in, err := c.body("get "+id, func() any { return with(c.ids(), "documentId", id) })
	if err != nil {
		return err
	}
	return c.rpc(ctx, hc, "DatabasesService/GetDocument", c.key, in, nil)
}

func (c *cairn) list(ctx context.Context, hc *http.Client, tag string, check bool) error {
	in, err := c.body("list "+tag, func() any {
		return with(c.ids(),
			"filters", []map[string]any{{"op": "OPERATOR_EQUAL", "attribute": "tag", "values": []string{tag}}},
			"orders", []map[string]any{{"attribute": "n", "desc": true}}, "limit", 25, "total", false)
	})
	if err != nil {
		return err
	}
	if !check {
		return c.rpc(ctx, hc, "DatabasesService/ListDocuments", c.key, in, nil)
	}
	var out struct{ Documents []json.RawMessage }
	err = c.rpc(ctx, hc, "DatabasesService/ListDocuments", c.key, in, &out)
	if err == nil && len(out.Documents) != 25 {
		err = fmt.Errorf("list %s: %d documents, want 25", tag, len(out.Documents))
	}
	return err
}

func (c *cairn) coverSort(ctx context.Context) error {
	return c.index(ctx, map[string]any{"key": "tag_n", "type": "INDEX_TYPE_KEY", "attributes": []string{"tag", "n"}, "desc": []bool{false, true}})
}

// pocketBase runs a plain pocketbase.New() (this binary, re-executed).
type pocketBase struct {
	server
	self, dir, token string
}

func newPocketBase(self, work string, cpu int) *pocketBase {
	p := &pocketBase{self: self, dir: filepath.Join(work, "pocketbase")}
	p.cpu = cpu
	return p
}

func (p *pocketBase) name() string { return "pocketbase" }

const pbEmail, pbPassword = "bench@example.com", "bench-password-1234"

func (p *pocketBase) start(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p.base = "http://" + addr
	if out, err := exec.CommandContext(ctx, p.self, "pocketbase", "superuser", "upsert", pbEmail, pbPassword, "--dir", p.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("superuser upsert: %w: %s", err, out)
	}
	return p.run(ctx, p.dir+".log", "/api/health", p.self, "pocketbase", "serve", "--http", addr, "--dir", p.dir)
}

func (p *pocketBase) setup(ctx context.Context) error {
	var auth struct{ Token string }
	if err := call(ctx, http.DefaultClient, http.MethodPost, p.base+"/api/collections/_superusers/auth-with-password", "",
		map[string]any{"identity": pbEmail, "password": pbPassword}, &auth); err != nil {
		return err
	}
	p.token = auth.Token
	// Public rules: PocketBase's cheapest path (no token to check).
	return call(ctx, http.DefaultClient, http.MethodPost, p.base+"/api/collections", p.token, map[string]any{
		"name": collection, "type": "base", "listRule": "", "viewRule": "", "createRule": "",
		"fields":  []map[string]any{{"name": "title", "type": "text"}, {"name": "n", "type": "number"}, {"name": "tag", "type": "text"}},
		"indexes": []string{"CREATE INDEX idx_posts_tag ON posts (tag)"},
	}, nil)
}

func (p *pocketBase) create(ctx context.Context, hc *http.Client, i int, tag string) (string, error) {
	var out struct{ ID string }
	err := call(ctx, hc, http.MethodPost, p.base+"/api/collections/posts/records", "",
		map[string]any{"title": fmt.Sprintf("document number %d", i), "n": i * 7919 % 1_000_003, "tag": tag}, &out)
	return out.ID, err
}

func (p *pocketBase) get(ctx context.Context, hc *http.Client, id string) error {
	return call(ctx, hc, http.MethodGet, p.base+"/api/collections/posts/records/"+id, "", nil, nil)
}

func (p *pocketBase) list(ctx context.Context, hc *http.Client, tag string, check bool) error {
	q := url.Values{"filter": {fmt.Sprintf("tag='%s'", tag)}, "sort": {"-n"}, "perPage": {"25"}, "skipTotal": {"1"}}
	u := p.base + "/api/collections/posts/records?" + q.Encode()
	if !check {
		return call(ctx, hc, http.MethodGet, u, "", nil, nil)
	}
	var out struct{ Items []json.RawMessage }
	err := call(ctx, hc, http.MethodGet, u, "", nil, &out)
	if err == nil && len(out.Items) != 25 {
		err = fmt.Errorf("list %s: %d records, want 25", tag, len(out.Items))
	}
	return err
}

func (p *pocketBase) coverSort(ctx context.Context) error {
	return call(ctx, http.DefaultClient, http.MethodPatch, p.base+"/api/collections/posts", p.token, map[string]any{
		"indexes": []string{"CREATE INDEX idx_posts_tag ON posts (tag)", "CREATE INDEX idx_posts_tag_n ON posts (tag, n DESC)"},
	}, nil)
}

// floorServer runs the design's floor (floor.go: this binary, re-executed).
type floorServer struct {
	server
	self, dir string
}

func newFloor(self, work string, cpu int) *floorServer {
	f := &floorServer{self: self, dir: filepath.Join(work, "floor")}
	f.cpu = cpu
	return f
}

func (f *floorServer) name() string { return "floor" }

// listless: the floor has no queries; the list loads skip it.
func (f *floorServer) listless() {}

func (f *floorServer) start(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	f.base = "http://" + addr
	return f.run(ctx, f.dir+".log", "/health", f.self, "floor", "--http", addr, "--dir", f.dir)
}

func (f *floorServer) setup(context.Context) error { return nil }

func (f *floorServer) create(ctx context.Context, hc *http.Client, i int, tag string) (string, error) {
	id := fmt.Sprintf("d%d", i)
	return id, call(ctx, hc, http.MethodPost, f.base+"/create?id="+id, "",
		map[string]any{"title": fmt.Sprintf("document number %d", i), "n": i * 7919 % 1_000_003, "tag": tag}, nil)
}

func (f *floorServer) get(ctx context.Context, hc *http.Client, id string) error {
	return call(ctx, hc, http.MethodGet, f.base+"/get?id="+id, "", nil, nil)
}

func (f *floorServer) list(context.Context, *http.Client, string, bool) error {
	return errors.New("the floor has no lists")
}

func (f *floorServer) coverSort(context.Context) error { return nil }

// listless marks a target without queries.
type listless interface{ listless() }

func lists(t target) bool {
	_, ok := t.(listless)
	return !ok
}
