package origins

import (
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":     "https://app.example.com",
		"https://app.example.com:443": "https://app.example.com",
		"http://localhost:3000":       "http://localhost:3000",
		"http://[::1]:5173":           "http://[::1]:5173",
		"http://127.0.0.1:80":         "http://127.0.0.1",
		"null":                        "",
		"file://":                     "",
		"ftp://example.com":           "",
		"https://example.com/":        "",
		"https://example.com/path":    "",
		"https://user@example.com":    "",
		"https://example.com:0":       "",
		"https://example.com:99999":   "",
		"https://*.example.com":       "",
		"https://exa mple.com":        "",
		"https://example.com\r\nX: y": "",
		"https://":                    "",
		"":                            "",
	} {
		got, ok := Normalize(in)
		if got != want || ok != (want != "") {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := [][]string{
		nil,
		{"https://app.example.com", "http://localhost:3000", "https://*.preview.example.com", "http://127.0.0.1:8080"},
		{"https://*.acme.sites.example.com"}, // one project's own sites
		{"https://app.example.com/"},         // a trailing slash is tolerated
	}
	for _, l := range ok {
		if err := Validate(l, "sites.example.com"); err != nil {
			t.Errorf("Validate(%q): %v", l, err)
		}
	}
	bad := map[string]string{
		"*":                           "must be an origin",
		"https://*":                   "must be an origin",
		"https://*.com":               "too broad",
		"https://*.*.example.com":     "must be an origin",
		"https://a.*.example.com":     "must be an origin",
		"ftp://example.com":           "must be an origin",
		"javascript:alert(1)":         "must be an origin",
		"https://example.com/app":     "must be an origin",
		"https://example.com\r\nX:y":  "must be an origin",
		"null":                        "must be an origin",
		"https://*.sites.example.com": "covers the sites domain",
		"https://*.example.com":       "covers the sites domain",
	}
	for p, want := range bad {
		err := Validate([]string{"https://ok.example.org", p}, "sites.example.com")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "\"") {
			t.Errorf("Validate(%q) = %v; want an error with %q", p, err, want)
		}
	}
	many := make([]string, MaxPlatforms+1)
	for i := range many {
		many[i] = "https://example.org"
	}
	if err := Validate(many, ""); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("too many platforms: %v", err)
	}
}

func TestMatch(t *testing.T) {
	pl := []string{"https://app.example.com", "https://*.preview.example.com", "http://todo.localhost:5173"}
	for origin, want := range map[string]bool{
		"https://app.example.com":             true,
		"https://APP.example.com:443":         true,
		"http://app.example.com":              false, // another scheme
		"https://app.example.com:8443":        false, // another port
		"https://evil.example.com":            false,
		"https://app.example.com.evil.com":    false,
		"https://pr-1.preview.example.com":    true,
		"https://a.b.preview.example.com":     true,
		"https://preview.example.com":         false, // a wildcard is subdomains only
		"https://xpreview.example.com":        false,
		"http://todo.localhost:5173":          true,
		"http://localhost:3000":               true, // local development
		"http://127.0.0.1:9999":               true,
		"http://[::1]:1":                      true,
		"http://web.other.localhost:8080":     false, // a site host is no development origin
		"null":                                false,
		"https://*.preview.example.com":       false,
		"https://app.example.com/":            false,
		"https://app.example.com\r\nx: y":     false,
		"https://app.example.com@evil.com":    false,
		"https://evil.com#app.example.com":    false,
		"https://evil.com/app.example.com":    false,
		"https://evil.com?x=app.example.com":  false,
		"https://app.example.com:443\x00evil": false,
	} {
		if got := Match(pl, true, origin); got != want {
			t.Errorf("Match(%q) = %v, want %v", origin, got, want)
		}
	}
	if Match(pl, false, "http://localhost:3000") {
		t.Error("local development allowed with it switched off")
	}
}

// source is a fixed set of projects' platforms.
type source map[string]Platforms

func (s source) Platforms(p string) (Platforms, error) { return s[p], nil }
func (s source) Version(string) uint64                 { return 0 }
func (s source) EachProject(fn func(string, Platforms) error) error {
	for p, pl := range s {
		if err := fn(p, pl); err != nil {
			return err
		}
	}
	return nil
}

func TestPolicy(t *testing.T) {
	src := source{
		"a": {Origins: []string{"https://a.example.com"}},
		"b": {Origins: []string{"https://*.b.example.com"}, LocalDev: true},
	}
	now := time.Unix(1000, 0)
	p := NewPolicy(src, func() time.Time { return now })
	if !p.Allowed("a", "https://a.example.com") || p.Allowed("b", "https://a.example.com") || p.Allowed("missing", "https://a.example.com") {
		t.Error("per-project answers wrong")
	}
	if p.Allowed("a", "http://localhost:3000") || !p.Allowed("b", "http://localhost:3000") {
		t.Error("local development per project wrong")
	}
	for origin, want := range map[string]bool{"https://a.example.com": true, "https://x.b.example.com": true,
		"http://localhost:1234": true, "https://evil.example.com": false} {
		if got := p.AllowedByAny(origin); got != want {
			t.Errorf("AllowedByAny(%q) = %v", origin, got)
		}
	}
	// A platform added a moment ago is seen once the view is a second old.
	src["c"] = Platforms{Origins: []string{"https://c.example.com"}}
	if p.AllowedByAny("https://c.example.com") {
		t.Log("seen at once (the view was rebuilt on the earlier miss)")
	}
	now = now.Add(2 * time.Second)
	if !p.AllowedByAny("https://c.example.com") {
		t.Error("a new platform is not seen after the view's lifetime")
	}
}
