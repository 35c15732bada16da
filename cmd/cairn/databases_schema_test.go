package main

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func (c clients) databases() cairnv1connect.DatabasesServiceClient {
	return cairnv1connect.NewDatabasesServiceClient(c.client)
}

// wantError checks the code and that the message names what it should
// (the request field of a validation error).
func wantError(t *testing.T, err error, code connect.Code, inMessage string) {
	t.Helper()
	wantCode(t, err, code)
	if !strings.Contains(err.Error(), inMessage) {
		t.Fatalf("error %q does not mention %q", err, inMessage)
	}
}

func i64(v int64) *int64        { return &v }
func f64(v float64) *float64    { return &v }
func boolp(v bool) *bool        { return &v }
func strp(v string) *string     { return &v }
func val(v any) *structpb.Value { x, _ := structpb.NewValue(v); return x }

func attrKeysOf(as []*cairnv1.Attribute) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.GetKey())
	}
	return out
}

func indexKeysOf(ixs []*cairnv1.Index) []string {
	var out []string
	for _, ix := range ixs {
		out = append(out, ix.GetKey())
	}
	return out
}

func TestDatabasesSchemaLifecycle(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	secret := newProjectWithKey(t, in, "shop", "databases.read", "databases.write", "collections.read", "collections.write")
	k, info := as(ctx, secret)
	dbs := in.databases()
	const p = "shop"

	// Databases.
	created, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"})
	if err != nil {
		t.Fatal(err)
	}
	if d := created.GetDatabase(); d.GetId() != "main" || d.GetProjectId() != p || d.GetName() != "Main" || !d.GetEnabled() || d.GetCreatedAt() == nil {
		t.Fatalf("created %v", d)
	}
	if info.ResponseHeader().Get("Cairn-Seq") == "" {
		t.Fatal("a write answers without Cairn-Seq")
	}
	gen, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "unique()", Name: "Other", Enabled: boolp(false)})
	if err != nil {
		t.Fatal(err)
	}
	genID := gen.GetDatabase().GetId()
	if len(genID) != 26 || gen.GetDatabase().GetEnabled() {
		t.Fatalf("generated %v", gen.GetDatabase())
	}
	_, err = dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Again"})
	wantCode(t, err, connect.CodeAlreadyExists)
	got, err := dbs.GetDatabase(k, &cairnv1.GetDatabaseRequest{ProjectId: p, DatabaseId: "main"})
	if err != nil || got.GetDatabase().GetName() != "Main" {
		t.Fatalf("get %v %v", got, err)
	}
	_, err = dbs.GetDatabase(k, &cairnv1.GetDatabaseRequest{ProjectId: p, DatabaseId: "nope"})
	wantError(t, err, connect.CodeNotFound, `database "nope" not found`)
	list, err := dbs.ListDatabases(k, &cairnv1.ListDatabasesRequest{ProjectId: p})
	if err != nil || len(list.GetDatabases()) != 2 {
		t.Fatalf("list %v %v", list, err)
	}
	page, err := dbs.ListDatabases(k, &cairnv1.ListDatabasesRequest{ProjectId: p, Limit: 1, CursorAfter: list.GetDatabases()[0].GetId()})
	if err != nil || len(page.GetDatabases()) != 1 || page.GetDatabases()[0].GetId() != list.GetDatabases()[1].GetId() {
		t.Fatalf("second page %v %v", page, err)
	}
	upd, err := dbs.UpdateDatabase(k, &cairnv1.UpdateDatabaseRequest{ProjectId: p, DatabaseId: genID, Name: strp("Renamed"), Enabled: boolp(true)})
	if err != nil || upd.GetDatabase().GetName() != "Renamed" || !upd.GetDatabase().GetEnabled() {
		t.Fatalf("update %v %v", upd, err)
	}
	_, err = dbs.UpdateDatabase(k, &cairnv1.UpdateDatabaseRequest{ProjectId: p, DatabaseId: "nope", Name: strp("x")})
	wantError(t, err, connect.CodeNotFound, `database "nope" not found`)
	if _, err := dbs.DeleteDatabase(k, &cairnv1.DeleteDatabaseRequest{ProjectId: p, DatabaseId: genID}); err != nil {
		t.Fatal(err)
	}
	_, err = dbs.GetDatabase(k, &cairnv1.GetDatabaseRequest{ProjectId: p, DatabaseId: genID})
	wantCode(t, err, connect.CodeNotFound)
	_, err = dbs.DeleteDatabase(k, &cairnv1.DeleteDatabaseRequest{ProjectId: p, DatabaseId: genID})
	wantCode(t, err, connect.CodeNotFound)

	// Collections.
	_, err = dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "nope", CollectionId: "posts", Name: "Posts"})
	wantError(t, err, connect.CodeNotFound, `database "nope" not found`)
	_, err = dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Name: "Posts",
		Permissions: []string{`fly("any")`}})
	wantError(t, err, connect.CodeInvalidArgument, "permissions")
	cc, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Name: "Posts",
		Permissions: []string{`read("any")`, `create("users")`}, DocumentSecurity: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := cc.GetCollection(); c.GetId() != "posts" || c.GetDatabaseId() != "main" || c.GetProjectId() != p || !c.GetEnabled() ||
		!c.GetDocumentSecurity() || !slices.Equal(c.GetPermissions(), []string{`read("any")`, `create("users")`}) || len(c.GetAttributes()) != 0 {
		t.Fatalf("created collection %v", c)
	}
	_, err = dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Name: "Posts"})
	wantCode(t, err, connect.CodeAlreadyExists)
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "drafts", Name: "Drafts", Enabled: boolp(false)}); err != nil {
		t.Fatal(err)
	}
	cl, err := dbs.ListCollections(k, &cairnv1.ListCollectionsRequest{ProjectId: p, DatabaseId: "main"})
	if err != nil || len(cl.GetCollections()) != 2 || cl.GetCollections()[0].GetId() != "drafts" || cl.GetCollections()[1].GetId() != "posts" {
		t.Fatalf("list collections %v %v", cl, err)
	}
	_, err = dbs.ListCollections(k, &cairnv1.ListCollectionsRequest{ProjectId: p, DatabaseId: "nope"})
	wantCode(t, err, connect.CodeNotFound)
	uc, err := dbs.UpdateCollection(k, &cairnv1.UpdateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "drafts", Name: strp("Draft posts"),
		Permissions: &cairnv1.Permissions{Values: []string{`read("team:editors")`}}, Enabled: boolp(true)})
	if err != nil || uc.GetCollection().GetName() != "Draft posts" || !uc.GetCollection().GetEnabled() ||
		!slices.Equal(uc.GetCollection().GetPermissions(), []string{`read("team:editors")`}) {
		t.Fatalf("update collection %v %v", uc, err)
	}
	// Permissions set to an empty list mean none; unset means keep.
	uc, err = dbs.UpdateCollection(k, &cairnv1.UpdateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "drafts", Permissions: &cairnv1.Permissions{}})
	if err != nil || len(uc.GetCollection().GetPermissions()) != 0 || uc.GetCollection().GetName() != "Draft posts" {
		t.Fatalf("clear permissions %v %v", uc, err)
	}
	_, err = dbs.UpdateCollection(k, &cairnv1.UpdateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "nope", Name: strp("x")})
	wantError(t, err, connect.CodeNotFound, `collection "nope" not found`)

	// Attributes of every type, with bounds, defaults, enums and arrays.
	attr := func(a *cairnv1.Attribute) (*cairnv1.Attribute, error) {
		res, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Attribute: a})
		return res.GetAttribute(), err
	}
	good := []*cairnv1.Attribute{
		{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 128, Required: true},
		{Key: "count", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, IntMin: i64(0), IntMax: i64(100), Default: val(5)},
		{Key: "rank", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, IntMin: i64(-3)},
		{Key: "score", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT, FloatMin: f64(0), FloatMax: f64(1), Default: val(0.5)},
		{Key: "ratio", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT},
		{Key: "flag", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN, Default: val(true)},
		{Key: "at", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_DATETIME, Default: val("2026-01-02T03:04:05Z")},
		{Key: "email", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_EMAIL},
		{Key: "site", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_URL},
		{Key: "addr", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_IP},
		{Key: "state", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM, Elements: []string{"draft", "published"}, Default: val("draft")},
		{Key: "tags", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 20, Array: true, Default: val([]any{"a", "b"})},
	}
	for _, a := range good {
		out, err := attr(a)
		if err != nil {
			t.Fatalf("attribute %s: %v", a.GetKey(), err)
		}
		if out.GetKey() != a.GetKey() || out.GetType() != a.GetType() || out.GetStatus() != "available" || out.GetArray() != a.GetArray() {
			t.Fatalf("attribute %s: got %v", a.GetKey(), out)
		}
	}
	byKey := map[string]*cairnv1.Attribute{}
	la, err := dbs.ListAttributes(k, &cairnv1.ListAttributesRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range la.GetAttributes() {
		byKey[a.GetKey()] = a
	}
	if keys := attrKeysOf(la.GetAttributes()); !slices.Equal(keys, attrKeysOf(good)) {
		t.Fatalf("attributes %v", keys)
	}
	if a := byKey["title"]; a.GetSize() != 128 || !a.GetRequired() || a.GetDefault() != nil {
		t.Fatalf("title %v", a)
	}
	if a := byKey["count"]; a.GetIntMin() != 0 || a.GetIntMax() != 100 || a.GetDefault().GetNumberValue() != 5 || a.FloatMin != nil || a.GetSize() != 0 {
		t.Fatalf("count %v", a)
	}
	if a := byKey["rank"]; a.GetIntMin() != -3 || a.GetIntMax() != 1<<53-1 {
		t.Fatalf("rank (one bound given) %v", a)
	}
	if a := byKey["score"]; a.GetFloatMin() != 0 || a.GetFloatMax() != 1 || a.GetDefault().GetNumberValue() != 0.5 || a.IntMin != nil {
		t.Fatalf("score %v", a)
	}
	if a := byKey["ratio"]; a.GetFloatMin() != -math.MaxFloat64 || a.GetFloatMax() != math.MaxFloat64 {
		t.Fatalf("ratio %v", a)
	}
	if a := byKey["flag"]; !a.GetDefault().GetBoolValue() {
		t.Fatalf("flag %v", a)
	}
	if a := byKey["at"]; a.GetDefault().GetStringValue() != "2026-01-02T03:04:05.000Z" {
		t.Fatalf("at %v", a)
	}
	if a := byKey["state"]; !slices.Equal(a.GetElements(), []string{"draft", "published"}) || a.GetDefault().GetStringValue() != "draft" {
		t.Fatalf("state %v", a)
	}
	if a := byKey["tags"]; len(a.GetDefault().GetListValue().GetValues()) != 2 || a.GetSize() != 20 {
		t.Fatalf("tags %v", a)
	}
	ga, err := dbs.GetAttribute(k, &cairnv1.GetAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "state"})
	if err != nil || ga.GetAttribute().GetType() != cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM {
		t.Fatalf("get attribute %v %v", ga, err)
	}
	_, err = dbs.GetAttribute(k, &cairnv1.GetAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "nope"})
	wantError(t, err, connect.CodeNotFound, `attribute "nope" not found`)

	// Bad attributes are refused naming the request field.
	for _, tc := range []struct {
		name  string
		a     *cairnv1.Attribute
		code  connect.Code
		field string
	}{
		{"size 0", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING}, connect.CodeInvalidArgument, "attribute.size"},
		{"int min>max", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, IntMin: i64(5), IntMax: i64(1)}, connect.CodeInvalidArgument, "attribute.int_min"},
		{"float min>max", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT, FloatMin: f64(5), FloatMax: f64(1)}, connect.CodeInvalidArgument, "attribute.float_min"},
		{"int beyond 2^53", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, IntMax: i64(math.MaxInt64)}, connect.CodeInvalidArgument, "attribute.int_max"},
		{"default on required", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN, Required: true, Default: val(true)}, connect.CodeInvalidArgument, "attribute.default"},
		{"unknown enum default", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM, Elements: []string{"a"}, Default: val("b")}, connect.CodeInvalidArgument, "attribute.default"},
		{"default out of bounds", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, IntMax: i64(3), Default: val(4)}, connect.CodeInvalidArgument, "attribute.default"},
		{"default of wrong type", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN, Default: val("yes")}, connect.CodeInvalidArgument, "attribute.default"},
		{"enum without elements", &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM}, connect.CodeInvalidArgument, "attribute.elements"},
		{"no type", &cairnv1.Attribute{Key: "s"}, connect.CodeInvalidArgument, "attribute.type"},
		{"bad key", &cairnv1.Attribute{Key: "$id", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN}, connect.CodeInvalidArgument, "attribute.key"},
		{"duplicate key", &cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 3}, connect.CodeAlreadyExists, `"title" already exists`},
	} {
		t.Run("attribute "+tc.name, func(t *testing.T) {
			_, err := attr(tc.a)
			wantError(t, err, tc.code, tc.field)
		})
	}
	_, err = dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "nope",
		Attribute: &cairnv1.Attribute{Key: "s", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN}})
	wantError(t, err, connect.CodeNotFound, `collection "nope" not found`)

	// Indexes.
	index := func(ix *cairnv1.Index) (*cairnv1.Index, error) {
		res, err := dbs.CreateIndex(k, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Index: ix})
		return res.GetIndex(), err
	}
	for _, ix := range []*cairnv1.Index{
		{Key: "by_title", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"title"}},
		{Key: "by_count_title", Type: cairnv1.IndexType_INDEX_TYPE_UNIQUE, Attributes: []string{"count", "title"}, Desc: []bool{true, false}},
		{Key: "by_created", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"$createdAt"}},
		{Key: "text", Type: cairnv1.IndexType_INDEX_TYPE_FULLTEXT, Attributes: []string{"title"}},
	} {
		out, err := index(ix)
		if err != nil {
			t.Fatalf("index %s: %v", ix.GetKey(), err)
		}
		if out.GetKey() != ix.GetKey() || out.GetType() != ix.GetType() || !slices.Equal(out.GetAttributes(), ix.GetAttributes()) || len(out.GetDesc()) != len(ix.GetAttributes()) {
			t.Fatalf("index %s: got %v", ix.GetKey(), out)
		}
		if out.GetStatus() != "available" && out.GetStatus() != "processing" {
			t.Fatalf("index %s: status %q", ix.GetKey(), out.GetStatus())
		}
	}
	// The projection builds them (an empty collection: at once).
	for deadline := time.Now().Add(10 * time.Second); ; {
		li, err := dbs.ListIndexes(k, &cairnv1.ListIndexesRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts"})
		if err != nil {
			t.Fatal(err)
		}
		if keys := indexKeysOf(li.GetIndexes()); !slices.Equal(keys, []string{"by_title", "by_count_title", "by_created", "text"}) {
			t.Fatalf("indexes %v", keys)
		}
		if !slices.ContainsFunc(li.GetIndexes(), func(ix *cairnv1.Index) bool { return ix.GetStatus() != "available" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("indexes not available: %v", li.GetIndexes())
		}
		time.Sleep(20 * time.Millisecond)
	}
	gi, err := dbs.GetIndex(k, &cairnv1.GetIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "by_count_title"})
	if err != nil || gi.GetIndex().GetType() != cairnv1.IndexType_INDEX_TYPE_UNIQUE || !slices.Equal(gi.GetIndex().GetDesc(), []bool{true, false}) {
		t.Fatalf("get index %v %v", gi, err)
	}
	for _, tc := range []struct {
		name  string
		ix    *cairnv1.Index
		code  connect.Code
		field string
	}{
		{"missing attribute", &cairnv1.Index{Key: "x", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"nope"}}, connect.CodeInvalidArgument, "index.attributes"},
		{"array attribute", &cairnv1.Index{Key: "x", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"tags"}}, connect.CodeInvalidArgument, "index.attributes"},
		{"fulltext on integer", &cairnv1.Index{Key: "x", Type: cairnv1.IndexType_INDEX_TYPE_FULLTEXT, Attributes: []string{"count"}}, connect.CodeInvalidArgument, "index.attributes"},
		{"orders mismatch", &cairnv1.Index{Key: "x", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"count"}, Desc: []bool{true, true}}, connect.CodeInvalidArgument, "index.desc"},
		{"no type", &cairnv1.Index{Key: "x", Attributes: []string{"count"}}, connect.CodeInvalidArgument, "index.type"},
		{"duplicate key", &cairnv1.Index{Key: "by_title", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"count"}}, connect.CodeAlreadyExists, `"by_title" already exists`},
	} {
		t.Run("index "+tc.name, func(t *testing.T) {
			_, err := index(tc.ix)
			wantError(t, err, tc.code, tc.field)
		})
	}
	if _, err := dbs.DeleteIndex(k, &cairnv1.DeleteIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "by_created"}); err != nil {
		t.Fatal(err)
	}
	_, err = dbs.GetIndex(k, &cairnv1.GetIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "by_created"})
	wantError(t, err, connect.CodeNotFound, `index "by_created" not found`)
	_, err = dbs.DeleteIndex(k, &cairnv1.DeleteIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "by_created"})
	wantCode(t, err, connect.CodeNotFound)

	// Deleting an attribute deletes the indexes over it.
	if _, err := dbs.DeleteAttribute(k, &cairnv1.DeleteAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "title"}); err != nil {
		t.Fatal(err)
	}
	gc, err := dbs.GetCollection(k, &cairnv1.GetCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(attrKeysOf(gc.GetCollection().GetAttributes()), "title") || len(gc.GetCollection().GetIndexes()) != 0 {
		t.Fatalf("after deleting title: attributes %v, indexes %v", attrKeysOf(gc.GetCollection().GetAttributes()), indexKeysOf(gc.GetCollection().GetIndexes()))
	}
	_, err = dbs.DeleteAttribute(k, &cairnv1.DeleteAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "title"})
	wantError(t, err, connect.CodeNotFound, `attribute "title" not found`)
	// The key can be used again.
	if _, err := attr(&cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER}); err != nil {
		t.Fatal(err)
	}
	if _, err := index(&cairnv1.Index{Key: "by_title", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"title"}}); err != nil {
		t.Fatal(err)
	}

	// Deleting a collection.
	if _, err := dbs.DeleteCollection(k, &cairnv1.DeleteCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "drafts"}); err != nil {
		t.Fatal(err)
	}
	_, err = dbs.GetCollection(k, &cairnv1.GetCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "drafts"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = dbs.DeleteCollection(k, &cairnv1.DeleteCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "drafts"})
	wantCode(t, err, connect.CodeNotFound)
	cl, err = dbs.ListCollections(k, &cairnv1.ListCollectionsRequest{ProjectId: p, DatabaseId: "main"})
	if err != nil || len(cl.GetCollections()) != 1 || cl.GetCollections()[0].GetId() != "posts" {
		t.Fatalf("collections after delete %v %v", cl, err)
	}

	// Deleting the database takes its collections; one re-created with the
	// same id starts empty.
	if _, err := dbs.DeleteDatabase(k, &cairnv1.DeleteDatabaseRequest{ProjectId: p, DatabaseId: "main"}); err != nil {
		t.Fatal(err)
	}
	_, err = dbs.GetCollection(k, &cairnv1.GetCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = dbs.ListAttributes(k, &cairnv1.ListAttributesRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts"})
	wantCode(t, err, connect.CodeNotFound)
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main again"}); err != nil {
		t.Fatal(err)
	}
	cl, err = dbs.ListCollections(k, &cairnv1.ListCollectionsRequest{ProjectId: p, DatabaseId: "main"})
	if err != nil || len(cl.GetCollections()) != 0 {
		t.Fatalf("collections of the re-created database %v %v", cl, err)
	}
	for _, call := range []func() error{
		func() error {
			_, err := dbs.GetCollection(k, &cairnv1.GetCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts"})
			return err
		},
		func() error {
			_, err := dbs.UpdateCollection(k, &cairnv1.UpdateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Name: strp("x")})
			return err
		},
		func() error {
			_, err := dbs.GetIndex(k, &cairnv1.GetIndexRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Key: "by_title"})
			return err
		},
	} {
		wantCode(t, call(), connect.CodeNotFound)
	}
	// The old collection's id is free in the new database, with none of
	// the old schema.
	cc, err = dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts", Name: "Posts 2"})
	if err != nil || len(cc.GetCollection().GetAttributes()) != 0 || len(cc.GetCollection().GetIndexes()) != 0 {
		t.Fatalf("re-created collection %v %v", cc, err)
	}
	if _, err := attr(&cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 10}); err != nil {
		t.Fatal(err)
	}

	// Scopes: a read-only key reads, and cannot write.
	ro := newProjectWithKey(t, in, "shop2", "databases.read", "collections.read")
	rk, _ := as(ctx, ro)
	_, err = dbs.CreateDatabase(rk, &cairnv1.CreateDatabaseRequest{ProjectId: "shop2", DatabaseId: "d", Name: "d"})
	wantCode(t, err, connect.CodePermissionDenied)
	if _, err := dbs.ListDatabases(rk, &cairnv1.ListDatabasesRequest{ProjectId: "shop2"}); err != nil {
		t.Fatal(err)
	}

	// The read models equal a fresh rebuild from the log.
	in.stop()
	n := openStopped(t, dir)
	defer n.close()
	checkRebuild(t, n, p, "databases schema")
}
