package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/webhooks"
)

func (c clients) webhooks() cairnv1connect.WebhooksServiceClient {
	return cairnv1connect.NewWebhooksServiceClient(c.client)
}

// hookReceiver is a webhook endpoint on loopback that checks signatures
// and can be told to fail.
type hookReceiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	secret []byte
	fail   int // answer 500 to this many next requests
	got    []hookHit
}

type hookHit struct {
	id, event, project string
	attempt            string
	status             int
	seq                uint64
}

func newHookReceiver(t testing.TB) *hookReceiver {
	r := &hookReceiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhooks.Verify(r.secret, req.Header.Get(webhooks.HeaderSignature), body, time.Now(), 0); err != nil {
			t.Errorf("delivery with a bad signature: %v", err)
		}
		var b struct {
			ID, Event, ProjectID string
			Seq                  uint64
		}
		if err := json.Unmarshal(body, &b); err != nil || b.ID != req.Header.Get(webhooks.HeaderID) || b.Event != req.Header.Get(webhooks.HeaderEvent) {
			t.Errorf("delivery body %s (%v) does not match its headers %v", body, err, req.Header)
		}
		h := hookHit{id: b.ID, event: b.Event, project: b.ProjectID, attempt: req.Header.Get(webhooks.HeaderAttempt), status: 200, seq: b.Seq}
		if r.fail > 0 {
			r.fail--
			h.status = 500
		}
		r.got = append(r.got, h)
		w.WriteHeader(h.status)
		_, _ = io.WriteString(w, "status "+http.StatusText(h.status))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) hits() []hookHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// accepted returns the documents whose creation was answered 200, in the
// order they were, waiting until there are n.
func (r *hookReceiver) accepted(n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var docs []string
		for _, h := range r.hits() {
			if h.status == 200 {
				docs = append(docs, docOfEvent(h.event))
			}
		}
		if len(docs) >= n || time.Now().After(deadline) {
			return docs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hookOnCreates creates webhook "hook" of project p for document creates,
// delivering to r, and gives r its secret to verify signatures with.
func (r *hookReceiver) hookOnCreates(t testing.TB, in *instance, ctx context.Context, p string) *cairnv1.Webhook {
	t.Helper()
	res, err := in.webhooks().CreateWebhook(ctx, &cairnv1.CreateWebhookRequest{ProjectId: p, WebhookId: "hook", Name: "hook",
		Url: r.srv.URL, Events: &cairnv1.WebhookEvents{Events: []string{"databases.*.collections.*.documents.*.create"}}})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = []byte(res.GetSecret())
	r.mu.Unlock()
	return res.GetWebhook()
}

// createPost creates document id in collection posts of p's main database.
func createPost(t testing.TB, in *instance, ctx context.Context, p, id string) {
	t.Helper()
	if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id})}}); err != nil {
		t.Fatal(err)
	}
}

// docOfEvent is the document id of "databases.<d>.collections.<c>.documents.<doc>.create".
func docOfEvent(e string) string {
	p := strings.Split(e, ".")
	if len(p) != 7 {
		return e
	}
	return p[5]
}

// A webhook on document creates gets each, once and in order, signed; a
// receiver failing for a while loses nothing and sees duplicates only for
// the attempts it failed; another project's webhook never sees this
// project's events; the delivery log shows the attempts.
func TestWebhooks(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--webhook-allow", "127.0.0.1", "--webhook-max-backoff", "1s")
	scopes := append(docScopes, "webhooks.read", "webhooks.write")
	const onCreate = "databases.*.collections.*.documents.*.create"
	setUp := func(p string, rcv *hookReceiver, events ...string) (context.Context, *cairnv1.Webhook) {
		key := newProjectWithKey(t, in, p, scopes...)
		ctx, _ := as(context.Background(), key)
		docsFixture(t, ctx, in.databases(), p, "posts", []string{`read("any")`}, false)
		res, err := in.webhooks().CreateWebhook(ctx, &cairnv1.CreateWebhookRequest{ProjectId: p, WebhookId: "hook", Name: "hook",
			Url: rcv.srv.URL + "/in", Events: &cairnv1.WebhookEvents{Events: events}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(res.GetSecret(), "whsec_") {
			t.Fatalf("secret %q", res.GetSecret())
		}
		rcv.mu.Lock()
		rcv.secret = []byte(res.GetSecret())
		rcv.mu.Unlock()
		return ctx, res.GetWebhook()
	}
	ra, rb := newHookReceiver(t), newHookReceiver(t)
	actx, _ := setUp("wh-a", ra, onCreate)
	bctx, _ := setUp("wh-b", rb, "databases", "users.*")
	write := func(ctx context.Context, p string, ids ...string) {
		for _, id := range ids {
			if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
				Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id})}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := []string{"d01", "d02", "d03", "d04", "d05"}
	start := time.Now()
	write(actx, "wh-a", first...)
	if got := ra.accepted(5); !slices.Equal(got, first) {
		t.Fatalf("delivered %v, want %v", got, first)
	}
	t.Logf("5 events delivered in %v", time.Since(start))
	for _, h := range ra.hits() {
		if h.status != 200 || h.attempt != "1" || h.project != "wh-a" {
			t.Fatalf("unexpected delivery %+v", h)
		}
	}

	// The receiver fails 3 requests, then recovers.
	ra.mu.Lock()
	ra.fail = 3
	ra.mu.Unlock()
	second := []string{"d06", "d07", "d08", "d09", "d10"}
	start = time.Now()
	write(actx, "wh-a", second...)
	want := append(slices.Clone(first), second...)
	if got := ra.accepted(10); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	t.Logf("5 events through 3 failures in %v", time.Since(start))
	time.Sleep(500 * time.Millisecond) // a stray extra delivery would show now
	hits := ra.hits()
	// Every request for an event that was answered 200 came after all the
	// 500s for it, and nothing of a later event came before it was done.
	failed := 0
	for i, h := range hits {
		if h.status == 500 {
			failed++
			if i+1 >= len(hits) || hits[i+1].id != h.id {
				t.Fatalf("after a failure, the next request was not the same event: %+v", hits)
			}
		}
	}
	if failed != 3 || len(hits) != 13 {
		t.Fatalf("%d requests, %d failed: %+v", len(hits), failed, hits)
	}
	ids := map[string]bool{}
	for _, h := range hits {
		ids[h.id] = true
	}
	if len(ids) != 10 {
		t.Fatalf("%d distinct event ids, want 10", len(ids))
	}

	// Project b's webhook (listening to every database event) never got
	// a's events; it gets its own.
	write(bctx, "wh-b", "b1")
	if got := rb.accepted(1); !slices.Equal(got, []string{"b1"}) {
		t.Fatalf("b's webhook got %v", got)
	}
	for _, h := range rb.hits() {
		if h.project != "wh-b" {
			t.Fatalf("b's webhook got another project's event %+v", h)
		}
	}

	// The delivery log: 13 attempts, the 3 failed ones with status 500.
	var ds []*cairnv1.WebhookDelivery
	deadline := time.Now().Add(10 * time.Second)
	for len(ds) < 13 && time.Now().Before(deadline) {
		res, err := in.webhooks().ListWebhookDeliveries(actx, &cairnv1.ListWebhookDeliveriesRequest{ProjectId: "wh-a", WebhookId: "hook"})
		if err != nil {
			t.Fatal(err)
		}
		ds = res.GetDeliveries()
		time.Sleep(50 * time.Millisecond)
	}
	bad := 0
	for _, d := range ds {
		if !d.GetSuccess() {
			bad++
			if d.GetResponseStatus() != 500 || string(d.GetResponseExcerpt()) != "status Internal Server Error" {
				t.Errorf("failed delivery record %v", d)
			}
		} else if d.GetResponseStatus() != 200 || d.GetEventId() == "" {
			t.Errorf("delivery record %v", d)
		}
	}
	if len(ds) != 13 || bad != 3 {
		t.Fatalf("delivery log: %d records, %d failed", len(ds), bad)
	}

	// Get and List never show the secret; Update rotates it; a disabled,
	// then deleted, webhook delivers nothing more.
	g, err := in.webhooks().GetWebhook(actx, &cairnv1.GetWebhookRequest{ProjectId: "wh-a", WebhookId: "hook"})
	if err != nil || !g.GetWebhook().GetEnabled() || !slices.Equal(g.GetWebhook().GetEvents(), []string{onCreate}) {
		t.Fatalf("get: %v %v", g, err)
	}
	off := false
	up, err := in.webhooks().UpdateWebhook(actx, &cairnv1.UpdateWebhookRequest{ProjectId: "wh-a", WebhookId: "hook", Enabled: &off, RotateSecret: true})
	if err != nil || up.GetWebhook().GetEnabled() || !strings.HasPrefix(up.GetSecret(), "whsec_") {
		t.Fatalf("update: %v %v", up, err)
	}
	write(actx, "wh-a", "d11")
	if _, err := in.webhooks().DeleteWebhook(actx, &cairnv1.DeleteWebhookRequest{ProjectId: "wh-a", WebhookId: "hook"}); err != nil {
		t.Fatal(err)
	}
	write(actx, "wh-a", "d12")
	time.Sleep(1500 * time.Millisecond)
	if n := len(ra.hits()); n != 13 {
		t.Fatalf("a disabled or deleted webhook delivered: %d requests", n)
	}
	if l, err := in.webhooks().ListWebhooks(actx, &cairnv1.ListWebhooksRequest{ProjectId: "wh-a"}); err != nil || len(l.GetWebhooks()) != 0 {
		t.Fatalf("list after delete: %v %v", l, err)
	}
}

// Deliveries refuse loopback unless --webhook-allow lists it.
func TestWebhookSSRFGuard(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "wh-ssrf", append(docScopes, "webhooks.read", "webhooks.write")...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), "wh-ssrf", "posts", []string{`read("any")`}, false)
	rcv := newHookReceiver(t)
	if _, err := in.webhooks().CreateWebhook(ctx, &cairnv1.CreateWebhookRequest{ProjectId: "wh-ssrf", WebhookId: "hook", Name: "hook",
		Url: rcv.srv.URL, Events: &cairnv1.WebhookEvents{Events: []string{"databases"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: "wh-ssrf", DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data(t, map[string]any{"title": "x"})}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		res, err := in.webhooks().ListWebhookDeliveries(ctx, &cairnv1.ListWebhookDeliveriesRequest{ProjectId: "wh-ssrf", WebhookId: "hook"})
		if err != nil {
			t.Fatal(err)
		}
		if ds := res.GetDeliveries(); len(ds) > 0 {
			if ds[0].GetSuccess() || !strings.Contains(ds[0].GetError(), "blocked") {
				t.Fatalf("delivery to loopback: %v", ds[0])
			}
			if n := len(rcv.hits()); n != 0 {
				t.Fatalf("loopback receiver got %d requests", n)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no delivery attempt recorded")
}

// Deliveries survive a restart: events written while the receiver fails
// go out, in order, once it recovers after the server restarted; and
// events written right after CreateWebhook answered are delivered even if
// the server restarts before its delivery loop started.
func TestWebhooksAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--webhook-allow", "127.0.0.1", "--webhook-max-backoff", "1s"}
	in := startInstance(t, dir, flags...)
	key := newProjectWithKey(t, in, "wh-r", append(docScopes, "webhooks.read", "webhooks.write")...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), "wh-r", "posts", []string{`read("any")`}, false)
	rcv := newHookReceiver(t)
	rcv.fail = 1 << 30
	rcv.hookOnCreates(t, in, ctx, "wh-r")
	want := []string{"r1", "r2", "r3"}
	for _, id := range want {
		createPost(t, in, ctx, "wh-r", id)
	}
	in.stop()
	in = startInstance(t, dir, flags...)
	defer in.stop()
	rcv.mu.Lock()
	rcv.fail = 0
	rcv.mu.Unlock()
	if got := rcv.accepted(3); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	time.Sleep(500 * time.Millisecond)
	ok := 0
	for _, h := range rcv.hits() {
		if h.status == 200 {
			ok++
		}
	}
	if ok != 3 {
		t.Fatalf("%d accepted deliveries, want 3: %+v", ok, rcv.hits())
	}
	// The read model with webhooks and delivery records rebuilds equal.
	in.stop()
	n := openStopped(t, dir)
	defer n.close()
	kv := checkRebuild(t, n, "wh-r", "with webhook deliveries")
	deliveries := 0
	for _, e := range kv {
		if strings.HasPrefix(e.Key, "p/wh-r/whdeliveries/") {
			deliveries++
		}
	}
	if deliveries < 4 {
		t.Fatalf("%d delivery records in the read model", deliveries)
	}
}

// A webhook failing --webhook-pause-after times in a row pauses: its
// events wait, and go out in order once it is enabled again.
func TestWebhookPause(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--webhook-allow", "127.0.0.1", "--webhook-max-backoff", "1s", "--webhook-pause-after", "2")
	key := newProjectWithKey(t, in, "wh-p", append(docScopes, "webhooks.read", "webhooks.write")...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), "wh-p", "posts", []string{`read("any")`}, false)
	rcv := newHookReceiver(t)
	rcv.fail = 1 << 30
	rcv.hookOnCreates(t, in, ctx, "wh-p")
	write := func(id string) {
		createPost(t, in, ctx, "wh-p", id)
	}
	write("p1")
	deadline := time.Now().Add(20 * time.Second)
	var w *cairnv1.Webhook
	for time.Now().Before(deadline) {
		g, err := in.webhooks().GetWebhook(ctx, &cairnv1.GetWebhookRequest{ProjectId: "wh-p", WebhookId: "hook"})
		if err != nil {
			t.Fatal(err)
		}
		if w = g.GetWebhook(); w.GetPausedAt() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if w.GetPausedAt() == nil || !strings.Contains(w.GetPausedReason(), "status 500") {
		t.Fatalf("not paused: %v", w)
	}
	rcv.mu.Lock()
	rcv.fail = 0
	rcv.mu.Unlock()
	write("p2")
	time.Sleep(2 * time.Second)
	if n := len(rcv.hits()); n != 2 {
		t.Fatalf("a paused webhook made %d requests, want the 2 before it paused", n)
	}
	on := true
	if _, err := in.webhooks().UpdateWebhook(ctx, &cairnv1.UpdateWebhookRequest{ProjectId: "wh-p", WebhookId: "hook", Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	if got := rcv.accepted(2); !slices.Equal(got, []string{"p1", "p2"}) {
		t.Fatalf("after resuming: %v", got)
	}
}

// RedeliverWebhook delivers again, in order, from a chosen sequence; it
// refuses sequences before the webhook or past the log, naming the field;
// the delivery log keeps the newest --webhook-delivery-records records,
// and a rebuild keeps the same.
func TestWebhookRedeliver(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, "--webhook-allow", "127.0.0.1", "--webhook-max-backoff", "1s", "--webhook-delivery-records", "4")
	key := newProjectWithKey(t, in, "wh-rd", append(docScopes, "webhooks.read", "webhooks.write")...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), "wh-rd", "posts", []string{`read("any")`}, false)
	rcv := newHookReceiver(t)
	hook := rcv.hookOnCreates(t, in, ctx, "wh-rd")
	created := hook.GetCreatedSequence()
	if created == 0 {
		t.Fatalf("no created_sequence: %v", hook)
	}
	for _, id := range []string{"d1", "d2", "d3"} {
		createPost(t, in, ctx, "wh-rd", id)
	}
	if got := rcv.accepted(3); !slices.Equal(got, []string{"d1", "d2", "d3"}) {
		t.Fatalf("delivered %v", got)
	}
	seqOf := map[string]uint64{}
	for _, h := range rcv.hits() {
		seqOf[docOfEvent(h.event)] = h.seq
	}

	// Bad input names the field; nothing changes.
	for _, from := range []uint64{created, 1 << 40} {
		_, err := in.webhooks().RedeliverWebhook(ctx, &cairnv1.RedeliverWebhookRequest{ProjectId: "wh-rd", WebhookId: "hook", FromSequence: from})
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "from_sequence") {
			t.Fatalf("redeliver from %d: %v, want invalid_argument naming from_sequence", from, err)
		}
	}
	if _, err := in.webhooks().RedeliverWebhook(ctx, &cairnv1.RedeliverWebhookRequest{ProjectId: "wh-rd", WebhookId: "nope", FromSequence: seqOf["d2"]}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("redeliver of a missing webhook: %v", err)
	}

	rd, err := in.webhooks().RedeliverWebhook(ctx, &cairnv1.RedeliverWebhookRequest{ProjectId: "wh-rd", WebhookId: "hook", FromSequence: seqOf["d2"]})
	if err != nil {
		t.Fatal(err)
	}
	if w := rd.GetWebhook(); w.GetRedelivery() != 1 || w.GetRedeliverFrom() != seqOf["d2"] || w.GetCreatedSequence() != created {
		t.Fatalf("after redeliver: %v", w)
	}
	if got := rcv.accepted(5); !slices.Equal(got, []string{"d1", "d2", "d3", "d2", "d3"}) {
		t.Fatalf("redelivered %v, want d2 and d3 again after d1..d3", got)
	}
	// A new document goes out once, after the redelivered ones.
	createPost(t, in, ctx, "wh-rd", "d4")
	if got := rcv.accepted(6); !slices.Equal(got, []string{"d1", "d2", "d3", "d2", "d3", "d4"}) {
		t.Fatalf("after redelivery %v", got)
	}

	// Six attempts, four records kept: the newest, listed by event then
	// redelivery.
	want := []string{
		fmt.Sprintf("%020d-r%05d-%06d", seqOf["d2"], 1, 1),
		fmt.Sprintf("%020d-%06d", seqOf["d3"], 1),
		fmt.Sprintf("%020d-r%05d-%06d", seqOf["d3"], 1, 1),
		"", // d4's, whose sequence the receiver saw
	}
	var ids []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, err := in.webhooks().ListWebhookDeliveries(ctx, &cairnv1.ListWebhookDeliveriesRequest{ProjectId: "wh-rd", WebhookId: "hook"})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, d := range ds.GetDeliveries() {
			ids = append(ids, d.GetId())
		}
		if len(ids) == 4 && strings.HasPrefix(ids[3], fmt.Sprintf("%020d-", seqOf["d3"]+1)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, h := range rcv.hits() {
		if docOfEvent(h.event) == "d4" {
			want[3] = fmt.Sprintf("%020d-r%05d-%06d", h.seq, 1, 1)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("delivery records %v, want %v", ids, want)
	}
	in.stop()
	// Rebuilt with the same setting (a rebuild with another keeps another
	// number of records).
	n, err := openNode(context.Background(), &config{DataDir: dir, Sync: defaultSync, WebhookDeliveryRecords: 4}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	kv := checkRebuild(t, n, "wh-rd", "with a redelivery and retention")
	records := 0
	for _, e := range kv {
		if strings.HasPrefix(e.Key, "p/wh-rd/whdeliveries/") {
			records++
		}
	}
	if records != 4 {
		t.Fatalf("%d delivery records after a rebuild, want 4", records)
	}
}

// The count of failed attempts in a row lives in the read model: a
// restart carries on counting instead of starting again.
func TestWebhookPauseAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--webhook-allow", "127.0.0.1", "--webhook-max-backoff", "1s", "--webhook-pause-after", "3"}
	in := startInstance(t, dir, flags...)
	key := newProjectWithKey(t, in, "wh-pr", append(docScopes, "webhooks.read", "webhooks.write")...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), "wh-pr", "posts", []string{`read("any")`}, false)
	rcv := newHookReceiver(t)
	rcv.fail = 1 << 30
	rcv.hookOnCreates(t, in, ctx, "wh-pr")
	createPost(t, in, ctx, "wh-pr", "p1")
	waitWebhook := func(what string, ok func(*cairnv1.Webhook) bool) *cairnv1.Webhook {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			g, err := in.webhooks().GetWebhook(ctx, &cairnv1.GetWebhookRequest{ProjectId: "wh-pr", WebhookId: "hook"})
			if err != nil {
				t.Fatal(err)
			}
			if ok(g.GetWebhook()) {
				return g.GetWebhook()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, g.GetWebhook())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitWebhook("two failures counted", func(w *cairnv1.Webhook) bool { return w.GetFailuresInRow() >= 2 })
	in.stop()
	in = startInstance(t, dir, flags...)
	defer in.stop()
	w := waitWebhook("paused after a restart", func(w *cairnv1.Webhook) bool { return w.GetPausedAt() != nil })
	if !strings.Contains(w.GetPausedReason(), "3 failed attempts") {
		t.Fatalf("paused for %q", w.GetPausedReason())
	}
	// 3 attempts (4 if the node stopped between an answer and its record);
	// counting from zero again after the restart would make 5 or more.
	if n := len(rcv.hits()); n < 3 || n > 4 {
		t.Fatalf("%d attempts before pausing, want 3", n)
	}
}

// TestWebhooksCLI: the webhooks commands against a real server and a
// receiver on loopback.
func TestWebhooksCLI(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--webhook-allow", "127.0.0.1", "--webhook-max-backoff", "1s")
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_ADMIN_KEY": testAdminKey, "CAIRN_PROJECT": "hooks"}
	c := func(args ...string) string {
		t.Helper()
		out, stderr, err := runCLI(env, args...)
		if err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	c("projects", "create", "hooks")
	admin := op(t)
	docsFixture(t, admin, in.databases(), "hooks", "posts", []string{`read("any")`}, false)
	rcv := newHookReceiver(t)
	var created struct {
		Webhook struct{ ID, URL string }
		Secret  string
	}
	if err := json.Unmarshal([]byte(c("webhooks", "create", "hook", "--url", rcv.srv.URL, "--event", "databases.*.collections.*.documents.*.create")), &created); err != nil || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("webhooks create: %+v %v", created, err)
	}
	rcv.mu.Lock()
	rcv.secret = []byte(created.Secret)
	rcv.mu.Unlock()
	if _, err := in.databases().CreateDocument(admin, &cairnv1.CreateDocumentRequest{ProjectId: "hooks", DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data(t, map[string]any{"title": "d1"})}}); err != nil {
		t.Fatal(err)
	}
	if got := rcv.accepted(1); !slices.Equal(got, []string{"d1"}) {
		t.Fatalf("delivered %v", got)
	}
	seq := rcv.hits()[0].seq
	if got := ids(t, c("webhooks", "list")); !slices.Equal(got, []string{"hook"}) {
		t.Fatalf("webhooks list: %v", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(ids(t, c("webhooks", "deliveries", "hook"))) != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if out := c("webhooks", "deliveries", "hook"); !strings.Contains(out, fmt.Sprintf(`"eventSeq": "%d"`, seq)) {
		t.Fatalf("webhooks deliveries: %s", out)
	}
	if _, _, err := runCLI(env, "webhooks", "redeliver", "hook"); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Fatalf("redeliver without --from: %v", err)
	}
	if out := c("webhooks", "redeliver", "hook", "--from", fmt.Sprint(seq)); !strings.Contains(out, `"redelivery": 1`) {
		t.Fatalf("webhooks redeliver: %s", out)
	}
	if got := rcv.accepted(2); !slices.Equal(got, []string{"d1", "d1"}) {
		t.Fatalf("after the CLI's redelivery: %v", got)
	}
	if out := c("webhooks", "update", "hook", "--disable"); !strings.Contains(out, `"id": "hook"`) || strings.Contains(out, `"enabled": true`) {
		t.Fatalf("webhooks update --disable: %s", out)
	}
	if out := c("webhooks", "get", "hook", "-o", "table"); !strings.Contains(out, "CREATED_SEQ") || !strings.Contains(out, fmt.Sprint(seq)) {
		t.Fatalf("webhooks get -o table: %s", out)
	}
	c("webhooks", "delete", "hook")
	if got := ids(t, c("webhooks", "list")); len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
}
