package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// Webhooks: p/<project>/webhooks/<id> → Webhook; p/<project>/whsince/<id>
// → the stream sequence of its WebhookCreated (8 bytes, big-endian): where
// its delivery consumer starts; p/<project>/whdeliveries/<uid>/<delivery>
// → WebhookDelivery, ordered by event sequence then attempt. Deleting a
// webhook drops its deliveries with the background sweep.

const (
	partWebhooks     = "webhooks/"
	partWebhookSince = "whsince/"
	partDeliveries   = "whdeliveries/"
)

func webhooksPrefix(project string) string { return projectPrefix + project + "/" + partWebhooks }

func webhookKey(project, id string) []byte { return []byte(webhooksPrefix(project) + id) }

func webhookSinceKey(project, id string) []byte {
	return []byte(projectPrefix + project + "/" + partWebhookSince + id)
}

func deliveriesPrefix(project, uid string) string {
	return projectPrefix + project + "/" + partDeliveries + uid + "/"
}

func checkWebhook(sp keyspace, ev event, id, project string) error {
	switch {
	case sp.project == "":
		return fatal("%s seq %d: webhook event in the system stream", sp.stream, ev.msg.Seq)
	case id == "" || strings.Contains(id, "/"):
		return fatal("%s seq %d (event %s): bad webhook id %q", sp.stream, ev.msg.Seq, ev.env.GetId(), id)
	case project != "" && project != sp.project:
		return fatal("%s seq %d (event %s): webhook of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), project)
	}
	return nil
}

func (p *Projections) applyWebhookPut(txn *badger.Txn, sp keyspace, ev event, w *eventsv1.Webhook, created bool) error {
	if err := checkWebhook(sp, ev, w.GetId(), w.GetProjectId()); err != nil {
		return err
	}
	b, err := marshal(w)
	if err != nil {
		return fatal("encode webhook %s: %w", w.GetId(), err)
	}
	if created {
		if err := txn.Set(webhookSinceKey(sp.project, w.GetId()), binary.BigEndian.AppendUint64(nil, ev.msg.Seq)); err != nil {
			return err
		}
	}
	return txn.Set(webhookKey(sp.project, w.GetId()), b)
}

func (p *Projections) applyWebhookDeleted(txn *badger.Txn, sp keyspace, ev event, w *eventsv1.Webhook) error {
	if err := checkWebhook(sp, ev, w.GetId(), w.GetProjectId()); err != nil {
		return err
	}
	if err := txn.Delete(webhookKey(sp.project, w.GetId())); err != nil {
		return err
	}
	if err := txn.Delete(webhookSinceKey(sp.project, w.GetId())); err != nil {
		return err
	}
	if w.GetUid() == "" || strings.Contains(w.GetUid(), "/") {
		return nil
	}
	return p.dropPrefix(txn, sp.project, w.GetUid()+"-wd", []byte(deliveriesPrefix(sp.project, w.GetUid())))
}

func (p *Projections) applyWebhookDelivered(txn *badger.Txn, sp keyspace, ev event, d *eventsv1.WebhookDelivery) error {
	if err := checkWebhook(sp, ev, d.GetWebhookId(), d.GetProjectId()); err != nil {
		return err
	}
	if d.GetId() == "" || strings.Contains(d.GetId(), "/") || d.GetWebhookUid() == "" || strings.Contains(d.GetWebhookUid(), "/") {
		return fatal("%s seq %d (event %s): bad webhook delivery %q", sp.stream, ev.msg.Seq, ev.env.GetId(), d.GetId())
	}
	// A record of a webhook deleted since (or of an earlier one of the same
	// id) keeps nothing.
	item, err := txn.Get(webhookKey(sp.project, d.GetWebhookId()))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	w := &eventsv1.Webhook{}
	if err := item.Value(func(v []byte) error { return proto.Unmarshal(v, w) }); err != nil {
		return err
	}
	if w.GetUid() != d.GetWebhookUid() {
		return nil
	}
	b, err := marshal(d)
	if err != nil {
		return fatal("encode webhook delivery %s: %w", d.GetId(), err)
	}
	return txn.Set([]byte(deliveriesPrefix(sp.project, d.GetWebhookUid())+d.GetId()), b)
}

// Webhook returns a project's webhook; ErrNotFound if there is none.
func (p *Projections) Webhook(project, id string) (*eventsv1.Webhook, error) {
	w := &eventsv1.Webhook{}
	if err := p.getProto(project, id, webhookKey(project, id), w); err != nil {
		return nil, fmt.Errorf("webhook %s of project %s: %w", id, project, err)
	}
	return w, nil
}

// ListWebhooks returns up to limit webhooks of a project with ids after
// `after`, ordered by id.
func (p *Projections) ListWebhooks(project, after string, limit int) ([]*eventsv1.Webhook, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	return listProto(p, webhooksPrefix(project), after, limit, func() *eventsv1.Webhook { return &eventsv1.Webhook{} })
}

// DeliveryWebhook is a webhook and the stream sequence of the event that
// created it (its delivery consumer starts after it).
type DeliveryWebhook struct {
	Webhook *eventsv1.Webhook
	Since   uint64
}

// ListDeliveryWebhooks returns every webhook of a project with the
// sequence it was created at.
func (p *Projections) ListDeliveryWebhooks(project string) ([]DeliveryWebhook, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	var out []DeliveryWebhook
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(webhooksPrefix(project)), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			w := &eventsv1.Webhook{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, w) }); err != nil {
				return err
			}
			// The start is stored as a one-value counter (counters.go).
			since, err := readCounters(txn, webhookSinceKey(project, w.GetId()), 1)
			if err != nil {
				return err
			}
			dw := DeliveryWebhook{Webhook: w, Since: uint64(since[0])}
			out = append(out, dw)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections: webhooks of %s: %w", project, err)
	}
	return out, nil
}

// ListWebhookDeliveries returns up to limit delivery records of the webhook
// with uid, with ids after `after`, oldest first.
func (p *Projections) ListWebhookDeliveries(project, uid, after string, limit int) ([]*eventsv1.WebhookDelivery, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	if uid == "" || strings.Contains(uid, "/") {
		return nil, nil
	}
	return listProto(p, deliveriesPrefix(project, uid), after, limit, func() *eventsv1.WebhookDelivery { return &eventsv1.WebhookDelivery{} })
}
