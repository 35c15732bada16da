package main

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestCreateAnswerIsRead: a create answers with the document built from its
// own events, not read back; the answer must be what a get and a list on
// the same node return at once, byte for byte: single creates (some with a
// unique value, so the batch holds claims too), with and without explicit
// permissions and defaults, written concurrently, a document created again
// after its delete, an upsert that creates, and a bulk create.
func TestCreateAnswerIsRead(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "answers"
	secret := newProjectWithKey(t, in, p, docScopes...)
	fresh := func() context.Context { c, _ := as(ctx, secret); return c }
	dbs := in.databases()
	docsFixture(t, fresh(), dbs, p, "posts", nil, false)

	var mu sync.Mutex
	answers := map[string]*cairnv1.Document{}
	keep := func(d *cairnv1.Document) {
		mu.Lock()
		defer mu.Unlock()
		answers[d.GetId()] = d
	}
	// same compares an answer with what a get returns right after it.
	same := func(what string, d *cairnv1.Document) {
		t.Helper()
		got, err := dbs.GetDocument(fresh(), &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: d.GetId()})
		if err != nil {
			t.Errorf("%s %s: get right after: %v", what, d.GetId(), err)
			return
		}
		sameDoc(t, what+" then get", d, got.GetDocument())
	}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				in := &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("w%d-%d", w, i), Data: data(t, map[string]any{"title": fmt.Sprintf("t %d %d", w, i)})}
				switch i % 3 {
				case 1:
					in.Data = data(t, map[string]any{"title": "unique", "email": fmt.Sprintf("w%d-%d@example.com", w, i), "views": i})
				case 2:
					in.Permissions = &cairnv1.Permissions{Values: []string{`read("any")`, `update("users")`}}
				}
				res, err := dbs.CreateDocument(fresh(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Document: in})
				if err != nil {
					t.Error(err)
					return
				}
				same("create", res.GetDocument())
				keep(res.GetDocument())
			}
		}()
	}
	wg.Wait()

	// Created again after a delete: the new document's sequence is its own.
	if _, err := dbs.DeleteDocument(fresh(), &cairnv1.DeleteDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "w0-0"}); err != nil {
		t.Fatal(err)
	}
	again, err := dbs.CreateDocument(fresh(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "w0-0", Data: data(t, map[string]any{"title": "again"})}})
	if err != nil {
		t.Fatal(err)
	}
	if old := answers["w0-0"]; again.GetDocument().GetSequence() <= old.GetSequence() {
		t.Errorf("created again: sequence %d, the first one's was %d", again.GetDocument().GetSequence(), old.GetSequence())
	}
	same("create again", again.GetDocument())
	keep(again.GetDocument())

	up, err := dbs.UpsertDocument(fresh(), &cairnv1.UpsertDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "up",
		Data: data(t, map[string]any{"title": "upserted", "email": "up@example.com"})})
	if err != nil || !up.GetCreated() {
		t.Fatalf("upsert %v %v", up, err)
	}
	same("upsert", up.GetDocument())
	keep(up.GetDocument())

	var batch []*cairnv1.DocumentInput
	for i := range 12 {
		batch = append(batch, &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("b%02d", i), Data: data(t, map[string]any{"title": "bulk", "views": i, "email": fmt.Sprintf("b%d@example.com", i)})})
	}
	bulk, err := dbs.CreateDocuments(fresh(), &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Documents: batch})
	if err != nil || len(bulk.GetDocuments()) != len(batch) {
		t.Fatalf("bulk create: %d documents, %v", len(bulk.GetDocuments()), err)
	}
	for _, d := range bulk.GetDocuments() {
		same("bulk create", d)
		keep(d)
	}

	// A list sees every answer as it was given.
	list, err := dbs.ListDocuments(fresh(), &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetDocuments()) != len(answers) {
		t.Errorf("list: %d documents, %d created", len(list.GetDocuments()), len(answers))
	}
	for _, d := range list.GetDocuments() {
		if a := answers[d.GetId()]; a == nil {
			t.Errorf("list: %s was not created", d.GetId())
		} else {
			sameDoc(t, "list", a, d)
		}
	}
}

// sameDoc fails unless the two documents are equal and encode to the same
// JSON.
func sameDoc(t *testing.T, what string, answer, read *cairnv1.Document) {
	t.Helper()
	a, err := protojson.Marshal(answer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := protojson.Marshal(read)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(answer, read) || string(a) != string(r) {
		t.Errorf("%s %s: answered\n%s\nread\n%s", what, answer.GetId(), a, r)
	}
}
