package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestRealtimePresenceConnectStream: presence on the Connect server
// stream, which cannot send presence messages once open: the request's
// presence_join channels are joined when it opens and left when it ends,
// presence_watch channels give the current set and then changes. A
// refused join or watch fails the call naming presence_join[i] or
// presence_watch[i]; a channel the caller may not read answers as a
// missing one; a WebSocket's subscribe message may not carry the fields.
func TestRealtimePresenceConnectStream(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p, ch = "prs", "databases.main.collections.room.documents"
	key := newProjectWithKey(t, in, p, rtScopes...)
	ctx := context.Background()
	k, _ := as(ctx, key)
	docsFixture(t, k, in.databases(), p, "room", []string{`read("user:ann")`, `read("user:bob")`}, false)
	g, _ := guest(ctx, p, "")
	for _, e := range []string{"ann@example.com", "bob@example.com", "cy@example.com"} {
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{UserId: strings.TrimSuffix(e, "@example.com"), Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
	}
	ann := signIn(t, in, p, "ann@example.com", "password of ann@example.com").GetSecret()
	bob := signIn(t, in, p, "bob@example.com", "password of bob@example.com").GetSecret()
	cy := signIn(t, in, p, "cy@example.com", "password of cy@example.com").GetSecret()
	status := func(s string) *structpb.Struct {
		st, _ := structpb.NewStruct(map[string]any{"status": s})
		return st
	}
	req := func(join []*cairnv1.PresenceJoin, watch ...string) *cairnv1.SubscribeRequest {
		return &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{ch}, PresenceJoin: join, PresenceWatch: watch}
	}

	// Ann joins with her stream; she gets the set (with her connection id)
	// and her own join.
	annS := in.subscribe(t, ann, req([]*cairnv1.PresenceJoin{{Channel: ch, Payload: status("online")}}))
	self := annS.until(t, 5*time.Second, "ann's sync", isSync).GetPresenceSync().GetConnectionId()
	if self == "" {
		t.Fatal("no connection id in ann's sync")
	}
	annS.until(t, 5*time.Second, "ann's own join", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_JOIN, self))

	// Bob watches with his: ann with her payload, then her leave when her
	// stream ends; events still flow on the same stream.
	bobS := in.subscribe(t, bob, req(nil, ch))
	sync := bobS.until(t, 5*time.Second, "bob's sync", isSync).GetPresenceSync()
	if len(sync.GetMembers()) != 1 || sync.GetMembers()[0].GetId() != self || sync.GetMembers()[0].GetUserId() != "ann" ||
		sync.GetMembers()[0].GetPayload().GetFields()["status"].GetStringValue() != "online" {
		t.Fatalf("bob's current set: %v", sync)
	}
	if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "room",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data(t, map[string]any{"title": "hello"}), Permissions: &cairnv1.Permissions{Values: []string{`read("user:bob")`}}}}); err != nil {
		t.Fatal(err)
	}
	bobS.until(t, 5*time.Second, "an event beside presence", func(m *cairnv1.SubscribeResponse) bool { return m.GetEvent() != nil })
	annS.cancel()
	bobS.until(t, 5*time.Second, "ann's leave", presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_LEAVE, self))

	// Refused before the stream opens, naming the field.
	refused := func(name, token string, r *cairnv1.SubscribeRequest, code connect.Code, field string) {
		t.Helper()
		tctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _ := as(tctx, token)
		st, err := in.realtime().Subscribe(c, r)
		for err == nil {
			var m *cairnv1.SubscribeResponse
			if m, err = st.Receive(); err == nil && (m.GetPresenceSync() != nil || m.GetPresence() != nil) {
				t.Errorf("%s: presence delivered: %v", name, m)
			}
		}
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != code || !strings.Contains(ce.Message(), field) {
			t.Errorf("%s: %v, want %v naming %s", name, err, code, field)
		}
	}
	// cy may not read the collection: told what a missing one gets.
	refused("cy watches", cy, req(nil, ch), connect.CodeNotFound, "presence_watch[0]")
	refused("cy joins", cy, req([]*cairnv1.PresenceJoin{{Channel: ch}}), connect.CodeNotFound, "presence_join[0]")
	missing := "databases.main.collections.nowhere.documents"
	refused("a missing collection", bob, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{missing}, PresenceWatch: []string{missing}},
		connect.CodeNotFound, "presence_watch[0]")
	refused("a channel not subscribed to", bob, req(nil, "databases.main.collections.other.documents"), connect.CodeInvalidArgument, "presence_watch[0].channel")
	big, _ := structpb.NewStruct(map[string]any{"s": strings.Repeat("x", 1025-len(`{"s":""}`))})
	refused("a 1,025-byte payload", bob, req([]*cairnv1.PresenceJoin{{Channel: ch, Payload: big}}), connect.CodeInvalidArgument, "presence_join[0].payload")

	// A WebSocket's subscribe message may not carry them.
	ws := in.socket(t, bob, "project="+p+"&channels="+ch)
	ws.untilLive(t)
	ws.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Subscribe{Subscribe: req(nil, ch)}})
	if r := ws.until(t, 5*time.Second, "a subscribe message with presence_watch", isRejected).GetRejected().GetReason(); !strings.Contains(r, "presence_join") {
		t.Errorf("a WebSocket subscribe with presence fields: %s", r)
	}

	// Another project with the same channel sees none of prs's members.
	otherKey := newProjectWithKey(t, in, "prs-other", rtScopes...)
	ok, _ := as(ctx, otherKey)
	docsFixture(t, ok, in.databases(), "prs-other", "room", []string{`read("any")`}, false)
	bobAgain := in.subscribe(t, bob, req([]*cairnv1.PresenceJoin{{Channel: ch}}))
	bobAgain.until(t, 5*time.Second, "bob's join", isSync)
	other := in.subscribe(t, otherKey, &cairnv1.SubscribeRequest{ProjectId: "prs-other", Channels: []string{ch}, PresenceWatch: []string{ch}})
	if s := other.until(t, 5*time.Second, "the other project's sync", isSync).GetPresenceSync(); len(s.GetMembers()) != 0 {
		t.Errorf("project prs-other sees prs's members: %v", s)
	}
}
