package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

func TestHealthAndMetricsEndpoints(t *testing.T) {
	in := startInstance(t, t.TempDir())
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "m", Name: "M"}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(in.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d", code)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`cairn_rpc_duration_seconds_count{code="ok",procedure="/cairn.v1.ProjectsService/CreateProject"} 1`,
		`cairn_append_duration_seconds_count{result="ok"} 1`,
		`cairn_nats_connected 1`,
		`cairn_nats_reconnects_total 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
