package origins

import (
	"net/http"
	"sync"
	"time"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// Platforms are one project's web platforms.
type Platforms struct {
	Origins []string
	// LocalDev allows localhost, 127.0.0.1 and [::1] on any port.
	LocalDev bool
}

// Source reads projects' platforms.
type Source interface {
	// Platforms returns a project's platforms; a missing project has none
	// (and no error), so the answer tells nothing of its existence.
	Platforms(project string) (Platforms, error)
	// EachProject calls fn with every project's platforms.
	EachProject(fn func(project string, p Platforms) error) error
	// Version changes whenever a project's platforms may have changed (the
	// sequence its read models have applied); Platforms answers are
	// reused while it stays the same.
	Version(project string) uint64
}

// Policy answers whether an origin may call a project's API.
type Policy struct {
	src Source
	now func() time.Time

	cacheMu sync.Mutex
	cache   map[string]cached // per project, while its version holds

	mu      sync.Mutex
	union   map[string]bool // exact origins allowed by some project
	wild    []pattern       // wildcards allowed by some project
	anyDev  bool            // some project allows local development
	builtAt time.Time
}

// unionTTL bounds how stale the all-projects view used for preflights may
// be when an origin is missing from it (a platform added a moment ago).
const unionTTL = time.Second

// NewPolicy returns a policy reading src.
func NewPolicy(src Source, now func() time.Time) *Policy {
	if now == nil {
		now = time.Now
	}
	return &Policy{src: src, now: now}
}

type cached struct {
	version uint64
	pl      Platforms
}

// maxCached bounds the per-project cache; past it, it starts anew.
const maxCached = 4096

// Allowed reports whether origin may call project's API.
func (p *Policy) Allowed(project, origin string) bool {
	v := p.src.Version(project)
	p.cacheMu.Lock()
	c, ok := p.cache[project]
	p.cacheMu.Unlock()
	if !ok || c.version != v || v == 0 {
		pl, err := p.src.Platforms(project)
		if err != nil {
			return false
		}
		c = cached{version: v, pl: pl}
		p.cacheMu.Lock()
		if p.cache == nil || len(p.cache) >= maxCached {
			p.cache = map[string]cached{}
		}
		p.cache[project] = c
		p.cacheMu.Unlock()
	}
	return Match(c.pl.Origins, c.pl.LocalDev, origin)
}

// AllowedByAny reports whether some project allows origin. A preflight
// does not say which project it is for (that is in the body or a header
// value it does not carry), so it is approved for an origin some project
// allows; the request itself is then checked against its own project.
func (p *Policy) AllowedByAny(origin string) bool {
	scheme, host, port, ok := split(origin)
	if !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hit(origin, scheme, host, port) {
		return true
	}
	if p.now().Sub(p.builtAt) < unionTTL {
		return false
	}
	p.rebuild()
	return p.hit(origin, scheme, host, port)
}

func (p *Policy) hit(origin, scheme, host, port string) bool {
	if p.anyDev && (host == "localhost" || host == "127.0.0.1" || host == "::1") {
		return true
	}
	if p.union[origin] {
		return true
	}
	for _, w := range p.wild {
		if w.match(scheme, host, port) {
			return true
		}
	}
	return false
}

func (p *Policy) rebuild() {
	union, wild, anyDev := map[string]bool{}, []pattern(nil), false
	err := p.src.EachProject(func(_ string, pl Platforms) error {
		anyDev = anyDev || pl.LocalDev
		for _, s := range pl.Origins {
			pt, err := parse(s, "")
			if err != nil {
				continue
			}
			if pt.wildcard {
				wild = append(wild, pt)
			} else {
				union[join(pt.scheme, pt.host, pt.port)] = true
			}
		}
		return nil
	})
	p.builtAt = p.now()
	if err != nil {
		return // keep the last good view
	}
	p.union, p.wild, p.anyDev = union, wild, anyDev
}

// Request headers a browser app may send, beyond Connect's and gRPC-Web's.
var allowedHeaders = []string{"Authorization", "Cairn-Project", "Cairn-Min-Seq", "Cairn-Min-Sys-Seq",
	"Idempotency-Key", "X-Request-Id", "Content-Range", "Range", "If-None-Match", "If-Range",
	"Connect-Accept-Encoding", "Connect-Content-Encoding", "Grpc-Accept-Encoding"}

// Response headers a browser app may read, beyond the CORS-safelisted ones.
var exposedHeaders = []string{"Cairn-Seq", "Cairn-Upload-Received", "Cairn-Execution-Id", "Cairn-Preview-Cache",
	"X-Request-Id", "Retry-After", "ETag", "Content-Range", "Content-Disposition", "Accept-Ranges",
	"Connect-Content-Encoding"}

// maxAge is how long a browser may cache a preflight (Chromium caps it at
// two hours).
const maxAge = 2 * 60 * 60

// Handler answers preflights and adds CORS headers to next's answers for
// allowed origins. project names the request's project when the request
// itself says it (a pinned site API, a header, a query or path segment, a
// credential); "" means only the body knows, and any project's approval
// suffices here. Refusing a request whose project does not allow its origin
// is the API's job, after it knows the project.
func (p *Policy) Handler(next http.Handler, project func(*http.Request) string) http.Handler {
	c := cors.New(cors.Options{
		AllowOriginVaryRequestFunc: func(r *http.Request, origin string) (bool, []string) {
			o, ok := Normalize(origin)
			if !ok {
				return false, nil
			}
			if pr := project(r); pr != "" {
				return p.Allowed(pr, o), nil
			}
			return p.AllowedByAny(o), nil
		},
		AllowedMethods:   append(connectcors.AllowedMethods(), http.MethodPut, http.MethodHead, http.MethodDelete),
		AllowedHeaders:   append(connectcors.AllowedHeaders(), allowedHeaders...),
		ExposedHeaders:   append(connectcors.ExposedHeaders(), exposedHeaders...),
		AllowCredentials: true,
		MaxAge:           maxAge,
	})
	return c.Handler(next)
}
