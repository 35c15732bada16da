package permission

import "testing"

func FuzzParsePermission(f *testing.F) {
	for _, s := range []string{
		`read("any")`, `create("guests")`, `update("users/verified")`, `delete("user:abc/unverified")`,
		`write("team:t1/admin")`, `read("member:m1")`, `read("label:vip")`,
		`read(any)`, `read("any"`, `READ("any")`, `read("user:")`, `read("team:t/")`, `read("label:a b")`,
		`reed("any")`, ``, `read("any") `, `read("an"y")`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePermission(s)
		if err != nil {
			if p != (Permission{}) {
				t.Fatalf("ParsePermission(%q) returned %+v with error %v", s, p, err)
			}
			return
		}
		// Parsing is strict, so every accepted input is canonical.
		if got := p.String(); got != s {
			t.Fatalf("ParsePermission(%q).String() = %q", s, got)
		}
		q, err := ParsePermission(p.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", p.String(), err)
		}
		if q != p {
			t.Fatalf("re-parse of %q = %+v, want %+v", s, q, p)
		}
		r, err := ParseRole(p.Role.String())
		if err != nil || r != p.Role {
			t.Fatalf("ParseRole(%q) = %+v, %v; want %+v", p.Role.String(), r, err, p.Role)
		}
	})
}
