package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-dev/cairn/domain"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// streamPresenceQueue is how many presence messages a Connect stream holds
// for a client that reads slowly before it is cut off as a slow consumer.
const streamPresenceQueue = 256

// streamSender serialises a Connect stream's sends: events from the
// subscription, presence from the rooms' watchers (which must never block,
// so they go through a queue drained here).
type streamSender struct {
	mu     sync.Mutex
	stream cairnv1connect.RealtimeServiceSubscribeServerStream
	queue  chan *cairnv1.SubscribeResponse
}

func (s *streamSender) send(m *cairnv1.SubscribeResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.Send(m)
}

// offer queues a presence message without blocking; false when full.
func (s *streamSender) offer(m *cairnv1.SubscribeResponse) bool {
	select {
	case s.queue <- m:
		return true
	default:
		return false
	}
}

// drain sends queued presence messages until ctx ends.
func (s *streamSender) drain(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.queue:
			if s.send(m) != nil {
				return
			}
		}
	}
}

// refuseStreamPresence refuses the Connect stream's presence fields in a
// WebSocket's subscribe message: there, presence has its own messages.
func refuseStreamPresence(req *cairnv1.SubscribeRequest) error {
	if len(req.GetPresenceJoin()) > 0 || len(req.GetPresenceWatch()) > 0 {
		return domain.FieldError("presence_join", "on a WebSocket, send presence_join and presence_watch messages")
	}
	return nil
}

// checkStreamPresence checks, before the stream opens, that the caller
// may be present on (or watch) each channel its request names.
func (h *realtimeHandler) checkStreamPresence(c *rtClient, req *cairnv1.SubscribeRequest) error {
	if len(req.GetPresenceJoin()) == 0 && len(req.GetPresenceWatch()) == 0 {
		return nil
	}
	if h.presence == nil {
		return domain.Errorf(domain.KindFailedPrecondition, "presence is not available on this server")
	}
	w := &wsPresence{s: h.Server, project: c.project, c: c}
	for i, j := range req.GetPresenceJoin() {
		if err := w.allowed(j.GetChannel()); err != nil {
			return fieldAt(fmt.Sprintf("presence_join[%d]", i), err)
		}
	}
	for i, ch := range req.GetPresenceWatch() {
		if err := w.allowed(ch); err != nil {
			return fieldAt(fmt.Sprintf("presence_watch[%d]", i), err)
		}
	}
	return nil
}

// startStreamPresence joins and watches what req names for an open
// stream, its messages going out through snd; nil when req names none.
// The caller closes the result when the stream ends (every channel left).
func (h *realtimeHandler) startStreamPresence(ctx context.Context, c *rtClient, req *cairnv1.SubscribeRequest, snd *streamSender) (*wsPresence, error) {
	if len(req.GetPresenceJoin()) == 0 && len(req.GetPresenceWatch()) == 0 {
		return nil, nil
	}
	w := &wsPresence{s: h.Server, project: c.project, c: c, out: snd.offer}
	w.gen.Store(c.sub.AccessGeneration())
	pc := w.conn()
	for i, j := range req.GetPresenceJoin() {
		var payload json.RawMessage
		if p := j.GetPayload(); p != nil {
			b, err := protojson.Marshal(p)
			if err != nil {
				w.close()
				return nil, domain.FieldError(fmt.Sprintf("presence_join[%d].payload", i), "%v", err)
			}
			payload = b
		}
		if err := pc.Join(ctx, j.GetChannel(), payload); err != nil {
			w.close()
			return nil, fieldAt(fmt.Sprintf("presence_join[%d]", i), presenceError(j.GetChannel(), err))
		}
	}
	for i, ch := range req.GetPresenceWatch() {
		if err := pc.Watch(ctx, ch); err != nil {
			w.close()
			return nil, fieldAt(fmt.Sprintf("presence_watch[%d]", i), presenceError(ch, err))
		}
	}
	return w, nil
}

// fieldAt puts a presence error under the request field it came from,
// keeping its kind (not_found stays not_found: a hidden channel says no
// more than a missing one).
func fieldAt(field string, err error) error {
	if de, ok := errors.AsType[*domain.Error](err); ok {
		out := *de
		if out.Field != "" {
			out.Field = field + "." + out.Field
		} else {
			out.Field = field
		}
		return &out
	}
	return fmt.Errorf("%s: %w", field, err)
}
