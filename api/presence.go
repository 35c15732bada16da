package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/permission"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/realtime"
)

// PresenceOptions configure realtime presence (Config).
type PresenceOptions struct {
	// TTL is how long a member outlives its node: a crashed node's members
	// leave within it (default 30s, at least 1s).
	TTL time.Duration
	realtime.PresenceLimits
}

// DefaultPresenceTTL is how long a crashed node's members stay present.
const DefaultPresenceTTL = 30 * time.Second

// wsPresence is one realtime connection's presence (a WebSocket, or a
// Connect stream): made on its first join or watch, closed (every channel
// left at once) with the connection.
type wsPresence struct {
	s       *Server
	project string
	c       *rtClient
	// out queues a message for the client without blocking; false when
	// the client's queue is full.
	out func(*cairnv1.SubscribeResponse) bool

	mu     sync.Mutex
	pc     *realtime.PresenceConn
	closed bool
	// busy counts presence messages being handled: close waits for them,
	// so a join that lands as the connection ends is still left.
	busy sync.WaitGroup
	// gen is the access generation (realtime.Subscriber) the channels
	// were last checked at; rechecking is set while a recheck runs.
	gen        atomic.Uint64
	rechecking atomic.Bool
}

func (s *Server) newWSPresence(project string, c *rtClient, ww *wsWriter) *wsPresence {
	return &wsPresence{s: s, project: project, c: c, out: func(m *cairnv1.SubscribeResponse) bool {
		b, err := protojson.Marshal(m)
		if err != nil {
			s.logger.Warn("presence: frame", "project", project, "err", err)
			return true
		}
		return ww.Send(wsTextFrame(b), true)
	}}
}

// conn returns the connection's presence, starting it; nil once the
// connection ended.
func (w *wsPresence) conn() *realtime.PresenceConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	if w.pc == nil {
		w.pc = w.s.presence.Conn(w.project, presenceUser(w.c.view.Load().p), w.deliver)
	}
	return w.pc
}

// current is the connection's presence if it has started.
func (w *wsPresence) current() *realtime.PresenceConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pc
}

func presenceUser(p access.Principal) string {
	if p.Kind == access.User {
		return p.ID
	}
	return ""
}

// close leaves every channel.
func (w *wsPresence) close() {
	w.mu.Lock()
	w.closed = true
	pc := w.pc
	w.mu.Unlock()
	w.busy.Wait()
	if pc == nil {
		pc = w.current()
	}
	if pc != nil {
		pc.Close()
	}
}

// deliver queues a presence message without blocking; a full queue cuts
// the connection off as a slow consumer, as for events.
func (w *wsPresence) deliver(d realtime.PresenceDelivery) {
	if w.c.sub.AccessGeneration() != w.gen.Load() {
		// A membership, a user or a team changed: this change goes out
		// only if the client may still read the channel; the recheck of
		// all its channels (which may unwatch) cannot run here, under
		// the room's lock.
		denied := w.allowed(d.Channel) != nil
		if w.rechecking.CompareAndSwap(false, true) {
			go func() {
				defer w.rechecking.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				w.recheck(ctx)
			}()
		}
		if denied {
			return
		}
	}
	w.send(presenceResponse(d, w.current()))
}

// send queues m without blocking; a full queue cuts the connection off.
func (w *wsPresence) send(m *cairnv1.SubscribeResponse) {
	if !w.out(m) {
		go w.c.sub.Close(realtime.ErrSlowConsumer)
	}
}

// handle answers a presence message; nil when it was done.
func (w *wsPresence) handle(ctx context.Context, msg *cairnv1.RealtimeClientMessage) *cairnv1.SubscribeResponse {
	var op, channel string
	switch m := msg.GetMessage().(type) {
	case *cairnv1.RealtimeClientMessage_PresenceJoin:
		op, channel = "presence_join", m.PresenceJoin.GetChannel()
	case *cairnv1.RealtimeClientMessage_PresenceLeave:
		op, channel = "presence_leave", m.PresenceLeave.GetChannel()
	case *cairnv1.RealtimeClientMessage_PresenceWatch:
		op, channel = "presence_watch", m.PresenceWatch.GetChannel()
	default:
		return nil
	}
	if op == "presence_leave" {
		if pc := w.current(); pc != nil {
			if err := pc.Leave(ctx, channel); err != nil {
				return rejected(op + ": " + err.Error())
			}
		}
		return nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.busy.Add(1)
	defer w.busy.Done()
	if w.pc == nil {
		w.gen.Store(w.c.sub.AccessGeneration())
	}
	w.mu.Unlock()
	if err := w.allowed(channel); err != nil {
		return rejected(op + ": " + err.Error())
	}
	pc := w.conn()
	if pc == nil {
		return nil // the connection ended
	}
	var err error
	if op == "presence_watch" {
		err = pc.Watch(ctx, channel)
	} else {
		var payload json.RawMessage
		if p := msg.GetPresenceJoin().GetPayload(); p != nil {
			if payload, err = protojson.Marshal(p); err != nil {
				return rejected(op + ": payload: " + err.Error())
			}
		}
		err = pc.Join(ctx, channel, payload)
	}
	if err != nil {
		return rejected(op + ": " + presenceError(channel, err).Error())
	}
	return nil
}

// presenceError names the field a refused join failed on.
func presenceError(channel string, err error) error {
	switch {
	case errors.Is(err, realtime.ErrPresencePayload):
		return domain.FieldError("payload", "%v", err)
	case errors.Is(err, realtime.ErrPresenceFull):
		return domain.Errorf(domain.KindResourceExhausted, "channel %q: %v", channel, err)
	case errors.Is(err, realtime.ErrPresencePerConn):
		return domain.Errorf(domain.KindResourceExhausted, "%v", err)
	}
	return fmt.Errorf("channel %q: %w", channel, err)
}

// recheck follows a changed subscription, credential or access (a
// membership, a user): channels the connection no longer subscribes to,
// or may no longer read, are left and unwatched; after a new credential,
// joined ones are joined again as the new user.
func (w *wsPresence) recheck(ctx context.Context) {
	pc := w.current()
	if pc == nil {
		return
	}
	w.gen.Store(w.c.sub.AccessGeneration())
	changed := pc.SetUser(presenceUser(w.c.view.Load().p))
	for _, ch := range pc.Channels() {
		if err := w.allowed(ch); err != nil {
			pc.Unwatch(ch)
			w.send(rejected("presence on " + ch + " ended: " + err.Error()))
			continue
		}
		if payload, ok := pc.Payload(ch); ok && changed {
			_ = pc.Join(ctx, ch, payload)
		}
	}
}

// allowed checks that the connection subscribes to channel and may read
// it: the collection (or document), the bucket (or file), or the team
// (as a member). Anything hidden from the caller is not_found, whether it
// exists or not.
func (w *wsPresence) allowed(channel string) error {
	if !w.c.sub.HasChannel(channel) {
		return domain.FieldError("channel", "subscribe to %q before presence on it", channel)
	}
	parts := strings.Split(channel, ".")
	hidden := domain.Errorf(domain.KindNotFound, "channel %q not found", channel)
	subj, err := w.c.subject(w.c.view.Load())
	if err != nil {
		return err
	}
	server := subj.Kind == permission.APIKey || subj.Kind == permission.Operator
	s, project := w.s, w.project
	switch {
	case len(parts) >= 5 && parts[0] == "databases":
		db, c, err := (&databasesHandler{Server: s}).loadCollection(project, parts[1], parts[3])
		if err != nil {
			return hidden
		}
		if server {
			return nil
		}
		if !db.GetEnabled() || !c.GetEnabled() {
			return hidden
		}
		cp, _ := permission.ParsePermissions(c.GetPermissions())
		if len(parts) == 5 {
			if permission.Check(subj, permission.Read, cp, nil, false) {
				return nil
			}
			return hidden
		}
		d, err := s.reads.Document(project, c, parts[5])
		if err != nil {
			return hidden
		}
		ip, _ := permission.ParsePermissions(d.GetPermissions())
		if permission.Check(subj, permission.Read, cp, ip, c.GetDocumentSecurity()) {
			return nil
		}
		return hidden
	case len(parts) >= 3 && parts[0] == "buckets":
		b, err := s.reads.Bucket(project, parts[1])
		if err != nil {
			return hidden
		}
		if server {
			return nil
		}
		if !b.GetEnabled() {
			return hidden
		}
		bp, _ := permission.ParsePermissions(b.GetPermissions())
		if len(parts) == 3 {
			if permission.Check(subj, permission.Read, bp, nil, false) {
				return nil
			}
			return hidden
		}
		f, err := s.reads.File(project, b, parts[3])
		if err != nil {
			return hidden
		}
		fp, _ := permission.ParsePermissions(f.GetPermissions())
		if permission.Check(subj, permission.Read, bp, fp, b.GetFileSecurity()) {
			return nil
		}
		return hidden
	case len(parts) == 2 && parts[0] == "teams":
		if _, err := s.reads.Team(project, parts[1]); err != nil {
			return hidden
		}
		if server || slices.ContainsFunc(subj.Teams, func(m permission.Membership) bool { return m.TeamID == parts[1] }) {
			return nil
		}
		return hidden
	}
	return domain.FieldError("channel", "presence is for databases.<db>.collections.<c>.documents[.<d>], buckets.<b>.files[.<f>] or teams.<t>, not %q", channel)
}

var presenceActions = map[realtime.PresenceAction]cairnv1.PresenceAction{
	realtime.PresenceJoin:   cairnv1.PresenceAction_PRESENCE_ACTION_JOIN,
	realtime.PresenceUpdate: cairnv1.PresenceAction_PRESENCE_ACTION_UPDATE,
	realtime.PresenceLeave:  cairnv1.PresenceAction_PRESENCE_ACTION_LEAVE,
}

// presenceResponse is d as the protocol sends it.
func presenceResponse(d realtime.PresenceDelivery, pc *realtime.PresenceConn) *cairnv1.SubscribeResponse {
	if d.Sync {
		sync := &cairnv1.PresenceSync{Channel: d.Channel, Members: make([]*cairnv1.PresenceMember, 0, len(d.Members))}
		if pc != nil {
			sync.ConnectionId = pc.ID()
		}
		for _, m := range d.Members {
			sync.Members = append(sync.Members, presenceMember(m))
		}
		return &cairnv1.SubscribeResponse{Message: &cairnv1.SubscribeResponse_PresenceSync{PresenceSync: sync}}
	}
	return &cairnv1.SubscribeResponse{Message: &cairnv1.SubscribeResponse_Presence{Presence: &cairnv1.PresenceEvent{
		Channel: d.Channel, Action: presenceActions[d.Action], Member: presenceMember(d.Member)}}}
}

func presenceMember(m realtime.Member) *cairnv1.PresenceMember {
	out := &cairnv1.PresenceMember{Id: m.ID, UserId: m.UserID, JoinedAt: timestamppb.New(m.JoinedAt), UpdatedAt: timestamppb.New(m.UpdatedAt)}
	if len(m.Payload) > 0 {
		st := &structpb.Struct{}
		if protojson.Unmarshal(m.Payload, st) == nil {
			out.Payload = st
		}
	}
	return out
}
