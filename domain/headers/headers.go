// Package headers decides which response headers user content may set: a
// site's header rules and a function's HTTP response. User content runs on
// its own host (DESIGN.md §10); a header that reaches beyond that origin
// (cookies for a parent domain, HSTS, Alt-Svc), collides with Cairn's own
// (its session cookie, Cairn-* headers) or frames the response (hop-by-hop,
// Content-Length) is not content's to set. Pure: no net/http.
package headers

import (
	"strings"

	"github.com/cairn-dev/cairn/domain"
)

// Limits of one header.
const (
	MaxNameLen = 256
	// MaxValueLen matches the 4096 bytes browsers keep of a cookie; common
	// proxies refuse a response whose headers exceed 4–8 KiB in total.
	MaxValueLen = 4096
)

// refusedNames (lower case) are refused whatever their value, with why.
var refusedNames = map[string]string{
	// Hop-by-hop and framing: the server writes these for the connection.
	"connection":          "is a hop-by-hop header",
	"keep-alive":          "is a hop-by-hop header",
	"proxy-connection":    "is a hop-by-hop header",
	"transfer-encoding":   "is a hop-by-hop header",
	"te":                  "is a hop-by-hop header",
	"trailer":             "is a hop-by-hop header",
	"upgrade":             "is a hop-by-hop header",
	"proxy-authenticate":  "is a hop-by-hop header",
	"proxy-authorization": "is a hop-by-hop header",
	"content-length":      "is set by the server from the body",
	// A service worker may then control paths above its script, e.g. the
	// whole API origin from a function's path, or a site's reserved API
	// prefix.
	"service-worker-allowed": "may not widen a service worker's scope",
	// HSTS is the edge's: includeSubDomains from a site would pin its
	// preview hosts (from a function on the API origin, every host under
	// it), and a browser keeps it for max-age where Cairn cannot undo it.
	"strict-transport-security": "is set by the edge, not by content",
	// Alt-Svc moves the origin's connections to another endpoint and is
	// cached for its ma; which protocols and ports serve a host is the
	// edge's decision.
	"alt-svc": "is set by the edge, not by content",
}

// Check says whether user content may set the response header name: value,
// and if not why, as an invalid-argument error on field.
func Check(field, name, value string) error {
	switch {
	case name == "":
		return domain.FieldError(field, "a header name is empty")
	case len(name) > MaxNameLen:
		return domain.FieldError(field, "a header name is %d bytes; at most %d", len(name), MaxNameLen)
	case !validName(name):
		return domain.FieldError(field, "header %q is not a valid header name", name)
	case len(value) > MaxValueLen:
		return domain.FieldError(field, "header %q: the value is %d bytes; at most %d", name, len(value), MaxValueLen)
	case !validValue(value):
		// CR or LF would start another header (response splitting).
		return domain.FieldError(field, "header %q: the value has a control character (CR, LF, NUL, …)", name)
	}
	lower := strings.ToLower(name)
	if why, ok := refusedNames[lower]; ok {
		return domain.FieldError(field, "header %q %s", name, why)
	}
	if strings.HasPrefix(lower, "cairn-") {
		return domain.FieldError(field, "header %q: Cairn-* headers are Cairn's own", name)
	}
	switch lower {
	case "set-cookie":
		if why := cookieRefusal(value); why != "" {
			return domain.FieldError(field, "header %q %s", name, why)
		}
	case "clear-site-data":
		// "cookies" clears the cookies of the whole registrable domain,
		// the API origin's session among them when it shares it; "*"
		// includes "cookies". The other types are the origin's own.
		for t := range strings.SplitSeq(value, ",") {
			t = strings.Trim(strings.TrimSpace(t), `"`)
			if t == "*" || strings.EqualFold(t, "cookies") {
				return domain.FieldError(field, "header %q may not clear cookies (they belong to the whole registrable domain)", name)
			}
		}
	}
	return nil
}

// cookieRefusal says why a Set-Cookie value is refused, or "".
func cookieRefusal(v string) string {
	pair, attrs, _ := strings.Cut(v, ";")
	// A pair without "=" is a nameless cookie to browsers; checking the
	// whole of it costs nothing and errs on the refusing side.
	cname, _, _ := strings.Cut(pair, "=")
	if cairnCookie(strings.TrimSpace(cname)) {
		return "may not set a cookie named cairn_… (Cairn's own)"
	}
	for a := range strings.SplitSeq(attrs, ";") {
		an, _, _ := strings.Cut(a, "=")
		// A Domain attribute makes the cookie reach sibling hosts; without
		// it the cookie is host-only, the content's own.
		if strings.EqualFold(strings.TrimSpace(an), "domain") {
			return "may not set a cookie with a Domain attribute"
		}
	}
	return ""
}

// cookiePrefixes browsers give meaning to (and match case-insensitively),
// longest first.
var cookiePrefixes = []string{"__host-http-", "__host-", "__secure-", "__http-"}

// cairnCookie: names starting with cairn_, also behind a cookie prefix.
func cairnCookie(n string) bool {
	n = strings.ToLower(n)
	for _, p := range cookiePrefixes {
		if t, ok := strings.CutPrefix(n, p); ok {
			n = t
			break
		}
	}
	return strings.HasPrefix(n, "cairn_")
}

// validName: an RFC 9110 token.
func validName(n string) bool {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validValue: no control characters but tab.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
