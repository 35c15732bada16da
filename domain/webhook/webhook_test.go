package webhook_test

import (
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/webhook"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func TestLifecycle(t *testing.T) {
	now := time.Unix(1700000000, 0)
	create := webhook.Create{ID: "w1", UID: "u1", ProjectID: "p", Name: "n", URL: "https://example.com/hook",
		Events: []string{"users.*", "databases.*.collections.*.documents.*.create", "users.*"}, Enabled: true, SecretSealed: []byte{1}, Now: now}
	evs, err := webhook.Decide(nil, create)
	if err != nil {
		t.Fatal(err)
	}
	w := webhook.Evolve(nil, evs[0])
	if len(w.GetEvents()) != 2 || !w.GetEnabled() {
		t.Fatalf("events not normalized: %v", w.GetEvents())
	}
	if _, err := webhook.Decide(w, create); domain.KindOf(err) != domain.KindAlreadyExists {
		t.Fatalf("second create: %v", err)
	}
	for _, bad := range []string{"ftp://x", "http://", "https://u:p@x/", "/relative", "http://x/#f"} {
		c := create
		c.URL = bad
		if _, err := webhook.Decide(nil, c); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("url %q accepted: %v", bad, err)
		}
	}
	for _, bad := range [][]string{nil, {""}, {"users.a*"}, {"users..x"}, {"users.>"}} {
		c := create
		c.Events = bad
		if _, err := webhook.Decide(nil, c); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("events %q accepted: %v", bad, err)
		}
	}
	if evs, err := webhook.Decide(w, webhook.Update{Now: now}); err != nil || evs != nil {
		t.Fatalf("no-op update: %v %v", evs, err)
	}
	off := false
	evs, err = webhook.Decide(w, webhook.Update{Enabled: &off, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	w2 := webhook.Evolve(w, evs[0])
	if webhook.Wants(w2, "users.u1.create") || !webhook.Wants(w, "users.u1.create") {
		t.Fatal("disabled webhook still wants events, or enabled one does not")
	}
	if webhook.Wants(w, "webhooks.w1.deliveries.1-1.create") {
		t.Fatal("webhook events must never be delivered")
	}
	if !webhook.Wants(w, "databases.d.collections.c.documents.x.create") || webhook.Wants(w, "databases.d.collections.c.documents.x.update") {
		t.Fatal("matching")
	}
	evs, err = webhook.Decide(w, webhook.Pause{UID: "u1", Reason: "5 failures", Now: now})
	if err != nil || len(evs) != 1 {
		t.Fatal("pause", evs, err)
	}
	paused := webhook.Evolve(w, evs[0])
	if paused.GetPausedAt() == nil || !paused.GetEnabled() {
		t.Fatalf("paused %v", paused)
	}
	if evs, _ := webhook.Decide(paused, webhook.Pause{UID: "u1", Now: now}); evs != nil {
		t.Fatal("paused twice")
	}
	if evs, _ := webhook.Decide(w, webhook.Pause{UID: "older", Now: now}); evs != nil {
		t.Fatal("paused another webhook of the same id")
	}
	on := true
	evs, err = webhook.Decide(paused, webhook.Update{Enabled: &on, Now: now})
	if err != nil || len(evs) != 1 || webhook.Evolve(paused, evs[0]).GetPausedAt() != nil {
		t.Fatal("enabling does not resume", evs, err)
	}
	evs, err = webhook.Decide(w2, webhook.Delete{Now: now})
	if err != nil || webhook.Evolve(w2, evs[0]) != nil {
		t.Fatal("delete", err)
	}
	d := &eventsv1.WebhookDelivery{Id: "5-1", WebhookId: "w1", WebhookUid: "u1"}
	if evs, err := webhook.Delivered(nil, w, d); err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	if evs, err := webhook.Delivered(d, w, d); err != nil || evs != nil {
		t.Fatal("recorded twice", evs, err)
	}
	if _, err := webhook.Delivered(nil, w, &eventsv1.WebhookDelivery{Id: "5-1", WebhookId: "w1", WebhookUid: "other"}); err == nil {
		t.Fatal("delivery of an older webhook recorded")
	}
}

// A redelivery starts after the webhook's creation and at most one past
// the log's end; each names a new consumer, and its attempts sort after
// the first delivery's of the same event.
func TestRedeliver(t *testing.T) {
	now := time.Unix(1700000000, 0)
	evs, err := webhook.Decide(nil, webhook.Create{ID: "w1", UID: "u1", ProjectID: "p", Name: "n", URL: "https://example.com/hook",
		Events: []string{"users.*"}, Enabled: true, SecretSealed: []byte{1}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	w := webhook.Evolve(nil, evs[0])
	first := webhook.Consumer(w)
	for _, from := range []uint64{0, 9, 10, 22} {
		if _, err := webhook.Decide(w, webhook.Redeliver{From: from, CreatedSeq: 10, LastSeq: 20, Now: now}); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("from %d accepted: %v", from, err)
		}
	}
	if _, err := webhook.Decide(nil, webhook.Redeliver{From: 11, CreatedSeq: 10, LastSeq: 20}); domain.KindOf(err) != domain.KindNotFound {
		t.Errorf("redeliver of nothing: %v", err)
	}
	for i, from := range []uint64{11, 21} {
		evs, err := webhook.Decide(w, webhook.Redeliver{From: from, CreatedSeq: 10, LastSeq: 20, Now: now.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		w = webhook.Evolve(w, evs[0])
		if w.GetRedelivery() != uint32(i+1) || w.GetRedeliverFrom() != from || !w.GetEnabled() {
			t.Fatalf("after redelivery %d: %v", i+1, w)
		}
	}
	if c := webhook.Consumer(w); c == first || c != "webhook-u1-r2" {
		t.Fatalf("consumer %q after two redeliveries (first %q)", c, first)
	}
	ids := []string{webhook.DeliveryID(5, 0, 1), webhook.DeliveryID(5, 0, 2), webhook.DeliveryID(5, 1, 1), webhook.DeliveryID(5, 10, 1), webhook.DeliveryID(6, 0, 1)}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] || !domain.ValidResourceID(ids[i]) {
			t.Fatalf("delivery ids out of order or invalid: %q", ids)
		}
	}
}
