package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/realtime"
)

// Realtime over a WebSocket: GET /v1/realtime?project=<p>&channels=<c>…
// [&after=<seq>][&kinds=create…][&authenticate=first]. Every frame is a
// SubscribeResponse as protojson; the client may send RealtimeClientMessage
// frames (a new subscription, or a credential). Credentials: Authorization,
// the project's session cookie (same-origin only), or an authenticate
// message. With authenticate=first the subscription starts only once the
// first frame, {"authenticate":"<session or JWT>"}, is accepted: a browser
// (which cannot send Authorization on a WebSocket) resuming with after=
// then has no event judged as a guest's and skipped.
const (
	realtimePath = "/v1/realtime"
	// wsWriteTimeout bounds one write of a connection's queued frames: a
	// client that stops reading holds only its own connection until its
	// queue overflows.
	wsWriteTimeout = 10 * time.Second
	wsReadLimit    = 64 << 10
	// wsAuthTimeout bounds the wait for the first frame's credential
	// (authenticate=first).
	wsAuthTimeout = 10 * time.Second
)

var kindNames = map[string]cairnv1.EventKind{
	"create": cairnv1.EventKind_EVENT_KIND_CREATE,
	"update": cairnv1.EventKind_EVENT_KIND_UPDATE,
	"delete": cairnv1.EventKind_EVENT_KIND_DELETE,
}

func (s *Server) serveRealtime(w http.ResponseWriter, r *http.Request) {
	project, err := requestProject(r)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	p, err := s.httpCaller(r, project, access.EventsRead)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	q := r.URL.Query()
	req := &cairnv1.SubscribeRequest{ProjectId: project, Channels: q["channels"]}
	if v := q.Get("after"); v != "" {
		if req.AfterSequence, err = strconv.ParseUint(v, 10, 64); err != nil {
			s.httpError(w, r, domain.FieldError("after", "must be a stream sequence"))
			return
		}
	}
	for _, k := range q["kinds"] {
		kind, ok := kindNames[k]
		if !ok {
			s.httpError(w, r, domain.FieldError("kinds", "%q is not create, update or delete", k))
			return
		}
		req.Kinds = append(req.Kinds, kind)
	}
	authFirst := q.Get("authenticate") == "first"
	var c *rtClient
	if !authFirst {
		if c, err = s.subscribe(project, p, req); err != nil {
			s.httpError(w, r, err)
			return
		}
	} else if _, err := newView(p, req, s.hub.Limits().MaxChannels); err != nil {
		s.httpError(w, r, err)
		return
	}
	// httpCaller refused origins the project does not allow (cross-site
	// WebSocket hijacking); the library's own same-origin check would
	// refuse the allowed ones too.
	tap := &wsTap{ResponseWriter: w, timeout: wsWriteTimeout, limit: s.hub.Limits().Buffer}
	conn, err := websocket.Accept(tap, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		if c != nil {
			c.sub.Close(nil)
		}
		return
	}
	ww := tap.w
	defer ww.close()
	s.hijacked.add(1)
	defer s.hijacked.add(-1)
	conn.SetReadLimit(wsReadLimit)
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	// The connection's reads use ioCtx, which stopping does not cancel: a
	// canceled context drops the connection without a close frame (the
	// client sees 1006), where it must see 1001.
	ioCtx, ioCancel := context.WithCancel(r.Context())
	defer ioCancel()
	// Every frame goes through ww, in order; each write of its queue has
	// wsWriteTimeout.
	write := func(m *cairnv1.SubscribeResponse) error {
		b, err := protojson.Marshal(m)
		if err != nil {
			return err
		}
		return ww.Write(wsTextFrame(b))
	}
	// last writes the final message and waits until it is out (with
	// what was queued before it), or the connection failed.
	last := func(m *cairnv1.SubscribeResponse) {
		if write(m) == nil {
			_ = ww.Flush()
		}
	}
	if authFirst {
		if c, err = s.subscribeAuthenticated(ioCtx, conn, project, req); err != nil {
			last(closing(err))
			_ = conn.Close(websocket.StatusPolicyViolation, truncateReason(err.Error()))
			return
		}
	}
	// No goroutine watches the subscription (one per connection, for
	// every collection to scan): RunDirect returns once it is closed, its
	// catch-up after the event it is at. A slow consumer's queued frames
	// still go out (each write within wsWriteTimeout), so the client
	// learns why it was cut off.
	pres := s.newWSPresence(project, c, ww)
	// Before the writer closes (deferred earlier): the leaves go out now.
	defer pres.close()
	go s.readRealtime(ioCtx, conn, c, pres, project, write)
	// State messages and the catch-up are written here; live events by
	// the hub's fan-out, which queues each event's shared frame (ww.Send)
	// and then writes the queue (ww.Kick). Usage counts what was queued.
	metered := s.meter.Open(project)
	defer metered.Close()
	live := &c.ws
	live.s, live.c, live.ww, live.project = s, c, ww, project
	defer live.meterNow()
	err = c.sub.RunDirect(ctx, c.accept, func(d realtime.Delivery) error {
		if d.Event == nil {
			return write(c.response(d))
		}
		b, err := c.wsFrame(d.Event, c.sub.MatchedSet(d.Event))
		if err != nil {
			return err
		}
		if err := ww.Write(b); err != nil {
			return err
		}
		live.delivered.Add(1)
		return nil
	}, live)
	if cause := c.sub.Err(); cause != nil {
		err = cause
	}
	switch {
	case errors.Is(err, realtime.ErrSlowConsumer), errors.Is(err, realtime.ErrClosed):
		last(closing(err))
		_ = conn.Close(websocket.StatusPolicyViolation, truncateReason(err.Error()))
	case s.stopping != nil && isClosed(s.stopping):
		last(closing(errStopping))
		_ = conn.Close(websocket.StatusGoingAway, errStopping.Error())
	default:
		_ = conn.Close(websocket.StatusNormalClosure, "")
	}
}

// wsLive takes a WebSocket subscriber's live events from the hub's fan-out
// (Subscriber.RunDirect, as its realtime.Sink): what one delivery touches
// is in this struct, the rtClient and the writer.
type wsLive struct {
	s       *Server
	c       *rtClient
	ww      *wsWriter
	project string
	// delivered counts what was queued and not yet handed to the meter,
	// which takes a lock shared by every subscriber: counts go to it in
	// bulk, once 64 are queued, with the first event stored a second
	// after the last count (its time in the log: no clock read per
	// delivery), and when the connection ends.
	delivered atomic.Int64
	meteredAt atomic.Int64
	meter     atomic.Bool // the next kick hands the count to the meter
}

// Deliver queues e's frame if the subscriber may see it, and with kick
// writes what is queued; false when its queue is full.
func (l *wsLive) Deliver(e *realtime.Event, set uint64, kick bool) bool {
	b := l.c.liveFrame(e, set)
	if b == nil {
		if kick {
			l.Kick()
		}
		return true
	}
	if !l.ww.Send(b, kick) {
		return false
	}
	if t := e.Time.UnixNano(); l.delivered.Add(1) >= 64 || t-l.meteredAt.Load() > int64(time.Second) {
		l.meteredAt.Store(t)
		l.meter.Store(true)
	}
	if kick {
		l.meterIfDue()
	}
	return true
}

// Kick writes what Deliver queued.
func (l *wsLive) Kick() {
	l.ww.Kick()
	l.meterIfDue()
}

func (l *wsLive) meterIfDue() {
	if l.meter.Load() {
		l.meter.Store(false)
		l.meterNow()
	}
}

func (l *wsLive) meterNow() { l.s.meter.DeliveredN(l.project, l.delivered.Swap(0)) }

// subscribeAuthenticated reads the first frame of an authenticate=first
// connection, a credential, and subscribes as its caller.
func (s *Server) subscribeAuthenticated(ctx context.Context, conn *websocket.Conn, project string, req *cairnv1.SubscribeRequest) (*rtClient, error) {
	rctx, done := context.WithTimeout(ctx, wsAuthTimeout)
	defer done()
	_, data, err := conn.Read(rctx)
	if err != nil {
		return nil, domain.Errorf(domain.KindUnauthenticated, "authenticate=first: no {\"authenticate\":…} frame within %s", wsAuthTimeout)
	}
	msg := &cairnv1.RealtimeClientMessage{}
	if err := protojson.Unmarshal(data, msg); err != nil || msg.GetAuthenticate() == "" {
		return nil, domain.Errorf(domain.KindUnauthenticated, "authenticate=first: the first frame must be {\"authenticate\":\"<session or JWT>\"}")
	}
	p, err := s.projectCredential(project, msg.GetAuthenticate(), access.EventsRead)
	if pin := pinnedProject(ctx); err == nil && pin != "" && p.Project != pin {
		err = pinnedRefusal(pin)
	}
	if err != nil {
		return nil, err
	}
	noteCaller(ctx, p)
	return s.subscribe(project, p, req)
}

// readRealtime handles a client's messages: a new subscription replaces
// channels, kinds and filters in place; authenticate changes who the
// client is. A bad message is answered and the connection kept.
func (s *Server) readRealtime(ctx context.Context, conn *websocket.Conn, c *rtClient, pres *wsPresence, project string, write func(*cairnv1.SubscribeResponse) error) {
	defer c.sub.Close(nil)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		msg := &cairnv1.RealtimeClientMessage{}
		if err := protojson.Unmarshal(data, msg); err != nil {
			_ = write(rejected("bad message: " + err.Error()))
			continue
		}
		// The connection's project is implied; naming another is an error.
		if sub := msg.GetSubscribe(); sub != nil && sub.GetProjectId() == "" {
			sub.ProjectId = project
		} else if sub != nil && sub.GetProjectId() != project {
			_ = write(rejected("subscribe: the connection is to project " + project))
			continue
		}
		if err := s.validator.Validate(msg); err != nil {
			_ = write(rejected("bad message: " + err.Error()))
			continue
		}
		v := c.view.Load()
		switch m := msg.GetMessage().(type) {
		case *cairnv1.RealtimeClientMessage_Subscribe:
			nv, err := newView(v.p, m.Subscribe, s.hub.Limits().MaxChannels)
			if err == nil {
				err = refuseStreamPresence(m.Subscribe)
			}
			if err != nil {
				_ = write(rejected("subscribe: " + err.Error()))
				continue
			}
			c.view.Store(nv)
			c.sub.SetChannels(m.Subscribe.GetChannels())
			pres.recheck(ctx)
		case *cairnv1.RealtimeClientMessage_Authenticate:
			p, err := s.projectCredential(project, m.Authenticate, access.EventsRead)
			if pin := pinnedProject(ctx); err == nil && pin != "" && p.Project != pin {
				err = pinnedRefusal(pin)
			}
			if err != nil {
				_ = write(rejected("authenticate: " + err.Error()))
				continue
			}
			c.view.Store(v.withPrincipal(p))
			pres.recheck(ctx)
		case *cairnv1.RealtimeClientMessage_PresenceJoin, *cairnv1.RealtimeClientMessage_PresenceLeave, *cairnv1.RealtimeClientMessage_PresenceWatch:
			if s.presence == nil {
				_ = write(rejected("presence: not available on this server"))
			} else if r := pres.handle(ctx, msg); r != nil {
				_ = write(r)
			}
		}
	}
}

// rejected answers a client message the server refused.
func rejected(reason string) *cairnv1.SubscribeResponse {
	return &cairnv1.SubscribeResponse{Message: &cairnv1.SubscribeResponse_Rejected{Rejected: &cairnv1.Rejected{Reason: reason}}}
}

func truncateReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
