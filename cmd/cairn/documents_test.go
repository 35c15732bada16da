package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func data(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// docsFixture makes database "main" with collection coll: title (string,
// required), views (integer, default 0), email (email) with a unique
// index on email and a key index on views.
func docsFixture(t testing.TB, ctx context.Context, dbs cairnv1connect.DatabasesServiceClient, p, coll string, perms []string, docSecurity bool) {
	t.Helper()
	if _, err := dbs.GetDatabase(ctx, &cairnv1.GetDatabaseRequest{ProjectId: p, DatabaseId: "main"}); err != nil {
		if _, err := dbs.CreateDatabase(ctx, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dbs.CreateCollection(ctx, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: coll, Name: coll,
		Permissions: perms, DocumentSecurity: docSecurity}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*cairnv1.Attribute{
		{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64, Required: true},
		{Key: "views", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, Default: val(0)},
		{Key: "email", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_EMAIL},
	} {
		if _, err := dbs.CreateAttribute(ctx, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: coll, Attribute: a}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ix := range []*cairnv1.Index{
		{Key: "by_email", Type: cairnv1.IndexType_INDEX_TYPE_UNIQUE, Attributes: []string{"email"}},
		{Key: "by_views", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"views"}},
	} {
		if _, err := dbs.CreateIndex(ctx, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: coll, Index: ix}); err != nil {
			t.Fatal(err)
		}
	}
}

var docScopes = []string{"databases.read", "databases.write", "collections.read", "collections.write", "documents.read", "documents.write"}

func TestDocumentsLifecycle(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	const p = "blog"
	secret := newProjectWithKey(t, in, p, docScopes...)
	k, info := as(ctx, secret)
	// Concurrent calls each need their own call context (its headers).
	fresh := func() context.Context { c, _ := as(ctx, secret); return c }
	dbs := in.databases()
	docsFixture(t, k, dbs, p, "posts", nil, false)

	created, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "first", Data: data(t, map[string]any{"title": "Hello", "email": "a@example.com"})}})
	if err != nil {
		t.Fatal(err)
	}
	d := created.GetDocument()
	if d.GetId() != "first" || d.GetData().GetFields()["views"].GetNumberValue() != 0 || d.GetSequence() == 0 || d.GetVersion() != d.GetSequence() {
		t.Fatalf("created %v", d)
	}
	if info.ResponseHeader().Get("Cairn-Seq") == "" {
		t.Fatal("no Cairn-Seq")
	}
	// Validation names the attribute.
	_, err = dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "x", "views": 1.5})}})
	wantError(t, err, connect.CodeInvalidArgument, `attribute "views"`)
	_, err = dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"views": 1})}})
	wantError(t, err, connect.CodeInvalidArgument, `attribute "title" is required`)
	// Unique index: a second document with the same email is refused, naming the index.
	_, err = dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "Dup", "email": "a@example.com"})}})
	wantError(t, err, connect.CodeAlreadyExists, "by_email")

	// Partial update, optimistic version, increment with a bound.
	upd, err := dbs.UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "first",
		Data: data(t, map[string]any{"views": 5}), ExpectedVersion: &d.Version})
	if err != nil || upd.GetDocument().GetData().GetFields()["title"].GetStringValue() != "Hello" || upd.GetDocument().GetVersion() <= d.GetVersion() {
		t.Fatalf("update %v %v", upd, err)
	}
	_, err = dbs.UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "first",
		Data: data(t, map[string]any{"views": 6}), ExpectedVersion: &d.Version})
	wantCode(t, err, connect.CodeAborted)
	inc, err := dbs.IncrementDocumentAttribute(k, &cairnv1.IncrementDocumentAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		DocumentId: "first", Attribute: "views", Delta: 3, Max: f64(8)})
	if err != nil || inc.GetDocument().GetData().GetFields()["views"].GetNumberValue() != 8 {
		t.Fatalf("increment %v %v", inc, err)
	}
	_, err = dbs.IncrementDocumentAttribute(k, &cairnv1.IncrementDocumentAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		DocumentId: "first", Attribute: "views", Delta: 1, Max: f64(8)})
	wantError(t, err, connect.CodeFailedPrecondition, "above the maximum")

	// Concurrent increments all count: each is decided on the fresh state.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := dbs.IncrementDocumentAttribute(fresh(), &cairnv1.IncrementDocumentAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
				DocumentId: "first", Attribute: "views", Delta: -1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := dbs.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "first"})
	if err != nil || got.GetDocument().GetData().GetFields()["views"].GetNumberValue() != -12 {
		t.Fatalf("after 20 concurrent decrements: %v %v", got, err)
	}

	// Unique race: many writers, one value, exactly one winner.
	var wins atomic.Int32
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := dbs.CreateDocument(fresh(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
				Document: &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("racer%d", i), Data: data(t, map[string]any{"title": "race", "email": "race@example.com"})}})
			if err == nil {
				wins.Add(1)
			} else if connect.CodeOf(err) != connect.CodeAlreadyExists {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d writers won the same unique value", wins.Load())
	}

	// Upsert creates then replaces; delete; bulk create, update and delete by query.
	up, err := dbs.UpsertDocument(k, &cairnv1.UpsertDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "u1",
		Data: data(t, map[string]any{"title": "Up", "views": 2})})
	if err != nil || !up.GetCreated() {
		t.Fatalf("upsert create %v %v", up, err)
	}
	up, err = dbs.UpsertDocument(k, &cairnv1.UpsertDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "u1",
		Data: data(t, map[string]any{"title": "Up again"})})
	if err != nil || up.GetCreated() || up.GetDocument().GetData().GetFields()["views"].GetNumberValue() != 0 {
		t.Fatalf("upsert replace %v %v", up, err)
	}
	var batch []*cairnv1.DocumentInput
	for i := range 30 {
		batch = append(batch, &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("b%02d", i), Data: data(t, map[string]any{"title": "bulk", "views": 100 + i})})
	}
	bulk, err := dbs.CreateDocuments(k, &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Documents: batch})
	if err != nil || len(bulk.GetDocuments()) != 30 {
		t.Fatalf("bulk create %v", err)
	}
	// A batch with one bad document writes nothing.
	bad := []*cairnv1.DocumentInput{{DocumentId: "ok1", Data: data(t, map[string]any{"title": "fine"})}, {DocumentId: "bad", Data: data(t, map[string]any{"views": 1})}}
	_, err = dbs.CreateDocuments(k, &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Documents: bad})
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = dbs.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "ok1"})
	wantCode(t, err, connect.CodeNotFound)

	gte := []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_GREATER_THAN_EQUAL, Attribute: "views", Values: []*structpb.Value{val(120)}}}
	list, err := dbs.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Filters: gte,
		Orders: []*cairnv1.Order{{Attribute: "views", Desc: true}}, Limit: 5, Explain: true})
	if err != nil || len(list.GetDocuments()) != 5 || list.GetTotal() != 10 || list.GetDocuments()[0].GetId() != "b29" {
		t.Fatalf("list %v %v", list, err)
	}
	if e := list.GetExplain(); e.GetIndex() != "by_views" || e.GetSortedInMemory() || e.GetDocumentsExamined() > 12 {
		t.Fatalf("explain %v", e)
	}
	next, err := dbs.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Filters: gte,
		Orders: []*cairnv1.Order{{Attribute: "views", Desc: true}}, Limit: 5, CursorAfter: "b25", Total: boolp(false)})
	if err != nil || len(next.GetDocuments()) != 5 || next.GetDocuments()[0].GetId() != "b24" || next.Total != nil {
		t.Fatalf("page after cursor %v %v", next, err)
	}
	agg, err := dbs.AggregateDocuments(k, &cairnv1.AggregateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Filters: gte,
		Function: cairnv1.AggregateFunction_AGGREGATE_FUNCTION_SUM, Attribute: "views"})
	if err != nil || len(agg.GetGroups()) != 1 || agg.GetGroups()[0].GetValue().GetNumberValue() != 1245 || agg.GetGroups()[0].GetCount() != 10 {
		t.Fatalf("sum %v %v", agg, err)
	}
	updated, err := dbs.UpdateDocuments(k, &cairnv1.UpdateDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Filters: gte,
		Data: data(t, map[string]any{"title": "popular"})})
	if err != nil || updated.GetUpdated() != 10 {
		t.Fatalf("bulk update %v %v", updated, err)
	}
	deleted, err := dbs.DeleteDocuments(k, &cairnv1.DeleteDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_EQUAL, Attribute: "title", Values: []*structpb.Value{val("popular")}}}})
	if err != nil || deleted.GetDeleted() != 10 {
		t.Fatalf("bulk delete %v %v", deleted, err)
	}
	if _, err := dbs.DeleteDocument(k, &cairnv1.DeleteDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "u1"}); err != nil {
		t.Fatal(err)
	}
	// A deleted unique value is free again.
	if _, err := dbs.UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", DocumentId: "first",
		Data: data(t, map[string]any{"email": nil})}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "second", Data: data(t, map[string]any{"title": "x", "email": "a@example.com"})}}); err != nil {
		t.Fatalf("a released unique value: %v", err)
	}

	// The scan limit: a non-indexed filter over more documents than allowed fails naming the index.
	in.stop()
	n := openStopped(t, dir)
	checkRebuild(t, n, p, "documents")
	n.close()
	in = startInstance(t, dir, "--max-query-scan", "10")
	k, _ = as(ctx, testAdminKey)
	_, err = in.databases().ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
		Filters: []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_STARTS_WITH, Attribute: "title", Values: []*structpb.Value{val("bu")}}}, Total: boolp(false)})
	wantError(t, err, connect.CodeFailedPrecondition, "create an index on (title)")
}
