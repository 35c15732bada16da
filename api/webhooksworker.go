package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/webhook"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
	"github.com/cairn-dev/cairn/webhooks"
)

// WebhookOptions bound deliveries.
type WebhookOptions struct {
	// Allow lists private hosts, addresses or CIDRs deliveries may reach
	// (others non-public are refused).
	Allow []string
	// Timeout bounds one attempt (10 s).
	Timeout time.Duration
	// MaxBackoff bounds the wait between attempts at one event (1 min).
	MaxBackoff time.Duration
	// PauseAfter pauses a webhook after this many failed attempts in a
	// row (counted in the read model from the delivery records, so across
	// nodes and restarts; 0: never): its events wait until an update
	// enables it again.
	PauseAfter int
}

// runWebhookWorkers keeps, on this node, one delivery loop per webhook of
// every project until ctx ends. Each loop pulls from the webhook's durable
// consumer, which every node shares: an event goes out once at a time, in
// order, whichever node takes it.
func (s *Server) runWebhookWorkers(ctx context.Context) {
	running := map[string]context.CancelFunc{}
	var mu sync.Mutex
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.reconcileWebhooks(ctx, &mu, running)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// webhookLoop is one delivery consumer: of one webhook instance (uid) and
// redelivery.
type webhookLoop struct {
	project, id, uid string
	redelivery       uint32
	consumer         string
}

func (l webhookLoop) key() string { return l.project + "/" + l.id + "/" + l.consumer }

func (s *Server) reconcileWebhooks(ctx context.Context, mu *sync.Mutex, running map[string]context.CancelFunc) {
	wanted := map[string]bool{}
	complete := true
	after := ""
	for complete {
		ps, err := s.reads.ListProjects(after, 500)
		if err != nil {
			complete = false
			break
		}
		if len(ps) == 0 {
			break
		}
		for _, p := range ps {
			ws, err := s.reads.ListDeliveryWebhooks(p.GetId())
			if err != nil {
				complete = false
				continue
			}
			for _, dw := range ws {
				w := dw.Webhook
				l := webhookLoop{project: p.GetId(), id: w.GetId(), uid: w.GetUid(), redelivery: w.GetRedelivery(), consumer: webhook.Consumer(w)}
				wanted[l.key()] = true
				mu.Lock()
				if _, on := running[l.key()]; !on {
					wctx, cancel := context.WithCancel(ctx)
					running[l.key()] = cancel
					start := dw.Start()
					go s.retryQuiet(wctx, "webhook "+l.key(), func() error {
						return s.store.ConsumeWebhook(wctx, l.project, l.consumer, start, func(ctx context.Context, a streams.WebhookAttempt) time.Duration {
							return s.deliverWebhook(ctx, l, a)
						})
					})
				}
				mu.Unlock()
			}
		}
		after = ps[len(ps)-1].GetId()
	}
	if !complete {
		return // without the whole list, stop nothing
	}
	mu.Lock()
	defer mu.Unlock()
	for k, cancel := range running {
		if !wanted[k] {
			cancel()
			delete(running, k)
			parts := strings.SplitN(k, "/", 3)
			if err := s.store.DeleteWebhookConsumer(ctx, parts[0], parts[2]); err != nil && ctx.Err() == nil {
				s.logger.Warn("webhooks: dropping a deleted webhook's consumer", "err", err)
			}
		}
	}
}

func (s *Server) retryQuiet(ctx context.Context, what string, run func() error) {
	for ctx.Err() == nil {
		if err := run(); err != nil && ctx.Err() == nil {
			s.logger.Warn("webhooks: "+what, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// deliverWebhook makes one attempt at delivering one event of l's project
// to webhook l and records it; it returns 0 when the event is done with
// (delivered, or not for this webhook), else when to try again.
func (s *Server) deliverWebhook(ctx context.Context, l webhookLoop, a streams.WebhookAttempt) time.Duration {
	rel := strings.TrimPrefix(a.Subject, "cairn."+l.project+".")
	if strings.HasPrefix(rel, "webhooks.") {
		return 0 // webhooks' own events (delivery records) never go out
	}
	if err := s.reads.WaitApplied(ctx, streams.ProjectStream(l.project), a.Seq); err != nil {
		return time.Second
	}
	w, err := s.reads.Webhook(l.project, l.id)
	if errors.Is(err, projections.ErrNotFound) {
		return 0
	}
	if err != nil {
		return time.Second
	}
	if w.GetUid() != l.uid || !webhook.Wants(w, rel) {
		return 0
	}
	if w.GetRedelivery() != l.redelivery {
		// A redelivery replaced this consumer: its loop is about to stop,
		// and the new one delivers from the chosen sequence.
		return time.Second
	}
	if w.GetPausedAt() != nil {
		return time.Second // held until enabled again
	}
	env, err := eventlog.Decode(a.Data)
	if err != nil {
		return 0 // undecodable: nothing to hand over
	}
	redact(env.ProtoReflect())
	payload, err := protojson.Marshal(env)
	if err != nil {
		return 0
	}
	body, err := json.Marshal(struct {
		ID        string          `json:"id"`
		Event     string          `json:"event"`
		ProjectID string          `json:"projectId"`
		Seq       uint64          `json:"seq"`
		Envelope  json.RawMessage `json:"envelope"`
	}{env.GetId(), rel, l.project, a.Seq, payload})
	if err != nil {
		return 0
	}
	secret, err := s.webhookSecret(w)
	if err != nil {
		s.logger.Warn("webhooks: unsealing a secret", "webhook", l.key(), "err", err)
		return s.webhookOpts.MaxBackoff
	}
	r := webhooks.Post(ctx, s.webhookClient, webhooks.Delivery{URL: w.GetUrl(), Secret: secret, EventID: env.GetId(), Event: rel,
		Attempt: a.Attempt, Body: body}, s.log.Now())
	if ctx.Err() != nil {
		return time.Second // stopping: not an attempt
	}
	d := &eventsv1.WebhookDelivery{Id: webhook.DeliveryID(a.Seq, l.redelivery, a.Attempt), ProjectId: l.project, WebhookId: l.id, WebhookUid: l.uid,
		EventSeq: a.Seq, Event: rel, EventId: env.GetId(), Attempt: int32(min(a.Attempt, 1<<30)), ResponseStatus: int32(r.Status),
		ResponseExcerpt: r.Excerpt, Error: r.Err, DurationMs: r.Duration.Milliseconds(), Success: r.OK(), CreatedAt: timestamppb.New(s.log.Now())}
	res, err := s.log.Write(ctx, eventlog.WebhookDeliveryAggregate(l.project, l.id, d.GetId()), systemMeta(), func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		return webhook.Delivered(webhook.DeliveryState(last), w, d)
	})
	if err != nil {
		s.logger.Warn("webhooks: recording a delivery", "webhook", l.key(), "seq", a.Seq, "err", err)
	}
	if r.OK() {
		return 0
	}
	if s.webhookOpts.PauseAfter > 0 && err == nil && s.failuresInRow(ctx, l, res.Seq) >= int64(s.webhookOpts.PauseAfter) {
		reason := fmt.Sprintf("%d failed attempts in a row; last: %s", s.webhookOpts.PauseAfter, cmp.Or(r.Err, fmt.Sprint("status ", r.Status)))
		_, err := s.log.Write(ctx, eventlog.WebhookAggregate(l.project, l.id), systemMeta(), eventlog.Decide(webhook.Evolve, func(st webhook.State) ([]*eventsv1.Envelope, error) {
			return webhook.Decide(st, webhook.Pause{UID: l.uid, Reason: reason, Now: s.log.Now()})
		}))
		if err != nil {
			s.logger.Warn("webhooks: pausing", "webhook", l.key(), "err", err)
		} else {
			s.logger.Warn("webhooks: paused", "webhook", l.key(), "reason", reason)
		}
		return time.Second
	}
	return webhooks.Backoff(a.Attempt, s.webhookOpts.MaxBackoff)
}

// failuresInRow is how many of l's attempts failed in a row once the
// record at seq is applied: the read model counts them from the delivery
// records, whichever node made the attempts and across restarts.
func (s *Server) failuresInRow(ctx context.Context, l webhookLoop, seq uint64) int64 {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.reads.WaitApplied(wctx, streams.ProjectStream(l.project), seq); err != nil {
		return 0 // not known yet: the next failure decides
	}
	dw, err := s.reads.DeliveryWebhook(l.project, l.id)
	if err != nil || dw.Webhook.GetUid() != l.uid {
		return 0
	}
	return dw.Failures
}
