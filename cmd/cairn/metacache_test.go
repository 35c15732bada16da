package main

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestMetaCacheFollowsChanges checks that the records the API keeps in
// memory (API keys, projects, opened collections) change at once for
// every request after the change was answered, while other writes keep
// the projector busy: a revoked or narrowed key is refused on its very
// next call, a disabled or closed collection hides from guests on theirs.
func TestMetaCacheFollowsChanges(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	const p, db, coll = "meta", "main", "items"
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
		t.Fatal(err)
	}
	docScopes := []string{"databases.write", "collections.write", "collections.read", "documents.read", "documents.write"}
	writer, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: p, Name: "writer", Scopes: &cairnv1.Scopes{Scopes: docScopes}})
	if err != nil {
		t.Fatal(err)
	}
	w := func() context.Context { c, _ := as(ctx, writer.GetSecret()); return c }
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(w(), &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{coll, "busy"} {
		if _, err := dbs.CreateCollection(w(), &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: id, Name: id,
			Permissions: []string{`read("any")`}}); err != nil {
			t.Fatal(err)
		}
		if _, err := dbs.CreateAttribute(w(), &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: id,
			Attribute: &cairnv1.Attribute{Key: "n", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER}}); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := structpb.NewStruct(map[string]any{"n": 1})
	if _, err := dbs.CreateDocument(w(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: coll,
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data}}); err != nil {
		t.Fatal(err)
	}
	get := &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, DocumentId: "d1"}

	// Writes of documents elsewhere while the checks run.
	stop := make(chan struct{})
	var busy sync.WaitGroup
	busy.Add(1)
	go func() {
		defer busy.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := dbs.CreateDocument(w(), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: "busy",
				Document: &cairnv1.DocumentInput{DocumentId: "b" + strconv.Itoa(i), Data: data}}); err != nil {
				t.Errorf("background write: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	stopBusy := func() { once.Do(func() { close(stop); busy.Wait() }) }
	defer stopBusy()

	for round := range 10 {
		k, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: p, Name: "k" + strconv.Itoa(round), Scopes: &cairnv1.Scopes{Scopes: docScopes}})
		if err != nil {
			t.Fatal(err)
		}
		kc := func() context.Context { c, _ := as(ctx, k.GetSecret()); return c }
		for range 3 { // cached after the first
			if _, err := dbs.GetDocument(kc(), get); err != nil {
				t.Fatalf("round %d: fresh key: %v", round, err)
			}
		}
		if round%2 == 0 {
			// Narrowed: no documents.read any more.
			if _, err := in.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: p, KeyId: k.GetKey().GetId(),
				Scopes: &cairnv1.Scopes{Scopes: []string{"collections.read"}}}); err != nil {
				t.Fatal(err)
			}
			_, err = dbs.GetDocument(kc(), get)
			wantCode(t, err, connect.CodePermissionDenied)
		} else {
			if _, err := in.keys().DeleteKey(op, &cairnv1.DeleteKeyRequest{ProjectId: p, KeyId: k.GetKey().GetId()}); err != nil {
				t.Fatal(err)
			}
			_, err = dbs.GetDocument(kc(), get)
			wantCode(t, err, connect.CodeUnauthenticated)
		}

		// A guest reads the document until the collection is disabled, and
		// again once it is enabled; likewise with its read permission.
		g, _ := guest(ctx, p, "")
		if _, err := dbs.GetDocument(g, get); err != nil {
			t.Fatalf("round %d: guest: %v", round, err)
		}
		off, on := false, true
		upd := &cairnv1.UpdateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Enabled: &off}
		if round%2 == 1 {
			upd = &cairnv1.UpdateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Permissions: &cairnv1.Permissions{}}
		}
		if _, err := dbs.UpdateCollection(w(), upd); err != nil {
			t.Fatal(err)
		}
		g, _ = guest(ctx, p, "")
		_, err = dbs.GetDocument(g, get)
		wantCode(t, err, connect.CodeNotFound)
		upd = &cairnv1.UpdateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Enabled: &on, Permissions: &cairnv1.Permissions{Values: []string{`read("any")`}}}
		if _, err := dbs.UpdateCollection(w(), upd); err != nil {
			t.Fatal(err)
		}
		g, _ = guest(ctx, p, "")
		if _, err := dbs.GetDocument(g, get); err != nil {
			t.Fatalf("round %d: guest after enabling: %v", round, err)
		}
	}

	// A deleted project refuses its keys at once.
	stopBusy()
	if _, err := dbs.GetDocument(w(), get); err != nil {
		t.Fatal(err)
	}
	if _, err := in.projects().DeleteProject(op, &cairnv1.DeleteProjectRequest{ProjectId: p}); err != nil {
		t.Fatal(err)
	}
	_, err = dbs.GetDocument(w(), get)
	wantCode(t, err, connect.CodeUnauthenticated)
}
