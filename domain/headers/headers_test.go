package headers

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name        string
		given       [2]string // header name, value
		thenRefused string    // part of the message; "" means allowed
	}{
		{"plain header", [2]string{"X-Frame-Options", "DENY"}, ""},
		{"token characters", [2]string{"X-A.b_c~", "v"}, ""},
		{"own host-only cookie", [2]string{"Set-Cookie", "theme=dark; Path=/; Secure; HttpOnly; SameSite=Lax"}, ""},
		{"own __Host- cookie", [2]string{"Set-Cookie", "__Host-sid=1; Path=/; Secure"}, ""},
		{"cookie name merely containing cairn", [2]string{"Set-Cookie", "my_cairn_x=1"}, ""},
		{"clear the origin's cache and storage", [2]string{"Clear-Site-Data", `"cache", "storage"`}, ""},
		{"content security policy", [2]string{"Content-Security-Policy", "default-src 'self'"}, ""},

		{"cookie with Domain", [2]string{"Set-Cookie", "a=1; Domain=example.com"}, "may not set a cookie with a Domain attribute"},
		{"cookie with empty domain, any case", [2]string{"set-cookie", "a=1; path=/;  dOmAiN"}, "Domain attribute"},
		{"Cairn's session cookie", [2]string{"Set-Cookie", "cairn_session_x=1"}, "cairn_"},
		{"Cairn's cookie, upper case", [2]string{"Set-Cookie", " CAIRN_Session_x=1; Path=/"}, "cairn_"},
		{"Cairn's cookie behind __Host-", [2]string{"Set-Cookie", "__Host-cairn_session_x=1; Path=/; Secure"}, "cairn_"},
		{"Cairn's cookie behind __secure-", [2]string{"Set-Cookie", "__secure-cairn_x=1; Secure"}, "cairn_"},
		{"Cairn's cookie behind __Host-Http-", [2]string{"Set-Cookie", "__Host-Http-cairn_x=1; Secure"}, "cairn_"},
		{"nameless cookie that reads as Cairn's", [2]string{"Set-Cookie", "cairn_session_x"}, "cairn_"},
		{"service worker scope", [2]string{"Service-Worker-Allowed", "/"}, "service worker"},
		{"HSTS", [2]string{"Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"}, "edge"},
		{"Alt-Svc", [2]string{"alt-svc", `h3=":443"; ma=86400`}, "edge"},
		{"clear cookies", [2]string{"Clear-Site-Data", `"cache", "cookies"`}, "may not clear cookies"},
		{"clear everything", [2]string{"Clear-Site-Data", `"*"`}, "may not clear cookies"},
		{"Cairn-Seq", [2]string{"Cairn-Seq", "1"}, "Cairn's own"},
		{"Cairn-Execution-Id", [2]string{"cairn-execution-id", "x"}, "Cairn's own"},
		{"any Cairn- header", [2]string{"Cairn-Anything", "x"}, "Cairn's own"},
		{"hop-by-hop", [2]string{"Transfer-Encoding", "chunked"}, "hop-by-hop"},
		{"connection", [2]string{"Connection", "close"}, "hop-by-hop"},
		{"Content-Length", [2]string{"Content-Length", "0"}, "from the body"},

		{"empty name", [2]string{"", "x"}, "empty"},
		{"name with CR LF", [2]string{"X-A\r\nSet-Cookie", "x"}, "not a valid header name"},
		{"name with space", [2]string{"X A", "x"}, "not a valid header name"},
		{"name with colon", [2]string{"X-A:", "x"}, "not a valid header name"},
		{"long name", [2]string{strings.Repeat("x", MaxNameLen+1), "x"}, "at most 256"},
		{"value with CR LF", [2]string{"X-A", "a\r\nSet-Cookie: cairn_session_x=1"}, "control character"},
		{"value with LF", [2]string{"X-A", "a\nb"}, "control character"},
		{"value with NUL", [2]string{"X-A", "a\x00b"}, "control character"},
		{"8 KiB value", [2]string{"X-A", strings.Repeat("v", 8<<10)}, "at most 4096"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check("settings.headers", c.given[0], c.given[1])
			if c.thenRefused == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			e, ok := err.(*domain.Error)
			if !ok || e.Kind != domain.KindInvalid || e.Field != "settings.headers" || !strings.Contains(e.Message, c.thenRefused) {
				t.Fatalf("want invalid settings.headers mentioning %q, got %#v", c.thenRefused, err)
			}
			// The caller must see which header, except for a nameless one.
			if c.given[0] != "" && len(c.given[0]) <= MaxNameLen && !strings.Contains(e.Message, c.given[0][:3]) {
				t.Fatalf("message %q does not name the header", e.Message)
			}
		})
	}
}
