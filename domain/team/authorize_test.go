package team

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func TestAuthorize(t *testing.T) {
	team := &eventsv1.Team{Id: "t1", CreatedAt: timestamppb.New(t0)}
	mem := func(user string, confirmed bool, roles ...string) *eventsv1.Membership {
		return &eventsv1.Membership{Id: MemberID("t1", user), TeamId: "t1", UserId: user, Confirmed: confirmed, Roles: roles, TeamCreatedAt: timestamppb.New(t0)}
	}
	owner, owner2, dev, pending := mem("own", true, "owner"), mem("own2", true, "owner", "dev"), mem("dev", true, "dev"), mem("", false, "owner")
	stale := mem("old", true, "owner")
	stale.TeamCreatedAt = timestamppb.New(t1)
	one := []*eventsv1.Membership{owner, dev, pending, stale}
	two := []*eventsv1.Membership{owner, owner2, dev}
	server, ownerC, devC, outsider, oldC := Caller{Server: true}, Caller{UserID: "own"}, Caller{UserID: "dev"}, Caller{UserID: "x"}, Caller{UserID: "old"}
	const ok = domain.Kind(-1)
	cases := []struct {
		name string
		c    Caller
		r    Request
		want domain.Kind
	}{
		{"server does anything", server, Request{Action: ActionDeleteTeam}, ok},
		{"server adds directly", server, Request{Action: ActionAddMember, Team: team}, ok},
		{"server removes the last owner", server, Request{Action: ActionDeleteMembership, Team: team, Target: owner, Members: one}, ok},
		{"anonymous", Caller{}, Request{Action: ActionCreateTeam}, domain.KindUnauthenticated},
		{"user creates a team", devC, Request{Action: ActionCreateTeam}, ok},
		{"missing team", devC, Request{Action: ActionReadTeam}, domain.KindNotFound},
		{"member reads", devC, Request{Action: ActionReadTeam, Team: team, Members: one}, ok},
		{"outsider reads nothing", outsider, Request{Action: ActionReadTeam, Team: team, Members: one}, domain.KindNotFound},
		{"stale member reads nothing", oldC, Request{Action: ActionReadTeam, Team: team, Members: one}, domain.KindNotFound},
		{"owner renames", ownerC, Request{Action: ActionUpdateTeam, Team: team, Members: one}, ok},
		{"member cannot rename", devC, Request{Action: ActionUpdateTeam, Team: team, Members: one}, domain.KindPermissionDenied},
		{"owner deletes", ownerC, Request{Action: ActionDeleteTeam, Team: team, Members: one}, ok},
		{"member cannot delete", devC, Request{Action: ActionDeleteTeam, Team: team, Members: one}, domain.KindPermissionDenied},
		{"owner invites", ownerC, Request{Action: ActionInvite, Team: team, Members: one}, ok},
		{"member cannot invite", devC, Request{Action: ActionInvite, Team: team, Members: one}, domain.KindPermissionDenied},
		{"owner cannot add directly", ownerC, Request{Action: ActionAddMember, Team: team, Members: one}, domain.KindPermissionDenied},
		{"owner changes roles", ownerC, Request{Action: ActionUpdateMembership, Team: team, Members: one, Target: dev, Roles: []string{"admin"}}, ok},
		{"member cannot change roles", devC, Request{Action: ActionUpdateMembership, Team: team, Members: one, Target: dev, Roles: []string{"owner"}}, domain.KindPermissionDenied},
		{"last owner keeps owner", ownerC, Request{Action: ActionUpdateMembership, Team: team, Members: one, Target: owner, Roles: []string{"dev"}}, domain.KindFailedPrecondition},
		{"one of two owners steps down", ownerC, Request{Action: ActionUpdateMembership, Team: team, Members: two, Target: owner, Roles: []string{"dev"}}, ok},
		{"owner removes a member", ownerC, Request{Action: ActionDeleteMembership, Team: team, Members: one, Target: dev}, ok},
		{"owner withdraws an invitation", ownerC, Request{Action: ActionDeleteMembership, Team: team, Members: one, Target: pending}, ok},
		{"member leaves", devC, Request{Action: ActionDeleteMembership, Team: team, Members: one, Target: dev}, ok},
		{"member cannot remove others", devC, Request{Action: ActionDeleteMembership, Team: team, Members: two, Target: owner2}, domain.KindPermissionDenied},
		{"last owner cannot leave", ownerC, Request{Action: ActionDeleteMembership, Team: team, Members: one, Target: owner}, domain.KindFailedPrecondition},
		{"one of two owners leaves", ownerC, Request{Action: ActionDeleteMembership, Team: team, Members: two, Target: owner}, ok},
		{"delete a stale membership", ownerC, Request{Action: ActionDeleteMembership, Team: team, Members: one, Target: stale}, domain.KindNotFound},
		{"accept for oneself", outsider, Request{Action: ActionAcceptMembership, Team: team, Target: pending, UserID: "x"}, ok},
		{"accept for another", outsider, Request{Action: ActionAcceptMembership, Team: team, Target: pending, UserID: "dev"}, domain.KindPermissionDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Authorize(c.c, c.r)
			if c.want == ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || domain.KindOf(err) != c.want {
				t.Fatalf("want %v, got %v", c.want, err)
			}
		})
	}
}
