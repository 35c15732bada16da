package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestProjectRateLimit: a project's request rate at its edge. With a
// burst of 3 at 4 requests/s, the fourth call is refused with
// resource_exhausted, a RetryInfo and Retry-After, on Connect and on plain
// HTTP alike, before the call's body is decoded; another project, the project's guests (a bucket of their
// own) and the operator are unaffected; after the wait a call passes
// again; a changed limit applies from the next request; bad limits are
// refused by name.
func TestProjectRateLimit(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	keys := map[string]string{}
	for _, p := range []string{"lim", "other"} {
		keys[p] = newProjectWithKey(t, in, p, append([]string{"files.read"}, docScopes...)...)
	}
	setLimits := func(l *cairnv1.ProjectLimits) {
		t.Helper()
		res, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "lim", Limits: l})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.GetProject().GetLimits(); got.GetRequestsPerSecond() != l.GetRequestsPerSecond() || got.GetRequestBurst() != l.GetRequestBurst() {
			t.Fatalf("limits %v, want %v", got, l)
		}
	}
	setLimits(&cairnv1.ProjectLimits{RequestsPerSecond: 4, RequestBurst: 3})
	list := func(p string) (*connect.CallInfo, error) {
		k, info := as(ctx, keys[p])
		_, err := in.databases().ListDatabases(k, &cairnv1.ListDatabasesRequest{ProjectId: p})
		return info, err
	}
	for i := range 3 {
		if _, err := list("lim"); err != nil {
			t.Fatalf("call %d of the burst: %v", i+1, err)
		}
	}
	info, err := list("lim")
	wantCode(t, err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), "requests of this project") {
		t.Fatalf("limit not named: %v", err)
	}
	if ra := info.ResponseHeader().Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q, want 1 (s)", ra)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) || len(ce.Details()) != 1 {
		t.Fatalf("no RetryInfo detail: %v", err)
	}
	if m, derr := connectproto.UnmarshalErrorDetail(ce.Details()[0]); derr != nil {
		t.Fatal(derr)
	} else if ri, ok := m.(*errdetails.RetryInfo); !ok || ri.GetRetryDelay().AsDuration() != time.Second {
		t.Fatalf("detail %v", m)
	}
	// A key's call is refused before its body is read: a body that is
	// not even JSON gets the limit, not a decoding error.
	res := in.do(t, httpCall{method: http.MethodPost, path: "/cairn.v1.DatabasesService/ListDatabases", token: keys["lim"],
		header: http.Header{"Content-Type": {"application/json"}}, body: strings.NewReader("{not json")})
	if res.status != http.StatusTooManyRequests || !strings.Contains(string(res.body), "resource_exhausted") || res.header.Get("Retry-After") == "" {
		t.Fatalf("an undecodable call over the limit: %s", res)
	}
	// Plain HTTP counts against the same budget.
	res = in.do(t, httpCall{method: http.MethodGet, path: "/v1/storage/buckets/b/files/f/view", project: "lim", token: keys["lim"]})
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
		t.Fatalf("storage over the limit: %s", res)
	}
	// Guests have their own bucket; the operator and other projects none.
	if res := in.do(t, httpCall{method: http.MethodGet, path: "/v1/storage/buckets/b/files/f/view", project: "lim"}); res.status != http.StatusNotFound {
		t.Fatalf("guest while the keys are limited: %s", res)
	}
	for range 10 {
		if _, err := in.databases().ListDatabases(op, &cairnv1.ListDatabasesRequest{ProjectId: "lim"}); err != nil {
			t.Fatalf("operator: %v", err)
		}
		if _, err := list("other"); err != nil {
			t.Fatalf("another project: %v", err)
		}
	}
	// One request regained every 250 ms (the limiter's own clock is
	// tested in api/ratelimit; here the real one).
	time.Sleep(260 * time.Millisecond)
	if _, err := list("lim"); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	_, err = list("lim")
	wantCode(t, err, connect.CodeResourceExhausted)
	// A raised burst applies from the next request, without a restart.
	setLimits(&cairnv1.ProjectLimits{RequestsPerSecond: 4, RequestBurst: 50})
	for i := range 20 {
		if _, err := list("lim"); err != nil {
			t.Fatalf("call %d under the raised burst: %v", i+1, err)
		}
	}
	// Back to the instance's defaults (0): far above this test.
	setLimits(&cairnv1.ProjectLimits{})
	for range 60 {
		if _, err := list("lim"); err != nil {
			t.Fatalf("under the default rate: %v", err)
		}
	}
	for _, bad := range []struct {
		l     *cairnv1.ProjectLimits
		field string
	}{
		{&cairnv1.ProjectLimits{RequestsPerSecond: -1}, "requests_per_second"},
		{&cairnv1.ProjectLimits{RequestBurst: 1_000_001}, "request_burst"},
	} {
		_, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "lim", Limits: bad.l})
		wantCode(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), bad.field) {
			t.Fatalf("%v: error does not name %s: %v", bad.l, bad.field, err)
		}
	}
}

// TestProjectConcurrencyLimit: a project's bound on calls running at once,
// at its edge. With max_concurrent_requests 2, two calls held in flight
// (each, once it has its slot, waits for a system-stream sequence not yet
// written) make a third call of the project's keys wait in line — not
// fail — until they end, while another project and the operator pass; a
// bound of 3 lets the third through at once; bad bounds are refused by
// name.
func TestProjectConcurrencyLimit(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	keys := map[string]string{}
	for _, p := range []string{"lim", "other"} {
		keys[p] = newProjectWithKey(t, in, p, docScopes...)
	}
	bumps := 0
	// setBound sets lim's bound and returns the system stream's sequence
	// after it.
	setBound := func(n int32) uint64 {
		t.Helper()
		op, info := as(ctx, testAdminKey)
		res, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "lim", Limits: &cairnv1.ProjectLimits{MaxConcurrentRequests: n}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.GetProject().GetLimits().GetMaxConcurrentRequests(); got != n {
			t.Fatalf("max_concurrent_requests %d, want %d", got, n)
		}
		return seqOf(t, info)
	}
	list := func(p string, minSysSeq uint64) error {
		k, info := as(ctx, keys[p])
		if minSysSeq > 0 {
			info.RequestHeader().Set("Cairn-Min-Sys-Seq", strconv.FormatUint(minSysSeq, 10))
		}
		_, err := in.databases().ListDatabases(k, &cairnv1.ListDatabasesRequest{ProjectId: p})
		return err
	}
	// hold starts two calls that keep their slots until bump.
	hold := func(sysSeq uint64) chan error {
		held := make(chan error, 2)
		for range 2 {
			go func() { held <- list("lim", sysSeq+1) }()
		}
		time.Sleep(300 * time.Millisecond) // both are in and waiting
		select {
		case err := <-held:
			t.Fatalf("a held call ended early: %v", err)
		default:
		}
		return held
	}
	bump := func(held chan error) {
		t.Helper()
		bumps++
		op, _ := as(ctx, testAdminKey)
		if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: fmt.Sprint("bump", bumps), Name: "bump"}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-held; err != nil {
				t.Fatalf("held call: %v", err)
			}
		}
	}

	held := hold(setBound(2))
	third := make(chan error, 1)
	go func() { third <- list("lim", 0) }()
	select {
	case err := <-third:
		t.Fatalf("a third call ran beside two with a bound of 2: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	op, _ := as(ctx, testAdminKey)
	if _, err := in.databases().ListDatabases(op, &cairnv1.ListDatabasesRequest{ProjectId: "lim"}); err != nil {
		t.Fatalf("operator while lim is full: %v", err)
	}
	if err := list("other", 0); err != nil {
		t.Fatalf("another project while lim is full: %v", err)
	}
	bump(held)
	if err := <-third; err != nil {
		t.Fatalf("the waiting call, once a slot was free: %v", err)
	}

	// At the bound's edge the other way: 3 lets the third call in.
	held = hold(setBound(3))
	if err := list("lim", 0); err != nil {
		t.Fatalf("third call under a bound of 3: %v", err)
	}
	bump(held)

	for _, bad := range []int32{-1, 100_001} {
		_, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "lim", Limits: &cairnv1.ProjectLimits{MaxConcurrentRequests: bad}})
		wantCode(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), "max_concurrent_requests") {
			t.Fatalf("%d: error does not name max_concurrent_requests: %v", bad, err)
		}
	}
}
