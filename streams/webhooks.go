package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WebhookAttempt is one delivery of an event to a webhook's handler.
type WebhookAttempt struct {
	StoredMsg
	// Attempt counts deliveries of this event (1 the first time), across
	// nodes and restarts.
	Attempt int
}

// ConsumeWebhook runs handle for every event of project's stream, in
// stream order, one at a time, once across the nodes (the durable consumer
// name, which they share), until ctx ends. handle returns 0 to acknowledge the event,
// or how long to wait before the same event is delivered again: nothing
// later is delivered before it is acknowledged. The consumer, when it does
// not exist yet, starts at sequence start (0: at new events).
func (s *Store) ConsumeWebhook(ctx context.Context, project, name string, start uint64, handle func(context.Context, WebhookAttempt) time.Duration) error {
	cfg := jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: jobAckWait,
		MaxDeliver: -1, MaxAckPending: 1, DeliverPolicy: jetstream.DeliverNewPolicy}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	stream := ProjectStream(project)
	cons, err := s.js.Consumer(ctx, stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = s.js.CreateConsumer(ctx, stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = s.js.Consumer(ctx, stream, name)
		}
	}
	if err != nil {
		return fmt.Errorf("streams: webhook consumer %s of %s: %w", name, project, err)
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				return err
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				_ = m.Term()
				continue
			}
			stop := keepInProgress(m)
			retry := handle(ctx, WebhookAttempt{StoredMsg: StoredMsg{Seq: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data(),
				Header: m.Headers(), Time: md.Timestamp}, Attempt: int(md.NumDelivered)})
			stop()
			if retry > 0 {
				_ = m.NakWithDelay(retry)
				continue
			}
			_ = m.Ack()
		}
	}
	return nil
}

// DeleteWebhookConsumer drops a webhook's consumer (its position).
func (s *Store) DeleteWebhookConsumer(ctx context.Context, project, name string) error {
	err := s.js.DeleteConsumer(ctx, ProjectStream(project), name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("streams: delete webhook consumer of %s: %w", project, err)
	}
	return nil
}
