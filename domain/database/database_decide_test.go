package database

import (
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var (
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func ptr[T any](v T) *T { return &v }

func createDB() CreateDatabase {
	return CreateDatabase{ID: "db1", ProjectID: "p1", Name: "Main", Enabled: true, UID: "U1", Now: t0}
}

func databaseOf(e *eventsv1.Envelope) *eventsv1.Database {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_DatabaseCreated:
		return p.DatabaseCreated.Database
	case *eventsv1.Envelope_DatabaseUpdated:
		return p.DatabaseUpdated.Database
	case *eventsv1.Envelope_DatabaseDeleted:
		return p.DatabaseDeleted.Database
	}
	return nil
}

func TestDecideDatabase(t *testing.T) {
	created, err := DecideDatabase(nil, createDB())
	if err != nil {
		t.Fatal(err)
	}
	live := EvolveDatabase(nil, created[0])
	cases := []struct {
		name      string
		state     DatabaseState
		when      DatabaseCommand
		wantErr   domain.Kind
		wantField string
		wantN     int
		check     func(t *testing.T, d *eventsv1.Database)
	}{
		{name: "create", when: createDB(), wantN: 1, check: func(t *testing.T, d *eventsv1.Database) {
			if d.Id != "db1" || d.ProjectId != "p1" || d.Name != "Main" || !d.Enabled || d.Uid != "U1" || !d.CreatedAt.AsTime().Equal(t0) || !d.UpdatedAt.AsTime().Equal(t0) {
				t.Fatalf("bad database %v", d)
			}
		}},
		{name: "create existing", state: live, when: createDB(), wantErr: domain.KindAlreadyExists},
		{name: "create bad id", when: CreateDatabase{ID: "a.b", Name: "n", UID: "U"}, wantErr: domain.KindInvalid, wantField: "database_id"},
		{name: "create empty name", when: CreateDatabase{ID: "a", UID: "U"}, wantErr: domain.KindInvalid, wantField: "name"},
		{name: "create long name", when: CreateDatabase{ID: "a", Name: string(make([]byte, MaxNameLen+1)), UID: "U"}, wantErr: domain.KindInvalid, wantField: "name"},
		{name: "update name", state: live, when: UpdateDatabase{Name: ptr("Other"), Now: t1}, wantN: 1, check: func(t *testing.T, d *eventsv1.Database) {
			if d.Name != "Other" || !d.Enabled || !d.UpdatedAt.AsTime().Equal(t1) || !d.CreatedAt.AsTime().Equal(t0) || d.Uid != "U1" {
				t.Fatalf("bad database %v", d)
			}
		}},
		{name: "update enabled", state: live, when: UpdateDatabase{Enabled: ptr(false), Now: t1}, wantN: 1, check: func(t *testing.T, d *eventsv1.Database) {
			if d.Enabled || d.Name != "Main" {
				t.Fatalf("bad database %v", d)
			}
		}},
		{name: "update no-op", state: live, when: UpdateDatabase{Name: ptr("Main"), Enabled: ptr(true), Now: t1}},
		{name: "update nothing", state: live, when: UpdateDatabase{Now: t1}},
		{name: "update bad name", state: live, when: UpdateDatabase{Name: ptr(""), Now: t1}, wantErr: domain.KindInvalid, wantField: "name"},
		{name: "update missing", when: UpdateDatabase{Name: ptr("x")}, wantErr: domain.KindNotFound},
		{name: "delete", state: live, when: DeleteDatabase{Now: t1}, wantN: 1, check: func(t *testing.T, d *eventsv1.Database) {
			if d.Id != "db1" || !d.UpdatedAt.AsTime().Equal(t1) {
				t.Fatalf("bad database %v", d)
			}
		}},
		{name: "delete missing", when: DeleteDatabase{Now: t1}, wantErr: domain.KindNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecideDatabase(tc.state, tc.when)
			if tc.wantErr != domain.KindInternal || err != nil {
				if domain.KindOf(err) != tc.wantErr {
					t.Fatalf("err %v (kind %v), want kind %v", err, domain.KindOf(err), tc.wantErr)
				}
				if e, _ := err.(*domain.Error); tc.wantField != "" && (e == nil || e.Field != tc.wantField) {
					t.Fatalf("err %v, want field %q", err, tc.wantField)
				}
				return
			}
			if len(evs) != tc.wantN {
				t.Fatalf("%d events, want %d", len(evs), tc.wantN)
			}
			if tc.check != nil {
				tc.check(t, databaseOf(evs[0]))
			}
		})
	}
	// The state was not modified in place by any decision.
	if live.Name != "Main" || !live.Enabled {
		t.Fatalf("state mutated: %v", live)
	}
}

func TestEvolveDatabase(t *testing.T) {
	created, _ := DecideDatabase(nil, createDB())
	s := EvolveDatabase(nil, created[0])
	upd, _ := DecideDatabase(s, UpdateDatabase{Name: ptr("B"), Now: t1})
	s = EvolveDatabase(s, upd[0])
	if s.GetName() != "B" {
		t.Fatalf("after update: %v", s)
	}
	del, _ := DecideDatabase(s, DeleteDatabase{Now: t1})
	if s = EvolveDatabase(s, del[0]); s != nil {
		t.Fatalf("after delete: %v", s)
	}
	// A deleted database can be created again (with a new uid).
	again := createDB()
	again.UID = "U2"
	if evs, err := DecideDatabase(s, again); err != nil || databaseOf(evs[0]).Uid != "U2" {
		t.Fatalf("re-create: %v %v", evs, err)
	}
	if got := EvolveDatabase(s, &eventsv1.Envelope{}); got != nil {
		t.Fatalf("foreign event changed state: %v", got)
	}
}
