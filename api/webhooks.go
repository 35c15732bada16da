package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/webhook"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// webhooksHandler serves WebhooksService; deliveries are
// webhooksworker.go's.
type webhooksHandler struct{ *Server }

// webhookSecretPurpose binds a sealed signing secret to its webhook.
func webhookSecretPurpose(uid string) string { return "webhook-secret:" + uid }

// newWebhookSecret returns a new signing secret, its clear text and its
// sealed form for the log.
func (s *Server) newWebhookSecret(project, uid string) (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	secret := "whsec_" + base64.RawURLEncoding.EncodeToString(b)
	sealed, err := s.seal(project, webhookSecretPurpose(uid), []byte(secret))
	return secret, sealed, err
}

func (s *Server) webhookSecret(w *eventsv1.Webhook) ([]byte, error) {
	return s.unseal(w.GetProjectId(), webhookSecretPurpose(w.GetUid()), w.GetSecretSealed())
}

// webhookOut is w for the API; dw, when its webhook is w's instance, adds
// the delivery state the read model keeps.
func webhookOut(w *eventsv1.Webhook, dw projections.DeliveryWebhook) *cairnv1.Webhook {
	if w == nil {
		return nil
	}
	out := &cairnv1.Webhook{Id: w.GetId(), ProjectId: w.GetProjectId(), Name: w.GetName(), Url: w.GetUrl(), Events: w.GetEvents(),
		Enabled: w.GetEnabled(), CreatedAt: w.GetCreatedAt(), UpdatedAt: w.GetUpdatedAt(), PausedAt: w.GetPausedAt(), PausedReason: w.GetPausedReason(),
		Redelivery: w.GetRedelivery(), RedeliverFrom: w.GetRedeliverFrom()}
	if dw.Webhook.GetUid() == w.GetUid() {
		out.CreatedSequence, out.FailuresInRow = dw.Since, dw.Failures
	}
	return out
}

// deliveryState is what the read model knows of webhook id's deliveries;
// empty when it does not know the webhook (yet).
func (s *Server) deliveryState(project, id string) projections.DeliveryWebhook {
	dw, err := s.reads.DeliveryWebhook(project, id)
	if err != nil {
		return projections.DeliveryWebhook{}
	}
	return dw
}

func webhookDeliveryOut(d *eventsv1.WebhookDelivery) *cairnv1.WebhookDelivery {
	return &cairnv1.WebhookDelivery{Id: d.GetId(), WebhookId: d.GetWebhookId(), EventSeq: d.GetEventSeq(), Event: d.GetEvent(),
		EventId: d.GetEventId(), Attempt: d.GetAttempt(), ResponseStatus: d.GetResponseStatus(), ResponseExcerpt: d.GetResponseExcerpt(),
		Error: d.GetError(), DurationMs: d.GetDurationMs(), Success: d.GetSuccess(), CreatedAt: d.GetCreatedAt()}
}

func (h *webhooksHandler) CreateWebhook(ctx context.Context, req *cairnv1.CreateWebhookRequest) (*cairnv1.CreateWebhookResponse, error) {
	project, id := req.GetProjectId(), req.GetWebhookId()
	if id == "" || id == domain.UniqueID {
		id = h.log.NewID()
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	uid := h.log.NewID()
	secret, sealed, err := h.newWebhookSecret(project, uid)
	if err != nil {
		return nil, err
	}
	cmd := webhook.Create{ID: id, UID: uid, ProjectID: project, Name: req.GetName(), URL: req.GetUrl(), Events: req.GetEvents().GetEvents(),
		Enabled: req.Enabled == nil || req.GetEnabled(), SecretSealed: sealed, Now: h.log.Now()}
	res, err := h.log.Write(ctx, eventlog.WebhookAggregate(project, id), meta, eventlog.Decide(webhook.Evolve, func(s webhook.State) ([]*eventsv1.Envelope, error) {
		return webhook.Decide(s, cmd)
	}))
	if err != nil {
		return nil, err
	}
	w := webhook.Evolve(nil, res.Events[0])
	dw := projections.DeliveryWebhook{Webhook: w, Since: res.Seq}
	if res.Duplicate {
		dw = h.deliveryState(project, id)
		// A retry: the first request's webhook and its secret.
		plain, err := h.webhookSecret(w)
		if err != nil {
			return nil, err
		}
		secret = string(plain)
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.CreateWebhookResponse{Webhook: webhookOut(w, dw), Secret: secret}, nil
}

func (h *webhooksHandler) GetWebhook(_ context.Context, req *cairnv1.GetWebhookRequest) (*cairnv1.GetWebhookResponse, error) {
	dw, err := h.reads.DeliveryWebhook(req.GetProjectId(), req.GetWebhookId())
	if err != nil {
		return nil, notFound(err, "webhook")
	}
	return &cairnv1.GetWebhookResponse{Webhook: webhookOut(dw.Webhook, dw)}, nil
}

func (h *webhooksHandler) ListWebhooks(_ context.Context, req *cairnv1.ListWebhooksRequest) (*cairnv1.ListWebhooksResponse, error) {
	ws, next, err := listPage(req.GetPageToken(), req.GetPageSize(), func(after string, limit int) ([]*eventsv1.Webhook, error) {
		return h.reads.ListWebhooks(req.GetProjectId(), after, limit)
	})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListWebhooksResponse{NextPageToken: next}
	for _, w := range ws {
		res.Webhooks = append(res.Webhooks, webhookOut(w, h.deliveryState(req.GetProjectId(), w.GetId())))
	}
	return res, nil
}

func (h *webhooksHandler) UpdateWebhook(ctx context.Context, req *cairnv1.UpdateWebhookRequest) (*cairnv1.UpdateWebhookResponse, error) {
	project := req.GetProjectId()
	cmd := webhook.Update{Name: req.Name, URL: req.Url, Enabled: req.Enabled, Now: h.log.Now()}
	if req.GetEvents() != nil {
		events := req.GetEvents().GetEvents()
		cmd.Events = &events
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var state webhook.State
	secret := ""
	res, err := h.log.Write(ctx, eventlog.WebhookAggregate(project, req.GetWebhookId()), meta, eventlog.Decide(webhook.Evolve, func(s webhook.State) ([]*eventsv1.Envelope, error) {
		state = s
		c := cmd
		if req.GetRotateSecret() && s != nil {
			plain, sealed, err := h.newWebhookSecret(project, s.GetUid())
			if err != nil {
				return nil, err
			}
			secret, c.SecretSealed = plain, sealed
		}
		return webhook.Decide(s, c)
	}))
	if err != nil {
		return nil, err
	}
	if len(res.Events) > 0 {
		state = webhook.Evolve(state, res.Events[len(res.Events)-1])
	}
	if res.Duplicate && req.GetRotateSecret() {
		// A retry: the secret the first request set.
		plain, err := h.webhookSecret(state)
		if err != nil {
			return nil, err
		}
		secret = string(plain)
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.UpdateWebhookResponse{Webhook: webhookOut(state, h.deliveryState(project, req.GetWebhookId())), Secret: secret}, nil
}

func (h *webhooksHandler) RedeliverWebhook(ctx context.Context, req *cairnv1.RedeliverWebhookRequest) (*cairnv1.RedeliverWebhookResponse, error) {
	project, id := req.GetProjectId(), req.GetWebhookId()
	dw, err := h.reads.DeliveryWebhook(project, id)
	if err != nil {
		return nil, notFound(err, "webhook")
	}
	info, err := h.store.StreamInfo(ctx, streams.ProjectStream(project))
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var state webhook.State
	res, err := h.log.Write(ctx, eventlog.WebhookAggregate(project, id), meta, eventlog.Decide(webhook.Evolve, func(s webhook.State) ([]*eventsv1.Envelope, error) {
		state = s
		if s != nil && s.GetUid() != dw.Webhook.GetUid() {
			// Replaced since the read model was read: its creation is newer.
			return nil, domain.Errorf(domain.KindUnavailable, "webhook %q is being replaced; try again", id)
		}
		return webhook.Decide(s, webhook.Redeliver{From: req.GetFromSequence(), CreatedSeq: dw.Since, LastSeq: info.LastSeq, Now: h.log.Now()})
	}))
	if err != nil {
		return nil, err
	}
	prev := state
	if len(res.Events) > 0 {
		state = webhook.Evolve(state, res.Events[len(res.Events)-1])
	}
	if h.store != nil && prev != nil && !res.Duplicate {
		// Best effort, as for a deletion: the delivery loops drop it too.
		if err := h.store.DeleteWebhookConsumer(ctx, project, webhook.Consumer(prev)); err != nil {
			h.logger.Warn("webhooks: dropping a redelivered webhook's old consumer", "err", err)
		}
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.RedeliverWebhookResponse{Webhook: webhookOut(state, dw)}, nil
}

func (h *webhooksHandler) DeleteWebhook(ctx context.Context, req *cairnv1.DeleteWebhookRequest) (*cairnv1.DeleteWebhookResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var last webhook.State
	res, err := h.log.Write(ctx, eventlog.WebhookAggregate(req.GetProjectId(), req.GetWebhookId()), meta, eventlog.Decide(webhook.Evolve, func(s webhook.State) ([]*eventsv1.Envelope, error) {
		last = s
		return webhook.Decide(s, webhook.Delete{Now: h.log.Now()})
	}))
	if err != nil {
		return nil, err
	}
	if h.store != nil && last != nil && !res.Duplicate {
		// Best effort: the delivery workers drop it too when they notice.
		if err := h.store.DeleteWebhookConsumer(ctx, req.GetProjectId(), webhook.Consumer(last)); err != nil {
			h.logger.Warn("webhooks: dropping a deleted webhook's consumer", "err", err)
		}
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.DeleteWebhookResponse{}, nil
}

func (h *webhooksHandler) ListWebhookDeliveries(_ context.Context, req *cairnv1.ListWebhookDeliveriesRequest) (*cairnv1.ListWebhookDeliveriesResponse, error) {
	w, err := h.reads.Webhook(req.GetProjectId(), req.GetWebhookId())
	if err != nil {
		return nil, notFound(err, "webhook")
	}
	ds, next, err := listPage(req.GetPageToken(), req.GetPageSize(), func(after string, limit int) ([]*eventsv1.WebhookDelivery, error) {
		return h.reads.ListWebhookDeliveries(req.GetProjectId(), w.GetUid(), after, limit)
	})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListWebhookDeliveriesResponse{NextPageToken: next}
	for _, d := range ds {
		res.Deliveries = append(res.Deliveries, webhookDeliveryOut(d))
	}
	return res, nil
}
