package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

func TestAuditLog(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "audit", Name: "Audit"}); err != nil {
		t.Fatal(err)
	}
	reader, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "audit", Name: "auditor",
		Scopes: &cairnv1.Scopes{Scopes: []string{"events.read", "keys.write", "keys.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	kctx, _ := as(ctx, reader.GetSecret())

	// Follow live events from now on, in the background.
	live := make(chan *cairnv1.Event, 16)
	sctx, cancel := context.WithCancel(kctx)
	defer cancel()
	// From the sequence after the auditor key's creation (seq 1): the call may
	// return before the server has read the request, so "only new events"
	// would race with the writes below.
	stream, err := in.events().StreamEvents(sctx, &cairnv1.StreamEventsRequest{ProjectId: "audit", Subject: "keys.>", StartSeq: 2})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(live)
		for {
			res, err := stream.Receive()
			if err != nil {
				return
			}
			live <- res.GetEvent()
		}
	}()

	for i := range 5 {
		name := "k" + string(rune('a'+i))
		if _, err := in.keys().CreateKey(kctx, &cairnv1.CreateKeyRequest{ProjectId: "audit", Name: name, Scopes: &cairnv1.Scopes{}}); err != nil {
			t.Fatal(err)
		}
	}

	// Paginated listing: 6 key creations in pages of 4.
	var all []*cairnv1.Event
	req := &cairnv1.ListEventsRequest{ProjectId: "audit", Subject: "keys.*.create", PageSize: 4}
	for {
		res, err := in.events().ListEvents(kctx, req)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, res.GetEvents()...)
		if res.GetNextPageToken() == "" {
			break
		}
		req.PageToken = res.GetNextPageToken()
	}
	if len(all) != 6 {
		t.Fatalf("want 6 key creations, got %d", len(all))
	}
	for i, e := range all {
		if i > 0 && e.GetSeq() <= all[i-1].GetSeq() {
			t.Fatalf("events out of order: %d after %d", e.GetSeq(), all[i-1].GetSeq())
		}
		if !strings.HasPrefix(e.GetSubject(), "keys.") || !strings.HasSuffix(e.GetSubject(), ".create") {
			t.Fatalf("subject not project-relative: %q", e.GetSubject())
		}
		k := e.GetEnvelope().GetKeyCreated().GetKey()
		if k == nil || len(k.GetSecretHash()) != 0 {
			t.Fatalf("secret hash not redacted: %v", e)
		}
		js, _ := protojson.Marshal(e)
		if strings.Contains(string(js), "secretHash") {
			t.Fatalf("hash leaked in JSON: %s", js)
		}
	}
	// Who did it: the first by the operator, the rest by the key.
	if a := all[0].GetEnvelope().GetActor(); a.GetKind() != eventsv1.Actor_KIND_OPERATOR {
		t.Fatalf("first actor %v", a)
	}
	if a := all[1].GetEnvelope().GetActor(); a.GetKind() != eventsv1.Actor_KIND_API_KEY || a.GetId() != reader.GetKey().GetId() {
		t.Fatalf("second actor %v", a)
	}

	// Sequence and time ranges.
	res, err := in.events().ListEvents(kctx, &cairnv1.ListEventsRequest{ProjectId: "audit", StartSeq: all[2].GetSeq(), EndSeq: all[3].GetSeq()})
	if err != nil || len(res.GetEvents()) != 2 {
		t.Fatalf("seq range: %v %v", res, err)
	}
	res, err = in.events().ListEvents(kctx, &cairnv1.ListEventsRequest{ProjectId: "audit", StartTime: all[5].GetTime()})
	if err != nil || len(res.GetEvents()) == 0 || res.GetEvents()[0].GetSeq() > all[5].GetSeq() {
		t.Fatalf("time range: %v %v", res, err)
	}
	res, err = in.events().ListEvents(kctx, &cairnv1.ListEventsRequest{ProjectId: "audit", EndTime: all[0].GetTime()})
	if err != nil || len(res.GetEvents()) != 0 {
		t.Fatalf("end time before first event: %v %v", res, err)
	}

	// The live stream saw the 5 creations made after it opened, in order.
	timeout := time.After(10 * time.Second)
	for i := range 5 {
		select {
		case e := <-live:
			if e.GetSeq() != all[i+1].GetSeq() {
				t.Fatalf("live event %d: seq %d, want %d", i, e.GetSeq(), all[i+1].GetSeq())
			}
		case <-timeout:
			t.Fatalf("live stream delivered only %d events", i)
		}
	}
	cancel()
	wg.Wait()

	// Replay from a sequence, then follow.
	rctx, rcancel := context.WithTimeout(kctx, 10*time.Second)
	defer rcancel()
	replay, err := in.events().StreamEvents(rctx, &cairnv1.StreamEventsRequest{ProjectId: "audit", StartSeq: all[4].GetSeq()})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range all[4:] {
		got, err := replay.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetEvent().GetSeq() != want.GetSeq() {
			t.Fatalf("replay: seq %d, want %d", got.GetEvent().GetSeq(), want.GetSeq())
		}
	}
	if _, err := in.keys().CreateKey(kctx, &cairnv1.CreateKeyRequest{ProjectId: "audit", Name: "after", Scopes: &cairnv1.Scopes{}}); err != nil {
		t.Fatal(err)
	}
	got, err := replay.Receive()
	if err != nil || got.GetEvent().GetEnvelope().GetKeyCreated().GetKey().GetName() != "after" {
		t.Fatalf("replay did not follow live: %v %v", got, err)
	}
	replay.Close()

	// The operator reads the system log: project registry events.
	sys, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{Subject: "projects.audit.>"})
	if err != nil || len(sys.GetEvents()) != 1 || sys.GetEvents()[0].GetEnvelope().GetProjectCreated() == nil {
		t.Fatalf("system log: %v %v", sys, err)
	}
}

func TestIdempotentRequests(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	call := func(key string) (*cairnv1.CreateKeyResponse, string, error) {
		c, info := as(ctx, testAdminKey)
		info.RequestHeader().Set("Idempotency-Key", key)
		res, err := in.keys().CreateKey(c, &cairnv1.CreateKeyRequest{ProjectId: "idem", Name: "once", Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
		return res, info.ResponseHeader().Get("Cairn-Seq"), err
	}
	c, info := as(ctx, testAdminKey)
	info.RequestHeader().Set("Idempotency-Key", "create-project-1")
	if _, err := in.projects().CreateProject(c, &cairnv1.CreateProjectRequest{ProjectId: "idem", Name: "Idem"}); err != nil {
		t.Fatal(err)
	}
	// A retried create of a chosen id answers the first result, not AlreadyExists.
	c, info = as(ctx, testAdminKey)
	info.RequestHeader().Set("Idempotency-Key", "create-project-1")
	if _, err := in.projects().CreateProject(c, &cairnv1.CreateProjectRequest{ProjectId: "idem", Name: "Idem"}); err != nil {
		t.Fatalf("retried CreateProject: %v", err)
	}

	first, seq1, err := call("abc")
	if err != nil {
		t.Fatal(err)
	}
	again, seq2, err := call("abc")
	if err != nil {
		t.Fatal(err)
	}
	if again.GetKey().GetId() != first.GetKey().GetId() || again.GetSecret() != first.GetSecret() || seq1 != seq2 {
		t.Fatalf("retry gave a different result:\n%v %s\n%v %s", first, seq1, again, seq2)
	}
	// The re-derived secret really authenticates.
	kc, _ := as(ctx, again.GetSecret())
	if _, err := in.keys().ListKeys(kc, &cairnv1.ListKeysRequest{ProjectId: "idem"}); err != nil {
		t.Fatalf("secret from the retry does not work: %v", err)
	}
	other, _, err := call("def")
	if err != nil || other.GetKey().GetId() == first.GetKey().GetId() {
		t.Fatalf("a new key wrote nothing new: %v %v", other, err)
	}
	op, _ := as(ctx, testAdminKey)
	evs, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: "idem"})
	if err != nil || len(evs.GetEvents()) != 2 {
		t.Fatalf("want exactly 2 events, got %v %v", evs, err)
	}
	sys, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{Subject: "projects.idem.>"})
	if err != nil || len(sys.GetEvents()) != 1 {
		t.Fatalf("want exactly 1 project event, got %v %v", sys, err)
	}
	// The same idempotency key from another caller is another request: it
	// must never hand out the first caller's key and secret.
	writer, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "idem", Name: "writer", Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read", "keys.write"}}})
	if err != nil {
		t.Fatal(err)
	}
	kc2, kinfo := as(ctx, writer.GetSecret())
	kinfo.RequestHeader().Set("Idempotency-Key", "abc")
	theirs, err := in.keys().CreateKey(kc2, &cairnv1.CreateKeyRequest{ProjectId: "idem", Name: "once", Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
	if err != nil || theirs.GetKey().GetId() == first.GetKey().GetId() || theirs.GetSecret() == first.GetSecret() {
		t.Fatalf("another caller's idempotency key returned the first caller's result: %v %v", theirs, err)
	}
}
