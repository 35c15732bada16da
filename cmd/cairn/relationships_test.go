package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// relDB is a small client for one project's database "main".
type relDB struct {
	t   *testing.T
	ctx context.Context
	dbs cairnv1connect.DatabasesServiceClient
	p   string
}

func (r relDB) coll(id string, perms []string, docSecurity bool, attrs ...*cairnv1.Attribute) {
	r.t.Helper()
	if _, err := r.dbs.CreateCollection(r.ctx, &cairnv1.CreateCollectionRequest{ProjectId: r.p, DatabaseId: "main", CollectionId: id, Name: id,
		Permissions: perms, DocumentSecurity: docSecurity}); err != nil {
		r.t.Fatal(err)
	}
	for _, a := range attrs {
		if _, err := r.attr(id, a); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r relDB) attr(coll string, a *cairnv1.Attribute) (*cairnv1.Attribute, error) {
	res, err := r.dbs.CreateAttribute(r.ctx, &cairnv1.CreateAttributeRequest{ProjectId: r.p, DatabaseId: "main", CollectionId: coll, Attribute: a})
	return res.GetAttribute(), err
}

func (r relDB) create(coll, id string, d map[string]any, perms ...string) error {
	in := &cairnv1.DocumentInput{DocumentId: id, Data: data(r.t, d)}
	if perms != nil {
		in.Permissions = &cairnv1.Permissions{Values: perms}
	}
	_, err := r.dbs.CreateDocument(r.ctx, &cairnv1.CreateDocumentRequest{ProjectId: r.p, DatabaseId: "main", CollectionId: coll, Document: in})
	return err
}

func (r relDB) update(coll, id string, d map[string]any) error {
	_, err := r.dbs.UpdateDocument(r.ctx, &cairnv1.UpdateDocumentRequest{ProjectId: r.p, DatabaseId: "main", CollectionId: coll, DocumentId: id, Data: data(r.t, d)})
	return err
}

func (r relDB) del(coll, id string) error {
	_, err := r.dbs.DeleteDocument(r.ctx, &cairnv1.DeleteDocumentRequest{ProjectId: r.p, DatabaseId: "main", CollectionId: coll, DocumentId: id})
	return err
}

func (r relDB) get(coll, id string, sel ...string) (map[string]any, error) {
	res, err := r.dbs.GetDocument(r.ctx, &cairnv1.GetDocumentRequest{ProjectId: r.p, DatabaseId: "main", CollectionId: coll, DocumentId: id, Select: sel})
	return res.GetDocument().GetData().AsMap(), err
}

func (r relDB) must(m map[string]any, err error) map[string]any {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r relDB) ok(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

func rel(key, related, typ string, twoWayKey, onDelete string) *cairnv1.Attribute {
	return &cairnv1.Attribute{Key: key, Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_RELATIONSHIP, RelatedCollection: related,
		RelationType: typ, TwoWay: twoWayKey != "", TwoWayKey: twoWayKey, OnDelete: onDelete}
}

func str(key string) *cairnv1.Attribute {
	return &cairnv1.Attribute{Key: key, Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64}
}

func relIDs(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				e = m["$id"]
			}
			out = append(out, e.(string))
		}
	case map[string]any:
		out = append(out, x["$id"].(string))
	}
	return out
}

// TestRelationships runs Appwrite-style relationships end to end on a real
// server: schema (two-way partners, bad input), documents (links kept on
// both sides, cardinality, missing targets), onDelete restrict / cascade
// / setNull, selects of related fields with depth and cycles, related
// documents a guest cannot read omitted, queries on related ids, and a
// rebuild of the read models equal to the incrementally built one.
func TestRelationships(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	const p = "lib"
	secret := newProjectWithKey(t, in, p, append(docScopes, "events.read")...)
	k, _ := as(ctx, secret)
	dbs := in.databases()
	r := relDB{t, k, dbs, p}
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "second", Name: "Second"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "second", CollectionId: "elsewhere", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	anyRead := []string{`read("any")`}
	r.coll("authors", anyRead, false, str("name"))
	r.coll("books", nil, true, str("title"))
	r.coll("profiles", anyRead, false, str("bio"))
	r.coll("publishers", anyRead, false, str("name"))
	r.coll("tags", anyRead, false, str("label"))

	// Schema: a two-way relationship creates its partner in the same batch.
	a, err := r.attr("authors", rel("books", "books", "oneToMany", "author", "setNull"))
	if err != nil || a.GetSide() != "parent" || !a.GetArray() {
		t.Fatalf("books: %v %v", a, err)
	}
	col, err := dbs.GetAttribute(k, &cairnv1.GetAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "books", Key: "author"})
	if b := col.GetAttribute(); err != nil || b.GetSide() != "child" || b.GetRelationType() != "manyToOne" || b.GetArray() || b.GetTwoWayKey() != "books" {
		t.Fatalf("partner: %v %v", b, err)
	}
	if _, err := dbs.CreateIndex(k, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "books",
		Index: &cairnv1.Index{Key: "by_author", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"author"}}}); err != nil {
		t.Fatal(err)
	}
	waitIndexes(t, dbs, k, p, "main", "books")
	r.ok(second(r.attr("authors", rel("profile", "profiles", "oneToOne", "owner", "cascade"))))
	r.ok(second(r.attr("books", rel("publisher", "publishers", "manyToOne", "books", "restrict"))))
	r.ok(second(r.attr("books", rel("tags", "tags", "manyToMany", "", "setNull"))))
	r.ok(second(r.attr("profiles", rel("twin", "profiles", "oneToOne", "", "setNull")))) // one-way self

	// A collection of another project is not found from this one.
	zk, _ := as(ctx, newProjectWithKey(t, in, "zoo", docScopes...))
	if _, err := dbs.CreateDatabase(zk, &cairnv1.CreateDatabaseRequest{ProjectId: "zoo", DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(zk, &cairnv1.CreateCollectionRequest{ProjectId: "zoo", DatabaseId: "main", CollectionId: "onlyzoo", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err = r.attr("authors", rel("zoo", "onlyzoo", "oneToOne", "", ""))
	wantError(t, err, connect.CodeInvalidArgument, `collection "onlyzoo" not found`)
	_, err = dbs.CreateAttribute(zk, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "authors", Attribute: rel("zoo", "books", "oneToOne", "", "")})
	if connect.CodeOf(err) != connect.CodePermissionDenied && connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("another project's key: %v", err)
	}

	// Bad input names the field.
	for _, c := range []struct {
		coll string
		a    *cairnv1.Attribute
		code connect.Code
		msg  string
	}{
		{"authors", rel("x", "", "oneToOne", "", ""), connect.CodeInvalidArgument, "attribute.related_collection"},
		{"authors", rel("x", "nope", "oneToOne", "", ""), connect.CodeInvalidArgument, `collection "nope" not found`},
		{"authors", rel("x", "elsewhere", "oneToOne", "", ""), connect.CodeInvalidArgument, "attribute.related_collection"},
		{"authors", rel("x", "books", "oneToFew", "", ""), connect.CodeInvalidArgument, "attribute.relation_type"},
		{"authors", rel("x", "books", "oneToOne", "", "explode"), connect.CodeInvalidArgument, "attribute.on_delete"},
		{"authors", rel("name", "books", "oneToOne", "", ""), connect.CodeAlreadyExists, `"name" already exists`},
		{"authors", rel("x", "books", "oneToOne", "title", ""), connect.CodeAlreadyExists, "attribute.two_way_key"},
		{"authors", rel("x", "authors", "oneToOne", "y", ""), connect.CodeInvalidArgument, "attribute.two_way"},
		{"authors", &cairnv1.Attribute{Key: "x", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_RELATIONSHIP, RelatedCollection: "books", RelationType: "oneToOne", TwoWay: true}, connect.CodeInvalidArgument, "attribute.two_way_key"},
	} {
		_, err := r.attr(c.coll, c.a)
		wantError(t, err, c.code, c.msg)
	}
	// A failed two-way create left neither side behind.
	if _, err := dbs.GetAttribute(k, &cairnv1.GetAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "books", Key: "y"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("partner of a refused relationship: %v", err)
	}

	// Documents: setting one side sets the other in the same batch.
	pub := []string{`read("any")`}
	r.ok(r.create("books", "b1", map[string]any{"title": "One"}, pub...))
	r.ok(r.create("books", "b2", map[string]any{"title": "Two"}, pub...))
	r.ok(r.create("books", "hidden", map[string]any{"title": "Secret"}, []string{}...))
	r.ok(r.create("authors", "a1", map[string]any{"name": "Ann", "books": []any{"b1", "hidden"}}))
	if got := relIDs(r.must(r.get("books", "b1"))["author"]); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("b1.author = %v", got)
	}
	// A missing related document is named.
	wantError(t, r.create("authors", "a9", map[string]any{"name": "X", "books": []any{"nope"}}), connect.CodeInvalidArgument, `related document "nope" not found`)
	wantError(t, r.create("authors", "a9", map[string]any{"name": "X", "books": "b1"}), connect.CodeInvalidArgument, "data.books")
	// Cardinality: b1 belongs to a1 (oneToMany): a2 cannot take it.
	r.ok(r.create("authors", "a2", map[string]any{"name": "Bob"}))
	wantError(t, r.update("authors", "a2", map[string]any{"books": []any{"b1"}}), connect.CodeInvalidArgument, "already related")
	// Moving b1 from its child side updates both parents.
	r.ok(r.update("books", "b1", map[string]any{"author": "a2"}))
	if got := relIDs(r.must(r.get("authors", "a1"))["books"]); !slices.Equal(got, []string{"hidden"}) {
		t.Fatalf("a1.books = %v", got)
	}
	if got := relIDs(r.must(r.get("authors", "a2"))["books"]); !slices.Equal(got, []string{"b1"}) {
		t.Fatalf("a2.books = %v", got)
	}
	// oneToOne two-way and one-way.
	r.ok(r.create("profiles", "p1", map[string]any{"bio": "hi"}))
	r.ok(r.create("profiles", "p2", map[string]any{"bio": "ho", "twin": "p1"}))
	wantError(t, r.create("profiles", "p3", map[string]any{"bio": "he", "twin": "p1"}), connect.CodeInvalidArgument, "relates it once")
	r.ok(r.update("authors", "a2", map[string]any{"profile": "p1"}))
	if got := relIDs(r.must(r.get("profiles", "p1"))["owner"]); !slices.Equal(got, []string{"a2"}) {
		t.Fatalf("p1.owner = %v", got)
	}
	wantError(t, r.update("authors", "a1", map[string]any{"profile": "p1"}), connect.CodeInvalidArgument, "already related")
	r.ok(r.create("publishers", "pub", map[string]any{"name": "Pub"}))
	r.ok(r.create("tags", "t1", map[string]any{"label": "sf"}))
	r.ok(r.update("books", "b1", map[string]any{"publisher": "pub", "tags": []any{"t1"}}))
	r.ok(r.update("books", "b2", map[string]any{"publisher": "pub", "author": "a2"}))
	if got := relIDs(r.must(r.get("publishers", "pub"))["books"]); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("pub.books = %v", got)
	}

	// Queries on related ids, through the planner.
	list := func(coll string, f *cairnv1.Filter) []string {
		t.Helper()
		res, err := dbs.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: coll, Filters: []*cairnv1.Filter{f}, Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		if coll == "books" && res.GetExplain().GetIndex() != "by_author" {
			t.Errorf("books by author: plan %v", res.GetExplain())
		}
		var out []string
		for _, d := range res.GetDocuments() {
			out = append(out, d.GetId())
		}
		slices.Sort(out)
		return out
	}
	if got := list("books", &cairnv1.Filter{Op: cairnv1.Operator_OPERATOR_EQUAL, Attribute: "author", Values: []*structpb.Value{val("a2")}}); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("books of a2: %v", got)
	}
	if got := list("authors", &cairnv1.Filter{Op: cairnv1.Operator_OPERATOR_CONTAINS, Attribute: "books", Values: []*structpb.Value{val("hidden")}}); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("authors of hidden: %v", got)
	}

	// Select: ids by default, related documents on request, a cycle stays an id.
	got := r.must(r.get("authors", "a2", "name", "books.title", "books.author.name", "profile.*"))
	books, _ := got["books"].([]any)
	if len(books) != 2 || books[0].(map[string]any)["title"] != "One" || got["profile"].(map[string]any)["bio"] != "hi" {
		t.Fatalf("select: %v", got)
	}
	if back := books[0].(map[string]any)["author"].(map[string]any); back["$id"] != "a2" || back["name"] != nil {
		t.Fatalf("cycle: %v", back)
	}
	deep := r.must(r.get("books", "b2", "publisher.books.tags.label"))
	if tags := deep["publisher"].(map[string]any)["books"].([]any)[0].(map[string]any)["tags"].([]any); len(tags) != 1 || tags[0].(map[string]any)["label"] != "sf" {
		t.Fatalf("depth 3: %v", deep)
	}
	_, err = r.get("books", "b1", "publisher.books.tags.label.x")
	wantError(t, err, connect.CodeInvalidArgument, "levels deep")
	_, err = r.get("authors", "a1", "name.x")
	wantError(t, err, connect.CodeInvalidArgument, "not a relationship attribute")
	// A guest reads authors but only the books it may read.
	g, _ := guest(ctx, p, "")
	res, err := dbs.GetDocument(g, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "authors", DocumentId: "a1", Select: []string{"books.title"}})
	if err != nil || len(res.GetDocument().GetData().AsMap()["books"].([]any)) != 0 {
		t.Fatalf("guest select: %v %v", res, err)
	}
	lres, err := dbs.ListDocuments(k, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "authors", Select: []string{"books.title"}})
	if err != nil || len(lres.GetDocuments()) != 2 {
		t.Fatalf("list select: %v %v", lres, err)
	}

	// onDelete restrict (child side too): refused, naming the relationship.
	wantError(t, r.del("publishers", "pub"), connect.CodeFailedPrecondition, `"books"`)
	wantError(t, r.del("books", "b1"), connect.CodeFailedPrecondition, `"publisher"`)
	// onDelete cascade (a2's profile) and setNull (a2's books keep, unlinked):
	// every document changed is a realtime event.
	rt := in.subscribe(t, secret, &cairnv1.SubscribeRequest{ProjectId: p, Channels: []string{"documents"}})
	rt.untilLive(t)
	r.ok(r.del("authors", "a2"))
	want := []string{"authors.documents.a2.delete", "profiles.documents.p1.delete", "books.documents.b1.update", "books.documents.b2.update", "profiles.documents.p2.update"}
	for range want {
		e := rt.nextEvent(t, 10*time.Second)
		name := strings.TrimPrefix(e.GetEvents()[0], "databases.main.collections.")
		if !slices.Contains(want, name) {
			t.Fatalf("unexpected realtime event %v", e.GetEvents())
		}
		want = slices.DeleteFunc(want, func(w string) bool { return w == name })
	}
	if len(want) != 0 {
		t.Fatalf("no realtime events for %v", want)
	}
	if _, err := r.get("profiles", "p1"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("cascaded profile: %v", err)
	}
	if b := r.must(r.get("books", "b1")); b["author"] != nil {
		t.Fatalf("b1 after setNull: %v", b)
	}
	// One-way references to a deleted document go too (p2.twin was p1).
	if p2 := r.must(r.get("profiles", "p2")); p2["twin"] != nil {
		t.Fatalf("p2 after its twin's cascade: %v", p2)
	}
	r.ok(r.del("tags", "t1"))
	if got := relIDs(r.must(r.get("books", "b1"))["tags"]); len(got) != 0 {
		t.Fatalf("b1.tags after deleting t1: %v", got)
	}
	// Deleting the child of a setNull relationship unlinks it from its parent.
	r.ok(r.update("books", "hidden", map[string]any{"publisher": nil}))
	r.ok(r.del("books", "hidden"))
	if got := relIDs(r.must(r.get("authors", "a1"))["books"]); len(got) != 0 {
		t.Fatalf("a1.books after delete: %v", got)
	}
	// A collection others relate to is not deleted from under them.
	_, err = dbs.DeleteCollection(k, &cairnv1.DeleteCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "tags"})
	wantError(t, err, connect.CodeFailedPrecondition, `attribute "tags"`)

	// Deleting a two-way relationship deletes its partner.
	if _, err := dbs.DeleteAttribute(k, &cairnv1.DeleteAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "books", Key: "author"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.GetAttribute(k, &cairnv1.GetAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "authors", Key: "books"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("partner after delete: %v", err)
	}

	in.stop()
	n := openStopped(t, dir)
	defer n.close()
	checkRebuild(t, n, p, "relationships")
}

func second[T any](_ T, err error) error { return err }

// TestRelationshipsInTransactions commits transactions that write
// collections with relationships: links kept on both sides, a new order
// and its new items in one commit, a related document the transaction
// also writes or only read folded into one decision, cascades, and the
// refusals leaving nothing written. The read models then rebuild equal
// to the incrementally built ones.
func TestRelationshipsInTransactions(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	const p = "txlib"
	k, _ := as(ctx, newProjectWithKey(t, in, p, docScopes...))
	dbs := in.databases()
	r := relDB{t, k, dbs, p}
	r.ok(second(dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"})))
	anyRead := []string{`read("any")`}
	r.coll("authors", anyRead, false, str("name"), &cairnv1.Attribute{Key: "count", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER})
	r.coll("books", anyRead, false, str("title"))
	r.coll("publishers", anyRead, false, str("name"))
	r.coll("essays", anyRead, false, str("title"))
	r.ok(second(r.attr("authors", rel("books", "books", "oneToMany", "author", "cascade"))))
	r.ok(second(r.attr("authors", rel("essays", "essays", "oneToMany", "author", "setNull"))))
	r.ok(second(r.attr("books", rel("publisher", "publishers", "manyToOne", "", "setNull")))) // one-way
	r.ok(r.create("authors", "a1", map[string]any{"name": "Ann"}))
	r.ok(r.create("authors", "a2", map[string]any{"name": "Bo"}))
	r.ok(r.create("publishers", "p1", map[string]any{"name": "Pub"}))

	stage := func(ops ...*cairnv1.Operation) string {
		t.Helper()
		tx, err := dbs.CreateTransaction(k, &cairnv1.CreateTransactionRequest{ProjectId: p})
		r.ok(err)
		id := tx.GetTransaction().GetId()
		if len(ops) > 0 {
			r.ok(second(dbs.StageOperations(k, &cairnv1.StageOperationsRequest{ProjectId: p, TransactionId: id, Operations: ops})))
		}
		return id
	}
	commit := func(id string) (*cairnv1.CommitTransactionResponse, error) {
		return dbs.CommitTransaction(k, &cairnv1.CommitTransactionRequest{ProjectId: p, TransactionId: id})
	}
	create := func(coll, id string, d map[string]any) *cairnv1.Operation {
		return &cairnv1.Operation{DatabaseId: "main", CollectionId: coll, Action: &cairnv1.Operation_Create{Create: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, d)}}}
	}
	update := func(coll, id string, d map[string]any) *cairnv1.Operation {
		return &cairnv1.Operation{DatabaseId: "main", CollectionId: coll, Action: &cairnv1.Operation_Update{Update: &cairnv1.OperationUpdate{DocumentId: id, Data: data(t, d)}}}
	}
	del := func(coll, id string) *cairnv1.Operation {
		return &cairnv1.Operation{DatabaseId: "main", CollectionId: coll, Action: &cairnv1.Operation_Delete{Delete: id}}
	}
	related := func(coll, id, attr string) []string {
		t.Helper()
		got := relIDs(r.must(r.get(coll, id))[attr])
		slices.Sort(got)
		return got
	}
	gone := func(coll string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if _, err := r.get(coll, id); connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("%s/%s: want not found, got %v", coll, id, err)
			}
		}
	}

	// Two books of a1 (one also relating to a publisher, one-way) and an
	// unrelated update of a2, in one commit: a1 gains both ids.
	res, err := commit(stage(create("books", "b1", map[string]any{"title": "One", "author": "a1", "publisher": "p1"}),
		create("books", "b2", map[string]any{"title": "Two", "author": "a1"}),
		update("authors", "a2", map[string]any{"name": "Bo2"})))
	r.ok(err)
	if len(res.GetDocuments()) != 3 {
		t.Fatalf("commit answered %d documents", len(res.GetDocuments()))
	}
	if got := related("authors", "a1", "books"); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("a1.books after the commit: %v", got)
	}
	if b := r.must(r.get("books", "b1")); b["author"] != "a1" || b["publisher"] != "p1" {
		t.Fatalf("b1: %v", b)
	}

	// A new author, a new publisher and new books relating to both, in
	// one commit: the author's side holds the books, and the commit's
	// answer is what get returns.
	res, err = commit(stage(create("authors", "a3", map[string]any{"name": "Cy"}), create("publishers", "p2", map[string]any{"name": "New"}),
		create("books", "b3", map[string]any{"title": "Three", "author": "a3", "publisher": "p2"}),
		create("books", "b4", map[string]any{"title": "Four", "author": "a3"})))
	r.ok(err)
	if got := related("authors", "a3", "books"); !slices.Equal(got, []string{"b3", "b4"}) {
		t.Fatalf("a3.books: %v", got)
	}
	for _, d := range res.GetDocuments() {
		if d.GetId() == "a3" && !slices.Equal(relIDs(d.GetData().AsMap()["books"]), []string{"b3", "b4"}) {
			t.Fatalf("a3 in the commit's answer: %v", d.GetData().AsMap())
		}
	}
	if b := r.must(r.get("books", "b3")); b["author"] != "a3" || b["publisher"] != "p2" {
		t.Fatalf("b3: %v", b)
	}

	// A related document the transaction updates: the link is merged
	// into its update.
	r.ok(second(commit(stage(create("books", "b5", map[string]any{"title": "Five", "author": "a2"}),
		update("authors", "a2", map[string]any{"name": "Bo3"})))))
	if a2 := r.must(r.get("authors", "a2")); a2["name"] != "Bo3" || !slices.Equal(relIDs(a2["books"]), []string{"b5"}) {
		t.Fatalf("a2 after its update and b5's link: %v", a2)
	}

	// Refused, whole: relating to a document the transaction deletes, a
	// cascade reaching a document it writes, a link to one it increments.
	_, err = commit(stage(create("books", "b6", map[string]any{"title": "Six", "publisher": "p1"}), del("publishers", "p1")))
	wantError(t, err, connect.CodeInvalidArgument, `data.publisher: related document "p1" not found in collection "publishers"`)
	_, err = commit(stage(del("authors", "a1"), update("books", "b1", map[string]any{"title": "Kept"})))
	wantError(t, err, connect.CodeFailedPrecondition, `document "b1" of collection "books" is written by this transaction and deleted by a cascade`)
	_, err = commit(stage(create("books", "b6", map[string]any{"title": "Six", "author": "a2"}),
		&cairnv1.Operation{DatabaseId: "main", CollectionId: "authors", Action: &cairnv1.Operation_Increment{Increment: &cairnv1.OperationIncrement{DocumentId: "a2", Attribute: "count", Delta: 1}}}))
	wantError(t, err, connect.CodeFailedPrecondition, `document "a2" of collection "authors" is incremented by this transaction`)
	gone("books", "b6")
	r.must(r.get("publishers", "p1"))
	if b1 := r.must(r.get("books", "b1")); b1["title"] != "One" {
		t.Fatalf("b1 after refused commits: %v", b1)
	}
	if got := related("authors", "a2", "books"); !slices.Equal(got, []string{"b5"}) {
		t.Fatalf("a2.books after refused commits: %v", got)
	}

	// A related document read in the transaction: its link and the check
	// of the version read are one decision. Changed meanwhile → Aborted.
	readIn := func(id string) string {
		t.Helper()
		tx := stage()
		r.ok(second(dbs.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "authors", DocumentId: "a2", TransactionId: tx})))
		r.ok(second(dbs.StageOperations(k, &cairnv1.StageOperationsRequest{ProjectId: p, TransactionId: tx,
			Operations: []*cairnv1.Operation{create("books", id, map[string]any{"title": id, "author": "a2"})}})))
		return tx
	}
	tx := readIn("b7")
	r.ok(r.update("authors", "a2", map[string]any{"name": "Bo4"}))
	_, err = commit(tx)
	wantError(t, err, connect.CodeAborted, `document "a2" changed since the transaction read it`)
	gone("books", "b7")
	r.ok(second(commit(readIn("b7"))))
	if got := related("authors", "a2", "books"); !slices.Equal(got, []string{"b5", "b7"}) {
		t.Fatalf("a2.books: %v", got)
	}

	// Documents of two collections both changing a2, and of one
	// collection linking and unlinking it, in one commit.
	r.ok(second(commit(stage(create("books", "b8", map[string]any{"title": "Eight", "author": "a2"}),
		update("books", "b7", map[string]any{"author": nil}),
		create("essays", "e1", map[string]any{"title": "On", "author": "a2"})))))
	if got := related("authors", "a2", "books"); !slices.Equal(got, []string{"b5", "b8"}) {
		t.Fatalf("a2.books after b8 and b7: %v", got)
	}
	if got := related("authors", "a2", "essays"); !slices.Equal(got, []string{"e1"}) {
		t.Fatalf("a2.essays: %v", got)
	}

	// Two deletes reaching b1: a1's cascade deletes it, p1's delete would
	// unset its publisher; the cascade wins, in the commit's batch.
	r.ok(second(commit(stage(del("authors", "a1"), del("publishers", "p1")))))
	gone("books", "b1", "b2")
	gone("publishers", "p1")

	in.stop()
	n := openStopped(t, dir)
	defer n.close()
	checkRebuild(t, n, p, "relationships in transactions")
}

// BenchmarkGetDocumentRelated measures GetDocument of a book (API key,
// loopback, Connect binary) without a select, and with a select loading
// its author's name (one related document, depth 1): the cost of a
// relationship select against the plain read.
func BenchmarkGetDocumentRelated(b *testing.B) {
	in := startInstance(b, b.TempDir())
	ctx := context.Background()
	const p = "bench"
	k, _ := as(ctx, newProjectWithKey(b, in, p, docScopes...))
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []string{"authors", "books"} {
		if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: c, Name: c}); err != nil {
			b.Fatal(err)
		}
		if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: c, Attribute: str("name")}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "books",
		Attribute: rel("author", "authors", "manyToOne", "books", "setNull")}); err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		coll, id string
		data     map[string]any
	}{
		{"authors", "a1", map[string]any{"name": "Ann"}},
		{"books", "b1", map[string]any{"name": "One", "author": "a1"}},
	} {
		if _, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: d.coll,
			Document: &cairnv1.DocumentInput{DocumentId: d.id, Data: data(b, d.data)}}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		sel  []string
	}{{"plain", nil}, {"select-related", []string{"name", "author.name"}}} {
		b.Run(c.name, func(b *testing.B) {
			req := &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "books", DocumentId: "b1", Select: c.sel}
			for b.Loop() {
				res, err := dbs.GetDocument(k, req)
				if err != nil {
					b.Fatal(err)
				}
				if c.sel != nil && res.GetDocument().GetData().GetFields()["author"].GetStructValue() == nil {
					b.Fatal("author not loaded")
				}
			}
		})
	}
}
