package site

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func deployment(id string, paths ...string) *eventsv1.Deployment {
	d := &eventsv1.Deployment{Id: id, ProjectId: "p", SiteId: "web"}
	for _, p := range paths {
		d.Files = append(d.Files, &eventsv1.SiteFile{Path: p, Sha256: strings.Repeat("a", 64), Size: 10, ContentType: "text/html"})
		d.TotalSize += 10
	}
	return d
}

// given replays events through Decide itself, as the write path does.
func given(t *testing.T, cmds ...Command) State {
	t.Helper()
	var s State
	for _, c := range cmds {
		evs, err := Decide(s, c)
		if err != nil {
			t.Fatalf("given %T: %v", c, err)
		}
		for _, e := range evs {
			s = Evolve(s, e)
		}
	}
	return s
}

func TestDecide(t *testing.T) {
	create := Create{ID: "web", ProjectID: "p", Name: "Web", Now: t0}
	name := "New"
	cases := []struct {
		name    string
		given   []Command
		when    Command
		wantErr domain.Kind
		wantMsg string // part of the error, when it matters
		check   func(t *testing.T, evs []*eventsv1.Envelope, s State)
	}{
		{name: "create", when: create, check: func(t *testing.T, evs []*eventsv1.Envelope, s State) {
			if s.GetId() != "web" || s.GetSettings() == nil || s.GetActiveDeploymentId() != "" {
				t.Fatalf("bad site %v", s)
			}
		}},
		{name: "create twice", given: []Command{create}, when: create, wantErr: domain.KindAlreadyExists},
		{name: "create bad id", when: Create{ID: "a.b", ProjectID: "p", Name: "x", Now: t0}, wantErr: domain.KindInvalid},
		{name: "create upper-case id (no host could serve it)", when: Create{ID: "Web", ProjectID: "p", Name: "x", Now: t0}, wantErr: domain.KindInvalid},
		{name: "bad redirect status", when: Create{ID: "web", ProjectID: "p", Name: "x", Now: t0,
			Settings: &eventsv1.SiteSettings{Redirects: []*eventsv1.Redirect{{From: "/a", To: "/b", Status: 200}}}}, wantErr: domain.KindInvalid},
		{name: "header injection", when: Create{ID: "web", ProjectID: "p", Name: "x", Now: t0,
			Settings: &eventsv1.SiteSettings{Headers: []*eventsv1.HeaderRule{{Pattern: "/*", Name: "X-A", Value: "a\r\nSet-Cookie: x"}}}}, wantErr: domain.KindInvalid},
		{name: "create with a cookie for the parent domain", when: Create{ID: "web", ProjectID: "p", Name: "x", Now: t0,
			Settings: headerRule("Set-Cookie", "a=1; Domain=example.com")}, wantErr: domain.KindInvalid,
			wantMsg: `settings.headers: header "Set-Cookie" may not set a cookie with a Domain attribute`},
		{name: "update with Cairn's session cookie", given: []Command{create}, when: Update{Settings: headerRule("Set-Cookie", "cairn_session_x=1"), Now: t0},
			wantErr: domain.KindInvalid, wantMsg: `settings.headers: header "Set-Cookie" may not set a cookie named cairn_`},
		{name: "update with Service-Worker-Allowed", given: []Command{create}, when: Update{Settings: headerRule("Service-Worker-Allowed", "/"), Now: t0},
			wantErr: domain.KindInvalid, wantMsg: `settings.headers: header "Service-Worker-Allowed"`},
		{name: "update with HSTS", given: []Command{create}, when: Update{Settings: headerRule("Strict-Transport-Security", "max-age=1; includeSubDomains"), Now: t0},
			wantErr: domain.KindInvalid, wantMsg: `settings.headers: header "Strict-Transport-Security"`},
		{name: "update with an empty header name", given: []Command{create}, when: Update{Settings: headerRule("", "x"), Now: t0},
			wantErr: domain.KindInvalid, wantMsg: "settings.headers: a header name is empty"},
		{name: "update with an 8 KiB value", given: []Command{create}, when: Update{Settings: headerRule("X-A", strings.Repeat("v", 8<<10)), Now: t0},
			wantErr: domain.KindInvalid, wantMsg: `settings.headers: header "X-A": the value is 8192 bytes`},
		{name: "update with an allowed cookie", given: []Command{create}, when: Update{Settings: headerRule("Set-Cookie", "theme=dark; Path=/"), Now: t0},
			check: func(t *testing.T, _ []*eventsv1.Envelope, s State) {
				if h := s.GetSettings().GetHeaders(); len(h) != 1 || h[0].GetValue() != "theme=dark; Path=/" {
					t.Fatalf("rule not stored: %v", h)
				}
			}},
		{name: "rename", given: []Command{create}, when: Update{Name: &name, Now: t0}, check: func(t *testing.T, _ []*eventsv1.Envelope, s State) {
			if s.GetName() != "New" {
				t.Fatalf("not renamed: %v", s)
			}
		}},
		{name: "deploy and activate in one batch", given: []Command{create}, when: Deploy{Deployment: deployment("d1", "index.html"), Activate: true, Now: t0},
			check: func(t *testing.T, evs []*eventsv1.Envelope, s State) {
				if len(evs) != 2 || evs[0].GetDeploymentCreated() == nil || evs[1].GetDeploymentActivated() == nil {
					t.Fatalf("want created+activated, got %v", evs)
				}
				if s.GetActiveDeploymentId() != "d1" || len(s.GetDeploymentIds()) != 1 {
					t.Fatalf("bad site %v", s)
				}
			}},
		{name: "deploy unclean path", given: []Command{create}, when: Deploy{Deployment: deployment("d1", "../etc/passwd"), Now: t0}, wantErr: domain.KindInvalid},
		{name: "deploy absolute path", given: []Command{create}, when: Deploy{Deployment: deployment("d1", "/index.html"), Now: t0}, wantErr: domain.KindInvalid},
		{name: "deploy duplicate path", given: []Command{create}, when: Deploy{Deployment: deployment("d1", "a.html", "a.html"), Now: t0}, wantErr: domain.KindInvalid},
		{name: "deploy wrong total", given: []Command{create}, when: Deploy{Deployment: func() *eventsv1.Deployment {
			d := deployment("d1", "a.html")
			d.TotalSize = 1
			return d
		}(), Now: t0}, wantErr: domain.KindInvalid},
		{name: "deploy empty", given: []Command{create}, when: Deploy{Deployment: deployment("d1"), Now: t0}, wantErr: domain.KindInvalid},
		{name: "deploy to missing site", when: Deploy{Deployment: deployment("d1", "a.html"), Now: t0}, wantErr: domain.KindNotFound},
		{name: "rollback", given: []Command{create, Deploy{Deployment: deployment("d1", "a.html"), Activate: true, Now: t0},
			Deploy{Deployment: deployment("d2", "a.html"), Activate: true, Now: t0}}, when: Activate{DeploymentID: "d1", Now: t0},
			check: func(t *testing.T, evs []*eventsv1.Envelope, s State) {
				a := evs[0].GetDeploymentActivated()
				if s.GetActiveDeploymentId() != "d1" || a.GetPreviousDeploymentId() != "d2" {
					t.Fatalf("rollback: %v %v", s, a)
				}
			}},
		{name: "activate unknown", given: []Command{create}, when: Activate{DeploymentID: "nope", Now: t0}, wantErr: domain.KindNotFound},
		{name: "delete active deployment refused", given: []Command{create, Deploy{Deployment: deployment("d1", "a.html"), Activate: true, Now: t0}},
			when: DeleteDeployment{Deployment: deployment("d1", "a.html"), Now: t0}, wantErr: domain.KindFailedPrecondition},
		{name: "delete old deployment", given: []Command{create, Deploy{Deployment: deployment("d1", "a.html"), Now: t0},
			Deploy{Deployment: deployment("d2", "a.html"), Activate: true, Now: t0}},
			when: DeleteDeployment{Deployment: deployment("d1", "a.html"), Now: t0}, check: func(t *testing.T, _ []*eventsv1.Envelope, s State) {
				if len(s.GetDeploymentIds()) != 1 || s.GetDeploymentIds()[0] != "d2" {
					t.Fatalf("bad ids %v", s.GetDeploymentIds())
				}
			}},
		{name: "failed upload is recorded, not activatable", given: []Command{create}, when: Fail{DeploymentID: "d9", Reason: "path traversal", Now: t0},
			check: func(t *testing.T, evs []*eventsv1.Envelope, s State) {
				d := evs[0].GetDeploymentFailed().GetDeployment()
				if d.GetStatus() != eventsv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || d.GetFailure() == "" || len(s.GetDeploymentIds()) != 0 {
					t.Fatalf("failed deployment: %v, site %v", d, s)
				}
				if _, err := Decide(s, Activate{DeploymentID: "d9", Now: t0}); domain.KindOf(err) != domain.KindNotFound {
					t.Fatalf("a failed deployment was activatable: %v", err)
				}
			}},
		{name: "delete site", given: []Command{create}, when: Delete{Now: t0}, check: func(t *testing.T, evs []*eventsv1.Envelope, s State) {
			if s != nil || evs[0].GetSiteDeleted().GetSite().GetId() != "web" {
				t.Fatalf("delete must carry the last state and end the site: %v", evs)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := given(t, c.given...)
			evs, err := Decide(s, c.when)
			if c.check == nil {
				if err == nil || domain.KindOf(err) != c.wantErr || !strings.Contains(err.Error(), c.wantMsg) {
					t.Fatalf("want %v %q, got %v", c.wantErr, c.wantMsg, err)
				}
				if evs != nil {
					t.Fatalf("a refused command decided events: %v", evs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				s = Evolve(s, e)
			}
			c.check(t, evs, s)
		})
	}
}

func headerRule(name, value string) *eventsv1.SiteSettings {
	return &eventsv1.SiteSettings{Headers: []*eventsv1.HeaderRule{{Pattern: "/*", Name: name, Value: value}}}
}

func TestCleanPath(t *testing.T) {
	for p, want := range map[string]bool{"index.html": true, "a/b.js": true, "": false, ".": false, "..": false,
		"../x": false, "a/../b": false, "/x": false, "a//b": false, "a\\b": false, "a/": false} {
		if CleanPath(p) != want {
			t.Errorf("CleanPath(%q) = %v", p, !want)
		}
	}
}

func TestDomainClaims(t *testing.T) {
	claim := Claim{Domain: "www.example.com", ProjectID: "a", SiteID: "web"}
	evs, err := DecideClaim(nil, claim)
	if err != nil || len(evs) != 1 {
		t.Fatalf("first claim: %v %v", evs, err)
	}
	held := EvolveClaim(nil, evs[0])
	if evs, err := DecideClaim(held, claim); err != nil || len(evs) != 0 {
		t.Fatalf("re-claim by the holder must be a no-op: %v %v", evs, err)
	}
	other := Claim{Domain: "www.example.com", ProjectID: "b", SiteID: "web", HolderUsesIt: true}
	if _, err := DecideClaim(held, other); domain.KindOf(err) != domain.KindAlreadyExists {
		t.Fatalf("another project took a used domain: %v", err)
	}
	other.HolderUsesIt = false
	if evs, err := DecideClaim(held, other); err != nil || len(evs) != 1 {
		t.Fatalf("a stale claim must be taken over: %v %v", evs, err)
	}
	if evs, _ := DecideClaim(held, Release{Domain: "www.example.com", ProjectID: "b", SiteID: "web"}); len(evs) != 0 {
		t.Fatal("a non-holder released the domain")
	}
	evs, _ = DecideClaim(held, Release{Domain: "www.example.com", ProjectID: "a", SiteID: "web"})
	if len(evs) != 1 || EvolveClaim(held, evs[0]) != nil {
		t.Fatalf("release: %v", evs)
	}
	for d, want := range map[string]bool{"www.example.com": true, "example": false, "Ex.com": false, "-a.com": false, "a..com": false, "a_b.com": false} {
		if ValidDomain(d) != want {
			t.Errorf("ValidDomain(%q) = %v", d, !want)
		}
	}
}
