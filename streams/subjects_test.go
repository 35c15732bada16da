package streams

import (
	"errors"
	"testing"
)

func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		SystemSubject("projects", "p1", "create"):              "cairn._sys.projects.p1.create",
		ProjectStream("p1"):                                    "PROJECT_p1",
		ProjectSubject("p1", "users", "U1", "update", "email"): "cairn.p1.users.U1.update.email",
		ProjectFilter("p-1"):                                   "cairn.p-1.>",
		ObjectStoreStream("p-1"):                               "OBJ_p-1",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if id, ok := ProjectFromStream("PROJECT_abc-1"); !ok || id != "abc-1" {
		t.Errorf("ProjectFromStream = %q, %v", id, ok)
	}
	if _, ok := ProjectFromStream("OBJ_abc"); ok {
		t.Error("OBJ_abc is not a project stream")
	}
}

func TestValidateProject(t *testing.T) {
	for _, id := range []string{"a", "p1", "my-client-prod", "0123456789012345678901234567890123456"[:36]} {
		if err := ValidateProject(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"", "-a", "A", "a.b", "a*", "a>", "_sys", "a b", "0123456789012345678901234567890123456"} {
		if err := ValidateProject(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted", id)
		}
	}
}

func TestValidRelativeFilter(t *testing.T) {
	for _, f := range []string{">", "*", "users.*.create", "databases.db1.collections.c1.documents.>", "a.*.*.>", "users.U_1-x"} {
		if err := ValidRelativeFilter(f); err != nil {
			t.Errorf("%q: %v", f, err)
		}
	}
	for _, f := range []string{"", ".", "a.", ".a", "a..b", ">.a", "a.>.b", "a*", "a.b*", "a.>x", "a b", "a.\tb", "a.\x00", "a\r\n"} {
		if err := ValidRelativeFilter(f); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted", f)
		}
	}
}
