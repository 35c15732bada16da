package oauth

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// RedirectError says why a success or failure URL was refused. Reason is
// safe to show to the caller.
type RedirectError struct {
	URL    string
	Reason string
}

func (e *RedirectError) Error() string {
	u := e.URL
	if len(u) > 200 {
		u = u[:200] + "…"
	}
	return "redirect URL " + strconv.Quote(u) + " " + e.Reason
}

// CheckRedirect accepts rawURL only if it is an absolute http or https URL,
// without user information, whose origin (scheme, host, port) is exactly one
// of allowedOrigins. Hosts compare case-insensitively and default ports are
// normalised (https://a.example and https://a.example:443 are one origin);
// there are no wildcards and no suffix matching, so evil.com.example.com is
// not example.com. An allowed origin that is not itself a valid origin never
// matches. It returns a *RedirectError.
func CheckRedirect(rawURL string, allowedOrigins []string) error {
	origin, reason := originOf(rawURL)
	if reason != "" {
		return &RedirectError{URL: rawURL, Reason: reason}
	}
	for _, a := range allowedOrigins {
		if ao, r := originOf(strings.TrimSuffix(a, "/")); r == "" && ao == origin {
			return nil
		}
	}
	return &RedirectError{URL: rawURL, Reason: "has origin " + origin + ", which is not among the project's allowed origins"}
}

// originOf returns the normalised origin of an absolute http(s) URL, or why
// it has none.
func originOf(raw string) (origin, reason string) {
	if raw == "" {
		return "", "is empty"
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f || r == '\\' {
			return "", "contains a space, control character or backslash"
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "is not a valid URL"
	}
	if u.Scheme == "" {
		return "", "is not absolute (it needs a scheme and a host)"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "has scheme " + strconv.Quote(u.Scheme) + "; only http and https are allowed"
	}
	if u.Opaque != "" || u.Host == "" {
		return "", "has no host"
	}
	if u.User != nil {
		return "", "contains user information (user@host)"
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", "has no host"
	}
	port := u.Port()
	if port == "" && strings.HasSuffix(u.Host, ":") {
		return "", "has an empty port"
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", "has an invalid port"
		}
		port = strconv.Itoa(n)
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		return u.Scheme + "://" + net.JoinHostPort(host, port), ""
	}
	if strings.Contains(host, ":") {
		return u.Scheme + "://[" + host + "]", ""
	}
	return u.Scheme + "://" + host, ""
}

// SuccessRedirect returns successURL with user_id and secret added to its
// query, for the callback's final redirect.
func SuccessRedirect(successURL, userID, secret string) (string, error) {
	return withQuery(successURL, url.Values{"user_id": {userID}, "secret": {secret}})
}

// FailureRedirect returns failureURL with error (an OAuth-style code such as
// "access_denied") and, when not empty, error_description added.
func FailureRedirect(failureURL, code, description string) (string, error) {
	q := url.Values{"error": {code}}
	if description != "" {
		q.Set("error_description", description)
	}
	return withQuery(failureURL, q)
}

func withQuery(raw string, add url.Values) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", &RedirectError{URL: raw, Reason: "is not a valid URL"}
	}
	q := u.Query()
	for k, vs := range add {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
