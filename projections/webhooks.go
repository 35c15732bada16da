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
// → WebhookDelivery, ordered by event sequence, redelivery, attempt (the
// newest Options.WebhookDeliveryRecords of them); p/<project>/whorder/<uid>/
// <seq of the record's event> → the record's id, oldest first, which
// retention drops from; p/<project>/whstats/<uid> → two counters: failed
// attempts in a row, delivery records kept.
// Deleting a webhook drops its deliveries with the background sweep.

const (
	partWebhooks     = "webhooks/"
	partWebhookSince = "whsince/"
	partDeliveries   = "whdeliveries/"
	partWebhookStats = "whstats/"
	partWebhookOrder = "whorder/"
)

func deliveryOrderPrefix(project, uid string) string {
	return projectPrefix + project + "/" + partWebhookOrder + uid + "/"
}

// Counters under a webhook's stats key.
const (
	statFailures = iota
	statRecords
	statCount
)

func webhookStatsKey(project, uid string) []byte {
	return []byte(projectPrefix + project + "/" + partWebhookStats + uid)
}

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
	if err := txn.Delete(webhookStatsKey(sp.project, w.GetUid())); err != nil {
		return err
	}
	if err := p.dropPrefix(txn, sp.project, w.GetUid()+"-wo", []byte(deliveryOrderPrefix(sp.project, w.GetUid()))); err != nil {
		return err
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
	key := []byte(deliveriesPrefix(sp.project, d.GetWebhookUid()) + d.GetId())
	switch _, err := txn.Get(key); {
	case err == nil:
		return nil // recorded already (a record is written once)
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	b, err := marshal(d)
	if err != nil {
		return fatal("encode webhook delivery %s: %w", d.GetId(), err)
	}
	if err := txn.Set(key, b); err != nil {
		return err
	}
	order := deliveryOrderPrefix(sp.project, d.GetWebhookUid())
	if err := txn.Set(binary.BigEndian.AppendUint64([]byte(order), ev.msg.Seq), []byte(d.GetId())); err != nil {
		return err
	}
	stats := webhookStatsKey(sp.project, d.GetWebhookUid())
	st, err := readCounters(txn, stats, statCount)
	if err != nil {
		return err
	}
	fails := st[statFailures] + 1
	if d.GetSuccess() {
		fails = 0
	}
	deltas := make([]int64, statCount)
	deltas[statFailures], deltas[statRecords] = fails-st[statFailures], 1
	if st[statRecords]+1 > p.deliveryRecords {
		// Retention: the record written longest ago goes (its event stays
		// in the log). Records from before retention existed have no order
		// entry and stay until the webhook is deleted.
		dropped, err := dropOldestDelivery(txn, order, deliveriesPrefix(sp.project, d.GetWebhookUid()))
		if err != nil {
			return err
		}
		if dropped {
			deltas[statRecords] = 0
		}
	}
	return addCounters(txn, stats, deltas...)
}

// dropOldestDelivery deletes the delivery record the first entry under
// order names, and that entry.
func dropOldestDelivery(txn *badger.Txn, order, records string) (bool, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(order), PrefetchValues: false})
	defer it.Close()
	it.Rewind()
	if !it.Valid() {
		return false, nil
	}
	k := it.Item().KeyCopy(nil)
	id, err := it.Item().ValueCopy(nil)
	if err != nil {
		return false, err
	}
	if err := txn.Delete(k); err != nil {
		return false, err
	}
	return true, txn.Delete([]byte(records + string(id)))
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

// DeliveryWebhook is a webhook, the stream sequence of the event that
// created it (its delivery consumer starts after it, or at the last
// redelivery's sequence) and its failed delivery attempts in a row.
type DeliveryWebhook struct {
	Webhook  *eventsv1.Webhook
	Since    uint64
	Failures int64
}

// Start is the stream sequence w's current delivery consumer starts at.
func (d DeliveryWebhook) Start() uint64 {
	if d.Webhook.GetRedelivery() > 0 {
		return d.Webhook.GetRedeliverFrom()
	}
	return d.Since + 1
}

func readDeliveryWebhook(txn *badger.Txn, project string, w *eventsv1.Webhook) (DeliveryWebhook, error) {
	// The start is stored as a one-value counter (counters.go).
	since, err := readCounters(txn, webhookSinceKey(project, w.GetId()), 1)
	if err != nil {
		return DeliveryWebhook{}, err
	}
	dw := DeliveryWebhook{Webhook: w, Since: uint64(since[0])}
	if w.GetUid() != "" && !strings.Contains(w.GetUid(), "/") {
		st, err := readCounters(txn, webhookStatsKey(project, w.GetUid()), statCount)
		if err != nil {
			return DeliveryWebhook{}, err
		}
		dw.Failures = st[statFailures]
	}
	return dw, nil
}

// DeliveryWebhook returns a project's webhook with its delivery state;
// ErrNotFound if there is none.
func (p *Projections) DeliveryWebhook(project, id string) (DeliveryWebhook, error) {
	w, err := p.Webhook(project, id)
	if err != nil {
		return DeliveryWebhook{}, err
	}
	var dw DeliveryWebhook
	err = p.db.View(func(txn *badger.Txn) error {
		dw, err = readDeliveryWebhook(txn, project, w)
		return err
	})
	if err != nil {
		return DeliveryWebhook{}, fmt.Errorf("projections: webhook %s of %s: %w", id, project, err)
	}
	return dw, nil
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
			dw, err := readDeliveryWebhook(txn, project, w)
			if err != nil {
				return err
			}
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
