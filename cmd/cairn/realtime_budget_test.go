package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestRealtimeDeliveryBudget: a project's realtime delivery budget, set
// with `cairn projects update`, at its edge. With 1 delivery per second
// and a burst of 1, a subscriber's first two events (written one after
// the other, each once the last arrived) come at once and the third and
// fourth each about a second later, all of them in order; an event of
// another project written while the third waits arrives at once; bad
// budgets are refused by name.
func TestRealtimeDeliveryBudget(t *testing.T) {
	in := startInstance(t, t.TempDir())
	keys := map[string]string{}
	for _, p := range []string{"slow", "fast"} {
		keys[p] = newProjectWithKey(t, in, p, rtScopes...)
		k, _ := as(context.Background(), keys[p])
		benchCollection(t, in, k, p)
	}
	if out, err := in.cli(t, "projects", "update", "slow", "--realtime-deliveries-per-second", "1", "--realtime-delivery-burst", "1"); err != nil {
		t.Fatalf("cairn projects update: %v\n%s", err, out)
	}
	op, _ := as(context.Background(), testAdminKey)
	got, err := in.projects().GetProject(op, &cairnv1.GetProjectRequest{ProjectId: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	if l := got.GetProject().GetLimits(); l.GetRealtimeDeliveriesPerSecond() != 1 || l.GetRealtimeDeliveryBurst() != 1 {
		t.Fatalf("limits after update: %v", l)
	}

	subs := map[string]*rtStream{}
	for p, key := range keys {
		subs[p] = in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"databases.main.collections.posts.documents"}})
		subs[p].untilLive(t)
	}
	write := func(p, id string) {
		t.Helper()
		k, _ := as(context.Background(), keys[p])
		if _, err := in.databases().CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id})}}); err != nil {
			t.Fatal(err)
		}
	}
	arrives := func(p, id string) time.Duration {
		t.Helper()
		t0 := time.Now()
		e := subs[p].nextEvent(t, 10*time.Second)
		if got := e.GetPayload().GetFields()["id"].GetStringValue(); got != id {
			t.Fatalf("%s: event of %q, want %q (lost, repeated or out of order)", p, got, id)
		}
		return time.Since(t0)
	}
	// The burst (1) and the bucket at zero let the first two through.
	for _, id := range []string{"d1", "d2"} {
		write("slow", id)
		if d := arrives("slow", id); d > 2*time.Second {
			t.Fatalf("%s within the budget took %v", id, d)
		}
	}
	// d2 left the bucket one delivery in debt: d3 waits for it, and d3
	// leaves it in debt again for d4.
	t3 := time.Now()
	write("slow", "d3")
	write("fast", "f1")
	if d := arrives("fast", "f1"); d > 500*time.Millisecond {
		t.Fatalf("another project's event waited %v beside slow's budget", d)
	}
	arrives("slow", "d3")
	if d := time.Since(t3); d < 600*time.Millisecond {
		t.Fatalf("d3 over the budget arrived after %v: not held back", d)
	}
	t4 := time.Now()
	write("slow", "d4")
	arrives("slow", "d4")
	if d := time.Since(t4); d < 600*time.Millisecond {
		t.Fatalf("d4 over the budget arrived after %v: not held back", d)
	}

	for _, bad := range []struct {
		limits *cairnv1.ProjectLimits
		field  string
	}{
		{&cairnv1.ProjectLimits{RealtimeDeliveriesPerSecond: -1}, "realtime_deliveries_per_second"},
		{&cairnv1.ProjectLimits{RealtimeDeliveriesPerSecond: 10_000_001}, "realtime_deliveries_per_second"},
		{&cairnv1.ProjectLimits{RealtimeDeliveryBurst: -1}, "realtime_delivery_burst"},
	} {
		_, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "slow", Limits: bad.limits})
		wantCode(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), bad.field) {
			t.Fatalf("%v: error does not name %s: %v", bad.limits, bad.field, err)
		}
	}
}
