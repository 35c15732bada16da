package access

import (
	"errors"
	"slices"
	"testing"

	validate "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"time"

	"github.com/cairn-dev/cairn/domain"
)

func TestAuthorize(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := Principal{Kind: APIKey, Project: "p1", ID: "k1", Scopes: []string{"keys.read"}}
	expired := key
	expired.ExpiresAt = now
	cases := []struct {
		name    string
		p       Principal
		project string
		scope   Scope
		want    domain.Kind // KindInternal means allowed
	}{
		{"operator anything", Principal{Kind: Operator}, "p2", "", domain.KindInternal},
		{"key own project with scope", key, "p1", KeysRead, domain.KindInternal},
		{"key lacks scope", key, "p1", KeysWrite, domain.KindPermissionDenied},
		{"key foreign project", key, "p2", KeysRead, domain.KindPermissionDenied},
		{"key operator-only call", key, "p1", "", domain.KindPermissionDenied},
		{"expired key", expired, "p1", KeysRead, domain.KindUnauthenticated},
		{"anonymous", Principal{}, "p1", KeysRead, domain.KindUnauthenticated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Authorize(c.p, c.project, c.scope, now)
			if c.want == domain.KindInternal {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			if got := domain.KindOf(err); err == nil || got != c.want {
				t.Fatalf("want %v, got %v (%v)", c.want, got, err)
			}
		})
	}
}

func TestCanGrant(t *testing.T) {
	key := Principal{Kind: APIKey, Project: "p1", Scopes: []string{"keys.write", "keys.read"}}
	if err := CanGrant(key, []string{"keys.read"}); err != nil {
		t.Fatalf("subset refused: %v", err)
	}
	if err := CanGrant(key, []string{"keys.read", "documents.write"}); domain.KindOf(err) != domain.KindPermissionDenied {
		t.Fatalf("escalation allowed: %v", err)
	}
	if err := CanGrant(Principal{Kind: Operator}, []string{"documents.write"}); err != nil {
		t.Fatalf("operator refused: %v", err)
	}
}

func TestScopesMatchProto(t *testing.T) {
	// The API validates scopes with a protovalidate "in" list; it must name
	// exactly the scopes this package knows.
	fd := (&cairnv1.Scopes{}).ProtoReflect().Descriptor().Fields().ByName("scopes")
	rules := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	in := rules.GetRepeated().GetItems().GetString().GetIn()
	var want []string
	for _, s := range Scopes {
		want = append(want, string(s))
	}
	if !slices.Equal(in, want) {
		t.Fatalf("proto scopes %v\n    domain scopes %v", in, want)
	}
}

func TestRoles(t *testing.T) {
	now := time.Now()
	m := Principal{Kind: Member, ID: "o1", Roles: map[string]Role{"a": Viewer, "b": Developer, "c": Owner}}
	cases := []struct {
		project string
		scope   Scope
		want    domain.Kind // KindInternal: allowed
	}{
		{"a", DocumentsRead, domain.KindInternal},
		{"a", DocumentsWrite, domain.KindPermissionDenied},
		{"a", KeysRead, domain.KindInternal},
		{"b", DocumentsWrite, domain.KindInternal},
		{"b", KeysWrite, domain.KindPermissionDenied},
		{"c", KeysWrite, domain.KindInternal},
		{"c", "", domain.KindPermissionDenied},
		{"d", DocumentsRead, domain.KindNotFound},
		{"d", "", domain.KindNotFound},
	}
	for _, c := range cases {
		err := Authorize(m, c.project, c.scope, now)
		got := domain.KindInternal
		if de, ok := errors.AsType[*domain.Error](err); ok {
			got = de.Kind
		} else if err != nil {
			t.Fatalf("%s %s: unclassified %v", c.project, c.scope, err)
		}
		if got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.scope, c.project, err, c.want)
		}
	}
	if !Owner.AtLeast(Developer) || Viewer.AtLeast(Developer) || !Developer.AtLeast(Developer) || Role("x").AtLeast(Viewer) {
		t.Error("role order")
	}
	// A role is a key with its scopes: a developer cannot grant keys.write.
	if err := CanGrant(m.In("b"), []string{"documents.write"}); err != nil {
		t.Error(err)
	}
	if err := CanGrant(m.In("b"), []string{"keys.write"}); err == nil {
		t.Error("a developer granted keys.write")
	}
	if err := CanGrant(m.In("d"), []string{"documents.read"}); err == nil {
		t.Error("a member granted a scope on a project it has no role on")
	}
	expired := m
	expired.ExpiresAt = now.Add(-time.Second)
	if err := Authorize(expired, "c", DocumentsRead, now); err == nil {
		t.Error("an expired console session was accepted")
	}
}
