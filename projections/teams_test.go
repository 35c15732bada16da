package projections

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

func testTeam(id, name string, created int64) *eventsv1.Team {
	return &eventsv1.Team{Id: id, ProjectId: "p1", Name: name, PrefsJson: "{}", CreatedAt: timestamppb.New(time.Unix(created, 0))}
}

func testMember(id string, t *eventsv1.Team, user string, confirmed bool, roles ...string) *eventsv1.Membership {
	return &eventsv1.Membership{Id: id, ProjectId: "p1", TeamId: t.GetId(), UserId: user, Confirmed: confirmed, Roles: roles, TeamCreatedAt: t.GetCreatedAt()}
}

func (e *env) teamEvent(action string, t *eventsv1.Team) uint64 {
	e.t.Helper()
	ev := &eventsv1.Envelope{}
	switch action {
	case "create":
		ev.Payload = &eventsv1.Envelope_TeamCreated{TeamCreated: &eventsv1.TeamCreated{Team: t}}
	case "update":
		ev.Payload = &eventsv1.Envelope_TeamUpdated{TeamUpdated: &eventsv1.TeamUpdated{Team: t}}
	case "delete":
		ev.Payload = &eventsv1.Envelope_TeamDeleted{TeamDeleted: &eventsv1.TeamDeleted{Team: t}}
	}
	return e.appendEnv(streams.ProjectStream("p1"), streams.ProjectSubject("p1", "teams", t.Id, action), "", ev)
}

func (e *env) memberEvent(action string, m *eventsv1.Membership) uint64 {
	e.t.Helper()
	ev := &eventsv1.Envelope{}
	switch action {
	case "create":
		ev.Payload = &eventsv1.Envelope_MembershipCreated{MembershipCreated: &eventsv1.MembershipCreated{Membership: m}}
	case "update":
		ev.Payload = &eventsv1.Envelope_MembershipUpdated{MembershipUpdated: &eventsv1.MembershipUpdated{Membership: m}}
	case "delete":
		ev.Payload = &eventsv1.Envelope_MembershipDeleted{MembershipDeleted: &eventsv1.MembershipDeleted{Membership: m}}
	}
	return e.appendEnv(streams.ProjectStream("p1"), streams.ProjectSubject("p1", "teams", m.TeamId, "memberships", m.Id, action), "", ev)
}

func TestTeamsApplied(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")
	e.createProject("p1")

	red, blue := testTeam("red", "Red Team", 1), testTeam("blue", "Blue", 1)
	e.teamEvent("create", red)
	e.teamEvent("create", blue)
	e.teamEvent("update", testTeam("blue", "Blue Sky", 1))
	e.memberEvent("create", testMember("m1", red, "alice", true, "owner"))
	e.memberEvent("create", testMember("m2", red, "", false, "dev")) // an invitation
	e.memberEvent("create", testMember("m3", blue, "alice", true, "dev"))
	e.memberEvent("create", testMember("m4", blue, "bob", true))
	e.memberEvent("update", testMember("m2", red, "bob", true, "dev")) // accepted
	e.memberEvent("update", testMember("m4", blue, "bob", true, "admin"))
	wait(t, p, ps, e.memberEvent("delete", testMember("m3", blue, "alice", true, "dev")))

	if tm, err := p.Team("p1", "blue"); err != nil || tm.GetName() != "Blue Sky" {
		t.Fatalf("Team(blue) = %v, %v", tm, err)
	}
	ids := func(ts []*eventsv1.Team) (out []string) {
		for _, t := range ts {
			out = append(out, t.GetId())
		}
		return out
	}
	for _, c := range []struct {
		search, after string
		limit         int
		want          []string
	}{
		{"", "", 0, []string{"blue", "red"}},
		{"", "blue", 0, []string{"red"}},
		{"TEAM", "", 0, []string{"red"}},
		{"e", "", 1, []string{"blue"}},
		{"e", "blue", 1, []string{"red"}},
		{"zzz", "", 0, nil},
	} {
		got, err := p.ListTeams("p1", c.search, c.after, c.limit)
		if err != nil || !reflect.DeepEqual(ids(got), c.want) {
			t.Errorf("ListTeams(%q, after %q) = %v, %v; want %v", c.search, c.after, ids(got), err, c.want)
		}
	}
	ms, err := p.ListMemberships("p1", "red", "", 0)
	if err != nil || len(ms) != 2 || ms[1].GetUserId() != "bob" {
		t.Fatalf("ListMemberships(red) = %v, %v", ms, err)
	}
	um, err := p.UserMemberships("p1", "bob")
	if err != nil || len(um) != 2 || um[0].TeamID != "blue" || um[0].Roles[0] != "admin" || um[1].MembershipID != "m2" {
		t.Fatalf("UserMemberships(bob) = %v, %v", um, err)
	}
	if um, _ := p.UserMemberships("p1", "alice"); len(um) != 1 || um[0].TeamID != "red" {
		t.Fatalf("UserMemberships(alice) after leaving blue = %v", um)
	}

	// Deleting red takes its memberships from every read model.
	wait(t, p, ps, e.teamEvent("delete", red))
	if _, err := p.Team("p1", "red"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Team(red) after delete: %v", err)
	}
	if _, err := p.Membership("p1", "red", "m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("membership survived its team: %v", err)
	}
	if um, _ := p.UserMemberships("p1", "alice"); len(um) != 0 {
		t.Fatalf("alice still in %v", um)
	}
	if um, _ := p.UserMemberships("p1", "bob"); len(um) != 1 || um[0].TeamID != "blue" {
		t.Fatalf("bob's memberships %v", um)
	}
	// A membership event of the deleted team (a write racing the delete)
	// leaves nothing; neither does one of an older incarnation of a team
	// created again under the same id.
	e.memberEvent("update", testMember("m1", red, "alice", true, "owner"))
	red2 := testTeam("red", "Red again", 2)
	e.teamEvent("create", red2)
	e.memberEvent("update", testMember("m1", red, "alice", true, "owner"))
	last := e.memberEvent("create", testMember("m5", red2, "carol", true))
	wait(t, p, ps, last)
	if ms, _ := p.ListMemberships("p1", "red", "", 0); len(ms) != 1 || ms[0].GetId() != "m5" {
		t.Fatalf("memberships of the new red: %v", ms)
	}
	if um, _ := p.UserMemberships("p1", "alice"); len(um) != 0 {
		t.Fatalf("stale membership resurrected: %v", um)
	}

	// Rebuild equals the incrementally built read model.
	inc, _ := p.Snapshot(ps)
	if _, err := p.Rebuild(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	reb, _ := p.Snapshot(ps)
	if !reflect.DeepEqual(inc, reb) {
		t.Fatalf("team read models differ after rebuild:\n%v\n%v", inc, reb)
	}
}

// TestLargeTeamDeleteInChunks: deleting a team with more memberships than
// one Badger transaction can delete (a small memtable) removes them all,
// from both indexes, in chunks before the event commits; a rebuild agrees.
func TestLargeTeamDeleteInChunks(t *testing.T) {
	e := newEnv(t)
	e.memtable = 2 << 20 // a transaction of ~3,200 entries
	e.reopenBadger()
	p, _ := e.newProjections()
	ps := streams.ProjectStream("p1")
	wait(t, p, streams.SystemStream, e.createProject("p1"))
	big, small := testTeam("big", "Big", 1_700_000_000), testTeam("small", "Small", 1_700_000_000)
	e.teamEvent("create", big)
	e.teamEvent("create", small)
	const members = 2500 // 5,000 deletes
	for i := range members {
		e.memberEvent("create", testMember(fmt.Sprintf("m%05d", i), big, fmt.Sprintf("u%05d", i), true))
	}
	e.memberEvent("create", testMember("s1", small, "u00001", true))
	wait(t, p, ps, e.teamEvent("delete", big))
	if max := e.db.MaxBatchCount(); max >= 2*members {
		t.Fatalf("a transaction holds %d entries: the delete would fit in one", max)
	}
	if _, err := p.Team("p1", "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted team: %v", err)
	}
	for _, prefix := range []string{membershipsPrefix("p1", "big"), userMembershipsPrefix("p1", "u00002")} {
		if kv, _ := p.Dump([]byte(prefix)); len(kv) != 0 {
			t.Fatalf("%d keys left under %s", len(kv), prefix)
		}
	}
	if kv, _ := p.Dump([]byte(userMembershipsPrefix("p1", "u00001"))); len(kv) != 1 {
		t.Fatalf("user u00001 is in %d teams, want the small one", len(kv))
	}
	live, _ := p.Snapshot(ps)
	if _, err := p.Rebuild(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	rebuilt, _ := p.Snapshot(ps)
	if d := diffKV(withoutUsage(live), withoutUsage(rebuilt)); d != "" {
		t.Fatalf("rebuild differs: %s", d)
	}
}
