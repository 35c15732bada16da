package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestSiteHeaderRulesRefused: header rules that would reach beyond the
// site's own origin, or are not headers at all, are refused with the field
// and the header named, and nothing is stored.
func TestSiteHeaderRulesRefused(t *testing.T) {
	in := startInstance(t, t.TempDir())
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "shop", Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	kept := &eventsv1.SiteSettings{Headers: []*eventsv1.HeaderRule{{Pattern: "/*", Name: "Set-Cookie", Value: "theme=dark; Path=/"}}}
	if _, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "shop", SiteId: "web", Name: "Web", Settings: kept}); err != nil {
		t.Fatalf("a host-only cookie of the site's own was refused: %v", err)
	}
	rule := func(name, value string) *eventsv1.SiteSettings {
		return &eventsv1.SiteSettings{Headers: []*eventsv1.HeaderRule{{Pattern: "/*", Name: name, Value: value}}}
	}
	for _, c := range []struct {
		name     string
		settings *eventsv1.SiteSettings
		wantMsg  string
	}{
		{"Cairn's session cookie", rule("Set-Cookie", "cairn_session_x=1"), `settings.headers: header "Set-Cookie" may not set a cookie named cairn_`},
		{"service worker scope", rule("Service-Worker-Allowed", "/"), `settings.headers: header "Service-Worker-Allowed" may not widen a service worker's scope`},
		{"cookie for the parent domain", rule("Set-Cookie", "a=1; Domain=localhost"), `settings.headers: header "Set-Cookie" may not set a cookie with a Domain attribute`},
		{"name with CR LF", rule("X-A\r\nSet-Cookie", "x"), `settings.headers: header "X-A\r\nSet-Cookie" is not a valid header name`},
		{"empty name", rule("", "x"), "settings.headers: a header name is empty"},
		{"8 KiB value", rule("X-A", strings.Repeat("v", 8<<10)), `settings.headers: header "X-A": the value is 8192 bytes; at most 4096`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := in.sites().UpdateSite(op, &cairnv1.UpdateSiteRequest{ProjectId: "shop", SiteId: "web", Settings: c.settings})
			wantCode(t, err, connect.CodeInvalidArgument)
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("want %q in %v", c.wantMsg, err)
			}
			got, err := in.sites().GetSite(op, &cairnv1.GetSiteRequest{ProjectId: "shop", SiteId: "web"})
			if err != nil {
				t.Fatal(err)
			}
			if h := got.GetSite().GetSettings().GetHeaders(); len(h) != 1 || h[0].GetValue() != "theme=dark; Path=/" {
				t.Fatalf("the refused settings were stored: %v", h)
			}
		})
	}
	// Creating a site with one is refused the same way, and creates nothing.
	_, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: "shop", SiteId: "web2", Name: "Web2",
		Settings: rule("Strict-Transport-Security", "max-age=63072000; includeSubDomains")})
	wantCode(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(err.Error(), `settings.headers: header "Strict-Transport-Security"`) {
		t.Fatalf("HSTS refusal does not name field and header: %v", err)
	}
	if _, err := in.sites().GetSite(op, &cairnv1.GetSiteRequest{ProjectId: "shop", SiteId: "web2"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("the refused site was created: %v", err)
	}
}

// TestFunctionResponseHeadersStripped: a function's response headers that
// user content may not set are stripped from the HTTP response, the rest is
// served, and each stripping is logged once per response.
func TestFunctionResponseHeadersStripped(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p = "hdr"
	key := newProjectWithKey(t, in, p, "functions.read", "functions.write", "executions.read", "executions.write")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.js": `export default async ({ res }) => res.text('hi', 200, {
  'Set-Cookie': ['cairn_session_p=evil; Domain=localhost', 'ok=1', '__Host-cairn_x=1; Path=/; Secure'],
  'Service-Worker-Allowed': '/',
  'Cairn-Seq': '999999',
  'X-Kept': 'yes',
});
`})
	deployTS(t, in, key, p, "cookies", dir, "--execute", "any")

	for i := range 2 {
		r := callRoute(t, in, http.MethodGet, "/v1/functions/"+p+"/cookies/", key, nil, "")
		if r.status != http.StatusOK || string(r.body) != "hi" {
			t.Fatalf("call %d: %d %s", i, r.status, r.body)
		}
		if got := r.header.Values("Set-Cookie"); !slices.Equal(got, []string{"ok=1"}) {
			t.Fatalf("call %d: Set-Cookie %q, want only ok=1", i, got)
		}
		if v, ok := r.header["Service-Worker-Allowed"]; ok {
			t.Fatalf("call %d: Service-Worker-Allowed served: %q", i, v)
		}
		if r.header.Get("X-Kept") != "yes" || r.header.Get("Cairn-Seq") == "999999" || r.header.Get("Cairn-Execution-Id") == "" {
			t.Fatalf("call %d: headers %v", i, r.header)
		}
	}
	// Two responses: each stripped header logged twice, once per response
	// (the two refused Set-Cookie lines of one response log once). The
	// server logs JSON, as it does to anything but a terminal.
	for _, h := range []string{"set-cookie", "service-worker-allowed", "cairn-seq"} {
		lines := in.logs.lines("function response header stripped", `"project":"`+p+`"`, `"function":"cookies"`, `"header":"`+h+`"`)
		if len(lines) != 2 || !strings.Contains(lines[0], `"level":"WARN"`) {
			t.Errorf("%s: want 2 warnings, logged %q", h, lines)
		}
	}
	if lines := in.logs.lines(`"header":"x-kept"`); len(lines) != 0 {
		t.Errorf("an allowed header was logged: %q", lines)
	}
}
