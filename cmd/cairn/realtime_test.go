package main

import (
	"context"
	"fmt"
	"net/http"
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
