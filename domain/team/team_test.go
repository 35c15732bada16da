package team

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var (
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func create() Create {
	return Create{ID: "t1", ProjectID: "p1", Name: "Red", PrefsJSON: `{"b":1, "a":{"x":true}}`, Now: t0}
}

func mustDecide(t *testing.T, s State, c Command) []*eventsv1.Envelope {
	t.Helper()
	evs, err := Decide(s, c)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func teamOf(e *eventsv1.Envelope) *eventsv1.Team {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_TeamCreated:
		return p.TeamCreated.Team
	case *eventsv1.Envelope_TeamUpdated:
		return p.TeamUpdated.Team
	case *eventsv1.Envelope_TeamDeleted:
		return p.TeamDeleted.Team
	}
	return nil
}

func TestDecideTeam(t *testing.T) {
	created := mustDecide(t, nil, create())
	name, empty, long := "Blue", "", string(bytes.Repeat([]byte("x"), MaxNameLen+1))
	prefs, badPrefs, same := `{"theme":"dark"}`, `[1,2]`, `{"a":{"x":true},"b":1}`
	cases := []struct {
		name      string
		given     []*eventsv1.Envelope
		when      Command
		wantErr   domain.Kind
		wantField string
		wantN     int // events; 0 with no error: nothing changes
		check     func(t *testing.T, evs []*eventsv1.Envelope)
	}{
		{name: "create canonicalizes prefs", when: create(), wantN: 1, check: func(t *testing.T, evs []*eventsv1.Envelope) {
			tm := teamOf(evs[0])
			if tm.PrefsJson != `{"a":{"x":true},"b":1}` || tm.Name != "Red" || !tm.CreatedAt.AsTime().Equal(t0) {
				t.Fatalf("bad team %v", tm)
			}
		}},
		{name: "create without prefs", when: Create{ID: "t1", ProjectID: "p1", Name: "n", Now: t0}, wantN: 1, check: func(t *testing.T, evs []*eventsv1.Envelope) {
			if teamOf(evs[0]).PrefsJson != "{}" {
				t.Fatalf("prefs %q", teamOf(evs[0]).PrefsJson)
			}
		}},
		{name: "create with owner", when: func() Command { c := create(); c.Owner = &Owner{UserID: "u1"}; return c }(), wantN: 2, check: func(t *testing.T, evs []*eventsv1.Envelope) {
			m := evs[1].GetMembershipCreated().GetMembership()
			if m.Id != MemberID("t1", "u1") || m.UserId != "u1" || !m.Confirmed || len(m.Roles) != 1 || m.Roles[0] != RoleOwner ||
				!m.TeamCreatedAt.AsTime().Equal(t0) || !Live(teamOf(evs[0]), m) {
				t.Fatalf("bad owner membership %v", m)
			}
		}},
		{name: "create with owner roles", when: func() Command {
			c := create()
			c.Owner = &Owner{UserID: "u1", Roles: []string{"owner", "admin", "admin"}}
			return c
		}(), wantN: 2, check: func(t *testing.T, evs []*eventsv1.Envelope) {
			if r := evs[1].GetMembershipCreated().GetMembership().Roles; len(r) != 2 || r[0] != "admin" {
				t.Fatalf("roles %v", r)
			}
		}},
		{name: "create owner bad role", when: func() Command {
			c := create()
			c.Owner = &Owner{UserID: "u1", Roles: []string{"a/b"}}
			return c
		}(), wantErr: domain.KindInvalid, wantField: "roles"},
		{name: "create exists", given: created, when: create(), wantErr: domain.KindAlreadyExists},
		{name: "create bad id", when: func() Command { c := create(); c.ID = "a.b"; return c }(), wantErr: domain.KindInvalid, wantField: "team_id"},
		{name: "create empty name", when: func() Command { c := create(); c.Name = ""; return c }(), wantErr: domain.KindInvalid, wantField: "name"},
		{name: "create long name", when: func() Command { c := create(); c.Name = long; return c }(), wantErr: domain.KindInvalid, wantField: "name"},
		{name: "create array prefs", when: func() Command { c := create(); c.PrefsJSON = badPrefs; return c }(), wantErr: domain.KindInvalid, wantField: "prefs"},
		{name: "create null prefs", when: func() Command { c := create(); c.PrefsJSON = "null"; return c }(), wantErr: domain.KindInvalid, wantField: "prefs"},
		{name: "create trailing prefs", when: func() Command { c := create(); c.PrefsJSON = "{} {}"; return c }(), wantErr: domain.KindInvalid, wantField: "prefs"},
		{name: "create huge prefs", when: func() Command {
			c := create()
			c.PrefsJSON = `{"a":"` + string(bytes.Repeat([]byte("x"), MaxPrefsLen)) + `"}`
			return c
		}(), wantErr: domain.KindInvalid, wantField: "prefs"},
		{name: "rename", given: created, when: Update{Name: &name, Now: t1}, wantN: 1, check: func(t *testing.T, evs []*eventsv1.Envelope) {
			tm := teamOf(evs[0])
			if tm.Name != name || !tm.UpdatedAt.AsTime().Equal(t1) || !tm.CreatedAt.AsTime().Equal(t0) || tm.PrefsJson == "{}" {
				t.Fatalf("bad team %v", tm)
			}
		}},
		{name: "rename empty", given: created, when: Update{Name: &empty, Now: t1}, wantErr: domain.KindInvalid, wantField: "name"},
		{name: "replace prefs", given: created, when: Update{PrefsJSON: &prefs, Now: t1}, wantN: 1, check: func(t *testing.T, evs []*eventsv1.Envelope) {
			if teamOf(evs[0]).PrefsJson != prefs {
				t.Fatalf("prefs %q", teamOf(evs[0]).PrefsJson)
			}
		}},
		{name: "bad prefs", given: created, when: Update{PrefsJSON: &badPrefs, Now: t1}, wantErr: domain.KindInvalid, wantField: "prefs"},
		{name: "same prefs is no change", given: created, when: Update{PrefsJSON: &same, Now: t1}},
		{name: "update missing", when: Update{Name: &name, Now: t1}, wantErr: domain.KindNotFound},
		{name: "update deleted", given: append(append([]*eventsv1.Envelope{}, created...), mustDecide(t, Evolve(nil, created[0]), Delete{Now: t1})...), when: Update{Name: &name, Now: t1}, wantErr: domain.KindNotFound},
		{name: "delete carries last state", given: created, when: Delete{Now: t1}, wantN: 1, check: func(t *testing.T, evs []*eventsv1.Envelope) {
			if tm := teamOf(evs[0]); tm.Id != "t1" || tm.Name != "Red" {
				t.Fatalf("bad team %v", tm)
			}
		}},
		{name: "delete missing", when: Delete{Now: t1}, wantErr: domain.KindNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s State
			for _, e := range c.given {
				s = Evolve(s, e)
			}
			got, err := Decide(s, c.when)
			if c.wantErr != domain.KindInternal || c.wantField != "" {
				if err == nil || domain.KindOf(err) != c.wantErr {
					t.Fatalf("want %v error, got %v", c.wantErr, err)
				}
				if de, _ := err.(*domain.Error); c.wantField != "" && (de == nil || de.Field != c.wantField) {
					t.Fatalf("want field %q, got %v", c.wantField, err)
				}
				return
			}
			if err != nil || len(got) != c.wantN {
				t.Fatalf("want %d events, got %v, %v", c.wantN, got, err)
			}
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}

func TestEvolveIgnoresMembershipEvents(t *testing.T) {
	c := create()
	c.Owner = &Owner{UserID: "u1"}
	evs := mustDecide(t, nil, c)
	s := Evolve(nil, evs[0])
	if Evolve(s, evs[1]) != s {
		t.Fatal("a membership event changed the team")
	}
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
