package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairn-dev/cairn/api/hosts"
	"github.com/cairn-dev/cairn/api/origins"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/streams"
)

// The browser edge: which host serves what (api/hosts), a site's own API
// under pinnedPrefix, and which browser origins may call a project
// (api/origins). See DESIGN §10 and docs/browser-apps.md.

// pinnedPrefix is where every user-content host serves its own project's
// API: same-origin for the site's pages, pinned to that project.
const pinnedPrefix = "/_cairn"

// edgeInfo is what the edge learned of a request before the API sees it.
type edgeInfo struct {
	// pinned is the project of a site's own API ("" on the API host).
	pinned string
	// origin is the request's Origin when it is another origin than the
	// host's own; "" for same-origin requests and non-browser clients.
	origin string
	// self is the request's Origin when it is the host's own (a site's
	// page calling its own API): passkeys are bound to it.
	self string
	// badOrigin is an Origin header that is no http(s) origin ("null",
	// file://, garbage): such a request is refused.
	badOrigin string
	// method is the HTTP method (Connect serves side-effect-free calls
	// over GET too).
	method string
	// secure is true when the request came over TLS (directly or through a
	// proxy), so cookies set in the answer are Secure.
	secure bool
}

type edgeKey struct{}

func edgeOf(ctx context.Context) edgeInfo {
	e, _ := ctx.Value(edgeKey{}).(edgeInfo)
	return e
}

func pinnedProject(ctx context.Context) string { return edgeOf(ctx).pinned }

// edge routes every request by host: user content to its site or function,
// a site's own API to the API pinned to its project, anything else to the
// API. CORS wraps both API entries.
func (s *Server) edge(api http.Handler) http.Handler {
	withCORS := s.origins.Handler(api, s.corsProject)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := s.hosts.Classify(r.Host)
		if t.Kind == hosts.Custom {
			t.Kind = hosts.API
			if st, ok := s.customDomainSite(t.Host); ok {
				t = hosts.Target{Kind: hosts.Site, Project: st.GetProjectId(), Site: st.GetId(), Host: t.Host}
			}
		}
		if t.Kind == hosts.Unknown {
			noteRoute(r.Context(), "unknown host", "")
			http.Error(w, "no such site or function", http.StatusNotFound)
			return
		}
		if t.Kind == hosts.API {
			s.serveEdgeAPI(w, r, "", withCORS)
			return
		}
		if !domain.ValidProjectID(t.Project) {
			http.Error(w, "no such site or function", http.StatusNotFound)
			return
		}
		if r.URL.Path == pinnedPrefix || strings.HasPrefix(r.URL.Path, pinnedPrefix+"/") {
			s.servePinned(w, r, t.Project, withCORS)
			return
		}
		switch t.Kind {
		case hosts.Site, hosts.Preview:
			noteRoute(r.Context(), "site", t.Project)
			s.serveSiteHost(w, r, t)
		case hosts.Function:
			noteRoute(r.Context(), "function", t.Project)
			r.SetPathValue("project", t.Project)
			r.SetPathValue("function", t.Function)
			r.SetPathValue("path", strings.TrimPrefix(r.URL.Path, "/"))
			s.serveFunction(w, r)
		}
	})
}

// serveEdgeAPI hands a request to the API with what the edge knows of it.
func (s *Server) serveEdgeAPI(w http.ResponseWriter, r *http.Request, pinned string, next http.Handler) {
	e := edgeInfo{pinned: pinned, method: r.Method, secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") ||
		strings.HasPrefix(s.publicURL, "https://")}
	if o := r.Header.Get("Origin"); o != "" {
		switch n, ok := origins.Normalize(o); {
		case !ok:
			e.badOrigin = o
		case !sameHost(n, r.Host):
			e.origin = n
		default:
			e.self = n
		}
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), edgeKey{}, e)))
}

// sameHost reports whether origin names the request's own host and port.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	h := strings.ToLower(host)
	if u.Port() == "" {
		// The default port may or may not be in the Host header.
		h = strings.TrimSuffix(strings.TrimSuffix(h, ":80"), ":443")
	}
	return strings.EqualFold(u.Host, h)
}

// pinnedPathProject matches the plain routes that name their project in the
// path: /v1/functions/<p>/…, /v1/sites/<p>/…, /v1/projects/<p>/….
func pinnedPathProject(path string) (string, bool) {
	for _, prefix := range []string{"/v1/functions/", "/v1/sites/", "/v1/projects/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			p, _, _ := strings.Cut(rest, "/")
			return p, true
		}
	}
	return "", false
}

// servePinned serves a site's own API: the API under pinnedPrefix, for
// project only. A request naming another project (header, query, path) is
// refused here; one whose message or credential names another is refused
// by the access rules (pinnedProject).
func (s *Server) servePinned(w http.ResponseWriter, r *http.Request, project string, next http.Handler) {
	path := strings.TrimPrefix(r.URL.Path, pinnedPrefix)
	if path == "" {
		path = "/"
	}
	if path == "/metrics" || strings.HasPrefix(path, sitesPath) || strings.HasPrefix(path, previewsPath) {
		http.NotFound(w, r)
		return
	}
	pathProject, _ := pinnedPathProject(path)
	for _, named := range []string{r.Header.Get(headerProject), r.URL.Query().Get("project"), pathProject} {
		if named != "" && named != project {
			s.httpError(w, r, pinnedRefusal(project))
			return
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = path
	r2.URL.RawPath = ""
	if r2.Header.Get(headerProject) == "" {
		r2.Header.Set(headerProject, project)
	}
	s.serveEdgeAPI(w, r2, project, next)
}

func pinnedRefusal(project string) error {
	return domain.Errorf(domain.KindPermissionDenied, "this site's API (%s/) serves project %q only", pinnedPrefix, project)
}

// corsProject names the project a request says it is for, before its body
// is read: the pinned project, the Cairn-Project header, the project query
// parameter, a project in the path, or a key or session credential's own.
func (s *Server) corsProject(r *http.Request) string {
	if p := pinnedProject(r.Context()); p != "" {
		return p
	}
	if p := r.Header.Get(headerProject); p != "" {
		return p
	}
	if p := r.URL.Query().Get("project"); p != "" {
		return p
	}
	if p, ok := pinnedPathProject(r.URL.Path); ok {
		return p
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if p, ok := parseSessionToken(token); ok {
		return p
	}
	if p, _, ok := parseKeyToken(token); ok {
		return p
	}
	return ""
}

// checkOrigin refuses a browser request from another origin than the
// host's own unless project lists it among its web platforms. Operators'
// instance-wide calls (project "") are never taken from other origins.
func (s *Server) checkOrigin(ctx context.Context, project string) error {
	e := edgeOf(ctx)
	if e.badOrigin != "" {
		return domain.FieldError("Origin", "%q is not an http(s) origin a project can allow; call from a page served over http(s)", truncate(e.badOrigin, 64))
	}
	if e.origin == "" {
		return nil
	}
	if project == "" {
		return domain.Errorf(domain.KindPermissionDenied, "origin %s may not call instance operations from a browser; use the console on the API's own origin", e.origin)
	}
	if s.origins.Allowed(project, e.origin) {
		return nil
	}
	return domain.Errorf(domain.KindPermissionDenied, "origin %s is not an allowed web platform of project %q: add it to the project's allowed origins (UsersService.UpdateAuthSettings settings.allowed_origins)", e.origin, project)
}

// redirectToHost answers a path that used to serve user content on the
// API's host with a redirect to the content's own host.
func redirectToHost(w http.ResponseWriter, r *http.Request, base, rest string) {
	for _, v := range []string{r.PathValue("site"), r.PathValue("function")} {
		if strings.ToLower(v) != v {
			http.Error(w, "ids with upper-case letters have no host of their own (host names ignore case): "+
				"call a function with CreateExecution, or use a lower-case id", http.StatusNotFound)
			return
		}
	}
	target := strings.TrimSuffix(base, "/") + (&url.URL{Path: "/" + strings.TrimPrefix(rest, "/")}).EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	// 307 keeps the method and body (function calls), and is not cached
	// for ever should the sites domain change.
	// No body: the API's origin serves no HTML at all.
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// platformSource reads projects' web platforms from the read models.
type platformSource struct{ reads ReadModels }

func (p platformSource) Platforms(project string) (origins.Platforms, error) {
	if !domain.ValidProjectID(project) {
		return origins.Platforms{}, nil
	}
	if _, err := p.reads.Project(project); err != nil {
		if errors.Is(err, errNotFound) {
			return origins.Platforms{}, nil
		}
		return origins.Platforms{}, fmt.Errorf("origins: project %s: %w", project, err)
	}
	st, err := p.reads.AuthSettings(project)
	if err != nil {
		return origins.Platforms{}, fmt.Errorf("origins: auth settings of %s: %w", project, err)
	}
	return origins.Platforms{Origins: st.GetAllowedOrigins(), LocalDev: !st.GetDisableLocalhostOrigins()}, nil
}

func (p platformSource) Version(project string) uint64 {
	return p.reads.AppliedSeq(streams.ProjectStream(project))
}

func (p platformSource) EachProject(fn func(string, origins.Platforms) error) error {
	after := ""
	for {
		ps, err := p.reads.ListProjects(after, 500)
		if err != nil {
			return err
		}
		for _, pr := range ps {
			pl, err := p.Platforms(pr.GetId())
			if err != nil {
				return err
			}
			if err := fn(pr.GetId(), pl); err != nil {
				return err
			}
		}
		if len(ps) < 500 {
			return nil
		}
		after = ps[len(ps)-1].GetId()
	}
}
