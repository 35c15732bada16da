package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/api/hosts"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/site"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// Custom domains serve a site only after their owner proves control with a
// DNS TXT record _cairn-challenge.<domain> holding a value derived from the
// master key for (project, site, domain): nothing secret is stored, every
// node derives the same value, and a value proves one domain for one site.

// dnsLookupTimeout bounds one TXT lookup of VerifySiteDomain.
const dnsLookupTimeout = 5 * time.Second

// tlsAskPath is what Caddy's on_demand_tls "ask" calls before it obtains a
// certificate for a host: 200 when Cairn serves the host, else 404.
const tlsAskPath = "/v1/tls/ask"

// newResolver returns the resolver for TXT challenges: addr ("host:port")
// when set, else the system's.
func newResolver(addr string) (*net.Resolver, error) {
	if addr == "" {
		return net.DefaultResolver, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("api: DNS resolver %q: want host:port: %w", addr, err)
	}
	var d net.Dialer
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}, nil
}

// reservedHosts are the host names no custom domain may take.
func (s *Server) reservedHosts() site.Reserved {
	return site.Reserved{SitesDomain: s.hosts.SitesDomain(), APIHost: s.hosts.APIHost()}
}

// domainChallenge is the TXT value that proves control of domain for a
// project's site.
func (s *Server) domainChallenge(project, siteID, d string) string {
	k := hmac.New(sha256.New, s.masterKey)
	k.Write([]byte("cairn domain challenge v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(project + "\x00" + siteID + "\x00" + d))
	return "cairn-verify=" + hex.EncodeToString(m.Sum(nil))
}

// siteDomains is what the site's owner sees of its custom domains: the
// record to create and whether it was proven.
func (s *Server) siteDomains(st *eventsv1.Site) []*cairnv1.SiteDomain {
	var out []*cairnv1.SiteDomain
	for _, d := range st.GetSettings().GetDomains() {
		sd := &cairnv1.SiteDomain{Name: d, TxtRecordName: site.ChallengePrefix + d,
			TxtRecordValue: s.domainChallenge(st.GetProjectId(), st.GetId(), d), Status: cairnv1.SiteDomainStatus_SITE_DOMAIN_STATUS_PENDING}
		if v, ok := site.Verified(st, d); ok {
			sd.Status, sd.VerifiedAt = cairnv1.SiteDomainStatus_SITE_DOMAIN_STATUS_VERIFIED, v.GetVerifiedAt()
		}
		out = append(out, sd)
	}
	return out
}

// customDomainSite is the one decision whether host, as a custom domain,
// serves a site: the domain's claim names the site, the site still lists
// it, and its owner proved control. A claim left by a deleted site, or an
// unproven one, serves nothing.
func (s *Server) customDomainSite(host string) (*eventsv1.Site, bool) {
	if !site.ValidDomain(host) || site.CheckDomain("host", host, s.reservedHosts()) != nil {
		return nil, false
	}
	c, err := s.reads.DomainClaim(host)
	if err != nil {
		return nil, false
	}
	st, err := s.reads.Site(c.GetProjectId(), c.GetSiteId())
	if err != nil || !site.Serves(st, host) {
		return nil, false
	}
	return st, true
}

// lookupTXT returns the TXT values at name; none when the name does not
// exist.
func (s *Server) lookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	// Rooted: the resolver's search list must not be tried.
	rs, err := s.resolver.LookupTXT(ctx, name+".")
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
		return nil, nil
	}
	return rs, err
}

func (h *sitesHandler) VerifySiteDomain(ctx context.Context, req *cairnv1.VerifySiteDomainRequest) (*cairnv1.VerifySiteDomainResponse, error) {
	d := site.NormalizeDomain(req.GetDomain())
	if err := site.CheckDomain("domain", d, h.reservedHosts()); err != nil {
		return nil, err
	}
	cur, err := h.reads.Site(req.GetProjectId(), req.GetSiteId())
	if err != nil {
		return nil, notFound(err, "site")
	}
	if !slices.Contains(cur.GetSettings().GetDomains(), d) {
		return nil, &domain.Error{Kind: domain.KindFailedPrecondition, Field: "domain",
			Message: d + " is not one of the site's settings.domains: add it there first"}
	}
	st := cur
	if _, ok := site.Verified(cur, d); !ok {
		name := site.ChallengePrefix + d
		records, err := h.lookupTXT(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			h.logger.InfoContext(ctx, "custom domain TXT lookup failed", "domain", d, "err", err)
			return nil, domain.Errorf(domain.KindFailedPrecondition, "DNS TXT record %s: the lookup failed (%v): check the domain's DNS, then try again", name, err)
		}
		want := h.domainChallenge(req.GetProjectId(), req.GetSiteId(), d)
		if st, _, err = h.writeSite(ctx, req.GetProjectId(), req.GetSiteId(), func(site.State) site.Command {
			return site.VerifyDomain{Domain: d, RecordName: name, Want: want, Records: records, Now: h.log.Now()}
		}); err != nil {
			return nil, err
		}
	}
	out := h.siteOut(st)
	res := &cairnv1.VerifySiteDomainResponse{Site: out}
	for _, sd := range out.GetDomains() {
		if sd.GetName() == d {
			res.Domain = sd
		}
	}
	return res, nil
}

// tlsAsk answers Caddy's on-demand TLS question "may I get a certificate
// for this host?": yes (200) for a host under the sites domain that names
// an existing site or deployment, and for a custom domain that serves a
// site; otherwise 404 with nothing more, so the endpoint tells no one what
// else exists.
func (s *Server) tlsAsk(w http.ResponseWriter, r *http.Request) {
	if s.tlsAllowed(site.NormalizeDomain(r.URL.Query().Get("domain"))) {
		w.WriteHeader(http.StatusOK)
		return
	}
	http.NotFound(w, r)
}

func (s *Server) tlsAllowed(host string) bool {
	if len(host) > site.MaxDomainLen {
		return false
	}
	switch t := s.hosts.Classify(host); t.Kind {
	case hosts.Site:
		_, err := s.reads.Site(t.Project, t.Site)
		return err == nil
	case hosts.Preview:
		st, err := s.reads.Site(t.Project, t.Site)
		return err == nil && slices.Contains(st.GetDeploymentIds(), t.Deployment)
	case hosts.Function:
		_, err := s.loadFunction(t.Project, t.Function)
		return err == nil
	case hosts.Custom:
		_, ok := s.customDomainSite(host)
		return ok
	}
	return false
}
