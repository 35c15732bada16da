package main

import (
	"context"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestGetDocumentCacheReadsOwnWrites: GetDocument keeps hot documents
// (api/doccache.go); every write answered before a get must be seen by it
// — updates, a delete, a re-creation under the same id, a collection's
// document dropped with the collection — while readers hammer the same
// document.
func TestGetDocumentCacheReadsOwnWrites(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "hotdocs"
	secret := newProjectWithKey(t, in, p, docScopes...)
	fresh := func() context.Context { c, _ := as(ctx, secret); return c }
	dbs := in.databases()
	docsFixture(t, fresh(), dbs, p, "posts", nil, false)
	get := func(c context.Context) (*cairnv1.Document, error) {
		res, err := dbs.GetDocument(c, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "hot"})
		return res.GetDocument(), err
	}
	if _, err := dbs.CreateDocument(fresh(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "hot", Data: data(t, map[string]any{"title": "v", "views": 0})}}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := get(fresh())
				if err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				if v := d.GetData().GetFields()["views"].GetNumberValue(); v < 0 || v > 60 {
					t.Errorf("reader saw views %v", v)
					return
				}
			}
		})
	}
	for i := 1; i <= 60; i++ {
		if _, err := dbs.UpdateDocument(fresh(), &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "hot",
			Data: data(t, map[string]any{"views": i})}); err != nil {
			t.Fatal(err)
		}
		// Twice: the first may fill the cache, the second is served by it.
		for range 2 {
			d, err := get(fresh())
			if err != nil || d.GetData().GetFields()["views"].GetNumberValue() != float64(i) {
				t.Fatalf("after update %d: %v %v", i, d.GetData(), err)
			}
		}
	}
	close(stop)
	readers.Wait()

	if _, err := dbs.DeleteDocument(fresh(), &cairnv1.DeleteDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "hot"}); err != nil {
		t.Fatal(err)
	}
	_, err := get(fresh())
	wantCode(t, err, connect.CodeNotFound)
	if _, err := dbs.CreateDocument(fresh(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "hot", Data: data(t, map[string]any{"title": "again"})}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d, err := get(fresh()); err != nil || d.GetData().GetFields()["title"].GetStringValue() != "again" || d.GetData().GetFields()["views"].GetNumberValue() != 0 {
			t.Fatalf("re-created: %v %v", d.GetData(), err)
		}
	}
	// The collection goes, and one of the same name comes back empty.
	if _, err := dbs.DeleteCollection(fresh(), &cairnv1.DeleteCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts"}); err != nil {
		t.Fatal(err)
	}
	docsFixture(t, fresh(), dbs, p, "posts", nil, false)
	_, err = get(fresh())
	wantCode(t, err, connect.CodeNotFound)
}
