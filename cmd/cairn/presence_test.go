package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// until reads a WebSocket's messages until ok accepts one, within d.
func (s *rtStream) until(t testing.TB, d time.Duration, what string, ok func(*cairnv1.SubscribeResponse) bool) *cairnv1.SubscribeResponse {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m, open := <-s.msgs:
			if !open {
				t.Fatalf("%s: stream ended: %v", what, <-s.errc)
			}
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}

func presenceOf(action cairnv1.PresenceAction, id string) func(*cairnv1.SubscribeResponse) bool {
	return func(m *cairnv1.SubscribeResponse) bool {
		p := m.GetPresence()
		return p.GetAction() == action && (id == "" || p.GetMember().GetId() == id)
	}
}

func isSync(m *cairnv1.SubscribeResponse) bool { return m.GetPresenceSync() != nil }

func isRejected(m *cairnv1.SubscribeResponse) bool { return m.GetRejected() != nil }

func joinMsg(t testing.TB, channel string, payload map[string]any) *cairnv1.RealtimeClientMessage {
	t.Helper()
	var st *structpb.Struct
	if payload != nil {
		var err error
		if st, err = structpb.NewStruct(payload); err != nil {
			t.Fatal(err)
		}
	}
	return &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_PresenceJoin{PresenceJoin: &cairnv1.PresenceJoin{Channel: channel, Payload: st}}}
}

func watchMsg(channel string) *cairnv1.RealtimeClientMessage {
	return &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_PresenceWatch{PresenceWatch: &cairnv1.PresenceChannel{Channel: channel}}}
}

func leaveMsg(channel string) *cairnv1.RealtimeClientMessage {
	return &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_PresenceLeave{PresenceLeave: &cairnv1.PresenceChannel{Channel: channel}}}
}

// TestRealtimePresenceTwoNodes: two nodes sharing one NATS. Members that
// join through one node are seen, with their payloads, updates and leaves,
// by a watcher on the other; the current set comes first; the same user
// in two tabs is two members; the caps refuse at their edge with named
// errors; a user who may not read the channel, and a guest, learn nothing;
// another project with the same channel names sees none of it; a node
// that stops takes its members with it.
func TestRealtimePresenceTwoNodes(t *testing.T) {
	url := startSharedNATS(t)
	a := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey, "--presence-max-members", "2")
	b := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey, "--presence-max-members", "2")
	const p, ch = "pres", "databases.main.collections.room.documents"
	key := newProjectWithKey(t, a, p, rtScopes...)
	ctx := context.Background()
	k, _ := as(ctx, key)
	docsFixture(t, k, a.databases(), p, "room", []string{`read("user:ann")`, `read("user:bob")`}, false)
	g, _ := guest(ctx, p, "")
	for _, e := range []string{"ann@example.com", "bob@example.com", "cy@example.com"} {
		if _, err := a.account().CreateAccount(g, &cairnv1.CreateAccountRequest{UserId: strings.TrimSuffix(e, "@example.com"), Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
	}
	ann := signIn(t, a, p, "ann@example.com", "password of ann@example.com").GetSecret()
	bob := signIn(t, a, p, "bob@example.com", "password of bob@example.com").GetSecret()
	cy := signIn(t, a, p, "cy@example.com", "password of cy@example.com").GetSecret()
	// Node b has applied it all once cy's session (the last write) works there.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cc, _ := guest(ctx, p, cy)
		if _, err := b.account().GetAccount(cc, &cairnv1.GetAccountRequest{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b never saw the collection")
		}
	}
	q := "project=" + p + "&channels=" + ch

	annA := a.socket(t, ann, q)
	annA.untilLive(t)
	annA.send(t, joinMsg(t, ch, map[string]any{"status": "online"}))
	self := annA.until(t, 5*time.Second, "ann's own sync", isSync).GetPresenceSync().GetConnectionId()
	annA.until(t, 5*time.Second, "ann's own join", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_JOIN, self))

	// Bob on node b: the current set, then changes.
	bobB := b.socket(t, bob, q)
	bobB.untilLive(t)
	bobB.send(t, watchMsg(ch))
	sync := bobB.until(t, 5*time.Second, "bob's sync", isSync).GetPresenceSync()
	if len(sync.GetMembers()) != 1 || sync.GetMembers()[0].GetId() != self || sync.GetMembers()[0].GetUserId() != "ann" ||
		sync.GetMembers()[0].GetPayload().GetFields()["status"].GetStringValue() != "online" {
		t.Fatalf("current set on node b: %v", sync)
	}
	annA.send(t, joinMsg(t, ch, map[string]any{"status": "away"}))
	upd := bobB.until(t, 5*time.Second, "ann's update", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_UPDATE, self)).GetPresence()
	if upd.GetMember().GetPayload().GetFields()["status"].GetStringValue() != "away" {
		t.Errorf("update: %v", upd)
	}
	// Ann's second tab, on node b: a second member, same user.
	annB := b.socket(t, ann, q)
	annB.untilLive(t)
	annB.send(t, joinMsg(t, ch, nil))
	tab := annB.until(t, 5*time.Second, "the second tab's sync", isSync).GetPresenceSync().GetConnectionId()
	if j := bobB.until(t, 5*time.Second, "the second tab's join", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_JOIN, tab)).GetPresence(); j.GetMember().GetUserId() != "ann" || tab == self {
		t.Errorf("second tab: %v (first %s)", j, self)
	}

	// Caps at their edge: a third member of a channel of at most 2; a
	// payload of 1,025 bytes of JSON (1,024 passes).
	bobB.send(t, joinMsg(t, ch, nil))
	if r := bobB.until(t, 5*time.Second, "third member", isRejected).GetRejected().GetReason(); !strings.Contains(r, "most members") {
		t.Errorf("third member: %s", r)
	}
	pad := func(n int) map[string]any { return map[string]any{"s": strings.Repeat("x", n-len(`{"s":""}`))} }
	annB.send(t, joinMsg(t, ch, pad(1025)))
	if r := annB.until(t, 5*time.Second, "1,025-byte payload", isRejected).GetRejected().GetReason(); !strings.Contains(r, "payload") || !strings.Contains(r, "1025 bytes") {
		t.Errorf("1,025-byte payload: %s", r)
	}
	annB.send(t, joinMsg(t, ch, pad(1024)))
	bobB.until(t, 5*time.Second, "1,024-byte payload", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_UPDATE, tab))

	// Refused: cy may not read the collection, a guest neither: both are
	// told what a missing channel gets. Presence on a channel not
	// subscribed to, or on a broad one, names the field.
	for name, token := range map[string]string{"cy": cy, "guest": ""} {
		s := b.socket(t, token, q)
		s.untilLive(t)
		for _, m := range []*cairnv1.RealtimeClientMessage{watchMsg(ch), joinMsg(t, ch, nil)} {
			s.send(t, m)
			if r := s.until(t, 5*time.Second, name, func(m *cairnv1.SubscribeResponse) bool { return isRejected(m) || isSync(m) }); !strings.Contains(r.GetRejected().GetReason(), "not found") {
				t.Errorf("%s: %v", name, r)
			}
		}
		// The same answer as for a collection that does not exist.
		r := b.socket(t, token, "project="+p+"&channels=databases.main.collections.nowhere.documents")
		r.untilLive(t)
		r.send(t, watchMsg("databases.main.collections.nowhere.documents"))
		if m := r.until(t, 5*time.Second, name+" missing", isRejected); !strings.Contains(m.GetRejected().GetReason(), "not found") {
			t.Errorf("%s, missing collection: %v", name, m)
		}
	}
	bobB.send(t, watchMsg("databases.main.collections.other.documents"))
	if r := bobB.until(t, 5*time.Second, "unsubscribed channel", isRejected).GetRejected().GetReason(); !strings.Contains(r, "channel") || !strings.Contains(r, "subscribe") {
		t.Errorf("unsubscribed channel: %s", r)
	}
	broad := b.socket(t, bob, "project="+p+"&channels=documents")
	broad.untilLive(t)
	broad.send(t, watchMsg("documents"))
	if r := broad.until(t, 5*time.Second, "broad channel", isRejected).GetRejected().GetReason(); !strings.Contains(r, "presence is for") {
		t.Errorf("broad channel: %s", r)
	}

	// Another project with the same channel: an empty set, and nothing of
	// pres's members.
	otherKey := newProjectWithKey(t, b, "elsewhere", rtScopes...)
	ok, _ := as(ctx, otherKey)
	docsFixture(t, ok, b.databases(), "elsewhere", "room", []string{`read("any")`}, false)
	other := b.socket(t, otherKey, "project=elsewhere&channels="+ch)
	other.untilLive(t)
	other.send(t, watchMsg(ch))
	if s := other.until(t, 5*time.Second, "other project's sync", isSync).GetPresenceSync(); len(s.GetMembers()) != 0 {
		t.Errorf("project elsewhere sees pres's members: %v", s)
	}

	// A team's channel: cy, a member, watches; once her membership is
	// deleted she sees no more of it and is told presence ended.
	if _, err := a.teams().CreateTeam(k, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "crew", Name: "Crew"}); err != nil {
		t.Fatal(err)
	}
	m, err := a.teams().CreateMembership(k, &cairnv1.CreateMembershipRequest{ProjectId: p, TeamId: "crew", UserId: "cy", Roles: []string{"member"}})
	if err != nil {
		t.Fatal(err)
	}
	crew := b.socket(t, cy, "project="+p+"&channels=teams.crew")
	crew.untilLive(t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		crew.send(t, watchMsg("teams.crew"))
		if r := crew.until(t, 5*time.Second, "cy's watch", func(m *cairnv1.SubscribeResponse) bool { return isRejected(m) || isSync(m) }); isSync(r) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b never let cy watch her team")
		}
	}
	keyOnA := a.socket(t, key, "project="+p+"&channels=teams.crew")
	keyOnA.untilLive(t)
	keyOnA.send(t, joinMsg(t, "teams.crew", nil))
	keyID := keyOnA.until(t, 5*time.Second, "the key's sync", isSync).GetPresenceSync().GetConnectionId()
	if j := crew.until(t, 5*time.Second, "the key's join", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_JOIN, keyID)); j.GetPresence().GetMember().GetUserId() != "" {
		t.Errorf("a key's member has a user: %v", j)
	}
	if _, err := a.teams().DeleteMembership(k, &cairnv1.DeleteMembershipRequest{ProjectId: p, TeamId: "crew", MembershipId: m.GetMembership().GetId()}); err != nil {
		t.Fatal(err)
	}
	// Node b has applied the deletion once cy is sent its event.
	crew.until(t, 10*time.Second, "the membership's deletion", func(m *cairnv1.SubscribeResponse) bool {
		return m.GetEvent().GetKind() == cairnv1.EventKind_EVENT_KIND_DELETE
	})
	keyOnA.send(t, joinMsg(t, "teams.crew", map[string]any{"after": "revocation"}))
	if r := crew.until(t, 5*time.Second, "the end of cy's presence", func(m *cairnv1.SubscribeResponse) bool { return isRejected(m) || m.GetPresence() != nil }); !strings.Contains(r.GetRejected().GetReason(), "ended") {
		t.Errorf("after her membership was deleted, cy got %v", r)
	}
	crew.send(t, watchMsg("teams.crew"))
	if r := crew.until(t, 5*time.Second, "cy's watch again", func(m *cairnv1.SubscribeResponse) bool { return isRejected(m) || isSync(m) }); !strings.Contains(r.GetRejected().GetReason(), "not found") {
		t.Errorf("cy watching a team she left: %v", r)
	}

	// Leaving, closing a tab, and a node stopping: each seen at once.
	annA.send(t, leaveMsg(ch))
	bobB.until(t, 5*time.Second, "ann's leave", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_LEAVE, self))
	annB.cancel()
	bobB.until(t, 5*time.Second, "the closed tab's leave", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_LEAVE, tab))
	annA.send(t, joinMsg(t, ch, nil))
	bobB.until(t, 5*time.Second, "ann's join again", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_JOIN, self))
	a.stop()
	left := false
	for deadline := time.After(10 * time.Second); !left; {
		select {
		case m := <-bobB.msgs:
			left = presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_LEAVE, self)(m)
		case <-deadline:
			t.Fatalf("node a's members did not leave within 10s; node a logged %q", a.logs.lines("presence"))
		}
	}
	select {
	case m := <-other.msgs:
		if m.GetPresence() != nil {
			t.Errorf("project elsewhere saw %v", m)
		}
	default:
	}
}
