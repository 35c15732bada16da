// Package origins decides which browser origins may call a project's API:
// a project's web platforms (exact origins and "*." wildcards for preview
// subdomains), the local-development default, and the CORS handler built on
// rs/cors from them. It reads a project's platforms through Source and
// never anything else of a project.
package origins

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Normalize returns an Origin header value as scheme://host[:port], lower
// case, default port dropped; ok is false for "null", other schemes, paths,
// user info or anything that is not an origin.
func Normalize(raw string) (origin string, ok bool) {
	scheme, host, port, ok := split(raw)
	if !ok || strings.Contains(host, "*") {
		return "", false
	}
	return join(scheme, host, port), true
}

// split parses scheme://host[:port] with nothing else.
func split(raw string) (scheme, host, port string, ok bool) {
	if raw == "" || len(raw) > 512 {
		return "", "", "", false
	}
	scheme, rest, found := strings.Cut(raw, "://")
	scheme = strings.ToLower(scheme)
	if !found || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, " \t\r\n\\/?#@%") {
		return "", "", "", false
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return "", "", "", false
	}
	host, port = strings.ToLower(u.Hostname()), u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return "", "", "", false
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", "", "", false
		}
		port = strconv.Itoa(n)
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			port = ""
		}
	}
	if ip := net.ParseIP(host); ip == nil && !validHost(strings.TrimPrefix(host, "*.")) {
		return "", "", "", false
	}
	return scheme, host, port, true
}

func join(scheme, host, port string) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port
	}
	return scheme + "://" + host
}

// validHost is a DNS name of letters, digits and hyphens (underscores too:
// browsers accept them in host names).
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// LocalDev reports whether origin is a development origin on this machine:
// localhost, 127.0.0.1 or [::1] on any port. Names under .localhost are
// not: they are where sites are served in development.
func LocalDev(origin string) bool {
	_, host, _, ok := split(origin)
	return ok && (host == "localhost" || host == "127.0.0.1" || host == "::1")
}

// Error says why a platform pattern is refused.
type Error struct {
	Pattern, Reason string
}

func (e *Error) Error() string { return strconv.Quote(e.Pattern) + " " + e.Reason }

// pattern is one web platform: an exact origin, or *.base for every
// subdomain of base (not base itself) on one scheme and port.
type pattern struct {
	scheme, host, port string
	wildcard           bool
}

// parse reads a platform; sitesDomain is the instance's user-content
// domain, which no wildcard may cover whole.
func parse(s, sitesDomain string) (pattern, error) {
	scheme, host, port, ok := split(strings.TrimSuffix(s, "/"))
	if !ok {
		return pattern{}, &Error{s, "must be an origin: http(s)://host[:port], or http(s)://*.domain[:port], with nothing after it"}
	}
	p := pattern{scheme: scheme, host: host, port: port}
	if base, ok := strings.CutPrefix(host, "*."); ok {
		p.host, p.wildcard = base, true
		if !strings.Contains(base, ".") {
			return pattern{}, &Error{s, "is too broad: a wildcard needs a domain of at least two labels (*.example.com)"}
		}
		if sd := strings.ToLower(strings.Trim(sitesDomain, ".")); sd != "" && (sd == base || strings.HasSuffix(sd, "."+base)) {
			return pattern{}, &Error{s, "covers the sites domain " + sd + ": it would open the project's API to every project's sites; name your own sites (*.<project>." + sd + ") instead"}
		}
	}
	return p, nil
}

func (p pattern) match(scheme, host, port string) bool {
	if p.scheme != scheme || p.port != port {
		return false
	}
	if p.wildcard {
		return strings.HasSuffix(host, "."+p.host)
	}
	return p.host == host
}

// MaxPlatforms bounds a project's web platforms.
const MaxPlatforms = 64

// Validate checks a project's platforms; the error names the first one
// refused and why.
func Validate(platforms []string, sitesDomain string) error {
	if len(platforms) > MaxPlatforms {
		return &Error{strconv.Itoa(len(platforms)) + " platforms", "are too many: at most " + strconv.Itoa(MaxPlatforms)}
	}
	for _, s := range platforms {
		if _, err := parse(s, sitesDomain); err != nil {
			return err
		}
	}
	return nil
}

// Match reports whether origin (as sent in an Origin header) is one of
// platforms, or local development when localDev allows it.
func Match(platforms []string, localDev bool, origin string) bool {
	scheme, host, port, ok := split(origin)
	if !ok || strings.Contains(host, "*") {
		return false
	}
	if localDev && (host == "localhost" || host == "127.0.0.1" || host == "::1") {
		return true
	}
	for _, s := range platforms {
		// Stored platforms were validated when set; the sites domain check
		// is not repeated here.
		if p, err := parse(s, ""); err == nil && p.match(scheme, host, port) {
			return true
		}
	}
	return false
}
