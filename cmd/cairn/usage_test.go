package main

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	usagemeter "github.com/cairn-dev/cairn/usage"
)

// TestProjectUsage drives known amounts into a project (writes, documents
// created and deleted, a collection dropped with its documents, a file of
// N bytes downloaded whole and in part, a site page served, a function
// run, a realtime subscription with one delivery) and reads them back with
// GetProjectUsage and `cairn usage`, exactly where they are exact. The
// daily counters from the log must survive a rebuild unchanged.
func TestProjectUsage(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	key := newProjectWithKey(t, in, "meter", allScopes()...)
	kctx, _ := as(ctx, key)
	other := newProjectWithKey(t, in, "other", allScopes()...)
	today := usagemeter.Day(time.Now())
	op, _ := as(ctx, testAdminKey)
	nk, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "meter", Name: "docs", Scopes: &cairnv1.Scopes{Scopes: []string{"documents.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	noScope := nk.GetSecret()

	// Documents: 6 created, 1 deleted; 3 more in a collection then dropped.
	dbs := in.databases()
	docsFixture(t, kctx, dbs, "meter", "posts", []string{`read("any")`}, false)
	create := func(coll, id string) {
		t.Helper()
		if _, err := dbs.CreateDocument(kctx, &cairnv1.CreateDocumentRequest{ProjectId: "meter", DatabaseId: "main", CollectionId: coll,
			Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": "t"})}}); err != nil {
			t.Fatal(err)
		}
	}
	// A realtime subscriber to one document: exactly one delivery.
	subStart := time.Now()
	sub := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: "meter", Channels: []string{"databases.main.collections.posts.documents.live"}})
	create("posts", "live")
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case m := <-sub.msgs:
			got = m.GetEvent() != nil
		case <-deadline:
			t.Fatal("no realtime event")
		}
	}
	time.Sleep(1500 * time.Millisecond) // connection time to measure
	sub.cancel()
	<-sub.errc
	subHeld := time.Since(subStart)
	for i := range 5 {
		create("posts", "d"+strconv.Itoa(i))
	}
	if _, err := dbs.DeleteDocument(kctx, &cairnv1.DeleteDocumentRequest{ProjectId: "meter", DatabaseId: "main", CollectionId: "posts", DocumentId: "d0"}); err != nil {
		t.Fatal(err)
	}
	docsFixture(t, kctx, dbs, "meter", "drafts", []string{`read("any")`}, false)
	for i := range 3 {
		create("drafts", "x"+strconv.Itoa(i))
	}
	if _, err := dbs.DeleteCollection(kctx, &cairnv1.DeleteCollectionRequest{ProjectId: "meter", DatabaseId: "main", CollectionId: "drafts"}); err != nil {
		t.Fatal(err)
	}

	// A file of N bytes, downloaded whole once and 100 bytes of it once.
	const n = 300_001
	if _, err := in.storage().CreateBucket(kctx, &cairnv1.CreateBucketRequest{ProjectId: "meter", BucketId: "b", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	in.uploadChunked(t, key, "meter", "b", "f", "f.bin", fileBytes(n, 3), 128<<10)
	path := "/v1/storage/buckets/b/files/f/download"
	if res := in.do(t, httpCall{method: http.MethodGet, path: path, project: "meter", token: key}); res.status != http.StatusOK || len(res.body) != n {
		t.Fatalf("download: %d, %d bytes", res.status, len(res.body))
	}
	if res := in.do(t, httpCall{method: http.MethodGet, path: path, project: "meter", token: key,
		header: http.Header{"Range": {"bytes=1000-1099"}}}); res.status != http.StatusPartialContent || len(res.body) != 100 {
		t.Fatalf("range download: %d, %d bytes", res.status, len(res.body))
	}

	// A site page of known size, served once.
	page := strings.Repeat("<p>usage</p>", 100)
	if _, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "meter", SiteId: "web", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if res, body := in.httpDo(t, "POST", "/v1/sites/meter/web/deployments?activate=true", key, tarGz(t, map[string]string{"index.html": page}), nil); res.StatusCode != http.StatusCreated {
		t.Fatalf("deploy: %d %s", res.StatusCode, body)
	}
	// Uncompressed, so the bytes on the wire are the page's (egress counts
	// what is sent: a gzip-accepting client costs less).
	if res, body := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "web.meter.localhost", "Accept-Encoding": "identity"}); res.StatusCode != 200 || body != page {
		t.Fatalf("site: %d %q", res.StatusCode, body)
	}

	// One function execution.
	deployWasm(t, in, key, "meter", &cairnv1.CreateFunctionRequest{FunctionId: "echo", Name: "echo", Execute: []string{"any"}})
	ex, err := in.functions().CreateExecution(kctx, &cairnv1.CreateExecutionRequest{ProjectId: "meter", FunctionId: "echo", Path: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	exec := waitExecution(t, in, key, "meter", "echo", ex.GetExecution().GetId())
	if exec.GetCpuTimeUs() <= 0 {
		t.Errorf("execution CPU time %d µs: not measured", exec.GetCpuTimeUs())
	}

	// The other project's traffic is not this one's.
	octx, _ := as(ctx, other)
	docsFixture(t, octx, dbs, "other", "posts", []string{`read("any")`}, false)

	// Events: every event of the stream (all written today).
	var events int64
	for page := ""; ; {
		res, err := in.events().ListEvents(kctx, &cairnv1.ListEventsRequest{ProjectId: "meter", PageSize: 1000, PageToken: page})
		if err != nil {
			t.Fatal(err)
		}
		events += int64(len(res.GetEvents()))
		if page = res.GetNextPageToken(); page == "" {
			break
		}
	}

	read := func(tok string, req *cairnv1.GetProjectUsageRequest) (*cairnv1.GetProjectUsageResponse, error) {
		c, _ := as(ctx, tok)
		return in.projects().GetProjectUsage(c, req)
	}
	res, err := read(key, &cairnv1.GetProjectUsageRequest{ProjectId: "meter", From: today, To: today})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetDays()) != 1 {
		t.Fatalf("days: %v", res.GetDays())
	}
	d := res.GetDays()[0]
	want := &cairnv1.UsageDay{Date: today, Events: events, Documents: 5, StorageBytes: n, DownloadBytes: n + 100, SiteBytes: int64(len(page)),
		EgressBytes: n + 100 + int64(len(page)), Executions: 1, ExecutionWallMs: exec.GetDurationMs(), ExecutionCpuUs: exec.GetCpuTimeUs(), RealtimeDeliveries: 1}
	minutes := d.GetRealtimeConnectionMinutes()
	d.RealtimeConnectionMinutes = 0
	if d.String() != want.String() {
		t.Fatalf("usage of %s:\n got %v\nwant %v", today, d, want)
	}
	// The server holds the subscription a little longer than the client.
	if low, high := 1.5/60, (subHeld + 2*time.Second).Minutes(); minutes < low || minutes > high {
		t.Errorf("realtime connection minutes %.5f, want between %.5f and %.5f", minutes, low, high)
	}
	t.Logf("usage: %v, %.4f connection-minutes", want, minutes)

	// A default range ends today and holds 30 days, the earlier ones empty
	// but for the carried totals (nothing before today here).
	all, err := read(testAdminKey, &cairnv1.GetProjectUsageRequest{ProjectId: "meter"})
	if err != nil {
		t.Fatal(err)
	}
	if days := all.GetDays(); len(days) != 30 || days[29].GetDate() != today || days[0].GetEvents() != 0 || all.GetTotal().GetEvents() != events ||
		all.GetTotal().GetDocuments() != 5 || all.GetTotal().GetEgressBytes() != want.GetEgressBytes() {
		t.Fatalf("default range: %d days, total %v", len(days), all.GetTotal())
	}

	// Who may read it, and bad ranges.
	for _, tc := range []struct {
		name  string
		token string
		req   *cairnv1.GetProjectUsageRequest
		code  connect.Code
		field string
	}{
		{"key without usage.read", noScope, &cairnv1.GetProjectUsageRequest{ProjectId: "meter"}, connect.CodePermissionDenied, ""},
		{"another project's key", other, &cairnv1.GetProjectUsageRequest{ProjectId: "meter"}, connect.CodePermissionDenied, ""},
		{"no credential", "", &cairnv1.GetProjectUsageRequest{ProjectId: "meter"}, connect.CodeUnauthenticated, ""},
		{"unknown project", testAdminKey, &cairnv1.GetProjectUsageRequest{ProjectId: "nope"}, connect.CodeNotFound, ""},
		{"malformed day", testAdminKey, &cairnv1.GetProjectUsageRequest{ProjectId: "meter", From: "07/12/2026"}, connect.CodeInvalidArgument, "from"},
		{"impossible day", testAdminKey, &cairnv1.GetProjectUsageRequest{ProjectId: "meter", To: "2026-02-30"}, connect.CodeInvalidArgument, "to"},
		{"from after to", testAdminKey, &cairnv1.GetProjectUsageRequest{ProjectId: "meter", From: "2026-03-02", To: "2026-03-01"}, connect.CodeInvalidArgument, "from"},
		{"more than 366 days", testAdminKey, &cairnv1.GetProjectUsageRequest{ProjectId: "meter", From: "2024-01-01", To: "2025-12-31"}, connect.CodeInvalidArgument, "to"},
	} {
		_, err := read(tc.token, tc.req)
		if connect.CodeOf(err) != tc.code || err != nil && !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: want %v naming %q, got %v", tc.name, tc.code, tc.field, err)
		}
	}

	// The CLI, as CSV for billing.
	out, err := in.cli(t, "usage", "--project", "meter", "--from", today, "--to", today, "--csv")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "project" || rows[1][0] != "meter" || rows[1][1] != today {
		t.Fatalf("cairn usage --csv: %v\n%s", err, out)
	}
	col := map[string]string{}
	for i, h := range rows[0] {
		col[h] = rows[1][i]
	}
	if col["events"] != strconv.FormatInt(events, 10) || col["download_bytes"] != strconv.Itoa(n+100) || col["documents"] != "5" || col["executions"] != "1" {
		t.Fatalf("cairn usage --csv: %v", col)
	}
	// Without --project: every project, one table.
	if out, err := in.cli(t, "usage", "--from", today, "--to", today); err != nil || !strings.Contains(out, "meter") || !strings.Contains(out, "other") {
		t.Fatalf("cairn usage (all projects): %v\n%s", err, out)
	}

	// The log's figures rebuild to the same counters.
	in.stop()
	node := openStopped(t, dir)
	defer node.close()
	checkRebuild(t, node, "meter", "usage")
}
