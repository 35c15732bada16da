// Package webhook decides the lifecycle of a project's webhooks and the
// records of their deliveries. Pure: ids, time and the sealed secret come
// in the commands; the secret in clear never reaches this package.
package webhook

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/function"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// State is a webhook's current state; nil when it does not exist.
type State = *eventsv1.Webhook

// Command is one of Create, Update, Delete.
type Command interface{ isCommand() }

// Create adds a webhook.
type Create struct {
	ID, UID, ProjectID, Name, URL string
	Events                        []string
	Enabled                       bool
	SecretSealed                  []byte
	Now                           time.Time
}

// Update changes the fields that are set.
type Update struct {
	Name, URL *string
	Events    *[]string
	Enabled   *bool
	// SecretSealed, when set, replaces the signing secret.
	SecretSealed []byte
	Now          time.Time
}

// Delete removes the webhook.
type Delete struct{ Now time.Time }

// Pause holds the deliveries of the webhook with UID (the system, after
// repeated failures) until an update enables it again.
type Pause struct {
	UID, Reason string
	Now         time.Time
}

// Redeliver restarts the webhook's deliveries at stream sequence From.
// CreatedSeq is the sequence of the webhook's creation and LastSeq the
// project stream's last, both read by the caller.
type Redeliver struct {
	From, CreatedSeq, LastSeq uint64
	Now                       time.Time
}

func (Redeliver) isCommand() {}
func (Pause) isCommand()     {}
func (Create) isCommand()    {}
func (Update) isCommand()    {}
func (Delete) isCommand()    {}

// MaxEvents bounds a webhook's event names.
const MaxEvents = 100

// CheckURL accepts absolute http and https URLs without credentials.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return domain.FieldError("url", "not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return domain.FieldError("url", "must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return domain.FieldError("url", "must name a host")
	case u.User != nil:
		return domain.FieldError("url", "must not carry credentials")
	case u.Fragment != "":
		return domain.FieldError("url", "must not have a fragment")
	case len(raw) > 2048:
		return domain.FieldError("url", "too long")
	}
	return nil
}

// CheckEvents accepts 1 to MaxEvents event names: dot-separated tokens,
// each a name or "*".
func CheckEvents(events []string) error {
	if len(events) == 0 {
		return domain.FieldError("events", "must name at least one event")
	}
	if len(events) > MaxEvents {
		return domain.FieldError("events", "at most %d", MaxEvents)
	}
	for _, e := range events {
		if e == "" || len(e) > 256 {
			return domain.FieldError("events", "bad event name %q", e)
		}
		for _, t := range strings.Split(e, ".") {
			if t == "" || t == ">" || (strings.Contains(t, "*") && t != "*") {
				return domain.FieldError("events", "bad event name %q", e)
			}
		}
	}
	return nil
}

func normalize(events []string) []string {
	out := slices.Clone(events)
	slices.Sort(out)
	return slices.Compact(out)
}

// Decide returns the events that follow from cmd given state. Returns
// KindAlreadyExists, KindNotFound or KindInvalid (naming the field).
func Decide(state State, cmd Command) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case Create:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "webhook %q already exists", c.ID)
		}
		if !domain.ValidResourceID(c.ID) {
			return nil, domain.FieldError("webhook_id", "malformed id")
		}
		if c.Name == "" {
			return nil, domain.FieldError("name", "must not be empty")
		}
		if err := CheckURL(c.URL); err != nil {
			return nil, err
		}
		if err := CheckEvents(c.Events); err != nil {
			return nil, err
		}
		if len(c.SecretSealed) == 0 || c.UID == "" {
			return nil, domain.Errorf(domain.KindInternal, "webhook without a secret or uid")
		}
		ts := timestamppb.New(c.Now)
		w := &eventsv1.Webhook{Id: c.ID, ProjectId: c.ProjectID, Name: c.Name, Url: c.URL, Events: normalize(c.Events),
			Enabled: c.Enabled, SecretSealed: c.SecretSealed, Uid: c.UID, CreatedAt: ts, UpdatedAt: ts}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_WebhookCreated{WebhookCreated: &eventsv1.WebhookCreated{Webhook: w}}}}, nil
	case Update:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "webhook not found")
		}
		w := proto.CloneOf(state)
		if c.Name != nil {
			if *c.Name == "" {
				return nil, domain.FieldError("name", "must not be empty")
			}
			w.Name = *c.Name
		}
		if c.URL != nil {
			if err := CheckURL(*c.URL); err != nil {
				return nil, err
			}
			w.Url = *c.URL
		}
		if c.Events != nil {
			if err := CheckEvents(*c.Events); err != nil {
				return nil, err
			}
			w.Events = normalize(*c.Events)
		}
		if c.Enabled != nil {
			w.Enabled = *c.Enabled
			if *c.Enabled {
				// Enabling resumes a paused webhook.
				w.PausedAt, w.PausedReason = nil, ""
			}
		}
		if len(c.SecretSealed) > 0 {
			w.SecretSealed = c.SecretSealed
		}
		if proto.Equal(w, state) {
			return nil, nil
		}
		w.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_WebhookUpdated{WebhookUpdated: &eventsv1.WebhookUpdated{Webhook: w}}}}, nil
	case Pause:
		// A webhook gone, replaced, disabled or already paused: nothing to do.
		if state == nil || state.GetUid() != c.UID || !state.GetEnabled() || state.GetPausedAt() != nil {
			return nil, nil
		}
		w := proto.CloneOf(state)
		ts := timestamppb.New(c.Now)
		w.PausedAt, w.PausedReason, w.UpdatedAt = ts, c.Reason, ts
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_WebhookUpdated{WebhookUpdated: &eventsv1.WebhookUpdated{Webhook: w}}}}, nil
	case Redeliver:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "webhook not found")
		}
		// Events before the webhook existed were never its to deliver: a
		// key that may manage webhooks may not read the older log with one.
		if c.From <= c.CreatedSeq {
			return nil, domain.FieldError("from_sequence", "must be after the webhook's creation (sequence %d)", c.CreatedSeq)
		}
		if c.From > c.LastSeq+1 {
			return nil, domain.FieldError("from_sequence", "is past the project's last event (sequence %d)", c.LastSeq)
		}
		w := proto.CloneOf(state)
		ts := timestamppb.New(c.Now)
		w.Redelivery, w.RedeliverFrom, w.UpdatedAt = state.GetRedelivery()+1, c.From, ts
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_WebhookRedeliveryRequested{
			WebhookRedeliveryRequested: &eventsv1.WebhookRedeliveryRequested{Webhook: w}}}}, nil
	case Delete:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "webhook not found")
		}
		w := proto.CloneOf(state)
		w.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_WebhookDeleted{WebhookDeleted: &eventsv1.WebhookDeleted{Webhook: w}}}}, nil
	}
	return nil, domain.Errorf(domain.KindInternal, "unknown webhook command %T", cmd)
}

// Evolve applies one event of the webhook's aggregate.
func Evolve(state State, e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_WebhookCreated:
		return p.WebhookCreated.GetWebhook()
	case *eventsv1.Envelope_WebhookUpdated:
		return p.WebhookUpdated.GetWebhook()
	case *eventsv1.Envelope_WebhookRedeliveryRequested:
		return p.WebhookRedeliveryRequested.GetWebhook()
	case *eventsv1.Envelope_WebhookDeleted:
		return nil
	}
	return state
}

// Consumer names the durable consumer that delivers w's events: one per
// webhook instance (uid) and redelivery, so a redelivery starts afresh at
// its own position while the old one is dropped.
func Consumer(w State) string {
	if w.GetRedelivery() == 0 {
		return "webhook-" + w.GetUid()
	}
	return fmt.Sprintf("webhook-%s-r%d", w.GetUid(), w.GetRedelivery())
}

// DeliveryID names one attempt at delivering the event at seq: unique per
// event, redelivery and attempt, sorting by event, then redelivery, then
// attempt.
func DeliveryID(seq uint64, redelivery uint32, attempt int) string {
	if redelivery == 0 {
		return fmt.Sprintf("%020d-%06d", seq, attempt)
	}
	return fmt.Sprintf("%020d-r%05d-%06d", seq, redelivery, attempt)
}

// Wants reports whether webhook w delivers the event named name (its
// subject without "cairn.<project>."). Webhooks' own events never go out:
// a delivery record would otherwise be delivered, and so on.
func Wants(w State, name string) bool {
	if w == nil || !w.GetEnabled() || strings.HasPrefix(name, "webhooks.") {
		return false
	}
	return function.MatchEvent(w.GetEvents(), name)
}

// Delivered records one delivery attempt of webhook w. A record whose id
// exists already (state non-nil: a redelivered attempt recorded before a
// crash) adds nothing.
func Delivered(existing *eventsv1.WebhookDelivery, w State, d *eventsv1.WebhookDelivery) ([]*eventsv1.Envelope, error) {
	if existing != nil {
		return nil, nil
	}
	if w == nil || d.GetId() == "" || d.GetWebhookId() != w.GetId() || d.GetWebhookUid() != w.GetUid() {
		return nil, domain.Errorf(domain.KindInternal, "delivery record of another webhook")
	}
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_WebhookDelivered{WebhookDelivered: &eventsv1.WebhookDelivered{Delivery: d}}}}, nil
}

// DeliveryState is the delivery record an aggregate's last event holds.
func DeliveryState(e *eventsv1.Envelope) *eventsv1.WebhookDelivery {
	return e.GetWebhookDelivered().GetDelivery()
}
