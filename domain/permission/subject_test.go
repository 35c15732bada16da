package permission

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
)

var (
	guest      = Subject{Kind: Guest}
	unverified = Subject{Kind: User, UserID: "u1"}
	verified   = Subject{Kind: User, UserID: "u2", Verified: true}
	teamAdmin  = Subject{Kind: User, UserID: "u3", Verified: true,
		Teams: []Membership{{TeamID: "t1", MembershipID: "m1", Roles: []string{"admin", "owner"}}}}
	teamPlain = Subject{Kind: User, UserID: "u4",
		Teams: []Membership{{TeamID: "t1", MembershipID: "m2"}}}
	labelled = Subject{Kind: User, UserID: "u5", Verified: true, Labels: []string{"vip"}}
	apiKey   = Subject{Kind: APIKey}
	operator = Subject{Kind: Operator}
)

func roleStrings(rs []Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

func TestRoles(t *testing.T) {
	tests := []struct {
		name string
		s    Subject
		want []string
	}{
		{"guest", guest, []string{"any", "guests"}},
		{"unverified user", unverified, []string{"any", "users", "users/unverified", "user:u1", "user:u1/unverified"}},
		{"verified user", verified, []string{"any", "users", "users/verified", "user:u2", "user:u2/verified"}},
		{"team admin", teamAdmin, []string{"any", "users", "users/verified", "user:u3", "user:u3/verified",
			"team:t1", "team:t1/admin", "team:t1/owner", "member:m1"}},
		{"two memberships, duplicate label", Subject{Kind: User, UserID: "u6",
			Teams: []Membership{
				{TeamID: "t1", MembershipID: "m1", Roles: []string{"admin", "admin"}},
				{TeamID: "t2", MembershipID: "m9"},
			},
			Labels: []string{"vip", "beta", "vip"}},
			[]string{"any", "users", "users/unverified", "user:u6", "user:u6/unverified",
				"team:t1", "team:t1/admin", "member:m1", "team:t2", "member:m9", "label:vip", "label:beta"}},
		{"labelled", labelled, []string{"any", "users", "users/verified", "user:u5", "user:u5/verified", "label:vip"}},
		{"API key", apiKey, nil},
		{"operator", operator, nil},
		{"unknown kind", Subject{Kind: 42, UserID: "u1"}, nil},
	}
	for _, tt := range tests {
		got := roleStrings(Roles(tt.s))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Roles = %q, want %q", tt.name, got, tt.want)
		}
		// Every role a valid subject holds must be expressible as a permission.
		for _, r := range got {
			if _, err := ParseRole(r); err != nil {
				t.Errorf("%s: held role %q does not parse: %v", tt.name, r, err)
			}
		}
	}
}

func perms(t *testing.T, ss ...string) []Permission {
	t.Helper()
	ps, err := ParsePermissions(ss)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestCheck(t *testing.T) {
	type subj struct {
		name string
		s    Subject
	}
	subjects := []subj{
		{"guest", guest}, {"unverified", unverified}, {"verified", verified},
		{"teamAdmin", teamAdmin}, {"teamPlain", teamPlain}, {"labelled", labelled},
		{"apiKey", apiKey}, {"operator", operator},
	}
	// For each role, which subjects hold it (API keys and operators bypass).
	holders := map[string][]string{
		"any":                {"guest", "unverified", "verified", "teamAdmin", "teamPlain", "labelled"},
		"guests":             {"guest"},
		"users":              {"unverified", "verified", "teamAdmin", "teamPlain", "labelled"},
		"users/verified":     {"verified", "teamAdmin", "labelled"},
		"users/unverified":   {"unverified", "teamPlain"},
		"user:u1":            {"unverified"},
		"user:u1/unverified": {"unverified"},
		"user:u1/verified":   {},
		"user:u2/verified":   {"verified"},
		"team:t1":            {"teamAdmin", "teamPlain"},
		"team:t1/admin":      {"teamAdmin"},
		"team:t1/member":     {},
		"team:t2":            {},
		"member:m1":          {"teamAdmin"},
		"member:m2":          {"teamPlain"},
		"label:vip":          {"labelled"},
		"label:beta":         {},
	}
	actions := []Action{Read, Create, Update, Delete}
	for role, hs := range holders {
		for _, s := range subjects {
			holds := slices.Contains(hs, s.name)
			bypass := s.name == "apiKey" || s.name == "operator"
			for _, pa := range []Action{Read, Create, Update, Delete, Write} {
				p := perms(t, string(pa)+`("`+role+`")`)
				other := perms(t, `read("label:nobody")`)
				for _, a := range append(actions, Write) {
					want := bypass || holds && (pa == a || pa == Write && a != Read)
					cases := []struct {
						name                string
						container, item     []Permission
						itemSecurity, allow bool
					}{
						{"container", p, nil, false, want},
						{"container+itemSecurity", p, other, true, want},
						{"item, security off", other, p, false, bypass},
						{"item, security on", other, p, true, want},
						{"item only, security on", nil, p, true, want},
						{"nothing", nil, nil, true, bypass},
					}
					for _, c := range cases {
						if got := Check(s.s, a, c.container, c.item, c.itemSecurity); got != c.allow {
							t.Errorf("Check(%s, %s, %s: %s) = %v, want %v", s.name, a, c.name, p[0], got, c.allow)
						}
					}
				}
			}
		}
	}
}

func TestCheckCombined(t *testing.T) {
	tests := []struct {
		name         string
		s            Subject
		a            Action
		container    []Permission
		item         []Permission
		itemSecurity bool
		want         bool
	}{
		{"write needs all three: split over container and item", verified, Write,
			perms(t, `create("users")`), perms(t, `update("users")`, `delete("user:u2")`), true, true},
		{"write needs all three: delete missing", verified, Write,
			perms(t, `create("users")`, `update("users")`), nil, true, false},
		{"write needs all three: item ignored without security", verified, Write,
			perms(t, `create("users")`), perms(t, `update("users")`, `delete("user:u2")`), false, false},
		{"write permission grants write", teamAdmin, Write, perms(t, `write("team:t1/owner")`), nil, false, true},
		{"read not granted by write", teamAdmin, Read, perms(t, `write("any")`), nil, false, false},
		{"guest not a user", guest, Read, perms(t, `read("users")`), nil, false, false},
		{"user not a guest", verified, Read, perms(t, `read("guests")`), nil, false, false},
		{"team role of other team", teamAdmin, Read, perms(t, `read("team:t2/admin")`), nil, false, false},
		{"invalid action denied", verified, "READ", perms(t, `read("any")`), nil, false, false},
		{"empty action denied", verified, "", perms(t, `read("any")`), nil, false, false},
		{"unknown kind denied", Subject{Kind: 42}, Read, perms(t, `read("any")`), nil, false, false},
		{"API key with invalid action still bypasses", apiKey, Read, nil, nil, false, true},
	}
	for _, tt := range tests {
		if got := Check(tt.s, tt.a, tt.container, tt.item, tt.itemSecurity); got != tt.want {
			t.Errorf("%s: Check = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCanGrant(t *testing.T) {
	tests := []struct {
		name    string
		s       Subject
		perms   []string
		badRole string // "" means allowed
	}{
		{"guest grants any", guest, []string{`read("any")`, `write("guests")`}, ""},
		{"guest cannot grant users", guest, []string{`read("any")`, `read("users")`}, "users"},
		{"user grants own roles", teamAdmin, []string{`read("any")`, `read("users")`, `write("user:u3")`,
			`update("user:u3/verified")`, `read("users/verified")`, `delete("team:t1")`, `write("team:t1/admin")`,
			`read("member:m1")`}, ""},
		{"user cannot grant other user", verified, []string{`read("user:u2")`, `read("user:u1")`}, "user:u1"},
		{"unverified cannot grant verified", unverified, []string{`read("users/verified")`}, "users/verified"},
		{"user cannot grant guests", verified, []string{`read("guests")`}, "guests"},
		{"member cannot grant team role it lacks", teamPlain, []string{`read("team:t1")`, `write("team:t1/admin")`}, "team:t1/admin"},
		{"user cannot grant other team", teamAdmin, []string{`read("team:t2")`}, "team:t2"},
		{"user cannot grant other membership", teamAdmin, []string{`read("member:m2")`}, "member:m2"},
		{"labelled user grants label", labelled, []string{`read("label:vip")`}, ""},
		{"user cannot grant label it lacks", labelled, []string{`read("label:beta")`}, "label:beta"},
		{"empty list", unverified, nil, ""},
		{"API key grants anything", apiKey, []string{`read("user:x")`, `write("team:t9/owner")`, `read("guests")`, `read("label:z")`}, ""},
		{"operator grants anything", operator, []string{`read("member:x")`, `read("users/unverified")`}, ""},
		{"unknown kind grants nothing", Subject{Kind: 42}, []string{`read("any")`}, "any"},
	}
	for _, tt := range tests {
		err := CanGrant(tt.s, perms(t, tt.perms...))
		if tt.badRole == "" {
			if err != nil {
				t.Errorf("%s: CanGrant = %v, want nil", tt.name, err)
			}
			continue
		}
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindPermissionDenied || de.Field != "permissions" ||
			!strings.Contains(de.Message, `"`+tt.badRole+`"`) {
			t.Errorf("%s: CanGrant = %v, want permission denied on permissions naming %q", tt.name, err, tt.badRole)
		}
	}
}
