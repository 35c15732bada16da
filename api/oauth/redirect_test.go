package oauth

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCheckRedirect(t *testing.T) {
	allowed := []string{"https://example.com", "http://localhost:3000", "https://APP.Example.org:443/", "http://[::1]:8080", "not a url", "https://*.wild.example"}
	cases := []struct {
		url    string
		ok     bool
		reason string // substring of the refusal
	}{
		{"https://example.com", true, ""},
		{"https://example.com/", true, ""},
		{"https://example.com/cb?x=1#frag", true, ""},
		{"HTTPS://EXAMPLE.COM/cb", true, ""},
		{"https://example.com:443/cb", true, ""},
		{"http://localhost:3000/done", true, ""},
		{"https://app.example.org/ok", true, ""},
		{"https://app.example.org:443/ok", true, ""},
		{"http://[::1]:8080/ok", true, ""},

		{"", false, "empty"},
		{"https://evil.com", false, "https://evil.com, which is not among"},
		{"https://evil.com.example.com/", false, "not among"},
		{"https://example.com.evil.com/", false, "not among"},
		{"https://sub.example.com/", false, "not among"},
		{"https://a.wild.example/", false, "not among"},
		{"https://example.com@evil.com/", false, "user information"},
		{"https://user:pass@example.com/", false, "user information"},
		{"https://example.com:pass@evil.com/", false, "user information"},
		{"//evil.com/x", false, "not absolute"},
		{"/relative/path", false, "not absolute"},
		{"evil.com", false, "not absolute"},
		{"javascript:alert(1)", false, "scheme \"javascript\""},
		{"JavaScript://example.com/%0aalert(1)", false, "scheme \"javascript\""},
		{"data:text/html,hi", false, "scheme \"data\""},
		{"ftp://example.com/", false, "scheme \"ftp\""},
		{"https:example.com", false, "no host"},
		{"https:///example.com", false, "no host"},
		{"http://example.com/", false, "not among"}, // scheme differs
		{"https://example.com:8443/", false, "https://example.com:8443, which"},
		{"http://localhost:3001/", false, "not among"},
		{"http://localhost/", false, "not among"},
		{"http://localhost:03000/", true, ""}, // same port, leading zero
		{"https://example.com:/", false, "empty port"},
		{"https://example.com:99999/", false, "invalid port"},
		{"https://example.com:0/", false, "invalid port"},
		{"https://example.com\\@evil.com/", false, "backslash"},
		{"https:\\\\evil.com", false, "backslash"},
		{"https://example.com /", false, "space"},
		{"https://exa\tmple.com/", false, "control"},
		{"https://example.com./", false, "not among"}, // trailing dot is another origin
		{"http://[::1]:9090/", false, "not among"},
		{"https://%zz/", false, "not a valid URL"},
	}
	for _, tc := range cases {
		err := CheckRedirect(tc.url, allowed)
		if tc.ok {
			if err != nil {
				t.Errorf("CheckRedirect(%q) = %v, want ok", tc.url, err)
			}
			continue
		}
		var re *RedirectError
		if !errors.As(err, &re) {
			t.Errorf("CheckRedirect(%q) = %v, want a *RedirectError", tc.url, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("CheckRedirect(%q) = %q, want it to mention %q", tc.url, err, tc.reason)
		}
	}
	if err := CheckRedirect("https://example.com/", nil); err == nil {
		t.Error("an empty allow list allowed a URL")
	}
}

func TestRedirectHelpers(t *testing.T) {
	got, err := SuccessRedirect("https://app.example/done?keep=1#f", "u1", "s e/cret")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	if q := u.Query(); q.Get("keep") != "1" || q.Get("user_id") != "u1" || q.Get("secret") != "s e/cret" || u.Fragment != "f" {
		t.Errorf("SuccessRedirect = %q", got)
	}
	got, err = FailureRedirect("https://app.example/failed?error=spoof", "access_denied", "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ = url.Parse(got)
	if q := u.Query(); len(q["error"]) != 1 || q.Get("error") != "access_denied" || q.Has("error_description") {
		t.Errorf("FailureRedirect = %q", got)
	}
}
