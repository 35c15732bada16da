package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/site"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestDocumentSizeEdge: the largest document the limit allows, made of the
// characters JSON encoders like to escape, creates and updates (the update
// event carries before and after); one byte more is refused by name.
func TestDocumentSizeEdge(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "big"
	secret := newProjectWithKey(t, in, p, docScopes...)
	k, _ := as(ctx, secret)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c",
		Attribute: &cairnv1.Attribute{Key: "body", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: database.MaxStringSize}}); err != nil {
		t.Fatal(err)
	}
	// Stored as {"body":"…"}: 11 bytes around the string.
	largest := database.MaxDocumentBytes - len(`{"body":""}`)
	for _, c := range []string{"<", ">", "&"} {
		id := "doc" + map[string]string{"<": "lt", ">": "gt", "&": "amp"}[c]
		if _, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c",
			Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"body": strings.Repeat(c, largest)})}}); err != nil {
			t.Fatalf("create %d × %q: %v", largest, c, err)
		}
		res, err := dbs.UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c", DocumentId: id,
			Data: data(t, map[string]any{"body": strings.Repeat("<", largest-1) + "x"})})
		if err != nil {
			t.Fatalf("update %d × %q: %v", largest, c, err)
		}
		if got := len(res.GetDocument().GetData().GetFields()["body"].GetStringValue()); got != largest {
			t.Fatalf("updated body holds %d characters, want %d", got, largest)
		}
	}
	_, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c",
		Document: &cairnv1.DocumentInput{DocumentId: "over", Data: data(t, map[string]any{"body": strings.Repeat("<", largest+1)})}})
	wantError(t, err, connect.CodeInvalidArgument, "at most 262144 bytes")
	// Escapes count as stored: a quote takes two bytes.
	_, err = dbs.UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c", DocumentId: "doclt",
		Data: data(t, map[string]any{"body": strings.Repeat(`"`, largest/2+1)})})
	wantError(t, err, connect.CodeInvalidArgument, "as stored")
}

// TestRemoteNATSMaxPayload: a NATS server whose max_payload is below what
// the limits need is refused at start, naming the setting.
func TestRemoteNATSMaxPayload(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	var logs logBuffer
	err = run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--nats-url", srv.ClientURL()},
		io.Discard, &logs, func(k string) string { return map[string]string{"CAIRN_ADMIN_KEY": testAdminKey}[k] })
	if err == nil || !strings.Contains(err.Error(), "max_payload: 8MB") {
		t.Fatalf("start against a 1 MiB NATS: %v", err)
	}
}

// TestSiteDeploymentAtLimits: an archive deployment of site.MaxFiles files
// with paths of site.MaxPathLen bytes is stored, listed and served; one
// file more is refused and listed as a failed deployment.
func TestSiteDeploymentAtLimits(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	secret := newProjectWithKey(t, in, "acme", "sites.read", "sites.write")
	kctx, _ := as(ctx, secret)
	if _, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "web", Name: "Web"}); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	pathOf := func(i int) string {
		prefix := fmt.Sprintf("%05d/", i)
		return prefix + strings.Repeat("a", site.MaxPathLen-len(prefix)-len(".html")) + ".html"
	}
	for i := range site.MaxFiles {
		files[pathOf(i)] = fmt.Sprintf("<p>file %d</p>", i)
	}
	res, body := in.httpDo(t, "POST", "/v1/sites/acme/web/deployments?activate=true", secret, tarGz(t, files), nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("deploy %d files with %d-byte paths: %d %s", site.MaxFiles, site.MaxPathLen, res.StatusCode, body)
	}
	for _, i := range []int{0, site.MaxFiles - 1} {
		res, page := in.httpDo(t, "GET", "/"+pathOf(i), "", nil, map[string]string{"Host": "web.acme.localhost"})
		if res.StatusCode != 200 || page != fmt.Sprintf("<p>file %d</p>", i) {
			t.Fatalf("serve file %d: %d %q", i, res.StatusCode, page)
		}
	}
	files[pathOf(site.MaxFiles)] = "one too many"
	res, body = in.httpDo(t, "POST", "/v1/sites/acme/web/deployments", secret, tarGz(t, files), nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "at most 5000 files") {
		t.Fatalf("deploy %d files: %d %s", site.MaxFiles+1, res.StatusCode, body)
	}
	list, err := in.sites().ListDeployments(kctx, &cairnv1.ListDeploymentsRequest{ProjectId: "acme", SiteId: "web"})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, d := range list.GetDeployments() {
		if strings.Contains(d.GetFailure(), "at most 5000 files") {
			failed++
		}
	}
	if len(list.GetDeployments()) != 2 || failed != 1 {
		t.Fatalf("deployments after one good and one refused: %v", list.GetDeployments())
	}
}

// TestRangeLimits: many ranges are served as the whole file (no multipart
// amplification), overlapping ranges are merged, and a zero suffix is 416,
// on sites and storage alike.
func TestRangeLimits(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	secret := newProjectWithKey(t, in, "acme", allScopes()...)
	kctx, _ := as(ctx, secret)
	if _, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "web", Name: "Web"}); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("0123456789", 2000) // larger than 10,000 one-byte ranges
	if res, body := in.httpDo(t, "POST", "/v1/sites/acme/web/deployments?activate=true", secret, tarGz(t, map[string]string{"f.txt": content}), nil); res.StatusCode != http.StatusCreated {
		t.Fatalf("deploy: %d %s", res.StatusCode, body)
	}
	many := "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", 10_000), ",")
	atCap := "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", 16), ",")
	siteHost := map[string]string{"Host": "web.acme.localhost"}
	get := func(rng string) (*http.Response, string) {
		h := map[string]string{"Range": rng}
		for k, v := range siteHost {
			h[k] = v
		}
		return in.httpDo(t, "GET", "/f.txt", "", nil, h)
	}
	for _, c := range []struct {
		rng, contentRange string
		status, size      int
	}{
		{many, "", 200, len(content)},
		{atCap, "bytes 0-0/20000", 206, 1},                // merged into one
		{"bytes=5-9,0-3,2-4", "bytes 0-9/20000", 206, 10}, // sorted and merged
		{"bytes=-0", "bytes */20000", 416, -1},
		{"bytes=-0,0-1", "bytes 0-1/20000", 206, 2},
		{"bytes=20000-", "bytes */20000", 416, -1},
	} {
		res, body := get(c.rng)
		name := c.rng[:min(len(c.rng), 30)]
		if res.StatusCode != c.status || res.Header.Get("Content-Range") != c.contentRange || (c.size >= 0 && len(body) != c.size) {
			t.Errorf("site %s: %d Content-Range %q, %d bytes", name, res.StatusCode, res.Header.Get("Content-Range"), len(body))
		}
	}
	if res, body := get("bytes=0-1,5-6"); res.StatusCode != 206 || !strings.HasPrefix(res.Header.Get("Content-Type"), "multipart/byteranges") || len(body) > 1000 {
		t.Errorf("two ranges: %d %q %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}

	if _, err := in.storage().CreateBucket(kctx, &cairnv1.CreateBucketRequest{ProjectId: "acme", BucketId: "b", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if res := in.putChunk(t, secret, "acme", "b", "f", "f.txt", 0, int64(len(content)), []byte(content)); res.status != http.StatusCreated {
		t.Fatalf("upload: %s", res)
	}
	if res := in.fetch(t, secret, "acme", "b", "f", "download", nil, "Range", many); res.status != 200 || len(res.body) != len(content) {
		t.Errorf("storage, 10,000 ranges: %s", res)
	}
	if res := in.fetch(t, secret, "acme", "b", "f", "download", nil, "Range", "bytes=-0"); res.status != http.StatusRequestedRangeNotSatisfiable ||
		res.header.Get("Content-Range") != "bytes */20000" {
		t.Errorf("storage, bytes=-0: %s %q", res, res.header.Get("Content-Range"))
	}
}

// TestSlowBodiesAndConnectionCap: a body that stalls or trickles (here to
// the unauthenticated sign-in) is cut off, a body at a normal pace is not,
// and one address holds at most --max-connections-per-address connections.
func TestSlowBodiesAndConnectionCap(t *testing.T) {
	const maxConns = 6
	in := startInstance(t, t.TempDir(), "--body-read-timeout", "300ms", "--min-body-rate", "200",
		"--max-connections-per-address", strconv.Itoa(maxConns))
	newProjectWithKey(t, in, "p")
	addr := strings.TrimPrefix(in.url, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const path = "/cairn.v1.AccountService/CreateEmailPasswordSession"
	body := `{"email":"a@example.com","password":"correct horse battery staple"}`
	head := func(n int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nCairn-Project: p\r\nContent-Length: %d\r\n\r\n", path, addr, n)
	}
	// ended reports whether the server ended the connection while the
	// client was still sending, within a generous bound.
	ended := func(c net.Conn, send func() error) bool {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, c) // returns when the server closes
		}()
		for range 100 { // 10 s at most at 100 ms per byte
			select {
			case <-done:
				return true
			default:
			}
			if send() != nil {
				<-done
				return true
			}
		}
		return false
	}
	// Trickling: one byte per 100 ms is 10 bytes/s, under 200.
	trickle := dial()
	if _, err := io.WriteString(trickle, head(len(body))); err != nil {
		t.Fatal(err)
	}
	i := 0
	if !ended(trickle, func() error {
		time.Sleep(100 * time.Millisecond)
		if i >= len(body) {
			return nil
		}
		_, err := trickle.Write([]byte{body[i]})
		i++
		return err
	}) {
		t.Fatal("a body trickling at 10 bytes/s was not cut off")
	}
	// Stalled: a few bytes, then nothing.
	stall := dial()
	if _, err := io.WriteString(stall, head(len(body))+body[:5]); err != nil {
		t.Fatal(err)
	}
	if !ended(stall, func() error { time.Sleep(100 * time.Millisecond); return nil }) {
		t.Fatal("a stalled body was not cut off")
	}
	// Over HTTP/2 (h2c) too: the stream ends with the reason.
	req, err := http.NewRequest("POST", in.url+path, trickle10{})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cairn-Project", "p")
	h2 := h2cClient()
	h2.Timeout = 10 * time.Second
	if res, err := h2.Do(req); isTimeoutErr(err) {
		t.Fatalf("h2c trickle not cut off: %v", err)
	} else if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 || !strings.Contains(string(b), "too slow") {
			t.Fatalf("h2c trickle: %s %d %s", res.Proto, res.StatusCode, b)
		}
	}
	// At a normal pace the request is answered (unauthenticated: no such user).
	res, out := in.httpDo(t, "POST", path, "", []byte(body), map[string]string{"Content-Type": "application/json", "Cairn-Project": "p"})
	if res.StatusCode == http.StatusInternalServerError || res.StatusCode == http.StatusRequestTimeout {
		t.Fatalf("a normal sign-in: %d %s", res.StatusCode, out)
	}

	// Connection cap: requests on maxConns+4 kept-alive connections; the
	// harness's own clients may hold some, so at most maxConns answer.
	http.DefaultClient.CloseIdleConnections()
	answered := 0
	var kept []net.Conn
	for range maxConns + 4 {
		c := dial()
		if _, err := fmt.Fprintf(c, "GET /readyz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			continue
		}
		r, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue // closed at accept
		}
		r.Body.Close()
		answered++
		kept = append(kept, c)
	}
	if answered > maxConns || answered == len(kept) && answered == maxConns+4 {
		t.Fatalf("%d of %d connections from one address answered; the cap is %d", answered, maxConns+4, maxConns)
	}
	// Closing them frees the slots.
	for _, c := range kept {
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c := dial()
		fmt.Fprintf(c, "GET /readyz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		if r, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			r.Body.Close()
			c.Close()
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("slots not freed after closing the connections")
		}
	}
}

// TestJSONUnknownFieldsTimesAndTokens: a misspelt JSON field, a time a
// read cannot start at and a forged page token are refused by name.
func TestJSONUnknownFieldsTimesAndTokens(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	res, body := in.httpDo(t, "POST", "/cairn.v1.ProjectsService/CreateProject", testAdminKey, []byte(`{"id":"typo","name":"Typo"}`), jsonHdr)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_argument") || !strings.Contains(body, `unknown field \"id\"`) {
		t.Fatalf("CreateProject with \"id\": %d %s", res.StatusCode, body)
	}
	list, err := in.projects().ListProjects(op, &cairnv1.ListProjectsRequest{})
	if err != nil || len(list.GetProjects()) != 0 {
		t.Fatalf("a project was created anyway: %v %v", list, err)
	}
	// The right spelling works through the same codec.
	if res, body := in.httpDo(t, "POST", "/cairn.v1.ProjectsService/CreateProject", testAdminKey, []byte(`{"projectId":"p1","name":"P1"}`), jsonHdr); res.StatusCode != 200 {
		t.Fatalf("CreateProject: %d %s", res.StatusCode, body)
	}

	for _, ts := range []string{"2262-04-12T00:00:00Z", "9999-12-31T23:59:59Z", "1600-01-01T00:00:00Z"} {
		res, body := in.httpDo(t, "POST", "/cairn.v1.EventsService/ListEvents", testAdminKey, []byte(`{"projectId":"p1","startTime":"`+ts+`"}`), jsonHdr)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "start_time") {
			t.Errorf("ListEvents from %s: %d %s", ts, res.StatusCode, body)
		}
	}
	// The edge itself reads (nothing that late).
	if res, body := in.httpDo(t, "POST", "/cairn.v1.EventsService/ListEvents", testAdminKey, []byte(`{"projectId":"p1","startTime":"2262-04-11T23:47:16Z"}`), jsonHdr); res.StatusCode != 200 || strings.Contains(body, `"seq"`) {
		t.Errorf("ListEvents from the last representable second: %d %s", res.StatusCode, body)
	}

	forged := base64.RawURLEncoding.EncodeToString([]byte("garbage: not an id"))
	_, err = in.projects().ListProjects(op, &cairnv1.ListProjectsRequest{PageToken: forged})
	wantError(t, err, connect.CodeInvalidArgument, "page_token")
	_, err = in.sites().ListSites(op, &cairnv1.ListSitesRequest{ProjectId: "p1", PageToken: forged})
	wantError(t, err, connect.CodeInvalidArgument, "page_token")
	// A real token still pages.
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "p2", Name: "P2"}); err != nil {
		t.Fatal(err)
	}
	first, err := in.projects().ListProjects(op, &cairnv1.ListProjectsRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	second, err := in.projects().ListProjects(op, &cairnv1.ListProjectsRequest{PageSize: 1, PageToken: first.GetNextPageToken()})
	if err != nil || len(second.GetProjects()) != 1 || second.GetProjects()[0].GetId() != "p2" {
		t.Fatalf("second page: %v %v", second, err)
	}
}

// TestTransactionStagedBytes: a transaction stages at most
// --max-transaction-bytes of document data and a project's open
// transactions at most --max-project-transaction-bytes, each exactly up to
// the limit; a finished transaction gives its share back.
func TestTransactionStagedBytes(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--max-transaction-bytes", "1000", "--max-project-transaction-bytes", "2500")
	ctx := context.Background()
	const p = "tx"
	secret := newProjectWithKey(t, in, p, docScopes...)
	k, _ := as(ctx, secret)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c",
		Attribute: &cairnv1.Attribute{Key: "body", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 10_000}}); err != nil {
		t.Fatal(err)
	}
	newTx := func() string {
		tx, err := dbs.CreateTransaction(k, &cairnv1.CreateTransactionRequest{ProjectId: p})
		if err != nil {
			t.Fatal(err)
		}
		return tx.GetTransaction().GetId()
	}
	// stage adds a document whose staged data is n bytes: {"body":"…"}.
	stage := func(tx string, n int) error {
		_, err := dbs.StageOperations(k, &cairnv1.StageOperationsRequest{ProjectId: p, TransactionId: tx, Operations: []*cairnv1.Operation{
			{DatabaseId: "main", CollectionId: "c", Action: &cairnv1.Operation_Create{Create: &cairnv1.DocumentInput{
				Data: data(t, map[string]any{"body": strings.Repeat("<", n-len(`{"body":""}`))})}}}}})
		return err
	}
	tx1, tx2, tx3 := newTx(), newTx(), newTx()
	if err := stage(tx1, 1000); err != nil {
		t.Fatalf("stage the whole transaction limit: %v", err)
	}
	wantError(t, stage(tx1, 12), connect.CodeResourceExhausted, "--max-transaction-bytes")
	if err := stage(tx2, 600); err != nil {
		t.Fatal(err)
	}
	if err := stage(tx2, 400); err != nil {
		t.Fatal(err)
	}
	// The project holds 2,000 of 2,500.
	wantError(t, stage(tx3, 501), connect.CodeResourceExhausted, "--max-project-transaction-bytes")
	if err := stage(tx3, 500); err != nil {
		t.Fatalf("stage up to the project limit: %v", err)
	}
	wantError(t, stage(tx3, 12), connect.CodeResourceExhausted, "--max-project-transaction-bytes")
	// A rolled back transaction gives its bytes back; a committed one too.
	if _, err := dbs.RollbackTransaction(k, &cairnv1.RollbackTransactionRequest{ProjectId: p, TransactionId: tx1}); err != nil {
		t.Fatal(err)
	}
	if err := stage(tx3, 500); err != nil {
		t.Fatalf("stage after a rollback: %v", err)
	}
	c, err := dbs.CommitTransaction(k, &cairnv1.CommitTransactionRequest{ProjectId: p, TransactionId: tx2})
	if err != nil || len(c.GetDocuments()) != 2 {
		t.Fatalf("commit: %v %v", c, err)
	}
	tx4 := newTx()
	if err := stage(tx4, 1000); err != nil {
		t.Fatalf("stage after a commit: %v", err)
	}
}

// TestSiteFilesQuotaAndSweep: site files count against the project's
// storage quota (refused past it with used and quota), and files no
// deployment uses, and stale archive spools, are collected after the
// grace while a deployment's files stay.
func TestSiteFilesQuotaAndSweep(t *testing.T) {
	spool, err := os.CreateTemp("", "cairn-site-*.zip")
	if err != nil {
		t.Fatal(err)
	}
	spool.Close()
	t.Cleanup(func() { os.Remove(spool.Name()) })
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(spool.Name(), old, old); err != nil {
		t.Fatal(err)
	}
	in := startInstance(t, t.TempDir(), "--storage-quota", "100000", "--site-file-grace", "1s", "--storage-sweep-every", "100ms")
	ctx := context.Background()
	secret := newProjectWithKey(t, in, "acme", allScopes()...)
	kctx, _ := as(ctx, secret)
	if _, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "web", Name: "Web"}); err != nil {
		t.Fatal(err)
	}
	blob := func(fill byte, n int) ([]byte, string) {
		b := bytes.Repeat([]byte{fill}, n)
		sum := sha256.Sum256(b)
		return b, hex.EncodeToString(sum[:])
	}
	put := func(b []byte, sha string) (*http.Response, string) {
		return in.httpDo(t, "PUT", "/v1/sites/acme/blobs/"+sha, secret, b, nil)
	}
	// 60,000 bytes nobody deploys, then 40,000 more exactly reach the quota.
	orphan, orphanSHA := blob('o', 60_000)
	if res, body := put(orphan, orphanSHA); res.StatusCode != http.StatusNoContent {
		t.Fatalf("put 60,000 bytes: %d %s", res.StatusCode, body)
	}
	page, pageSHA := blob('p', 40_000)
	if res, body := put(page, pageSHA); res.StatusCode != http.StatusNoContent {
		t.Fatalf("put up to the quota: %d %s", res.StatusCode, body)
	}
	one, oneSHA := blob('x', 1)
	if res, body := put(one, oneSHA); res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "stores 100000 of 100000 bytes") {
		t.Fatalf("put past the quota: %d %s", res.StatusCode, body)
	}
	if res, body := put(page, pageSHA); res.StatusCode != http.StatusNoContent {
		t.Fatalf("put a file stored already: %d %s", res.StatusCode, body)
	}
	usage, err := in.storage().GetStorageUsage(kctx, &cairnv1.GetStorageUsageRequest{ProjectId: "acme"})
	if err != nil || usage.GetUsedBytes() != 100_000 {
		t.Fatalf("usage: %v %v", usage, err)
	}
	// A bucket file is refused as well, and so is an archive deploy, which
	// is recorded as failed.
	if _, err := in.storage().CreateBucket(kctx, &cairnv1.CreateBucketRequest{ProjectId: "acme", BucketId: "b", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if res := in.putChunk(t, secret, "acme", "b", "f", "f.txt", 0, 1, []byte("x")); res.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("file upload past the quota: %s", res)
	}
	if res, body := in.httpDo(t, "POST", "/v1/sites/acme/web/deployments", secret, tarGz(t, map[string]string{"new.txt": "new"}), nil); res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "quota") {
		t.Fatalf("archive past the quota: %d %s", res.StatusCode, body)
	}
	// Deploy the page (already stored: no new bytes).
	if _, err := in.sites().CreateDeployment(kctx, &cairnv1.CreateDeploymentRequest{ProjectId: "acme", SiteId: "web", Activate: true,
		Files: []*eventsv1.SiteFile{{Path: "index.html", Sha256: pageSHA, Size: int64(len(page))}}}); err != nil {
		t.Fatal(err)
	}
	// The sweeper deletes the unused file after the grace, keeps the
	// deployed one, and removes the stale spool.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m, err := in.sites().MissingFiles(kctx, &cairnv1.MissingFilesRequest{ProjectId: "acme", Sha256: []string{orphanSHA, pageSHA}})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.GetSha256()) == 1 && m.GetSha256()[0] == orphanSHA {
			break
		}
		if len(m.GetSha256()) > 1 || time.Now().After(deadline) {
			t.Fatalf("missing after the sweep: %v (want only the unused file)", m.GetSha256())
		}
	}
	if _, err := os.Stat(spool.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale spool %s still there: %v", spool.Name(), err)
	}
	if res, body := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "web.acme.localhost"}); res.StatusCode != 200 || body != string(page) {
		t.Fatalf("deployed file after the sweep: %d (%d bytes)", res.StatusCode, len(body))
	}
}

// trickle10 is a request body of 10 bytes/s, without end.
type trickle10 struct{}

func (trickle10) Read(p []byte) (int, error) {
	time.Sleep(100 * time.Millisecond)
	p[0] = ' '
	return 1, nil
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
