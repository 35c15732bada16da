package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// clusterSitesBothNodes: two Cairn nodes sharing one NATS cluster serve the
// same active deployment. A deployment uploaded and activated on one node is
// served byte for byte by the other once it has applied the write's
// Cairn-Seq (an operator RPC carrying Cairn-Min-Seq waits for it); a
// deployment activated on the other node, and a rollback, travel back the
// same way. A site of one project is never served on another project's
// host name.
func clusterSitesBothNodes(t *testing.T, h *clusterHarness) {
	n1, n2 := h.node(0), h.node(1)
	for _, p := range []string{"sitesa", "sitesb"} {
		op, info := as(context.Background(), testAdminKey)
		if _, err := n1.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
			t.Fatal(err)
		}
		op, _ = minSeq(context.Background(), seqOf(t, info))
		if _, err := n2.projects().GetProject(op, &cairnv1.GetProjectRequest{ProjectId: p}); err != nil {
			t.Fatalf("node 2: project %s after its creation on node 1: %v", p, err)
		}
		// A new project stream may still be electing its leader: Unavailable
		// is retried with the same Idempotency-Key, as a client would.
		var created *connect.CallInfo
		clusterRetry(t, "create site in "+p, func(attempt int) error {
			op, info := as(context.Background(), testAdminKey)
			info.RequestHeader().Set("Idempotency-Key", "site-"+p)
			_, err := n1.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: p, SiteId: "web", Name: "Web"})
			created = info
			return err
		})
		// Node 2 is only eventually consistent with node 1: a client that
		// goes on there names the write it needs (it deploys to this site on
		// node 2 below; without the wait a loaded machine answered "site not
		// found" there).
		op, _ = minSeq(context.Background(), seqOf(t, created))
		if _, err := n2.sites().GetSite(op, &cairnv1.GetSiteRequest{ProjectId: p, SiteId: "web"}); err != nil {
			t.Fatalf("node 2: site %s/web after its creation on node 1: %v", p, err)
		}
	}

	v1 := map[string]string{
		"index.html":             "<!doctype html><title>A</title><p>project A, v1</p>\n",
		"assets/app.1a2b3c4d.js": "console.log('a v1');\n",
		"data.json":              `{"v":1}`,
	}
	v2 := map[string]string{
		"index.html":             "<!doctype html><title>A</title><p>project A, v2</p>\n",
		"assets/app.5e6f7a8b.js": "console.log('a v2');\n",
		"data.json":              `{"v":2}`,
	}
	const site = "/_sites/sitesa/web/"

	// v1: uploaded and activated on node 1, served by both.
	d1, seq := clusterUploadSite(t, n1, "sitesa", "web", v1, true, "sites-a-v1")
	clusterWaitSite(t, n2, "sitesa", "web", seq, d1)
	clusterSameSite(t, "v1 deployed on node 1", site, v1, n1, n2)
	etag1 := clusterGet(t, n1, site+"index.html", nil).Header.Get("ETag")
	if res := clusterGet(t, n2, site+"index.html", map[string]string{"If-None-Match": etag1}); res.StatusCode != http.StatusNotModified {
		t.Errorf("node 2 answered %d to If-None-Match with node 1's ETag %s of the same file (want 304: a load balancer may send the revalidation to either node)", res.StatusCode, etag1)
	}

	// v2: uploaded on node 2, inactive at first (preview only), then
	// activated there; node 1 serves it after its Cairn-Min-Seq wait.
	d2, seq := clusterUploadSite(t, n2, "sitesa", "web", v2, false, "sites-a-v2")
	clusterWaitSite(t, n1, "sitesa", "web", seq, d1)
	clusterSameSite(t, "v1 still active after v2's upload", site, v1, n1, n2)
	clusterSameSite(t, "v2's preview", "/_previews/sitesa/web/"+d2+"/", v2, n1, n2)
	seq = clusterActivate(t, n2, "sitesa", "web", d2)
	clusterWaitSite(t, n1, "sitesa", "web", seq, d2)
	clusterSameSite(t, "v2 activated on node 2", site, v2, n1, n2)
	if res := clusterGet(t, n1, site+"assets/app.1a2b3c4d.js", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("node 1 serves v1's asset from the active v2: %d", res.StatusCode)
	}

	// Rollback on node 1: an activation of v1, visible on node 2.
	seq = clusterActivate(t, n1, "sitesa", "web", d1)
	clusterWaitSite(t, n2, "sitesa", "web", seq, d1)
	clusterSameSite(t, "rollback to v1 on node 1", site, v1, n1, n2)

	// Host routing across projects: web.sitesa serves A; web.sitesb (a site
	// of the same name in project B, nothing deployed) is a 404 on both
	// nodes, never A's site.
	for _, c := range []*crashChild{n1, n2} {
		res := clusterGet(t, c, "/", map[string]string{"Host": "web.sitesa.localhost"})
		if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, []byte(v1["index.html"])) {
			t.Errorf("%s: Host web.sitesa.localhost: %d %q", c.url, res.StatusCode, res.body)
		}
		for _, host := range []string{"web.sitesb.localhost", d1 + ".web.sitesb.localhost"} {
			if res := clusterGet(t, c, "/", map[string]string{"Host": host}); res.StatusCode != http.StatusNotFound {
				t.Errorf("%s: Host %s answered %d %q: project A's site served for project B", c.url, host, res.StatusCode, res.body)
			}
		}
		if res := clusterGet(t, c, "/_previews/sitesb/web/"+d1+"/", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: project A's deployment previewed under project B: %d %q", c.url, res.StatusCode, res.body)
		}
	}
	// Once B deploys its own, each host name serves its own project's files.
	b1 := map[string]string{"index.html": "<!doctype html><p>project B</p>\n"}
	db, seq := clusterUploadSite(t, n2, "sitesb", "web", b1, true, "sites-b-v1")
	clusterWaitSite(t, n1, "sitesb", "web", seq, db)
	for _, c := range []*crashChild{n1, n2} {
		for host, want := range map[string]string{"web.sitesa.localhost": v1["index.html"], "web.sitesb.localhost": b1["index.html"]} {
			if res := clusterGet(t, c, "/", map[string]string{"Host": host}); res.StatusCode != http.StatusOK || string(res.body) != want {
				t.Errorf("%s: Host %s: %d %q, want %q", c.url, host, res.StatusCode, res.body, want)
			}
		}
	}
}

// clusterRetry runs a write until it is not Unavailable (bounded).
func clusterRetry(t *testing.T, what string, write func(attempt int) error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := write(attempt)
		if connect.CodeOf(err) == connect.CodeUnavailable && attempt < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("%s (attempt %d): %v", what, attempt, err)
		}
		return
	}
}

// clusterUploadSite deploys files as a .tar.gz through node c's archive
// upload and returns the deployment id and the write's Cairn-Seq.
func clusterUploadSite(t *testing.T, c *crashChild, project, site string, files map[string]string, activate bool, idem string) (string, uint64) {
	t.Helper()
	archive := tarGz(t, files)
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest("POST", fmt.Sprintf("%s/v1/sites/%s/%s/deployments?activate=%t", c.url, project, site, activate), bytes.NewReader(archive))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		req.Header.Set("Idempotency-Key", idem)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusServiceUnavailable && attempt < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("%s: deploy to %s/%s: %d %s", c.url, project, site, res.StatusCode, body)
		}
		var d struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &d); err != nil || d.ID == "" {
			t.Fatalf("%s: deploy answer %s: %v", c.url, body, err)
		}
		seq, err := strconv.ParseUint(res.Header.Get("Cairn-Seq"), 10, 64)
		if err != nil || seq == 0 {
			t.Fatalf("%s: archive upload answered without a valid Cairn-Seq: %q", c.url, res.Header.Get("Cairn-Seq"))
		}
		return d.ID, seq
	}
}

// clusterActivate makes deployment dep the site's production one through
// node c, and returns the write's Cairn-Seq.
func clusterActivate(t *testing.T, c *crashChild, project, site, dep string) uint64 {
	t.Helper()
	op, info := as(context.Background(), testAdminKey)
	res, err := c.sites().ActivateDeployment(op, &cairnv1.ActivateDeploymentRequest{ProjectId: project, SiteId: site, DeploymentId: dep})
	if err != nil || res.GetSite().GetActiveDeploymentId() != dep {
		t.Fatalf("%s: activate %s: %v %v", c.url, dep, res, err)
	}
	return seqOf(t, info)
}

// clusterWaitSite waits, with an operator RPC carrying Cairn-Min-Seq, until
// node c has applied seq, and requires the site's active deployment to be
// want there.
func clusterWaitSite(t *testing.T, c *crashChild, project, site string, seq uint64, want string) {
	t.Helper()
	op, _ := minSeq(context.Background(), seq)
	res, err := c.sites().GetSite(op, &cairnv1.GetSiteRequest{ProjectId: project, SiteId: site})
	if err != nil {
		t.Fatalf("%s: get site %s/%s with Cairn-Min-Seq %d: %v", c.url, project, site, seq, err)
	}
	if got := res.GetSite().GetActiveDeploymentId(); got != want {
		t.Fatalf("%s: site %s/%s active deployment %q after Cairn-Min-Seq %d, want %q", c.url, project, site, got, seq, want)
	}
}

// clusterSameSite requires every node to serve exactly files under base.
func clusterSameSite(t *testing.T, what, base string, files map[string]string, nodes ...*crashChild) {
	t.Helper()
	for _, c := range nodes {
		for p, want := range files {
			res := clusterGet(t, c, base+p, nil)
			if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, []byte(want)) {
				t.Errorf("%s: %s GET %s: %d %q, want %q", what, c.url, base+p, res.StatusCode, res.body, want)
			}
		}
		// The directory serves its index.html.
		if res := clusterGet(t, c, base, nil); res.StatusCode != http.StatusOK || string(res.body) != files["index.html"] {
			t.Errorf("%s: %s GET %s: %d %q", what, c.url, base, res.StatusCode, res.body)
		}
	}
}

type clusterResponse struct {
	*http.Response
	body []byte
}

// clusterGet sends a plain GET to node c (a "Host" entry sets the host).
func clusterGet(t *testing.T, c *crashChild, path string, hdr map[string]string) clusterResponse {
	t.Helper()
	req, err := http.NewRequest("GET", c.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", c.url, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s%s: body: %v", c.url, path, err)
	}
	return clusterResponse{res, b}
}
