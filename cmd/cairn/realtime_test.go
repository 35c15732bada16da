package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func (c clients) realtime() cairnv1connect.RealtimeServiceClient {
	return cairnv1connect.NewRealtimeServiceClient(c.client)
}

// rtStream is an open Connect subscription whose messages arrive on a
// channel, so tests can wait with a deadline.
type rtStream struct {
	msgs   chan *cairnv1.SubscribeResponse
	errc   chan error
	cancel context.CancelFunc
	// conn is a WebSocket client's connection (nil for Connect).
	conn *websocket.Conn
}

func (in *instance) subscribe(t testing.TB, token string, req *cairnv1.SubscribeRequest) *rtStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ctx, info := as(ctx, token)
	if token == "" {
		info.RequestHeader().Set("Cairn-Project", req.GetProjectId())
	}
	st, err := in.realtime().Subscribe(ctx, req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &rtStream{msgs: make(chan *cairnv1.SubscribeResponse, 100_000), errc: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			m, err := st.Receive()
			if err != nil {
				s.errc <- err
				close(s.msgs)
				return
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next message within d, or fails.
func (s *rtStream) next(t testing.TB, d time.Duration) *cairnv1.SubscribeResponse {
	t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			t.Fatalf("stream ended: %v", <-s.errc)
		}
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
		return nil
	}
}

// untilLive reads state messages until the stream is live.
func (s *rtStream) untilLive(t testing.TB) {
	t.Helper()
	for {
		m := s.next(t, 10*time.Second)
		if m.GetState().GetStatus() == cairnv1.ConnectionStatus_CONNECTION_STATUS_LIVE {
			return
		}
		if m.GetEvent() != nil {
			t.Fatalf("event before live: %v", m)
		}
	}
}

// nextEvent returns the next event within d.
func (s *rtStream) nextEvent(t testing.TB, d time.Duration) *cairnv1.RealtimeEvent {
	t.Helper()
	for {
		m := s.next(t, d)
		if e := m.GetEvent(); e != nil {
			return e
		}
	}
}

// quiet asserts that no event arrives within d.
func (s *rtStream) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.msgs:
		if m.GetEvent() != nil {
			t.Fatalf("unexpected event %v", m.GetEvent().GetEvents())
		}
	case <-time.After(d):
	}
}

func TestRealtimeSmoke(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "rt", append(docScopes, "events.read")...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), "rt", "posts", []string{`read("any")`}, false)
	sub := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: "rt", Channels: []string{"databases.main.collections.posts.documents"}})
	sub.untilLive(t)
	for i := range 3 {
		if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: "rt", DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", i), Data: data(t, map[string]any{"title": "hello"})}}); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := range 3 {
		e := sub.nextEvent(t, 5*time.Second)
		if e.GetKind() != cairnv1.EventKind_EVENT_KIND_CREATE || !strings.HasSuffix(e.GetEvents()[0], fmt.Sprintf("documents.d%d.create", i)) ||
			e.GetPayload().GetFields()["id"].GetStringValue() != fmt.Sprint("d", i) {
			t.Fatalf("event %d: %v", i, e)
		}
		last = e.GetSequence()
	}
	sub.cancel()

	// Over a WebSocket, resuming after the first event: the two others.
	wsURL := strings.Replace(in.url, "http", "ws", 1) + fmt.Sprintf("/v1/realtime?project=rt&channels=documents&after=%d", last-2)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	conn, _, err := websocket.Dial(context.Background(), wsURL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var got []uint64
	for len(got) < 2 {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, b, err := conn.Read(rctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		m := &cairnv1.SubscribeResponse{}
		if err := protojson.Unmarshal(b, m); err != nil {
			t.Fatal(err)
		}
		if e := m.GetEvent(); e != nil {
			got = append(got, e.GetSequence())
		}
	}
	if got[0] != last-1 || got[1] != last {
		t.Fatalf("resumed %v, want %d and %d", got, last-1, last)
	}
}

// rtURL is the WebSocket address of /v1/realtime with query.
func (in *instance) rtURL(query string) string {
	return strings.Replace(in.url, "http", "ws", 1) + "/v1/realtime?" + query
}

// dialSocket opens a WebSocket subscription as token ("" is a guest); on a
// refused handshake it returns the HTTP status.
func (in *instance) dialSocket(token, query string) (*rtStream, int, error) {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithCancel(context.Background())
	conn, res, err := websocket.Dial(ctx, in.rtURL(query), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		cancel()
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		return nil, status, err
	}
	conn.SetReadLimit(1 << 20)
	s := &rtStream{msgs: make(chan *cairnv1.SubscribeResponse, 100_000), errc: make(chan error, 1), conn: conn,
		cancel: func() { cancel(); conn.CloseNow() }}
	go func() {
		for {
			_, b, err := conn.Read(ctx)
			m := &cairnv1.SubscribeResponse{}
			if err == nil {
				err = protojson.Unmarshal(b, m)
			}
			if err != nil {
				s.errc <- err
				close(s.msgs)
				return
			}
			s.msgs <- m
		}
	}()
	return s, 101, nil
}

// socket is dialSocket that must succeed.
func (in *instance) socket(t testing.TB, token, query string) *rtStream {
	t.Helper()
	s, status, err := in.dialSocket(token, query)
	if err != nil {
		t.Fatalf("dial %s: %d %v", query, status, err)
	}
	t.Cleanup(s.cancel)
	return s
}

// send writes a client message on a WebSocket.
func (s *rtStream) send(t testing.TB, m *cairnv1.RealtimeClientMessage) {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s.sendRaw(t, b)
}

func (s *rtStream) sendRaw(t testing.TB, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// rejected waits for the server's refusal of a client message (events
// meanwhile fail the test) and returns its reason.
func (s *rtStream) rejected(t testing.TB) string {
	t.Helper()
	for {
		m := s.next(t, 5*time.Second)
		if r := m.GetRejected(); r != nil {
			return r.GetReason()
		}
		if m.GetEvent() != nil {
			t.Fatalf("event while waiting for a refusal: %v", m.GetEvent().GetEvents())
		}
	}
}

// sync makes sure the server has handled every message sent before it: it
// sends one the server refuses and waits for the refusal.
func (s *rtStream) sync(t testing.TB) {
	t.Helper()
	s.sendRaw(t, []byte("sync"))
	if r := s.rejected(t); !strings.Contains(r, "bad message") {
		t.Fatalf("sync: %s", r)
	}
}

// events returns the next n events.
func (s *rtStream) events(t testing.TB, n int) []*cairnv1.RealtimeEvent {
	t.Helper()
	out := make([]*cairnv1.RealtimeEvent, 0, n)
	for len(out) < n {
		out = append(out, s.nextEvent(t, 10*time.Second))
	}
	return out
}

// expect asserts that the next events are named want (their most
// specific name), in order.
func (s *rtStream) expect(t testing.TB, who string, want ...string) []*cairnv1.RealtimeEvent {
	t.Helper()
	evs := make([]*cairnv1.RealtimeEvent, 0, len(want))
	for i, w := range want {
		var e *cairnv1.RealtimeEvent
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("%s: stream ended before event %d (%s): %v", who, i, w, <-s.errc)
			}
			if e = m.GetEvent(); e == nil {
				continue
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event %d (%s) within 10s", who, i, w)
		}
		if e.GetEvents()[0] != w {
			t.Fatalf("%s: event %d is %s, want %s", who, i, e.GetEvents()[0], w)
		}
		evs = append(evs, e)
	}
	return evs
}

// noMore asserts that none of the streams has an event waiting after d.
func noMore(t testing.TB, d time.Duration, streams map[string]*rtStream) {
	t.Helper()
	time.Sleep(d)
	for who, s := range streams {
		for done := false; !done; {
			select {
			case m, ok := <-s.msgs:
				if !ok {
					done = true
				} else if m.GetEvent() != nil {
					t.Errorf("%s: unexpected event %v", who, m.GetEvent().GetEvents())
				}
			default:
				done = true
			}
		}
	}
}

// end waits for the stream to end; it returns the messages before the
// end and why it ended.
func (s *rtStream) end(t testing.TB, d time.Duration) ([]*cairnv1.SubscribeResponse, error) {
	t.Helper()
	var out []*cairnv1.SubscribeResponse
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return out, <-s.errc
			}
			out = append(out, m)
		case <-deadline:
			t.Fatalf("stream did not end within %v", d)
		}
	}
}

// subscribeErr opens a Connect subscription as ctx and returns the error
// it ends with before its first message (nil: it opened).
func (in *instance) subscribeErr(ctx context.Context, req *cairnv1.SubscribeRequest) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := in.realtime().Subscribe(ctx, req)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.Receive()
	return err
}

func docName(coll, id, verb string) string {
	return "databases.main.collections." + coll + ".documents." + id + "." + verb
}

// rtScopes are what the realtime tests' keys may do.
var rtScopes = append([]string{"events.read", "buckets.read", "buckets.write", "files.read", "files.write", "teams.read", "teams.write",
	"users.read", "users.write"}, docScopes...)

// TestRealtimeChannels: every channel receives its events and nothing
// else, over Connect and WebSockets; the account channel carries only the
// subscriber's own account, without secrets; a WebSocket changes its
// subscription on the open connection.
func TestRealtimeChannels(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p = "chan"
	key := newProjectWithKey(t, in, p, rtScopes...)
	k, _ := as(context.Background(), key)
	docsFixture(t, k, in.databases(), p, "posts", []string{`read("any")`}, false)
	docsFixture(t, k, in.databases(), p, "notes", []string{`read("any")`}, false)
	for _, b := range []string{"b1", "b2"} {
		if _, err := in.storage().CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: b, Name: b, Permissions: []string{`read("any")`}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.teams().CreateTeam(k, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "t1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	g, _ := guest(context.Background(), p, "")
	for _, e := range []string{"ann@example.com", "bob@example.com"} {
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
	}
	ann := signIn(t, in, p, "ann@example.com", "password of ann@example.com")
	annID := ann.GetSession().GetUserId()
	lb, err := in.users().ListUsers(k, &cairnv1.ListUsersRequest{ProjectId: p})
	if err != nil {
		t.Fatal(err)
	}
	var bobID string
	for _, u := range lb.GetUsers() {
		if u.GetEmail() == "bob@example.com" {
			bobID = u.GetId()
		}
	}

	sub := func(token string, channels ...string) *rtStream {
		s := in.subscribe(t, token, &cairnv1.SubscribeRequest{ProjectId: p, Channels: channels})
		s.untilLive(t)
		return s
	}
	sock := func(token string, channels ...string) *rtStream {
		s := in.socket(t, token, "project="+p+"&channels="+strings.Join(channels, "&channels="))
		s.untilLive(t)
		return s
	}
	posts := "databases.main.collections.posts.documents"
	subs := map[string]*rtStream{
		"documents":       sub(key, "documents"),
		"posts":           sock(key, posts),
		"posts.p1":        sub(key, posts+".p1"),
		"files":           sock(key, "files"),
		"b1.files.f1":     sub(key, "buckets.b1.files.f1"),
		"b2.files":        sock(key, "buckets.b2.files"),
		"teams.t1":        sock(key, "teams.t1"),
		"memberships":     sub(key, "memberships"),
		"account of ann":  sock(ann.GetSecret(), "account"),
		"account of key":  sub(key, "account"),
		"posts and files": sub(key, posts, "files"),
	}

	// The script.
	for _, d := range [][2]string{{"posts", "p1"}, {"posts", "p2"}, {"notes", "n1"}} {
		if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: d[0],
			Document: &cairnv1.DocumentInput{DocumentId: d[1], Data: data(t, map[string]any{"title": d[1]})}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.databases().UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "p1",
		Data: data(t, map[string]any{"title": "p1 again"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.databases().DeleteDocument(k, &cairnv1.DeleteDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "p2"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{"b1", "f1"}, {"b1", "f2"}, {"b2", "g1"}} {
		if _, err := in.storage().CreateFile(k, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: f[0], FileId: f[1], Name: f[1] + ".txt", Content: []byte(f[1])}); err != nil {
			t.Fatal(err)
		}
	}
	newName := "renamed.txt"
	if _, err := in.storage().UpdateFile(k, &cairnv1.UpdateFileRequest{ProjectId: p, BucketId: "b1", FileId: "f1", Name: &newName}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.teams().UpdateTeam(k, &cairnv1.UpdateTeamRequest{ProjectId: p, TeamId: "t1", Name: "Uno"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.teams().CreateTeam(k, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "t2", Name: "Two"}); err != nil {
		t.Fatal(err)
	}
	m, err := in.teams().CreateMembership(k, &cairnv1.CreateMembershipRequest{ProjectId: p, TeamId: "t1", UserId: bobID, Roles: []string{"player"}})
	if err != nil {
		t.Fatal(err)
	}
	mID := m.GetMembership().GetId()
	ac, _ := guest(context.Background(), p, ann.GetSecret())
	if _, err := in.account().UpdateName(ac, &cairnv1.UpdateNameRequest{Name: "Ann Realtime"}); err != nil {
		t.Fatal(err)
	}
	signIn(t, in, p, "bob@example.com", "password of bob@example.com") // bob's account, not ann's
	if _, err := in.storage().DeleteFile(k, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "b1", FileId: "f2"}); err != nil {
		t.Fatal(err)
	}

	file := func(b, f, verb string) string { return "buckets." + b + ".files." + f + "." + verb }
	subs["documents"].expect(t, "documents", docName("posts", "p1", "create"), docName("posts", "p2", "create"), docName("notes", "n1", "create"),
		docName("posts", "p1", "update"), docName("posts", "p2", "delete"))
	evs := subs["posts"].expect(t, "posts", docName("posts", "p1", "create"), docName("posts", "p2", "create"), docName("posts", "p1", "update"),
		docName("posts", "p2", "delete"))
	if got := evs[2]; !slices.Equal(got.GetChannels(), []string{posts}) || got.GetKind() != cairnv1.EventKind_EVENT_KIND_UPDATE ||
		got.GetPayload().GetFields()["data"].GetStructValue().GetFields()["title"].GetStringValue() != "p1 again" &&
			got.GetPayload().GetFields()["title"].GetStringValue() != "p1 again" {
		t.Errorf("posts update event: %v", got)
	}
	if !slices.Contains(evs[0].GetEvents(), "databases.*.collections.*.documents.*.create") {
		t.Errorf("wildcard name missing: %v", evs[0].GetEvents())
	}
	subs["posts.p1"].expect(t, "posts.p1", docName("posts", "p1", "create"), docName("posts", "p1", "update"))
	subs["files"].expect(t, "files", file("b1", "f1", "create"), file("b1", "f2", "create"), file("b2", "g1", "create"),
		file("b1", "f1", "update"), file("b1", "f2", "delete"))
	subs["b1.files.f1"].expect(t, "b1.files.f1", file("b1", "f1", "create"), file("b1", "f1", "update"))
	subs["b2.files"].expect(t, "b2.files", file("b2", "g1", "create"))
	subs["teams.t1"].expect(t, "teams.t1", "teams.t1.update", "teams.t1.memberships."+mID+".create")
	subs["memberships"].expect(t, "memberships", "teams.t1.memberships."+mID+".create")
	subs["posts and files"].expect(t, "posts and files", docName("posts", "p1", "create"), docName("posts", "p2", "create"),
		docName("posts", "p1", "update"), docName("posts", "p2", "delete"), file("b1", "f1", "create"), file("b1", "f2", "create"),
		file("b2", "g1", "create"), file("b1", "f1", "update"), file("b1", "f2", "delete"))
	acc := subs["account of ann"].expect(t, "account of ann", "users."+annID+".update.name")[0]
	fields := acc.GetPayload().GetFields()
	if fields["name"].GetStringValue() != "Ann Realtime" || fields["id"].GetStringValue() != annID {
		t.Errorf("account payload: %v", acc.GetPayload())
	}
	b, _ := protojson.Marshal(acc.GetPayload())
	for _, secret := range []string{"hash", "secret", "salt", "totp", "recovery"} {
		if strings.Contains(strings.ToLower(string(b)), secret) {
			t.Errorf("account payload mentions %q: %s", secret, b)
		}
	}
	noMore(t, 300*time.Millisecond, subs)

	// A WebSocket changes its subscription in place: files of b1, deletes
	// only. Refused changes leave it as it was.
	ws := subs["posts"]
	ws.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Subscribe{Subscribe: &cairnv1.SubscribeRequest{
		ProjectId: "other", Channels: []string{"files"}}}})
	if r := ws.rejected(t); !strings.Contains(r, "project") {
		t.Errorf("subscribe naming another project: %s", r)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "teams"
	}
	ws.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Subscribe{Subscribe: &cairnv1.SubscribeRequest{Channels: many}}})
	ws.rejected(t)
	ws.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Subscribe{Subscribe: &cairnv1.SubscribeRequest{Channels: []string{"users"}}}})
	ws.rejected(t)
	ws.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Subscribe{Subscribe: &cairnv1.SubscribeRequest{
		Channels: []string{"buckets.b1.files"}, Kinds: []cairnv1.EventKind{cairnv1.EventKind_EVENT_KIND_DELETE}}}})
	ws.sync(t)
	if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "p3", Data: data(t, map[string]any{"title": "p3"})}}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateFile(k, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "b1", FileId: "f3", Name: "f3.txt", Content: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().DeleteFile(k, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "b1", FileId: "f3"}); err != nil {
		t.Fatal(err)
	}
	if e := ws.expect(t, "resubscribed", file("b1", "f3", "delete"))[0]; !slices.Equal(e.GetChannels(), []string{"buckets.b1.files"}) {
		t.Errorf("resubscribed channels %v", e.GetChannels())
	}
	ws.quiet(t, 200*time.Millisecond)
}
