package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (c clients) sites() cairnv1connect.SitesServiceClient {
	return cairnv1connect.NewSitesServiceClient(c.client)
}

// httpDo sends a plain HTTP request to the instance.
func (in *instance) httpDo(t *testing.T, method, path, token string, body []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, in.routeURL(path), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestSitesDeployServeRollback(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	key, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "acme", Name: "deployer",
		Scopes: &cairnv1.Scopes{Scopes: []string{"sites.read", "sites.write"}}})
	if err != nil {
		t.Fatal(err)
	}
	kctx, _ := as(ctx, key.GetSecret())
	if _, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "web", Name: "Web",
		Settings: &eventsv1.SiteSettings{SpaFallback: true}}); err != nil {
		t.Fatal(err)
	}

	// Deploy v1 as an archive and activate it.
	v1 := map[string]string{
		"index.html":             `<html><script src="/assets/app.3f2a9c1b.js"></script>v1</html>`,
		"assets/app.3f2a9c1b.js": `console.log("v1")`,
		"style.css":              `body{}`,
	}
	res, body := in.httpDo(t, "POST", "/v1/sites/acme/web/deployments?activate=true", key.GetSecret(), tarGz(t, v1), nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("deploy v1: %d %s", res.StatusCode, body)
	}
	var d1 struct {
		ID         string `json:"id"`
		PreviewURL string `json:"previewUrl"`
	}
	if err := json.Unmarshal([]byte(body), &d1); err != nil || d1.ID == "" {
		t.Fatalf("deploy v1 answer: %s", body)
	}
	res, page := in.httpDo(t, "GET", "/_sites/acme/web/", "", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(page, "v1") || res.Header.Get("ETag") == "" {
		t.Fatalf("serve v1: %d %q %v", res.StatusCode, page, res.Header)
	}
	res, _ = in.httpDo(t, "GET", "/_sites/acme/web/assets/app.3f2a9c1b.js", "", nil, nil)
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Fatalf("hashed asset not immutable: %q", cc)
	}
	res, _ = in.httpDo(t, "GET", "/_sites/acme/web/deep/route", "", nil, nil)
	if res.StatusCode != 200 {
		t.Fatalf("SPA fallback: %d", res.StatusCode)
	}
	// By host name: <site>.<project>.<sites domain>, and a deployment's own.
	for host, want := range map[string]string{"web.acme.localhost": "v1", d1.ID + ".web.acme.localhost": "v1"} {
		res, page = in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": host})
		if res.StatusCode != 200 || !strings.Contains(page, want) {
			t.Fatalf("host %s: %d %q", host, res.StatusCode, page)
		}
	}
	if res, _ = in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "web.other.localhost"}); res.StatusCode != 404 {
		t.Fatalf("a site of project acme answered for project other: %d", res.StatusCode)
	}

	// Deploy v2 file by file: only the changed file is missing, and stored.
	files := []*eventsv1.SiteFile{}
	var shas []string
	v2 := map[string]string{}
	for k, v := range v1 {
		v2[k] = v
	}
	v2["index.html"] = `<html>v2</html>`
	for p, content := range v2 {
		sum := sha256.Sum256([]byte(content))
		sha := hex.EncodeToString(sum[:])
		shas = append(shas, sha)
		files = append(files, &eventsv1.SiteFile{Path: p, Sha256: sha, Size: int64(len(content)), ContentType: "text/html"})
	}
	miss, err := in.sites().MissingFiles(kctx, &cairnv1.MissingFilesRequest{ProjectId: "acme", Sha256: shas})
	if err != nil || len(miss.GetSha256()) != 1 {
		t.Fatalf("want exactly the changed file missing, got %v %v", miss, err)
	}
	if _, err := in.sites().CreateDeployment(kctx, &cairnv1.CreateDeploymentRequest{ProjectId: "acme", SiteId: "web", Files: files}); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("deploy with a missing blob: %v", err)
	}
	sum := sha256.Sum256([]byte(v2["index.html"]))
	res, body = in.httpDo(t, "PUT", "/v1/sites/acme/blobs/"+hex.EncodeToString(sum[:]), key.GetSecret(), []byte(v2["index.html"]), nil)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("blob upload: %d %s", res.StatusCode, body)
	}
	res, body = in.httpDo(t, "PUT", "/v1/sites/acme/blobs/"+strings.Repeat("0", 64), key.GetSecret(), []byte("not that"), nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("mismatched blob accepted: %d %s", res.StatusCode, body)
	}
	d2, err := in.sites().CreateDeployment(kctx, &cairnv1.CreateDeploymentRequest{ProjectId: "acme", SiteId: "web", Files: files, Activate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, page = in.httpDo(t, "GET", "/_sites/acme/web/", "", nil, nil); !strings.Contains(page, "v2") {
		t.Fatalf("v2 not served after activation: %q", page)
	}
	// A retried deploy with the same Idempotency-Key answers the first one.
	ictx, iinfo := as(ctx, key.GetSecret())
	iinfo.RequestHeader().Set("Idempotency-Key", "deploy-v2-again")
	first, err := in.sites().CreateDeployment(ictx, &cairnv1.CreateDeploymentRequest{ProjectId: "acme", SiteId: "web", Files: files})
	if err != nil {
		t.Fatal(err)
	}
	ictx, iinfo = as(ctx, key.GetSecret())
	iinfo.RequestHeader().Set("Idempotency-Key", "deploy-v2-again")
	again, err := in.sites().CreateDeployment(ictx, &cairnv1.CreateDeploymentRequest{ProjectId: "acme", SiteId: "web", Files: files})
	if err != nil || again.GetDeployment().GetId() != first.GetDeployment().GetId() {
		t.Fatalf("retried deploy: %v %v, want %s", again, err, first.GetDeployment().GetId())
	}
	if _, err := in.sites().DeleteDeployment(kctx, &cairnv1.DeleteDeploymentRequest{ProjectId: "acme", SiteId: "web", DeploymentId: first.GetDeployment().GetId()}); err != nil {
		t.Fatal(err)
	}
	// The preview of v1 still serves v1; rollback is an activation.
	if _, page = in.httpDo(t, "GET", "/_previews/acme/web/"+d1.ID+"/", "", nil, nil); !strings.Contains(page, "v1") {
		t.Fatalf("preview of v1: %q", page)
	}
	if _, err := in.sites().ActivateDeployment(kctx, &cairnv1.ActivateDeploymentRequest{ProjectId: "acme", SiteId: "web", DeploymentId: d1.ID}); err != nil {
		t.Fatal(err)
	}
	if _, page = in.httpDo(t, "GET", "/_sites/acme/web/", "", nil, nil); !strings.Contains(page, "v1") {
		t.Fatalf("rollback did not serve v1: %q", page)
	}
	_, err = in.sites().DeleteDeployment(kctx, &cairnv1.DeleteDeploymentRequest{ProjectId: "acme", SiteId: "web", DeploymentId: d1.ID})
	wantCode(t, err, connect.CodeFailedPrecondition)
	if _, err := in.sites().DeleteDeployment(kctx, &cairnv1.DeleteDeploymentRequest{ProjectId: "acme", SiteId: "web", DeploymentId: d2.GetDeployment().GetId()}); err != nil {
		t.Fatal(err)
	}
	list, err := in.sites().ListDeployments(kctx, &cairnv1.ListDeploymentsRequest{ProjectId: "acme", SiteId: "web"})
	if err != nil || len(list.GetDeployments()) != 1 || !list.GetDeployments()[0].GetActive() {
		t.Fatalf("deployments after delete: %v %v", list, err)
	}

	// Malicious archives are refused with the reason, and nothing changes.
	res, body = in.httpDo(t, "POST", "/v1/sites/acme/web/deployments", key.GetSecret(), tarGz(t, map[string]string{"../evil.html": "x"}), nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "evil") {
		t.Fatalf("path traversal: %d %s", res.StatusCode, body)
	}
	res, body = in.httpDo(t, "POST", "/v1/sites/acme/web/deployments", key.GetSecret(), []byte("plain text"), nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("not an archive: %d %s", res.StatusCode, body)
	}
	res, body = in.httpDo(t, "POST", "/v1/sites/acme/web/deployments", "", tarGz(t, v1), nil)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous deploy: %d %s", res.StatusCode, body)
	}
	// The refused archive is listed as failed, with its reason; it never serves.
	list, err = in.sites().ListDeployments(kctx, &cairnv1.ListDeploymentsRequest{ProjectId: "acme", SiteId: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var failed []*cairnv1.Deployment
	for _, d := range list.GetDeployments() {
		if d.GetStatus() == eventsv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			failed = append(failed, d)
		}
	}
	// Two refused uploads (traversal, not an archive) and the one ready deployment.
	if len(failed) != 2 || !strings.Contains(failed[0].GetFailure(), "evil") || len(list.GetDeployments()) != 3 {
		t.Fatalf("want the refused uploads listed as failed with their reasons: %v", list)
	}
	if res, _ := in.httpDo(t, "GET", "/_previews/acme/web/"+failed[0].GetId()+"/", "", nil, nil); res.StatusCode != 404 {
		t.Fatalf("a failed deployment served: %d", res.StatusCode)
	}
	_, err = in.sites().ActivateDeployment(kctx, &cairnv1.ActivateDeploymentRequest{ProjectId: "acme", SiteId: "web", DeploymentId: failed[0].GetId()})
	wantCode(t, err, connect.CodeFailedPrecondition)
}

// TestSiteCustomDomains: a custom domain is held by one site instance-wide,
// serves that site's production deployment once proven, and is free again
// once dropped; the next holder needs its own proof.
func TestSiteCustomDomains(t *testing.T) {
	z := startDNS(t)
	in := domainInstance(t, t.TempDir(), z)
	op, _ := as(context.Background(), testAdminKey)
	verify := func(project string) {
		t.Helper()
		s, err := in.sites().GetSite(op, &cairnv1.GetSiteRequest{ProjectId: project, SiteId: "web"})
		if err != nil {
			t.Fatal(err)
		}
		d := siteDomain(s.GetSite(), "www.shop.test")
		z.set(d.GetTxtRecordName(), d.GetTxtRecordValue())
		if _, err := in.sites().VerifySiteDomain(op, &cairnv1.VerifySiteDomainRequest{ProjectId: project, SiteId: "web", Domain: "www.shop.test"}); err != nil {
			t.Fatalf("verify for %s: %v", project, err)
		}
	}
	for _, p := range []string{"a", "b"} {
		if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "a", SiteId: "web", Name: "A",
		Settings: &eventsv1.SiteSettings{Domains: []string{"www.shop.test"}}}); err != nil {
		t.Fatal(err)
	}
	if res, body := in.httpDo(t, "POST", "/v1/sites/a/web/deployments?activate=true", testAdminKey, tarGz(t, map[string]string{"index.html": "site A"}), nil); res.StatusCode != 201 {
		t.Fatalf("deploy A: %d %s", res.StatusCode, body)
	}
	verify("a")
	if res, page := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "www.shop.test"}); res.StatusCode != 200 || page != "site A" {
		t.Fatalf("custom domain: %d %q", res.StatusCode, page)
	}
	// Project b cannot take the domain while a's site lists it.
	_, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "b", SiteId: "web", Name: "B",
		Settings: &eventsv1.SiteSettings{Domains: []string{"www.shop.test"}}})
	wantCode(t, err, connect.CodeAlreadyExists)
	if _, err := in.sites().GetSite(op, &cairnv1.GetSiteRequest{ProjectId: "b", SiteId: "web"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("the refused site was created: %v", err)
	}
	_, err = in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "b", SiteId: "web", Name: "B",
		Settings: &eventsv1.SiteSettings{Domains: []string{"Bad_Domain"}}})
	wantCode(t, err, connect.CodeInvalidArgument)
	// a drops it; b takes it and serves it.
	if _, err := in.sites().UpdateSite(op, &cairnv1.UpdateSiteRequest{ProjectId: "a", SiteId: "web", Settings: &eventsv1.SiteSettings{}}); err != nil {
		t.Fatal(err)
	}
	if res, _ := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "www.shop.test"}); res.StatusCode == 200 {
		t.Fatal("a dropped domain still serves")
	}
	if _, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "b", SiteId: "web", Name: "B",
		Settings: &eventsv1.SiteSettings{Domains: []string{"www.shop.test"}}}); err != nil {
		t.Fatal(err)
	}
	if res, body := in.httpDo(t, "POST", "/v1/sites/b/web/deployments?activate=true", testAdminKey, tarGz(t, map[string]string{"index.html": "site B"}), nil); res.StatusCode != 201 {
		t.Fatalf("deploy B: %d %s", res.StatusCode, body)
	}
	// a's proof does not carry over to b: b proves it too.
	if _, page := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "www.shop.test"}); page == "site B" {
		t.Fatal("b's unproven domain serves")
	}
	verify("b")
	if _, page := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "www.shop.test"}); page != "site B" {
		t.Fatalf("custom domain after the move: %q", page)
	}
	// Deleting b's site frees the domain again.
	if _, err := in.sites().DeleteSite(op, &cairnv1.DeleteSiteRequest{ProjectId: "b", SiteId: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.sites().UpdateSite(op, &cairnv1.UpdateSiteRequest{ProjectId: "a", SiteId: "web",
		Settings: &eventsv1.SiteSettings{Domains: []string{"www.shop.test"}}}); err != nil {
		t.Fatalf("reclaim after delete: %v", err)
	}
}

// TestSitesCLI runs the real CLI in-process: deploy uploads only what
// changed, and rollback returns to the previous deployment.
func TestSitesCLI(t *testing.T) {
	in := startInstance(t, t.TempDir())
	env := map[string]string{"CAIRN_ADMIN_KEY": testAdminKey, "CAIRN_URL": in.url}
	cli := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, io.Discard, func(k string) string { return env[k] }); err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	cli("projects", "create", "--id", "cli", "--name", "CLI")
	cli("sites", "create", "--project", "cli", "--site", "web")
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("index.html", "one")
	write("assets/app.js", "js")
	if out := cli("sites", "deploy", dir, "--project", "cli", "--site", "web", "--activate", "-o", "table"); !strings.Contains(out, "2 files, 2 to upload") || !strings.Contains(out, "preview:") {
		t.Fatalf("first deploy: %s", out)
	}
	write("index.html", "two")
	if out := cli("sites", "deploy", dir, "--project", "cli", "--site", "web", "--activate", "-o", "table"); !strings.Contains(out, "2 files, 1 to upload") {
		t.Fatalf("redeploy did not upload only the changed file: %s", out)
	}
	if _, page := in.httpDo(t, "GET", "/_sites/cli/web/", "", nil, nil); page != "two" {
		t.Fatalf("after redeploy: %q", page)
	}
	cli("sites", "rollback", "--project", "cli", "--site", "web")
	if _, page := in.httpDo(t, "GET", "/_sites/cli/web/", "", nil, nil); page != "one" {
		t.Fatalf("after rollback: %q", page)
	}
	if out := cli("sites", "list", "--project", "cli"); !strings.Contains(out, "web") {
		t.Fatalf("list: %s", out)
	}
}
