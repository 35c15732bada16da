package eventlog_test

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// Team and membership events follow Appwrite's names, and each lands in
// exactly its own aggregate: a membership's events never move its team's
// expected sequence, nor another membership's.
func TestTeamSubjects(t *testing.T) {
	team := &eventsv1.Team{Id: "t1", ProjectId: "p1"}
	m := &eventsv1.Membership{Id: "m1", ProjectId: "p1", TeamId: "t1"}
	cases := []struct {
		env  *eventsv1.Envelope
		want string
		agg  eventlog.Aggregate
	}{
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamCreated{TeamCreated: &eventsv1.TeamCreated{Team: team}}}, "cairn.p1.teams.t1.create", eventlog.TeamAggregate("p1", "t1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamUpdated{TeamUpdated: &eventsv1.TeamUpdated{Team: team}}}, "cairn.p1.teams.t1.update", eventlog.TeamAggregate("p1", "t1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamDeleted{TeamDeleted: &eventsv1.TeamDeleted{Team: team}}}, "cairn.p1.teams.t1.delete", eventlog.TeamAggregate("p1", "t1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipCreated{MembershipCreated: &eventsv1.MembershipCreated{Membership: m}}}, "cairn.p1.teams.t1.memberships.m1.create", eventlog.MembershipAggregate("p1", "t1", "m1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipUpdated{MembershipUpdated: &eventsv1.MembershipUpdated{Membership: m}}}, "cairn.p1.teams.t1.memberships.m1.update", eventlog.MembershipAggregate("p1", "t1", "m1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipDeleted{MembershipDeleted: &eventsv1.MembershipDeleted{Membership: m}}}, "cairn.p1.teams.t1.memberships.m1.delete", eventlog.MembershipAggregate("p1", "t1", "m1")},
	}
	aggs := []eventlog.Aggregate{eventlog.TeamAggregate("p1", "t1"), eventlog.MembershipAggregate("p1", "t1", "m1"),
		eventlog.MembershipAggregate("p1", "t1", "m2"), eventlog.TeamAggregate("p1", "t2")}
	for _, c := range cases {
		got, err := eventlog.Subject(c.env)
		if err != nil || got != c.want {
			t.Errorf("%T: subject %q, %v; want %q", c.env.GetPayload(), got, err, c.want)
		}
		for _, a := range aggs {
			if in := server.SubjectMatchesFilter(got, a.Filter); in != (a == c.agg) {
				t.Errorf("%s in aggregate %s: %v", got, a.Filter, in)
			}
		}
		if c.agg.Stream != "PROJECT_p1" {
			t.Errorf("stream %q", c.agg.Stream)
		}
	}
}
