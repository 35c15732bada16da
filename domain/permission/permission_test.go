package permission

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
)

func TestParseRoleRoundTrip(t *testing.T) {
	id36 := strings.Repeat("a", 36)
	tests := []struct {
		in   string
		want Role
	}{
		{"any", Role{Kind: RoleAny}},
		{"guests", Role{Kind: RoleGuests}},
		{"users", Role{Kind: RoleUsers}},
		{"users/verified", Role{Kind: RoleUsers, Dimension: Verified}},
		{"users/unverified", Role{Kind: RoleUsers, Dimension: Unverified}},
		{"user:abc", Role{Kind: RoleUser, ID: "abc"}},
		{"user:A1_b-2", Role{Kind: RoleUser, ID: "A1_b-2"}},
		{"user:" + id36, Role{Kind: RoleUser, ID: id36}},
		{"user:abc/verified", Role{Kind: RoleUser, ID: "abc", Dimension: Verified}},
		{"user:abc/unverified", Role{Kind: RoleUser, ID: "abc", Dimension: Unverified}},
		{"team:t1", Role{Kind: RoleTeam, ID: "t1"}},
		{"team:t1/admin", Role{Kind: RoleTeam, ID: "t1", Dimension: "admin"}},
		{"team:t1/owner_2-x", Role{Kind: RoleTeam, ID: "t1", Dimension: "owner_2-x"}},
		{"team:t1/_", Role{Kind: RoleTeam, ID: "t1", Dimension: "_"}},
		{"team:t1/" + strings.Repeat("r", 32), Role{Kind: RoleTeam, ID: "t1", Dimension: strings.Repeat("r", 32)}},
		{"member:m1", Role{Kind: RoleMember, ID: "m1"}},
		{"label:vip", Role{Kind: RoleLabel, ID: "vip"}},
		{"label:" + strings.Repeat("L", 36), Role{Kind: RoleLabel, ID: strings.Repeat("L", 36)}},
		{"label:0", Role{Kind: RoleLabel, ID: "0"}},
	}
	for _, tt := range tests {
		got, err := ParseRole(tt.in)
		if err != nil {
			t.Errorf("ParseRole(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRole(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseRole(%q).String() = %q", tt.in, s)
		}
	}
}

func TestParseRoleRejects(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"", "role is empty"},
		{"Any", "unknown role"},
		{"any ", "unknown role"},
		{" any", "unknown role"},
		{"guest", "unknown role"},
		{"user", "unknown role"},
		{"users/", "unknown users dimension"},
		{"users/admin", "unknown users dimension"},
		{"users/Verified", "unknown users dimension"},
		{"user:", "user id is empty"},
		{"user:/verified", "user id is empty"},
		{"user:_abc", "user id"},
		{"user:-abc", "user id"},
		{"user:a.b", "user id"},
		{"user:a b", "user id"},
		{"user:" + strings.Repeat("a", 37), "user id"},
		{"user:abc/", "unknown user dimension"},
		{"user:abc/admin", "unknown user dimension"},
		{"user:abc/verified/x", "unknown user dimension"},
		{"team:", "team id is empty"},
		{"team:/admin", "team id is empty"},
		{"team:t/", "team role is empty"},
		{"team:t/a b", "team role"},
		{"team:t/a/b", "team role"},
		{"team:t/" + strings.Repeat("r", 33), "team role"},
		{"team:t.1", "team id"},
		{"member:", "membership id is empty"},
		{"member:m/x", "membership id"},
		{"label:", "label name is empty"},
		{"label:a b", "label name"},
		{"label:a_b", "label name"},
		{"label:a-b", "label name"},
		{"label:" + strings.Repeat("a", 37), "label name"},
		{"group:g1", "unknown role"},
		{"any:x", "unknown role"},
		{"USER:abc", "unknown role"},
		{`"any"`, "unknown role"},
	}
	for _, tt := range tests {
		_, err := ParseRole(tt.in)
		var de *domain.Error
		if !errors.As(err, &de) {
			t.Errorf("ParseRole(%q) err = %v, want *domain.Error", tt.in, err)
			continue
		}
		if de.Kind != domain.KindInvalid || de.Field != "role" || !strings.Contains(de.Message, tt.reason) {
			t.Errorf("ParseRole(%q) = %v (kind %v, field %q), want invalid role containing %q", tt.in, err, de.Kind, de.Field, tt.reason)
		}
	}
}

func TestParsePermission(t *testing.T) {
	for _, a := range []Action{Read, Create, Update, Delete, Write} {
		for _, r := range []string{"any", "guests", "users", "users/verified", "users/unverified",
			"user:abc", "user:abc/verified", "user:abc/unverified", "team:t1", "team:t1/admin",
			"member:m1", "label:vip"} {
			in := fmt.Sprintf("%s(%q)", a, r)
			p, err := ParsePermission(in)
			if err != nil {
				t.Errorf("ParsePermission(%q): %v", in, err)
				continue
			}
			role, _ := ParseRole(r)
			if p != (Permission{Action: a, Role: role}) {
				t.Errorf("ParsePermission(%q) = %+v", in, p)
			}
			if p.String() != in {
				t.Errorf("ParsePermission(%q).String() = %q", in, p.String())
			}
		}
	}
}

func TestParsePermissionRejects(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"", "permission is empty"},
		{"read", "not of the form"},
		{"any", "not of the form"},
		{`read(any)`, "double quotes"},
		{`read('any')`, "double quotes"},
		{`read("any"`, `must end with ")"`},
		{`read("any)`, "double quotes"},
		{`read(any")`, "double quotes"},
		{`read(")`, "double quotes"},
		{`read()`, "double quotes"},
		{`read("")`, "role is empty"},
		{`READ("any")`, `unknown action "READ"`},
		{`Read("any")`, `unknown action "Read"`},
		{`reed("any")`, `unknown action "reed"`},
		{`write ("any")`, `unknown action "write "`},
		{` read("any")`, `unknown action " read"`},
		{`("any")`, `unknown action ""`},
		{`read("any") `, `must end with ")"`},
		{`read("any")` + "\n", `must end with ")"`},
		{`read( "any")`, "double quotes"},
		{`read("any" )`, "double quotes"},
		{`read(" any")`, "unknown role"},
		{`read("any ")`, "unknown role"},
		{`read("any"))`, "double quotes"},
		{`read(("any"))`, "double quotes"},
		{`read("any","users")`, "unknown role"},
		{`read("user:")`, "user id is empty"},
		{`read("team:t/")`, "team role is empty"},
		{`read("label:a b")`, "label name"},
		{`update("user:abc/admin")`, "unknown user dimension"},
		{`delete("member:")`, "membership id is empty"},
		{`create("nobody")`, "unknown role"},
		{`read("an"y")`, "unknown role"},
	}
	for _, tt := range tests {
		_, err := ParsePermission(tt.in)
		var de *domain.Error
		if !errors.As(err, &de) {
			t.Errorf("ParsePermission(%q) err = %v, want *domain.Error", tt.in, err)
			continue
		}
		if de.Kind != domain.KindInvalid || de.Field != "permissions" || !strings.Contains(de.Message, tt.reason) {
			t.Errorf("ParsePermission(%q) = %v (kind %v, field %q), want invalid permissions containing %q", tt.in, err, de.Kind, de.Field, tt.reason)
		}
	}
}

func TestParsePermissions(t *testing.T) {
	got, err := ParsePermissions(nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("ParsePermissions(nil) = %v, %v", got, err)
	}
	in := []string{`read("any")`, `write("team:t1/admin")`, `create("any")`, `update("user:abc")`}
	got, err = ParsePermissions(in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(Strings(got), in) {
		t.Fatalf("Strings(ParsePermissions(%q)) = %q", in, Strings(got))
	}

	hundred := make([]string, MaxPermissions)
	for i := range hundred {
		hundred[i] = fmt.Sprintf(`read("user:u%d")`, i)
	}
	if _, err := ParsePermissions(hundred); err != nil {
		t.Fatalf("100 permissions: %v", err)
	}

	tests := []struct {
		name   string
		in     []string
		reason string
	}{
		{"too many", append(slices.Clone(hundred), `read("any")`), "at most 100 permissions, got 101"},
		{"duplicate", []string{`read("any")`, `write("users")`, `read("any")`}, "entry 2: duplicate of entry 0"},
		{"malformed entry", []string{`read("any")`, `read(any)`}, "entry 1:"},
	}
	for _, tt := range tests {
		_, err := ParsePermissions(tt.in)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field != "permissions" || !strings.Contains(de.Message, tt.reason) {
			t.Errorf("%s: err = %v, want invalid permissions containing %q", tt.name, err, tt.reason)
		}
	}
}

func TestExpandAndGrants(t *testing.T) {
	tests := []struct {
		a    Action
		want []Action
	}{
		{Read, []Action{Read}},
		{Create, []Action{Create}},
		{Update, []Action{Update}},
		{Delete, []Action{Delete}},
		{Write, []Action{Create, Update, Delete}},
		{"READ", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := Expand(tt.a); !slices.Equal(got, tt.want) {
			t.Errorf("Expand(%q) = %v, want %v", tt.a, got, tt.want)
		}
	}
	all := []Action{Read, Create, Update, Delete, Write}
	want := map[Action][]Action{
		Read:   {Read},
		Create: {Create},
		Update: {Update},
		Delete: {Delete},
		Write:  {Create, Update, Delete},
	}
	for _, pa := range all {
		p := Permission{Action: pa, Role: Role{Kind: RoleAny}}
		for _, a := range all {
			if got := p.Grants(a); got != slices.Contains(want[pa], a) {
				t.Errorf("%s.Grants(%s) = %v", p, a, got)
			}
		}
	}
}
