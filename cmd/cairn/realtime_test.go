package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2"
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
	// lags are, per event, when it arrived less its stored time.
	lagMu  sync.Mutex
	lags   []time.Duration
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
			s.lag(m)
			s.msgs <- m
		}
	}()
	t.Cleanup(cancel)
	return s
}

func (s *rtStream) lag(m *cairnv1.SubscribeResponse) {
	if e := m.GetEvent(); e != nil {
		d := time.Since(e.GetTimestamp().AsTime())
		s.lagMu.Lock()
		s.lags = append(s.lags, d)
		s.lagMu.Unlock()
	}
}

// lagQuantile is the q-quantile of the stream's event lags.
func (s *rtStream) lagQuantile(q float64) time.Duration {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if len(s.lags) == 0 {
		return 0
	}
	l := slices.Clone(s.lags)
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
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
			s.lag(m)
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

func filter(op cairnv1.Operator, attr string, values ...any) *cairnv1.Filter {
	f := &cairnv1.Filter{Op: op, Attribute: attr}
	for _, v := range values {
		f.Values = append(f.Values, val(v))
	}
	return f
}

// TestRealtimeFilters: kinds and attribute filters choose among a
// channel's events; limits refuse what is too much or malformed; a resume
// sequence beyond the end of the log is a resync, not a silent skip.
func TestRealtimeFilters(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--realtime-max-connections", "10")
	const p = "flt"
	key := newProjectWithKey(t, in, p, rtScopes...)
	k, _ := as(context.Background(), key)
	docsFixture(t, k, in.databases(), p, "items", []string{`read("any")`}, false)

	sub := func(req *cairnv1.SubscribeRequest) *rtStream {
		req.ProjectId = p
		if len(req.Channels) == 0 {
			req.Channels = []string{"documents", "teams"}
		}
		s := in.subscribe(t, key, req)
		s.untilLive(t)
		return s
	}
	F := func(fs ...*cairnv1.Filter) *cairnv1.SubscribeRequest { return &cairnv1.SubscribeRequest{Filters: fs} }
	subs := map[string]*rtStream{
		"deletes":             sub(&cairnv1.SubscribeRequest{Kinds: []cairnv1.EventKind{cairnv1.EventKind_EVENT_KIND_DELETE}}),
		"creates and updates": in.socket(t, key, "project="+p+"&channels=documents&channels=teams&kinds=create&kinds=update"),
		"title = hot":         sub(F(filter(cairnv1.Operator_OPERATOR_EQUAL, "title", "hot"))),
		"views > 10":          sub(F(filter(cairnv1.Operator_OPERATOR_GREATER_THAN, "views", 10))),
		"views < 0 or title != hot": sub(F(&cairnv1.Filter{Op: cairnv1.Operator_OPERATOR_OR, Filters: []*cairnv1.Filter{
			filter(cairnv1.Operator_OPERATOR_LESS_THAN, "views", 0), filter(cairnv1.Operator_OPERATOR_NOT_EQUAL, "title", "hot")}})),
		"email is null": sub(F(filter(cairnv1.Operator_OPERATOR_IS_NULL, "email"))),
		"5 <= views <= 7": sub(F(&cairnv1.Filter{Op: cairnv1.Operator_OPERATOR_AND, Filters: []*cairnv1.Filter{
			filter(cairnv1.Operator_OPERATOR_GREATER_THAN_EQUAL, "views", 5), filter(cairnv1.Operator_OPERATOR_LESS_THAN_EQUAL, "views", 7)}})),
		"title != hot and email set": sub(F(filter(cairnv1.Operator_OPERATOR_NOT_EQUAL, "title", "hot"), filter(cairnv1.Operator_OPERATOR_IS_NOT_NULL, "email"))),
	}
	subs["creates and updates"].untilLive(t)
	filterWrites(t, in, k, p, []map[string]any{
		{"title": "hot", "views": 1},
		{"title": "cold", "views": 20, "email": "a@example.com"},
		{"title": "hot", "views": 6, "email": "b@example.com"},
		{"title": "warm", "views": -3},
	})
	// A team event: on the channels, but never matches a document filter.
	if _, err := in.teams().CreateTeam(k, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "t", Name: "t"}); err != nil {
		t.Fatal(err)
	}
	c, u, del := func(d string) string { return docName("items", d, "create") }, func(d string) string { return docName("items", d, "update") },
		func(d string) string { return docName("items", d, "delete") }
	subs["deletes"].expect(t, "deletes", del("d4"))
	subs["creates and updates"].expect(t, "creates and updates", c("d1"), c("d2"), c("d3"), c("d4"), u("d1"), "teams.t.create")
	subs["title = hot"].expect(t, "title = hot", c("d1"), c("d3"), u("d1"))
	subs["views > 10"].expect(t, "views > 10", c("d2"), u("d1"))
	subs["views < 0 or title != hot"].expect(t, "views < 0 or title != hot", c("d2"), c("d4"), del("d4"))
	subs["email is null"].expect(t, "email is null", c("d1"), c("d4"), u("d1"), del("d4"))
	subs["5 <= views <= 7"].expect(t, "5 <= views <= 7", c("d3"))
	subs["title != hot and email set"].expect(t, "title != hot and email set", c("d2"))
	noMore(t, 300*time.Millisecond, subs)

	// Malformed or too much: refused before anything streams.
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("teams.t", i)
	}
	for name, req := range map[string]*cairnv1.SubscribeRequest{
		"101 channels": {Channels: many},
		"no channels":  {},
		"bad channel":  {Channels: []string{"users"}},
		"wildcard":     {Channels: []string{"teams.*"}},
		"search":       {Channels: []string{"documents"}, Filters: []*cairnv1.Filter{filter(cairnv1.Operator_OPERATOR_SEARCH, "title", "h")}},
		"valueless":    {Channels: []string{"documents"}, Filters: []*cairnv1.Filter{filter(cairnv1.Operator_OPERATOR_EQUAL, "title")}},
		"kind 0":       {Channels: []string{"documents"}, Kinds: []cairnv1.EventKind{cairnv1.EventKind_EVENT_KIND_UNSPECIFIED}},
		"deep and/or": {Channels: []string{"documents"}, Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_AND, Filters: []*cairnv1.Filter{
			{Op: cairnv1.Operator_OPERATOR_OR, Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_AND, Filters: []*cairnv1.Filter{
				filter(cairnv1.Operator_OPERATOR_EQUAL, "title", "x")}}}}}}}},
	} {
		req.ProjectId = p
		if err := in.subscribeErr(k, req); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, q := range map[string]string{
		"101 channels": "channels=" + strings.Join(many, "&channels="),
		"no channels":  "",
		"bad channel":  "channels=users",
		"bad kind":     "channels=documents&kinds=upsert",
		"bad after":    "channels=documents&after=last",
	} {
		if _, status, err := in.dialSocket(key, "project="+p+"&"+q); status != http.StatusBadRequest {
			t.Errorf("WebSocket %s: %d %v", name, status, err)
		}
	}

	// A resume sequence beyond the end of the log: resync, then the log
	// from its start, then live.
	st := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"databases.main.collections.items.documents"}, AfterSequence: 1 << 40})
	if m := st.next(t, 5*time.Second); m.GetState().GetStatus() != cairnv1.ConnectionStatus_CONNECTION_STATUS_RESUMING {
		t.Fatalf("first message %v", m)
	}
	if m := st.next(t, 5*time.Second); m.GetResync().GetFirstAvailable() != 1 || !strings.Contains(m.GetResync().GetReason(), "beyond the end") {
		t.Fatalf("want a resync, got %v", m)
	}
	st.expect(t, "beyond the end", c("d1"), c("d2"), c("d3"), c("d4"), u("d1"), del("d4"))
	st.untilLive(t)

	// The per-project quota (--realtime-max-connections 10): project q
	// takes ten, the eleventh is refused on either transport; closing one
	// makes room.
	qkey := newProjectWithKey(t, in, "q", "events.read")
	qk, _ := as(context.Background(), qkey)
	var open []*rtStream
	for i := range 10 {
		if i%2 == 0 {
			open = append(open, in.subscribe(t, qkey, &cairnv1.SubscribeRequest{ProjectId: "q", Channels: []string{"documents"}}))
		} else {
			open = append(open, in.socket(t, qkey, "project=q&channels=documents"))
		}
		open[i].untilLive(t)
	}
	if err := in.subscribeErr(qk, &cairnv1.SubscribeRequest{ProjectId: "q", Channels: []string{"documents"}}); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("eleventh Connect subscription: %v", err)
	}
	// (ResourceExhausted is 413 in the HTTP table.)
	if _, status, err := in.dialSocket(qkey, "project=q&channels=documents"); status != http.StatusRequestEntityTooLarge && status != http.StatusTooManyRequests {
		t.Errorf("eleventh WebSocket: %d %v", status, err)
	}
	open[3].cancel()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s, _, err := in.dialSocket(qkey, "project=q&channels=documents")
		if err == nil {
			s.cancel()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a close: %v", err)
		}
	}
}

// TestRealtimeFilterOperators: every operator one document answers works
// in a realtime filter (all but search), geo and elemMatch included, and
// bad operands are refused naming the field.
func TestRealtimeFilterOperators(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p = "flt"
	key := newProjectWithKey(t, in, p, rtScopes...)
	k, _ := as(context.Background(), key)
	docsFixture(t, k, in.databases(), p, "items", []string{`read("any")`}, false)
	for _, a := range []*cairnv1.Attribute{
		{Key: "at", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_POINT},
		{Key: "tags", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 16, Array: true},
	} {
		if _, err := in.databases().CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "items", Attribute: a}); err != nil {
			t.Fatal(err)
		}
	}
	sub := func(fs ...*cairnv1.Filter) *rtStream {
		s := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents"}, Filters: fs})
		s.untilLive(t)
		return s
	}
	subs := map[string]*rtStream{
		"title starts with h or w": sub(filter(cairnv1.Operator_OPERATOR_STARTS_WITH, "title", "h", "w")),
		"title ~ ^co":              sub(filter(cairnv1.Operator_OPERATOR_REGEX, "title", "^co")),
		"within 200 km of 0,0":     sub(filter(cairnv1.Operator_OPERATOR_DISTANCE_LESS_THAN, "at", []any{0, 0}, 200_000)),
		"in the square": sub(filter(cairnv1.Operator_OPERATOR_INTERSECTS, "at",
			[]any{-1, -1}, []any{2, -1}, []any{2, 2}, []any{-1, 2}, []any{-1, -1})),
		"tags has a and b": sub(filter(cairnv1.Operator_OPERATOR_CONTAINS_ALL, "tags", "a", "b")),
		"a tag starts with b": sub(&cairnv1.Filter{Op: cairnv1.Operator_OPERATOR_ELEM_MATCH, Attribute: "tags",
			Filters: []*cairnv1.Filter{filter(cairnv1.Operator_OPERATOR_STARTS_WITH, "", "b")}}),
		"created since 2000, email exists": sub(filter(cairnv1.Operator_OPERATOR_CREATED_AFTER, "", "2000-01-01T00:00:00Z"),
			filter(cairnv1.Operator_OPERATOR_EXISTS, "email")),
	}
	filterWrites(t, in, k, p, []map[string]any{
		{"title": "hot", "views": 1, "at": []any{0, 0}},
		{"title": "cold", "views": 20, "email": "a@example.com", "at": []any{10, 10}, "tags": []any{"a", "b"}},
		{"title": "hot", "views": 6, "email": "b@example.com", "at": []any{1, 0.5}, "tags": []any{"a"}},
		{"title": "warm", "views": -3},
	})
	c, u, del := func(d string) string { return docName("items", d, "create") }, func(d string) string { return docName("items", d, "update") },
		func(d string) string { return docName("items", d, "delete") }
	subs["title starts with h or w"].expect(t, "title starts with h or w", c("d1"), c("d3"), c("d4"), u("d1"), del("d4"))
	subs["title ~ ^co"].expect(t, "title ~ ^co", c("d2"))
	subs["within 200 km of 0,0"].expect(t, "within 200 km of 0,0", c("d1"), c("d3"), u("d1"))
	subs["in the square"].expect(t, "in the square", c("d1"), c("d3"), u("d1"))
	subs["tags has a and b"].expect(t, "tags has a and b", c("d2"))
	subs["a tag starts with b"].expect(t, "a tag starts with b", c("d2"))
	subs["created since 2000, email exists"].expect(t, "created since 2000, email exists", c("d2"), c("d3"))
	noMore(t, 300*time.Millisecond, subs)

	for name, tc := range map[string]struct {
		f     *cairnv1.Filter
		field string
	}{
		"search":     {filter(cairnv1.Operator_OPERATOR_SEARCH, "title", "h"), "filters[0].method"},
		"bad regex":  {filter(cairnv1.Operator_OPERATOR_REGEX, "title", "("), "filters[0].values[0]"},
		"bad centre": {filter(cairnv1.Operator_OPERATOR_DISTANCE_LESS_THAN, "at", []any{0, 91}, 5), "filters[0].values[0]"},
		"open ring": {filter(cairnv1.Operator_OPERATOR_INTERSECTS, "at", []any{0, 0}, []any{1, 0}, []any{1, 1}, []any{0, 1}),
			"filters[0].values"},
		"bad date": {filter(cairnv1.Operator_OPERATOR_UPDATED_BEFORE, "", "soon"), "filters[0].values[0]"},
	} {
		err := in.subscribeErr(k, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents"}, Filters: []*cairnv1.Filter{tc.f}})
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want invalid_argument naming %s", name, err, tc.field)
		}
	}
}

// TestRealtimePermissions: each subscriber receives what it may read at
// the moment of the event: document security, file security, a team's
// documents only while a member (revoked mid-stream), guests only public
// ones; a WebSocket client that authenticates becomes that user.
func TestRealtimePermissions(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p = "perm"
	key := newProjectWithKey(t, in, p, rtScopes...)
	ctx := context.Background()
	k, _ := as(ctx, key)
	docsFixture(t, k, in.databases(), p, "notes", []string{`create("users")`}, true)
	docsFixture(t, k, in.databases(), p, "public", []string{`read("any")`}, false)
	if _, err := in.storage().CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "fb", Name: "fb",
		Permissions: []string{`create("users")`}, FileSecurity: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.teams().CreateTeam(k, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "club", Name: "Club"}); err != nil {
		t.Fatal(err)
	}
	g, _ := guest(ctx, p, "")
	for _, e := range []string{"ann@example.com", "bob@example.com"} {
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
	}
	ann := signIn(t, in, p, "ann@example.com", "password of ann@example.com")
	bob := signIn(t, in, p, "bob@example.com", "password of bob@example.com")
	ac, _ := guest(ctx, p, ann.GetSecret())
	bc, _ := guest(ctx, p, bob.GetSecret())

	subs := map[string]*rtStream{
		"key":   in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents", "files"}}),
		"ann":   in.subscribe(t, ann.GetSecret(), &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents", "files"}}),
		"bob":   in.socket(t, bob.GetSecret(), "project="+p+"&channels=documents&channels=files&channels=memberships"),
		"guest": in.subscribe(t, "", &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents", "files"}}),
		// A guest socket that signs in as ann midway.
		"guest, then ann": in.socket(t, "", "project="+p+"&channels=documents"),
	}
	for _, s := range subs {
		s.untilLive(t)
	}
	write := func(c context.Context, coll, id, title string, perms ...string) {
		t.Helper()
		doc := &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": title})}
		if perms != nil {
			doc.Permissions = &cairnv1.Permissions{Values: perms}
		}
		if _, err := in.databases().CreateDocument(c, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: coll, Document: doc}); err != nil {
			t.Fatal(err)
		}
	}
	n := func(id, verb string) string { return docName("notes", id, verb) }
	update := func(id, title string) {
		t.Helper()
		if _, err := in.databases().UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", DocumentId: id,
			Data: data(t, map[string]any{"title": title})}); err != nil {
			t.Fatal(err)
		}
	}
	write(ac, "notes", "a1", "ann's")
	write(bc, "notes", "b1", "bob's")
	write(k, "notes", "shared", "v1", `read("user:`+ann.GetSession().GetUserId()+`")`, `read("team:club")`)
	// The guest socket signs in as ann, once it has judged every event
	// before as a guest (what is queued is judged when it is sent): a
	// bad credential is refused first.
	write(k, "public", "pre", "marker")
	pre := docName("public", "pre", "create")
	gs := subs["guest, then ann"]
	gs.expect(t, "guest socket", pre)
	gs.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Authenticate{Authenticate: "not a session"}})
	if r := gs.rejected(t); !strings.Contains(r, "authenticate") {
		t.Errorf("bad credential: %s", r)
	}
	gs.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Authenticate{Authenticate: ann.GetSecret()}})
	gs.sync(t)
	// Bob judges everything so far before he joins the club (permissions
	// are those at delivery: a lagging queue would judge "shared" with his
	// new membership).
	subs["bob"].expect(t, "bob", n("b1", "create"), pre)
	m, err := in.teams().CreateMembership(k, &cairnv1.CreateMembershipRequest{ProjectId: p, TeamId: "club", UserId: bob.GetSession().GetUserId()})
	if err != nil {
		t.Fatal(err)
	}
	mID := m.GetMembership().GetId()
	update("shared", "v2")
	// (Permissions are those at delivery: had bob's queue not reached the
	// update before the revocation, he would not get it.)
	evs := subs["bob"].expect(t, "bob", "teams.club.memberships."+mID+".create", n("shared", "update"))
	if !strings.Contains(protojson.Format(evs[1].GetPayload()), "v2") {
		t.Errorf("bob's update of the club's note: %v", evs[1].GetPayload())
	}
	// Revoked mid-stream: bob sees nothing of the club's note after this.
	if _, err := in.teams().DeleteMembership(k, &cairnv1.DeleteMembershipRequest{ProjectId: p, TeamId: "club", MembershipId: mID}); err != nil {
		t.Fatal(err)
	}
	update("shared", "v3")
	write(k, "public", "pub1", "hello")
	if _, err := in.storage().CreateFile(ac, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "fb", FileId: "af", Name: "a.txt", Content: []byte("ann")}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateFile(k, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "fb", FileId: "pf", Name: "p.txt", Content: []byte("all"),
		Permissions: &cairnv1.Permissions{Values: []string{`read("any")`}}}); err != nil {
		t.Fatal(err)
	}

	pub, af, pf := docName("public", "pub1", "create"), "buckets.fb.files.af.create", "buckets.fb.files.pf.create"
	subs["key"].expect(t, "key", n("a1", "create"), n("b1", "create"), n("shared", "create"), pre, n("shared", "update"), n("shared", "update"), pub, af, pf)
	evs = subs["ann"].expect(t, "ann", n("a1", "create"), n("shared", "create"), pre, n("shared", "update"), n("shared", "update"), pub, af, pf)
	if title := evs[4].GetPayload().GetFields()["data"].GetStructValue().GetFields()["title"]; title != nil && title.GetStringValue() != "v3" {
		t.Errorf("ann's last update: %v", evs[4].GetPayload())
	}
	subs["bob"].expect(t, "bob", "teams.club.memberships."+mID+".delete", pub, pf)
	subs["guest"].expect(t, "guest", pre, pub, pf)
	subs["guest, then ann"].expect(t, "guest, then ann", n("shared", "update"), n("shared", "update"), pub)
	noMore(t, 300*time.Millisecond, subs)
}

// TestRealtimeResume: a client disconnected during 1,000 writes resumes
// from the last sequence it saw and receives exactly the events it missed
// that its channel and permissions select, in order, once each, then live
// ones; Connect before, a WebSocket after.
func TestRealtimeResume(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p = "res"
	key := newProjectWithKey(t, in, p, rtScopes...)
	ctx := context.Background()
	k, _ := as(ctx, key)
	docsFixture(t, k, in.databases(), p, "feed", nil, true) // documents say who reads them
	docsFixture(t, k, in.databases(), p, "other", []string{`read("any")`}, false)
	g, _ := guest(ctx, p, "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "bob@example.com", Password: "password of bob"}); err != nil {
		t.Fatal(err)
	}
	bob := signIn(t, in, p, "bob@example.com", "password of bob")
	feed := "databases.main.collections.feed.documents"
	ref := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{feed}})
	ref.untilLive(t)
	first := in.subscribe(t, bob.GetSecret(), &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{feed}})
	if m := first.next(t, 5*time.Second); m.GetState().GetStatus() != cairnv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED {
		t.Fatalf("a new subscription starts with %v", m)
	}
	first.untilLive(t)

	// Four writers, 1,000 documents: every fifth in another collection,
	// every third of the feed's readable by bob.
	const writes = 1000
	readable := func(i int) bool { return i%3 == 0 }
	var written atomic.Int64
	errc := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := w; i < writes; i += 4 {
				k, _ := as(ctx, key) // a call's context holds its response headers
				coll, perms := "feed", []string{`read("any")`}
				if i%5 == 4 {
					coll = "other"
				}
				if coll == "feed" {
					perms = nil
					if readable(i) {
						perms = []string{`read("user:` + bob.GetSession().GetUserId() + `")`}
					}
				}
				doc := &cairnv1.DocumentInput{DocumentId: fmt.Sprint("w", i), Data: data(t, map[string]any{"title": "x", "views": i})}
				if perms != nil {
					doc.Permissions = &cairnv1.Permissions{Values: perms}
				}
				if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: coll, Document: doc}); err != nil {
					errc <- err
					return
				}
				written.Add(1)
			}
			errc <- nil
		}()
	}
	index := func(e *cairnv1.RealtimeEvent) int {
		return int(e.GetPayload().GetFields()["data"].GetStructValue().GetFields()["views"].GetNumberValue())
	}
	// Bob reads 30 events, then drops off while the writers go on.
	var last uint64
	for _, e := range first.events(t, 30) {
		if e.GetSequence() <= last || !readable(index(e)) {
			t.Fatalf("bob got %v after %d", e.GetEvents(), last)
		}
		last = e.GetSequence()
	}
	first.cancel()
	t.Logf("bob disconnected after sequence %d, %d of %d writes done", last, written.Load(), writes)
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// What bob missed: the reference subscriber saw every write of the feed.
	var missed []uint64
	for _, e := range ref.events(t, writes-writes/5) {
		if e.GetSequence() > last && readable(index(e)) {
			missed = append(missed, e.GetSequence())
		}
	}
	again := in.socket(t, bob.GetSecret(), fmt.Sprintf("project=%s&channels=%s&after=%d", p, feed, last))
	if m := again.next(t, 5*time.Second); m.GetState().GetStatus() != cairnv1.ConnectionStatus_CONNECTION_STATUS_RESUMING || m.GetState().GetSequence() != last {
		t.Fatalf("resume starts with %v", m)
	}
	for i, e := range again.events(t, len(missed)) {
		if e.GetSequence() != missed[i] {
			t.Fatalf("resumed event %d is sequence %d, want %d", i, e.GetSequence(), missed[i])
		}
	}
	if m := again.next(t, 5*time.Second); m.GetState().GetStatus() != cairnv1.ConnectionStatus_CONNECTION_STATUS_LIVE {
		t.Fatalf("after the %d missed events: %v", len(missed), m)
	}
	// Then live, with nothing in between.
	if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "feed",
		Document: &cairnv1.DocumentInput{DocumentId: "live", Data: data(t, map[string]any{"title": "live", "views": 3}),
			Permissions: &cairnv1.Permissions{Values: []string{`read("user:` + bob.GetSession().GetUserId() + `")`}}}}); err != nil {
		t.Fatal(err)
	}
	if e := again.nextEvent(t, 5*time.Second); e.GetEvents()[0] != docName("feed", "live", "create") {
		t.Fatalf("live event %v", e.GetEvents())
	}
	t.Logf("resumed with %d missed events", len(missed))
}

// TestRealtimeSlowConsumer: a WebSocket client that stops reading while
// 5,000 events are written is cut off with the reason once its queue
// (--realtime-buffer 256) overflows, and loses nothing by resuming; fast
// subscribers meanwhile get every event promptly.
func TestRealtimeSlowConsumer(t *testing.T) {
	// Three subscriptions fit: a fourth fits once the slow one is cut off.
	in := startInstance(t, t.TempDir(), "--realtime-buffer", "256", "--realtime-max-connections", "3")
	const p = "slow"
	key := newProjectWithKey(t, in, p, rtScopes...)
	k, _ := as(context.Background(), key)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "big", Name: "big",
		Permissions: []string{`read("any")`}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "big",
		Attribute: &cairnv1.Attribute{Key: "body", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 4096, Required: true}}); err != nil {
		t.Fatal(err)
	}
	fast := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents"}})
	fastWS := in.socket(t, key, "project="+p+"&channels=documents")
	fast.untilLive(t)
	fastWS.untilLive(t)
	// The slow client reads its first messages, then nothing.
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	slow, _, err := websocket.Dial(context.Background(), in.rtURL("project="+p+"&channels=documents"), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	slow.SetReadLimit(1 << 20)
	read := func() (*cairnv1.SubscribeResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, b, err := slow.Read(ctx)
		if err != nil {
			return nil, err
		}
		m := &cairnv1.SubscribeResponse{}
		return m, protojson.Unmarshal(b, m)
	}
	for range 2 { // connected, live
		if _, err := read(); err != nil {
			t.Fatal(err)
		}
	}

	// Cut off, the slow client starts reading, within its frame's write
	// timeout (a probe subscription fits once it has been removed).
	cutOff := make(chan struct{})
	go func() {
		defer close(cutOff)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if probe, _, err := in.dialSocket(key, "project="+p+"&channels=teams"); err == nil {
				probe.cancel()
				return
			}
		}
	}()

	const total, batch = 5000, 50
	body := strings.Repeat("x", 1000)
	start := time.Now()
	for b := range total / batch {
		docs := make([]*cairnv1.DocumentInput, batch)
		for i := range docs {
			docs[i] = &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", b*batch+i), Data: data(t, map[string]any{"body": body})}
		}
		if _, err := dbs.CreateDocuments(k, &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "big", Documents: docs}); err != nil {
			t.Fatal(err)
		}
	}
	// Meanwhile the slow client reads what was queued, in order, then why
	// it was cut off.
	var got []uint64
	var reason string
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		<-cutOff
		for {
			m, err := read()
			if err != nil {
				if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
					t.Errorf("slow client closed with %v", err)
				}
				return
			}
			if e := m.GetEvent(); e != nil {
				if len(got) > 0 && e.GetSequence() != got[len(got)-1]+1 {
					t.Errorf("slow client: sequence %d after %d", e.GetSequence(), got[len(got)-1])
				}
				got = append(got, e.GetSequence())
			}
			if c := m.GetClosing(); c != nil {
				reason = c.GetReason()
			}
		}
	}()
	var lastSeq uint64
	for name, s := range map[string]*rtStream{"Connect": fast, "WebSocket": fastWS} {
		evs := s.events(t, total)
		for i := 1; i < total; i++ {
			if evs[i].GetSequence() != evs[i-1].GetSequence()+1 {
				t.Fatalf("%s: sequence %d after %d", name, evs[i].GetSequence(), evs[i-1].GetSequence())
			}
		}
		lastSeq = evs[total-1].GetSequence()
		t.Logf("%s fast subscriber: %d events, lag p50 %v p99 %v", name, total, s.lagQuantile(0.5), s.lagQuantile(0.99))
		if p99 := s.lagQuantile(0.99); p99 > 5*time.Second {
			t.Errorf("%s fast subscriber lag p99 %v", name, p99)
		}
	}
	t.Logf("%d events written and delivered in %v", total, time.Since(start))

	<-slowDone
	if !strings.Contains(reason, "too far behind") || len(got) == 0 || len(got) >= total {
		t.Fatalf("slow client got %d events and closing %q", len(got), reason)
	}
	t.Logf("slow client cut off after %d events", len(got))
	// It resumes from the last one it got and misses nothing.
	again := in.socket(t, key, fmt.Sprintf("project=%s&channels=documents&after=%d", p, got[len(got)-1]))
	want := got[len(got)-1] + 1
	for _, e := range again.events(t, int(lastSeq-want+1)) {
		if e.GetSequence() != want {
			t.Fatalf("resumed sequence %d, want %d", e.GetSequence(), want)
		}
		want++
	}
}

// TestRealtimeCrossProject: a subscriber of one project never sees another
// project's events, whoever it is and whatever channel it names, and
// cannot subscribe to another project at all.
func TestRealtimeCrossProject(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	keys := map[string]string{}
	for _, p := range []string{"victim", "intruder"} {
		keys[p] = newProjectWithKey(t, in, p, rtScopes...)
		k, _ := as(ctx, keys[p])
		docsFixture(t, k, in.databases(), p, "posts", []string{`read("any")`}, false)
	}
	ig, _ := guest(ctx, "intruder", "")
	if _, err := in.account().CreateAccount(ig, &cairnv1.CreateAccountRequest{Email: "i@example.com", Password: "intruder password"}); err != nil {
		t.Fatal(err)
	}
	isess := signIn(t, in, "intruder", "i@example.com", "intruder password")
	req := func(channels ...string) *cairnv1.SubscribeRequest {
		return &cairnv1.SubscribeRequest{ProjectId: "intruder", Channels: channels}
	}
	subs := map[string]*rtStream{
		"key":                in.subscribe(t, keys["intruder"], req("documents")),
		"key, many channels": in.subscribe(t, keys["intruder"], req("documents", "databases.main.collections.posts.documents", "account", "teams", "files")),
		"session":            in.subscribe(t, isess.GetSecret(), req("documents", "account")),
		"guest":              in.subscribe(t, "", req("documents")),
		"key socket":         in.socket(t, keys["intruder"], "project=intruder&channels=documents&channels=databases.main.collections.posts.documents"),
	}
	for _, s := range subs {
		s.untilLive(t)
	}
	// The victim writes 20 documents and an account, the intruder 5 documents.
	vk, _ := as(ctx, keys["victim"])
	ik, _ := as(ctx, keys["intruder"])
	for i := range 25 {
		c, p := vk, "victim"
		if i%5 == 4 {
			c, p = ik, "intruder"
		}
		if _, err := in.databases().CreateDocument(c, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint(p, i), Data: data(t, map[string]any{"title": p})}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.users().CreateUser(vk, &cairnv1.CreateUserRequest{ProjectId: "victim", UserId: "vu", Email: "v@example.com", Password: "victim password"}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 4; i < 25; i += 5 {
		want = append(want, docName("posts", fmt.Sprint("intruder", i), "create"))
	}
	for who, s := range subs {
		for _, e := range s.expect(t, who, want...) {
			if e.GetPayload().GetFields()["projectId"].GetStringValue() != "intruder" {
				t.Errorf("%s: payload %v", who, e.GetPayload())
			}
		}
	}
	noMore(t, 300*time.Millisecond, subs)

	// Subscribing to the victim with the intruder's credentials: refused.
	for _, cred := range []struct{ name, token string }{{"key", keys["intruder"]}, {"session", isess.GetSecret()}} {
		c, _ := guest(ctx, "victim", cred.token)
		if err := in.subscribeErr(c, &cairnv1.SubscribeRequest{ProjectId: "victim", Channels: []string{"documents"}}); connect.CodeOf(err) != connect.CodePermissionDenied &&
			connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("Connect with the intruder's %s: %v", cred.name, err)
		}
		if _, status, err := in.dialSocket(cred.token, "project=victim&channels=documents"); status != http.StatusForbidden && status != http.StatusUnauthorized {
			t.Errorf("WebSocket with the intruder's %s: %d %v", cred.name, status, err)
		}
	}
	// Nor by switching to it on an open socket, or authenticating there
	// with the victim's key... on the intruder's connection it stays the
	// intruder's project.
	ws := subs["key socket"]
	ws.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Subscribe{Subscribe: &cairnv1.SubscribeRequest{
		ProjectId: "victim", Channels: []string{"documents"}}}})
	ws.rejected(t)
	ws.send(t, &cairnv1.RealtimeClientMessage{Message: &cairnv1.RealtimeClientMessage_Authenticate{Authenticate: keys["victim"]}})
	if r := ws.rejected(t); !strings.Contains(r, "authenticate") {
		t.Errorf("authenticating with the victim's key: %s", r)
	}
}

// TestRealtimeFanOutPermissions: enough WebSocket subscribers that the
// fan-out splits them between goroutines, signed in as ann (two sessions),
// as bob, guests or with the key (one set of key sockets asking for
// deletes only), while runs of documents (written in batches, so frames
// queue and go out together) alternate who may read them: every socket
// gets exactly the documents its caller may read, in order, though all
// share one encoded frame per document. The sockets open interleaved,
// then in runs of one caller: the fan-out reuses a decision for the next
// subscriber of the same audience (caller and kinds), never for another.
func TestRealtimeFanOutPermissions(t *testing.T) {
	in := startInstance(t, t.TempDir())
	const p = "fanperm"
	key := newProjectWithKey(t, in, p, rtScopes...)
	ctx := context.Background()
	k, _ := as(ctx, key)
	docsFixture(t, k, in.databases(), p, "notes", []string{`create("users")`}, true)
	g, _ := guest(ctx, p, "")
	users := map[string]string{}
	for _, name := range []string{"ann", "bob"} {
		e := name + "@example.com"
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
		s := signIn(t, in, p, e, "password of "+e)
		users[name] = s.GetSecret()
		users[name+" id"] = s.GetSession().GetUserId()
	}
	again := signIn(t, in, p, "ann@example.com", "password of ann@example.com")
	users["ann again"] = again.GetSecret()
	users["key"], users["key, deletes"] = key, key
	const each = 25 // 150 sockets: at least two shares of the fan-out
	type sub struct {
		who string
		s   *rtStream
	}
	var subs []sub
	whos := []string{"ann", "bob", "ann again", "guest", "key", "key, deletes"}
	open := func(who string) {
		q := "project=" + p + "&channels=documents"
		if who == "key, deletes" {
			q += "&kinds=delete"
		}
		subs = append(subs, sub{who, in.socket(t, users[who], q)})
	}
	for range each / 2 {
		for _, who := range whos {
			open(who)
		}
	}
	for _, who := range whos {
		for range each - each/2 {
			open(who)
		}
	}
	for _, s := range subs {
		s.s.untilLive(t)
	}
	// Document i may be read by ann (i%3 == 0), bob (1) or anyone (2).
	const total, batch = 120, 40
	want := map[string][]string{}
	for b := range total / batch {
		docs := make([]*cairnv1.DocumentInput, batch)
		for j := range docs {
			i := b*batch + j
			id := fmt.Sprint("n", i)
			var perm string
			switch i % 3 {
			case 0:
				perm = `read("user:` + users["ann id"] + `")`
				want["ann"] = append(want["ann"], id)
				want["ann again"] = append(want["ann again"], id)
			case 1:
				perm = `read("user:` + users["bob id"] + `")`
				want["bob"] = append(want["bob"], id)
			default:
				perm = `read("any")`
				for _, who := range []string{"ann", "ann again", "bob", "guest"} {
					want[who] = append(want[who], id)
				}
			}
			want["key"] = append(want["key"], id)
			docs[j] = &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id}), Permissions: &cairnv1.Permissions{Values: []string{perm}}}
		}
		if _, err := in.databases().CreateDocuments(k, &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", Documents: docs}); err != nil {
			t.Fatal(err)
		}
	}
	rest := map[string]*rtStream{}
	for n, s := range subs {
		var names []string
		for _, id := range want[s.who] {
			names = append(names, docName("notes", id, "create"))
		}
		got := s.s.events(t, len(names))
		for i, e := range got {
			if e.GetEvents()[0] != names[i] {
				t.Fatalf("%s socket %d: event %d is %s, want %s", s.who, n, i, e.GetEvents()[0], names[i])
			}
		}
		rest[fmt.Sprint(s.who, n)] = s.s
	}
	noMore(t, 300*time.Millisecond, rest)
}

// filterWrites creates documents d1, d2, … of collection items from docs,
// then sets d1's views to 50 and deletes d4: the writes the realtime filter
// tests watch.
func filterWrites(t *testing.T, in *instance, k context.Context, p string, docs []map[string]any) {
	t.Helper()
	for i, d := range docs {
		if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "items",
			Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprint("d", i+1), Data: data(t, d)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.databases().UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "items", DocumentId: "d1",
		Data: data(t, map[string]any{"views": 50})}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.databases().DeleteDocument(k, &cairnv1.DeleteDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "items", DocumentId: "d4"}); err != nil {
		t.Fatal(err)
	}
}
