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
		res, err := (&http.Client{Transport: operatorTransport{}}).Get(in.url + path)
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

// operatorTransport sends the operator key, as Prometheus does for /metrics.
type operatorTransport struct{}

func (operatorTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+testAdminKey)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMetricsForOperatorOnly: /metrics answers the operator only (not a
// guest, not a project's key), and names no project unless the operator
// asks for project labels.
func TestMetricsForOperatorOnly(t *testing.T) {
	for _, labels := range []bool{false, true} {
		var extra []string
		if labels {
			extra = append(extra, "--metrics-project-labels")
		}
		in := startInstance(t, t.TempDir(), extra...)
		key := newProjectWithKey(t, in, "secretproject", "keys.read")
		for _, token := range []string{"", key, "cak_wrong"} {
			req, _ := http.NewRequest(http.MethodGet, in.url+"/metrics", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), "secretproject") {
				t.Fatalf("/metrics with %q: %d %s", token, res.StatusCode, b)
			}
		}
		res, err := (&http.Client{Transport: operatorTransport{}}).Get(in.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body := string(b)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "cairn_projection_lag_events") {
			t.Fatalf("operator: %d %s", res.StatusCode, body)
		}
		if named := strings.Contains(body, "secretproject"); named != labels {
			t.Errorf("project labels %v: the scrape names the project: %v", labels, named)
		}
		if !labels && !strings.Contains(body, `cairn_projection_lag_events{stream="projects"}`) {
			t.Errorf("no summed projects series")
		}
		in.stop()
	}
}
