package team

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func TestDerivedIDs(t *testing.T) {
	id := MemberID("t1", "u1")
	if !domain.ValidResourceID(id) || len(id) != 32 {
		t.Fatalf("bad id %q", id)
	}
	if MemberID("t1", "u1") != id || MemberID("t2", "u1") == id || MemberID("t1", "u2") == id {
		t.Fatal("member ids not per (team, user)")
	}
	if InviteID("t1", " A@Example.com") != InviteID("t1", "a@example.com") || InviteID("t1", "u1") == MemberID("t1", "u1") {
		t.Fatal("invite ids not per (team, lower-cased email) or collide with member ids")
	}
}

func TestDecideMembership(t *testing.T) {
	tc := create()
	team := Evolve(nil, mustDecide(t, nil, tc)[0])
	// The same id, created again after a delete.
	tc.Now = t1
	reborn := Evolve(nil, mustDecide(t, nil, tc)[0])
	add := AddMember{ID: MemberID("t1", "u1"), ProjectID: "p1", UserID: "u1", Roles: []string{"owner"}, Now: t0}
	secret := hashOf("s3cret")
	invite := Invite{ID: InviteID("t1", "Bob@Example.com"), ProjectID: "p1", Email: "Bob@Example.com", Roles: []string{"dev"}, SecretHash: secret, Now: t0}
	md := func(s MembershipState, c MembershipCommand) []*eventsv1.Envelope {
		evs, err := DecideMembership(team, s, c)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	added := md(nil, add)
	invited := md(nil, invite)
	accepted := append(append([]*eventsv1.Envelope{}, invited...), md(EvolveMembership(nil, invited[0]), Accept{UserID: "u2", SecretHash: secret, Now: t1})...)
	removed := append(append([]*eventsv1.Envelope{}, added...), md(EvolveMembership(nil, added[0]), Remove{Now: t1})...)

	cases := []struct {
		name      string
		team      State
		given     []*eventsv1.Envelope
		when      MembershipCommand
		wantErr   domain.Kind
		wantField string
		wantNone  bool
		check     func(t *testing.T, m *eventsv1.Membership)
	}{
		{name: "add", when: add, check: func(t *testing.T, m *eventsv1.Membership) {
			if !m.Confirmed || m.UserId != "u1" || m.TeamId != "t1" || !m.JoinedAt.AsTime().Equal(t0) || m.Email != "" || !Live(team, m) {
				t.Fatalf("bad membership %v", m)
			}
		}},
		{name: "add to missing team", team: nil, when: add, wantErr: domain.KindNotFound},
		{name: "add twice", given: added, when: add, wantErr: domain.KindAlreadyExists},
		{name: "add after remove", given: removed, when: add, check: func(t *testing.T, m *eventsv1.Membership) {}},
		{name: "add bad user", when: AddMember{ID: MemberID("t1", "a.b"), UserID: "a.b", Now: t0}, wantErr: domain.KindInvalid, wantField: "user_id"},
		{name: "add chosen id", when: AddMember{ID: "mine", UserID: "u1", Now: t0}, wantErr: domain.KindInternal},
		{name: "add bad role", when: func() MembershipCommand { c := add; c.Roles = []string{"owner", "no spaces"}; return c }(), wantErr: domain.KindInvalid, wantField: "roles"},
		{name: "add empty role", when: func() MembershipCommand { c := add; c.Roles = []string{""}; return c }(), wantErr: domain.KindInvalid, wantField: "roles"},
		{name: "add too many roles", when: func() MembershipCommand {
			c := add
			c.Roles = make([]string, MaxRoles+1)
			for i := range c.Roles {
				c.Roles[i] = "r"
			}
			return c
		}(), wantErr: domain.KindInvalid, wantField: "roles"},
		{name: "stale membership of a deleted team is gone", team: reborn, given: added, when: add, check: func(t *testing.T, m *eventsv1.Membership) {
			if !m.TeamCreatedAt.AsTime().Equal(t1) {
				t.Fatalf("membership of the old team: %v", m)
			}
		}},
		{name: "stale membership cannot be updated", team: reborn, given: added, when: UpdateRoles{Roles: []string{"x"}, Now: t1}, wantErr: domain.KindNotFound},
		{name: "invite", when: invite, check: func(t *testing.T, m *eventsv1.Membership) {
			if m.Confirmed || m.UserId != "" || m.Email != "bob@example.com" || m.JoinedAt != nil || len(m.InviteSecretHash) != 32 {
				t.Fatalf("bad invitation %v", m)
			}
		}},
		{name: "invite twice", given: invited, when: invite, wantErr: domain.KindAlreadyExists},
		{name: "invite bad email", when: Invite{ID: InviteID("t1", "nope"), Email: "nope", SecretHash: secret, Now: t0}, wantErr: domain.KindInvalid, wantField: "email"},
		{name: "invite no hash", when: func() MembershipCommand { c := invite; c.SecretHash = nil; return c }(), wantErr: domain.KindInternal},
		{name: "update roles", given: added, when: UpdateRoles{Roles: []string{"dev", "admin", "dev"}, Now: t1}, check: func(t *testing.T, m *eventsv1.Membership) {
			if len(m.Roles) != 2 || m.Roles[0] != "admin" || !m.UpdatedAt.AsTime().Equal(t1) {
				t.Fatalf("bad roles %v", m)
			}
		}},
		{name: "update same roles", given: added, when: UpdateRoles{Roles: []string{"owner"}, Now: t1}, wantNone: true},
		{name: "update to no roles", given: added, when: UpdateRoles{Roles: nil, Now: t1}, check: func(t *testing.T, m *eventsv1.Membership) {
			if len(m.Roles) != 0 {
				t.Fatalf("roles kept %v", m.Roles)
			}
		}},
		{name: "update missing", when: UpdateRoles{Now: t1}, wantErr: domain.KindNotFound},
		{name: "update bad role", given: added, when: UpdateRoles{Roles: []string{"a:b"}, Now: t1}, wantErr: domain.KindInvalid, wantField: "roles"},
		{name: "accept", given: invited, when: Accept{UserID: "u2", SecretHash: secret, Now: t1}, check: func(t *testing.T, m *eventsv1.Membership) {
			if !m.Confirmed || m.UserId != "u2" || m.InviteSecretHash != nil || !m.JoinedAt.AsTime().Equal(t1) || m.Email != "bob@example.com" {
				t.Fatalf("bad accepted membership %v", m)
			}
		}},
		{name: "accept wrong secret", given: invited, when: Accept{UserID: "u2", SecretHash: hashOf("guess"), Now: t1}, wantErr: domain.KindPermissionDenied, wantField: "secret"},
		{name: "accept twice", given: accepted, when: Accept{UserID: "u2", SecretHash: secret, Now: t1}, wantErr: domain.KindFailedPrecondition},
		{name: "accept direct member", given: added, when: Accept{UserID: "u1", SecretHash: secret, Now: t1}, wantErr: domain.KindFailedPrecondition},
		{name: "accept bad user", given: invited, when: Accept{UserID: "", SecretHash: secret, Now: t1}, wantErr: domain.KindInvalid, wantField: "user_id"},
		{name: "accept missing", when: Accept{UserID: "u2", SecretHash: secret, Now: t1}, wantErr: domain.KindNotFound},
		{name: "remove carries last state", given: accepted, when: Remove{Now: t1}, check: func(t *testing.T, m *eventsv1.Membership) {
			if m.UserId != "u2" || !m.Confirmed {
				t.Fatalf("bad last state %v", m)
			}
		}},
		{name: "remove twice", given: removed, when: Remove{Now: t1}, wantErr: domain.KindNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm := team
			if c.team != nil || c.name == "add to missing team" {
				tm = c.team
			}
			var s MembershipState
			for _, e := range c.given {
				s = EvolveMembership(s, e)
			}
			got, err := DecideMembership(tm, s, c.when)
			if c.check == nil && !c.wantNone {
				if err == nil || domain.KindOf(err) != c.wantErr {
					t.Fatalf("want %v error, got %v", c.wantErr, err)
				}
				if de, _ := err.(*domain.Error); c.wantField != "" && (de == nil || de.Field != c.wantField) {
					t.Fatalf("want field %q, got %v", c.wantField, err)
				}
				return
			}
			if c.wantNone {
				if err != nil || len(got) != 0 {
					t.Fatalf("want no events, got %v, %v", got, err)
				}
				return
			}
			if err != nil || len(got) != 1 {
				t.Fatalf("want one event, got %v, %v", got, err)
			}
			var m *eventsv1.Membership
			switch p := got[0].GetPayload().(type) {
			case *eventsv1.Envelope_MembershipCreated:
				m = p.MembershipCreated.Membership
			case *eventsv1.Envelope_MembershipUpdated:
				m = p.MembershipUpdated.Membership
			case *eventsv1.Envelope_MembershipDeleted:
				m = p.MembershipDeleted.Membership
			}
			c.check(t, m)
		})
	}
}

func TestLive(t *testing.T) {
	tm := &eventsv1.Team{Id: "t1", CreatedAt: timestamppb.New(t0)}
	m := &eventsv1.Membership{TeamId: "t1", TeamCreatedAt: timestamppb.New(t0)}
	if !Live(tm, m) || Live(nil, m) || Live(tm, nil) {
		t.Fatal("Live wrong for present/absent")
	}
	if Live(&eventsv1.Team{Id: "t1", CreatedAt: timestamppb.New(t1)}, m) || Live(&eventsv1.Team{Id: "t2", CreatedAt: timestamppb.New(t0)}, m) {
		t.Fatal("membership of another team incarnation counted as live")
	}
}
