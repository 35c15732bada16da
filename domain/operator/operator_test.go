package operator

import (
	"errors"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func created(t *testing.T) State {
	t.Helper()
	evs, err := Decide(nil, Create{Email: " Ana@Example.com", Name: "Ana", PasswordHash: "h1",
		Roles: []*eventsv1.OperatorRole{{ProjectId: "b", Role: "viewer"}, {ProjectId: "a", Role: "owner"}}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return Evolve(nil, evs[0])
}

func kindOf(err error) domain.Kind {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Kind
	}
	return domain.KindInternal
}

func TestCreate(t *testing.T) {
	o := created(t)
	if o.GetEmail() != "ana@example.com" || o.GetId() != ID("ANA@example.com") || o.GetRoles()[0].GetProjectId() != "a" {
		t.Fatalf("created %v", o)
	}
	cases := []struct {
		name  string
		state State
		cmd   Create
		kind  domain.Kind
		field string
	}{
		{"exists", o, Create{Email: "ana@example.com", PasswordHash: "h"}, domain.KindAlreadyExists, "email"},
		{"no email", nil, Create{Email: "ana", PasswordHash: "h"}, domain.KindInvalid, "email"},
		{"no password", nil, Create{Email: "x@y"}, domain.KindInvalid, "password"},
		{"bad role", nil, Create{Email: "x@y", PasswordHash: "h", Roles: []*eventsv1.OperatorRole{{ProjectId: "a", Role: "root"}}}, domain.KindInvalid, "roles"},
		{"bad project", nil, Create{Email: "x@y", PasswordHash: "h", Roles: []*eventsv1.OperatorRole{{ProjectId: "A.b", Role: "owner"}}}, domain.KindInvalid, "roles"},
		{"two roles on one project", nil, Create{Email: "x@y", PasswordHash: "h", Roles: []*eventsv1.OperatorRole{{ProjectId: "a", Role: "owner"}, {ProjectId: "a", Role: "viewer"}}}, domain.KindInvalid, "roles"},
	}
	for _, c := range cases {
		_, err := Decide(c.state, c.cmd)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != c.kind || de.Field != c.field {
			t.Errorf("%s: got %v, want %v on %s", c.name, err, c.kind, c.field)
		}
	}
}

func TestSessions(t *testing.T) {
	o := created(t)
	for i := range MaxSessions + 3 {
		evs, err := Decide(o, SignIn{SessionID: string(rune('A' + i)), SecretHash: []byte{byte(i)}, ExpiresAt: t0.Add(time.Hour), Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		o = Evolve(o, evs[0])
	}
	if n := len(o.GetSessions()); n != MaxSessions {
		t.Fatalf("%d sessions kept, want %d", n, MaxSessions)
	}
	if first := o.GetSessions()[0].GetId(); first != "D" {
		t.Fatalf("oldest kept session %q: the oldest should have ended first", first)
	}
	// A later sign-in drops the expired ones.
	evs, err := Decide(o, SignIn{SessionID: "new", SecretHash: []byte("n"), ExpiresAt: t0.Add(3 * time.Hour), Now: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got := Evolve(o, evs[0]).GetSessions(); len(got) != 1 || got[0].GetId() != "new" {
		t.Fatalf("sessions after expiry: %v", got)
	}
	// Ending one, then all.
	evs, err = Decide(o, EndSessions{IDs: []string{"D"}, Now: t0})
	if err != nil || len(Evolve(o, evs[0]).GetSessions()) != MaxSessions-1 {
		t.Fatalf("end one: %v %v", evs, err)
	}
	evs, err = Decide(o, EndSessions{Now: t0})
	if err != nil || len(Evolve(o, evs[0]).GetSessions()) != 0 {
		t.Fatalf("end all: %v %v", evs, err)
	}
	// A new password ends every session.
	h := "h2"
	evs, err = Decide(o, Update{PasswordHash: &h, Now: t0})
	if err != nil || len(Evolve(o, evs[0]).GetSessions()) != 0 {
		t.Fatalf("password change: %v %v", evs, err)
	}
	// The account's own change keeps the session that made it.
	evs, err = Decide(o, Update{PasswordHash: &h, KeepSession: "D", Now: t0})
	if got := Evolve(o, evs[0]).GetSessions(); err != nil || len(got) != 1 || got[0].GetId() != "D" {
		t.Fatalf("own password change: %v %v", got, err)
	}
	// Nothing to end, nothing changed: no event.
	if evs, err := Decide(created(t), EndSessions{Now: t0}); err != nil || len(evs) != 0 {
		t.Fatalf("ending no sessions: %v %v", evs, err)
	}
}

func TestMissingAndDeleted(t *testing.T) {
	for _, cmd := range []Command{Update{Now: t0}, Delete{Now: t0}, SignIn{Now: t0}, EndSessions{Now: t0}} {
		if _, err := Decide(nil, cmd); kindOf(err) != domain.KindNotFound {
			t.Errorf("%T on a missing account: %v", cmd, err)
		}
	}
	o := created(t)
	evs, err := Decide(o, Delete{Now: t0})
	if err != nil || Evolve(o, evs[0]) != nil {
		t.Fatalf("delete: %v %v", evs, err)
	}
	if RoleMap(o)["a"] != "owner" || RoleMap(o)["b"] != "viewer" || len(RoleMap(nil)) != 0 {
		t.Fatalf("role map %v", RoleMap(o))
	}
}

func TestSetMfa(t *testing.T) {
	o := created(t)
	on := &eventsv1.Mfa{Enabled: true, TotpVerified: true, TotpSecretSealed: []byte("sealed")}
	evs, err := Decide(o, SetMfa{Mfa: on, Now: t0})
	if err != nil || !Evolve(o, evs[0]).GetMfa().GetEnabled() {
		t.Fatalf("enable: %v %v", evs, err)
	}
	o = Evolve(o, evs[0])
	// The same state again: no event.
	if evs, err := Decide(o, SetMfa{Mfa: on, Now: t0}); err != nil || len(evs) != 0 {
		t.Fatalf("unchanged: %v %v", evs, err)
	}
	evs, err = Decide(o, SignIn{SessionID: "s", SecretHash: []byte{1}, ExpiresAt: t0.Add(time.Hour), Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	o = Evolve(o, evs[0])
	// An administrator's reset clears the factor and ends the sessions.
	evs, err = Decide(o, SetMfa{Mfa: &eventsv1.Mfa{}, EndSessions: true, Now: t0})
	if got := Evolve(o, evs[0]); err != nil || got.GetMfa() != nil || len(got.GetSessions()) != 0 {
		t.Fatalf("reset: %v %v", got, err)
	}
	if _, err := Decide(nil, SetMfa{Now: t0}); kindOf(err) != domain.KindNotFound {
		t.Fatalf("missing account: %v", err)
	}
}

func TestInvitation(t *testing.T) {
	inv := Invite{Email: "Ivy@Example.com", Name: "Ivy", Roles: []*eventsv1.OperatorRole{{ProjectId: "a", Role: "viewer"}},
		SecretHash: []byte("h"), ExpiresAt: t0.Add(time.Hour), InvitedBy: "admin@example.com", Now: t0}
	evs, err := Decide(nil, inv)
	if err != nil {
		t.Fatal(err)
	}
	o := Evolve(nil, evs[0])
	if !Pending(o) || o.GetEmail() != "ivy@example.com" || o.GetId() != ID("ivy@example.com") || o.GetPasswordHash() != "" {
		t.Fatalf("pending account: %v", o)
	}
	// A wrong secret, then an expired one, then the right one once.
	if _, err := Decide(o, Accept{SecretHash: []byte("x"), PasswordHash: "p", Now: t0}); !errors.Is(err, ErrNoInvitation) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := Decide(o, Accept{SecretHash: []byte("h"), PasswordHash: "p", Now: t0.Add(2 * time.Hour)}); kindOf(err) != domain.KindFailedPrecondition {
		t.Fatalf("expired: %v", err)
	}
	if _, err := Decide(nil, Accept{SecretHash: []byte("h"), PasswordHash: "p", Now: t0}); !errors.Is(err, ErrNoInvitation) {
		t.Fatalf("no account: %v", err)
	}
	evs, err = Decide(o, Accept{SecretHash: []byte("h"), PasswordHash: "p", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	acc := Evolve(o, evs[0])
	if Pending(acc) || acc.GetPasswordHash() != "p" {
		t.Fatalf("accepted: %v", acc)
	}
	if _, err := Decide(acc, Accept{SecretHash: []byte("h"), PasswordHash: "q", Now: t0}); !errors.Is(err, ErrNoInvitation) {
		t.Fatalf("second use: %v", err)
	}
	if _, err := Decide(acc, RevokeInvitation{Now: t0}); kindOf(err) != domain.KindFailedPrecondition {
		t.Fatalf("revoke an accepted one: %v", err)
	}
	// Inviting an account adds roles, replacing the one on the same project.
	more := inv
	more.Roles = []*eventsv1.OperatorRole{{ProjectId: "a", Role: "owner"}, {ProjectId: "b", Role: "viewer"}}
	evs, err = Decide(acc, more)
	if err != nil {
		t.Fatal(err)
	}
	if got := RoleMap(Evolve(acc, evs[0])); len(got) != 2 || got["a"] != "owner" || got["b"] != "viewer" {
		t.Fatalf("roles after inviting an account: %v", got)
	}
	if _, ok := evs[0].GetPayload().(*eventsv1.Envelope_OperatorUpdated); !ok {
		t.Fatalf("inviting an account: %T", evs[0].GetPayload())
	}
	// An administrator's password for a pending account spends the invitation.
	pw := "set"
	evs, err = Decide(o, Update{PasswordHash: &pw, Now: t0})
	if err != nil || Pending(Evolve(o, evs[0])) {
		t.Fatalf("password on a pending account: %v %v", evs, err)
	}
	// Revoking a pending one removes it.
	evs, err = Decide(o, RevokeInvitation{Now: t0})
	if err != nil || Evolve(o, evs[0]) != nil {
		t.Fatalf("revoke: %v %v", evs, err)
	}
}
