package project

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var (
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func created(id, name string) *eventsv1.Envelope {
	p := &eventsv1.Project{Id: id, Name: name, Limits: &eventsv1.ProjectLimits{}, CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0)}
	return &eventsv1.Envelope{Payload: &eventsv1.Envelope_ProjectCreated{ProjectCreated: &eventsv1.ProjectCreated{Project: p}}}
}

func TestDecide(t *testing.T) {
	newName := "Renamed"
	empty := ""
	renamed := created("acme", "Renamed").GetProjectCreated().GetProject()
	renamed.UpdatedAt = timestamppb.New(t1)
	deleted := created("acme", "Acme").GetProjectCreated().GetProject()
	deleted.UpdatedAt = timestamppb.New(t1)
	cases := []struct {
		name    string
		given   []*eventsv1.Envelope
		when    Command
		then    []*eventsv1.Envelope
		wantErr domain.Kind
	}{
		{name: "create", when: Create{ID: "acme", Name: "Acme", Now: t0}, then: []*eventsv1.Envelope{created("acme", "Acme")}},
		{name: "create twice", given: []*eventsv1.Envelope{created("acme", "Acme")}, when: Create{ID: "acme", Name: "Acme", Now: t0}, wantErr: domain.KindAlreadyExists},
		{name: "create bad id", when: Create{ID: "Acme!", Name: "Acme", Now: t0}, wantErr: domain.KindInvalid},
		{name: "create no name", when: Create{ID: "acme", Now: t0}, wantErr: domain.KindInvalid},
		{name: "create negative limit", when: Create{ID: "acme", Name: "a", Limits: &eventsv1.ProjectLimits{MaxStreamBytes: -1}, Now: t0}, wantErr: domain.KindInvalid},
		{name: "create negative rate", when: Create{ID: "acme", Name: "a", Limits: &eventsv1.ProjectLimits{RequestsPerSecond: -1}, Now: t0}, wantErr: domain.KindInvalid},
		{name: "update rate too high", given: []*eventsv1.Envelope{created("acme", "Acme")}, when: Update{Limits: &eventsv1.ProjectLimits{RequestsPerSecond: MaxRequestRate + 1}, Now: t1}, wantErr: domain.KindInvalid},
		{name: "update negative burst", given: []*eventsv1.Envelope{created("acme", "Acme")}, when: Update{Limits: &eventsv1.ProjectLimits{RequestBurst: -5}, Now: t1}, wantErr: domain.KindInvalid},
		{name: "rename", given: []*eventsv1.Envelope{created("acme", "Acme")}, when: Update{Name: &newName, Now: t1},
			then: []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ProjectUpdated{ProjectUpdated: &eventsv1.ProjectUpdated{Project: renamed}}}}},
		{name: "rename to same is no event", given: []*eventsv1.Envelope{created("acme", "Renamed")}, when: Update{Name: &newName, Now: t1}},
		{name: "rename to empty", given: []*eventsv1.Envelope{created("acme", "Acme")}, when: Update{Name: &empty, Now: t1}, wantErr: domain.KindInvalid},
		{name: "update missing", when: Update{Name: &newName, Now: t1}, wantErr: domain.KindNotFound},
		{name: "delete", given: []*eventsv1.Envelope{created("acme", "Acme")}, when: Delete{Now: t1},
			then: []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ProjectDeleted{ProjectDeleted: &eventsv1.ProjectDeleted{Project: deleted}}}}},
		{name: "delete deleted", given: []*eventsv1.Envelope{created("acme", "Acme"), {Payload: &eventsv1.Envelope_ProjectDeleted{ProjectDeleted: &eventsv1.ProjectDeleted{Project: deleted}}}}, when: Delete{Now: t1}, wantErr: domain.KindNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s State
			for _, e := range c.given {
				s = Evolve(s, e)
			}
			got, err := Decide(s, c.when)
			if c.wantErr != domain.KindInternal {
				if err == nil || domain.KindOf(err) != c.wantErr {
					t.Fatalf("want %v error, got %v (%v)", c.wantErr, domain.KindOf(err), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(got) != len(c.then) {
				t.Fatalf("got %d events, want %d: %v", len(got), len(c.then), got)
			}
			for i := range got {
				if !proto.Equal(got[i], c.then[i]) {
					t.Fatalf("event %d:\n got %v\nwant %v", i, got[i], c.then[i])
				}
			}
		})
	}
}
