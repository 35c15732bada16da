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
