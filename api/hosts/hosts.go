// Package hosts tells where a request goes by its Host — the API, a site's
// production or preview host, a function's host, or a custom domain — and
// builds those hosts' URLs. User content (sites, function responses) has
// hosts of its own under the sites domain, never the API's: a browser then
// keeps a project's pages away from the API's cookies and from every other
// project's pages.
//
//	<site>.<project>.<sites domain>               a site's production deployment
//	<deployment>.<site>.<project>.<sites domain>  one deployment (preview)
//	<function>.<project>.fn.<sites domain>        a function's HTTP endpoint
//
// "fn" is therefore no project's id (project.ReservedID).
package hosts

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/cairn-dev/cairn/domain/project"
)

// Kind is what a host serves.
type Kind int

const (
	// API is the API's own host, and any host that is not user content
	// (an IP address, a name the instance does not know).
	API Kind = iota
	// Site is a site's production deployment.
	Site
	// Preview is one deployment of a site.
	Preview
	// Function is a function's HTTP endpoint.
	Function
	// Custom is a name outside the sites domain that may be a site's custom
	// domain; the caller looks it up, and serves the API if it is not.
	Custom
	// Unknown is a name under the sites domain that names nothing: never
	// the API.
	Unknown
)

// functionLabel marks a function's host; no project has it as its id.
const functionLabel = project.ReservedID

// Target is where a request goes.
type Target struct {
	Kind                                Kind
	Project, Site, Deployment, Function string
	// Host is the request's host name, lower case, without port.
	Host string
}

// UserContent reports whether t serves a project's own content.
func (t Target) UserContent() bool { return t.Kind == Site || t.Kind == Preview || t.Kind == Function }

// Scheme maps hosts of one instance.
type Scheme struct {
	apiHost     string
	sitesDomain string
	// scheme and port of the URLs built for user-content hosts: those of
	// the public URL.
	scheme, port string
}

// New returns the scheme of an instance reached at publicURL whose user
// content lives under sitesDomain. Returns an error when the API's host
// would be user content.
func New(publicURL, sitesDomain string) (*Scheme, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("public URL %q: want http(s)://host[:port]", publicURL)
	}
	s := &Scheme{apiHost: strings.ToLower(u.Hostname()), sitesDomain: strings.ToLower(strings.Trim(sitesDomain, ".")),
		scheme: u.Scheme, port: u.Port()}
	if s.sitesDomain != "" && strings.HasSuffix(s.apiHost, "."+s.sitesDomain) {
		return nil, errors.New("the public URL's host " + s.apiHost + " is under the sites domain " + s.sitesDomain +
			": user content would share the API's host; choose a sites domain that is not a parent of the API's host")
	}
	return s, nil
}

// APIHost is the host name of the public URL.
func (s *Scheme) APIHost() string { return s.apiHost }

// SitesDomain is the domain user content is served under.
func (s *Scheme) SitesDomain() string { return s.sitesDomain }

// HostOnly returns a Host header's name, lower case, without port.
func HostOnly(hostport string) string {
	h := strings.ToLower(hostport)
	if name, _, err := net.SplitHostPort(h); err == nil {
		return strings.Trim(name, "[]")
	}
	return strings.Trim(h, "[]")
}

// Classify tells where a request for host (a Host header) goes.
func (s *Scheme) Classify(hostport string) Target {
	host := HostOnly(hostport)
	t := Target{Kind: API, Host: host}
	if host == s.apiHost || host == "" || net.ParseIP(host) != nil {
		return t
	}
	if labels, ok := strings.CutSuffix(host, "."+s.sitesDomain); ok && s.sitesDomain != "" {
		parts := strings.Split(labels, ".")
		switch {
		case len(parts) == 2:
			t.Kind, t.Site, t.Project = Site, parts[0], parts[1]
		case len(parts) == 3 && parts[2] == functionLabel:
			t.Kind, t.Function, t.Project = Function, parts[0], parts[1]
		case len(parts) == 3:
			t.Kind, t.Deployment, t.Site, t.Project = Preview, parts[0], parts[1], parts[2]
		default:
			t.Kind = Unknown
		}
		return t
	}
	if !strings.Contains(host, ".") {
		return t // a single label (e.g. "localhost" when it is not the sites domain): the API
	}
	t.Kind = Custom
	return t
}

func (s *Scheme) url(labels ...string) string {
	h := strings.Join(labels, ".")
	if s.sitesDomain != "" {
		h += "." + s.sitesDomain
	}
	if s.port != "" {
		h += ":" + s.port
	}
	return s.scheme + "://" + strings.ToLower(h) + "/"
}

// SiteURL is where site serves its production deployment.
func (s *Scheme) SiteURL(project, site string) string { return s.url(site, project) }

// PreviewURL is where one deployment of site is served.
func (s *Scheme) PreviewURL(project, site, deployment string) string {
	return s.url(deployment, site, project)
}

// FunctionURL is where a function answers HTTP.
func (s *Scheme) FunctionURL(project, function string) string {
	return s.url(function, project, functionLabel)
}
