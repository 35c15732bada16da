package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"github.com/miekg/dns"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// txtZone is a real DNS server on loopback (UDP, a random port) answering
// TXT queries from records the test sets; any other name is NXDOMAIN.
type txtZone struct {
	addr    string
	mu      sync.Mutex
	records map[string][]string // lower-case FQDN → TXT values
}

func startDNS(t *testing.T) *txtZone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &txtZone{addr: pc.LocalAddr().String(), records: map[string][]string{}}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

// set replaces the TXT values at name (no values: the name is gone).
func (z *txtZone) set(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(values) == 0 {
		delete(z.records, dns.Fqdn(strings.ToLower(name)))
		return
	}
	z.records[dns.Fqdn(strings.ToLower(name))] = values
}

func (z *txtZone) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		z.mu.Lock()
		values, ok := z.records[strings.ToLower(q.Name)]
		z.mu.Unlock()
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeTXT:
			for _, v := range values {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{v}})
			}
		}
	}
	_ = w.WriteMsg(m)
}

// domainInstance runs a server whose API host is api.cairn.test and whose
// sites live under sites.test, resolving TXT challenges through z.
func domainInstance(t *testing.T, dir string, z *txtZone) *instance {
	return startInstance(t, dir, "--public-url", "http://api.cairn.test", "--sites-domain", "sites.test", "--dns-resolver", z.addr)
}

// tlsAsk is Caddy's on-demand TLS question for one host.
func (in *instance) tlsAsk(t *testing.T, host string) int {
	t.Helper()
	res, _ := in.httpDo(t, "GET", "/v1/tls/ask?domain="+url.QueryEscape(host), "", nil, nil)
	return res.StatusCode
}

func siteDomain(s *cairnv1.Site, name string) *cairnv1.SiteDomain {
	for _, d := range s.GetDomains() {
		if d.GetName() == name {
			return d
		}
	}
	return nil
}

// TestCustomDomainValidation: a custom domain can be no host the instance
// itself answers for, nor an address or a name that is not a domain; each
// refusal is invalid_argument naming the field, the domain and why.
func TestCustomDomainValidation(t *testing.T) {
	z := startDNS(t)
	in := domainInstance(t, t.TempDir(), z)
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	// A key holding only sites.write: what the attack used.
	key, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "acme", Name: "deployer", Scopes: &cairnv1.Scopes{Scopes: []string{"sites.write"}}})
	if err != nil {
		t.Fatal(err)
	}
	kctx, _ := as(ctx, key.GetSecret())
	long := strings.Repeat("abcdefghij.", 27) + "test" // 301 characters
	for d, why := range map[string]string{
		"api.cairn.test":       "API's own host",
		"API.Cairn.Test.":      "API's own host",
		"sites.test":           "under the sites domain",
		"web.acme.sites.test":  "under the sites domain",
		"127.0.0.1":            "IP address",
		"[::1]":                "IP address",
		"2001:db8::1":          "IP address",
		"localhost":            "loopback",
		"admin.localhost":      "loopback",
		"intranet":             "single label",
		"a..shop.test":         "label",
		"-bad.shop.test":       "label",
		"bad_label.shop.test":  "label",
		"space here.shop.test": "label",
		"0x7f.1":               "numeric label",
		long:                   "at most 253",
	} {
		_, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "web", Name: "Web",
			Settings: &eventsv1.SiteSettings{Domains: []string{d}}})
		wantCode(t, err, connect.CodeInvalidArgument)
		if msg := err.Error(); !strings.Contains(msg, "settings.domains") || !strings.Contains(msg, why) {
			t.Errorf("CreateSite with %q: want settings.domains and %q in %q", d, why, msg)
		}
		if len(d) < 64 && !strings.Contains(err.Error(), strings.TrimSuffix(strings.ToLower(d), ".")) {
			t.Errorf("CreateSite with %q: the error does not name the domain: %v", d, err)
		}
	}
	if _, err := in.sites().GetSite(op, &cairnv1.GetSiteRequest{ProjectId: "acme", SiteId: "web"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refused site was created: %v", err)
	}
	// Upper case is normalised; the answer shows the record to create.
	res, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "web", Name: "Web",
		Settings: &eventsv1.SiteSettings{Domains: []string{"WWW.Shop.Test"}}})
	if err != nil {
		t.Fatal(err)
	}
	sd := siteDomain(res.GetSite(), "www.shop.test")
	if got := res.GetSite().GetSettings().GetDomains(); len(got) != 1 || got[0] != "www.shop.test" || sd == nil ||
		sd.GetTxtRecordName() != "_cairn-challenge.www.shop.test" || !strings.HasPrefix(sd.GetTxtRecordValue(), "cairn-verify=") ||
		sd.GetStatus() != cairnv1.SiteDomainStatus_SITE_DOMAIN_STATUS_PENDING || sd.GetVerifiedAt() != nil {
		t.Fatalf("normalised domain and its challenge: %v", res.GetSite())
	}
	// UpdateSite refuses the same.
	_, err = in.sites().UpdateSite(kctx, &cairnv1.UpdateSiteRequest{ProjectId: "acme", SiteId: "web",
		Settings: &eventsv1.SiteSettings{Domains: []string{"www.shop.test", "api.cairn.test"}}})
	wantCode(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "settings.domains") || !strings.Contains(err.Error(), "api.cairn.test") {
		t.Fatalf("UpdateSite to the API host: %v", err)
	}
	// VerifySiteDomain with a malformed or foreign name.
	for _, d := range []string{"not a domain", long, "127.0.0.1"} {
		_, err := in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: d})
		wantCode(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), "domain") {
			t.Errorf("VerifySiteDomain(%q): %v", d, err)
		}
	}
	_, err = in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: "other.shop.test"})
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "nope", Domain: "www.shop.test"})
	wantCode(t, err, connect.CodeNotFound)
}

// TestCustomDomainVerifyAndServe: a listed domain serves nothing until the
// TXT record proves control; removing it drops the proof; the on-demand
// TLS ask endpoint agrees with serving; the read models rebuild equal.
func TestCustomDomainVerifyAndServe(t *testing.T) {
	z := startDNS(t)
	dir := t.TempDir()
	in := domainInstance(t, dir, z)
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
	const domain, record = "www.shop.test", "_cairn-challenge.www.shop.test"
	if _, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "web", Name: "Web",
		Settings: &eventsv1.SiteSettings{Domains: []string{domain}}}); err != nil {
		t.Fatal(err)
	}
	res, body := in.httpDo(t, "POST", "/v1/sites/acme/web/deployments?activate=true", key.GetSecret(), tarGz(t, map[string]string{"index.html": "site A"}), nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("deploy: %d %s", res.StatusCode, body)
	}
	served := func() bool {
		t.Helper()
		res, page := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": domain})
		return res.StatusCode == 200 && page == "site A"
	}
	// Unproven: the request falls through to the API host, not the site.
	if served() {
		t.Fatal("an unverified domain serves the site")
	}
	if code := in.tlsAsk(t, domain); code != http.StatusNotFound {
		t.Fatalf("TLS ask for an unverified domain: %d", code)
	}

	// No record at all.
	_, err = in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: domain})
	wantCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), record) || !strings.Contains(err.Error(), "no TXT record") {
		t.Fatalf("missing record: %v", err)
	}
	// A wrong value: the error says what it found.
	z.set(record, "cairn-verify=0000", "v=spf1 -all")
	_, err = in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: domain})
	wantCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), record) || !strings.Contains(err.Error(), "cairn-verify=0000") {
		t.Fatalf("wrong record: %v", err)
	}
	if served() {
		t.Fatal("a failed verification serves the site")
	}
	// Another site's value proves nothing for this one.
	got, err := in.sites().GetSite(kctx, &cairnv1.GetSiteRequest{ProjectId: "acme", SiteId: "web"})
	if err != nil {
		t.Fatal(err)
	}
	want := siteDomain(got.GetSite(), domain).GetTxtRecordValue()
	if _, err := in.sites().CreateSite(kctx, &cairnv1.CreateSiteRequest{ProjectId: "acme", SiteId: "blog", Name: "Blog",
		Settings: &eventsv1.SiteSettings{Domains: []string{"blog.shop.test"}}}); err != nil {
		t.Fatal(err)
	}
	blog, err := in.sites().GetSite(kctx, &cairnv1.GetSiteRequest{ProjectId: "acme", SiteId: "blog"})
	if err != nil {
		t.Fatal(err)
	}
	if v := siteDomain(blog.GetSite(), "blog.shop.test").GetTxtRecordValue(); v == want || v == "" {
		t.Fatalf("two sites' challenges are equal: %q", v)
	}

	// The right value, among others, proves control. The domain name's
	// case does not matter.
	z.set(record, "v=spf1 -all", want)
	vr, err := in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: "WWW.shop.test"})
	if err != nil {
		t.Fatal(err)
	}
	if vr.GetDomain().GetStatus() != cairnv1.SiteDomainStatus_SITE_DOMAIN_STATUS_VERIFIED || vr.GetDomain().GetVerifiedAt() == nil ||
		siteDomain(vr.GetSite(), domain).GetStatus() != cairnv1.SiteDomainStatus_SITE_DOMAIN_STATUS_VERIFIED {
		t.Fatalf("verify answer: %v", vr)
	}
	if !served() {
		t.Fatal("a verified domain does not serve the site")
	}
	if res, page := in.httpDo(t, "GET", "/", "", nil, map[string]string{"Host": "WWW.Shop.Test:443"}); res.StatusCode != 200 || page != "site A" {
		t.Fatalf("host with case and port: %d %q", res.StatusCode, page)
	}
	// Verifying again needs no lookup and writes nothing.
	z.set(record)
	if _, err := in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: domain}); err != nil {
		t.Fatalf("verify again: %v", err)
	}
	got, err = in.sites().GetSite(kctx, &cairnv1.GetSiteRequest{ProjectId: "acme", SiteId: "web"})
	if err != nil || siteDomain(got.GetSite(), domain).GetStatus() != cairnv1.SiteDomainStatus_SITE_DOMAIN_STATUS_VERIFIED {
		t.Fatalf("GetSite after verification: %v %v", got, err)
	}

	// The TLS ask endpoint: yes for what is served, 404 for anything else.
	deps, err := in.sites().ListDeployments(kctx, &cairnv1.ListDeploymentsRequest{ProjectId: "acme", SiteId: "web"})
	if err != nil || len(deps.GetDeployments()) != 1 {
		t.Fatalf("deployments: %v %v", deps, err)
	}
	for host, code := range map[string]int{
		domain:                 200,
		"WWW.SHOP.TEST":        200,
		"web.acme.sites.test":  200,
		"blog.acme.sites.test": 200, // a site exists, nothing deployed yet: its certificate may come first
		deps.GetDeployments()[0].GetId() + ".web.acme.sites.test": 200,
		"nope.web.acme.sites.test":                                404,
		"nope.acme.sites.test":                                    404,
		"web.other.sites.test":                                    404,
		"acme.sites.test":                                         404,
		"sites.test":                                              404,
		"blog.shop.test":                                          404, // listed, never proven
		"api.cairn.test":                                          404, // the API host has its own certificate
		"unknown.example":                                         404,
		"127.0.0.1":                                               404,
		"":                                                        404,
	} {
		if got := in.tlsAsk(t, host); got != code {
			t.Errorf("TLS ask for %q: %d, want %d", host, got, code)
		}
	}

	// Removing the domain un-verifies it: re-adding it needs a new proof.
	if _, err := in.sites().UpdateSite(kctx, &cairnv1.UpdateSiteRequest{ProjectId: "acme", SiteId: "web", Settings: &eventsv1.SiteSettings{}}); err != nil {
		t.Fatal(err)
	}
	if served() || in.tlsAsk(t, domain) != 404 {
		t.Fatal("a removed domain still serves")
	}
	up, err := in.sites().UpdateSite(kctx, &cairnv1.UpdateSiteRequest{ProjectId: "acme", SiteId: "web", Settings: &eventsv1.SiteSettings{Domains: []string{domain}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := siteDomain(up.GetSite(), domain); d.GetStatus() != cairnv1.SiteDomainStatus_SITE_DOMAIN_STATUS_PENDING || d.GetTxtRecordValue() != want {
		t.Fatalf("re-added domain: %v", d)
	}
	if served() {
		t.Fatal("a re-added domain serves without a new proof")
	}
	_, err = in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: domain})
	wantCode(t, err, connect.CodeFailedPrecondition)
	z.set(record, want)
	if _, err := in.sites().VerifySiteDomain(kctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "web", Domain: domain}); err != nil {
		t.Fatal(err)
	}
	if !served() {
		t.Fatal("a re-verified domain does not serve")
	}
	// A key that may only read sites cannot verify.
	rkey, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "acme", Name: "reader", Scopes: &cairnv1.Scopes{Scopes: []string{"sites.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, _ := as(ctx, rkey.GetSecret())
	_, err = in.sites().VerifySiteDomain(rctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "acme", SiteId: "blog", Domain: "blog.shop.test"})
	wantCode(t, err, connect.CodePermissionDenied)

	// The verification is in the log: after a restart it still serves, and
	// the read models equal a fresh rebuild.
	in.stop()
	n := openStopped(t, dir)
	checkRebuild(t, n, "acme", "custom domains")
	checkRebuild(t, n, "", "custom domains")
	n.close()
	in = domainInstance(t, dir, z)
	if !served() {
		t.Fatal("a verified domain does not serve after a restart")
	}
}
