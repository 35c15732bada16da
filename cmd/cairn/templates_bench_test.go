package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/transfer/template"
)

// benchTemplate is a 50-collection template: one database, each collection
// with six attributes (string, integer, float, boolean, enum, datetime) and
// two indexes — 451 resources.
func benchTemplate() *template.File {
	lo, hi := 0.0, 1000.0
	db := template.Database{ID: "main", Name: "Main"}
	for i := range 50 {
		db.Collections = append(db.Collections, template.Collection{
			ID: fmt.Sprintf("c%02d", i), Name: fmt.Sprintf("Collection %d", i), Permissions: []string{`read("any")`},
			Attributes: []template.Attribute{
				{Key: "title", Type: "string", Size: 200, Required: true},
				{Key: "count", Type: "integer", Min: &lo, Max: &hi},
				{Key: "price", Type: "float"},
				{Key: "live", Type: "boolean", Default: false},
				{Key: "status", Type: "enum", Elements: []string{"draft", "live"}},
				{Key: "at", Type: "datetime"},
			},
			Indexes: []template.Index{
				{Key: "by_title", Type: "unique", Attributes: []string{"title"}},
				{Key: "by_status", Type: "key", Attributes: []string{"status", "at"}, Desc: []bool{false, true}},
			},
		})
	}
	return &template.File{Version: template.Version, Databases: []template.Database{db}}
}

// BenchmarkTemplate measures plan and apply of the 50-collection template
// on one in-process server. Each b.N is a round of, in turn:
//
//	direct        the same 451 creates as plain API calls in the same
//	              order, waiting for attributes before indexes and for
//	              indexes at the end as apply does (the baseline)
//	apply         Diff + Apply of the template to a new, empty project
//	plan-nochange Diff of the template against that project (no changes)
//	pull          Pull of that project (the read that every plan makes)
//
// Each is reported in ms; ns/op is the whole round.
func BenchmarkTemplate(b *testing.B) {
	in := startInstance(b, b.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	tpl := benchTemplate()
	var direct, apply, plan, pull time.Duration
	for i := range b.N {
		for _, p := range []string{fmt.Sprintf("direct%d", i), fmt.Sprintf("tpl%d", i)} {
			if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		benchDirect(op, b, in, fmt.Sprintf("direct%d", i), tpl)
		direct += time.Since(start)

		conn := template.NewConn(h2cClient(), in.url, testAdminKey, fmt.Sprintf("tpl%d", i))
		start = time.Now()
		p, err := template.Diff(ctx, conn, tpl, template.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Changes) != 451 {
			b.Fatalf("plan of the template holds %d changes, want 451", len(p.Changes))
		}
		if err := template.Apply(ctx, p, template.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		apply += time.Since(start)

		start = time.Now()
		p, err = template.Diff(ctx, conn, tpl, template.Options{})
		if err != nil {
			b.Fatal(err)
		}
		plan += time.Since(start)
		if !p.Empty() {
			b.Fatalf("plan after apply holds %d changes", len(p.Changes))
		}

		start = time.Now()
		if _, err := template.Pull(ctx, conn); err != nil {
			b.Fatal(err)
		}
		pull += time.Since(start)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(direct), "direct-ms")
	b.ReportMetric(ms(apply), "apply-ms")
	b.ReportMetric(ms(plan), "plan-nochange-ms")
	b.ReportMetric(ms(pull), "pull-ms")
}

// benchDirect creates the template's resources with the generated clients
// directly, in apply's order and with its waits.
func benchDirect(ctx context.Context, b *testing.B, in *instance, p string, tpl *template.File) {
	db := in.databases()
	d := tpl.Databases[0]
	if _, err := db.CreateDatabase(ctx, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: d.ID, Name: d.Name}); err != nil {
		b.Fatal(err)
	}
	for _, c := range d.Collections {
		if _, err := db.CreateCollection(ctx, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: d.ID, CollectionId: c.ID, Name: c.Name, Permissions: c.Permissions}); err != nil {
			b.Fatal(err)
		}
	}
	types := map[string]cairnv1.AttributeType{"string": cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, "integer": cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER,
		"float": cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT, "boolean": cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN,
		"enum": cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM, "datetime": cairnv1.AttributeType_ATTRIBUTE_TYPE_DATETIME}
	for _, c := range d.Collections {
		for _, a := range c.Attributes {
			attr := &cairnv1.Attribute{Key: a.Key, Type: types[a.Type], Required: a.Required, Size: a.Size, Elements: a.Elements}
			if a.Min != nil {
				lo, hi := int64(*a.Min), int64(*a.Max)
				attr.IntMin, attr.IntMax = &lo, &hi
			}
			if _, err := db.CreateAttribute(ctx, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: d.ID, CollectionId: c.ID, Attribute: attr}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, c := range d.Collections {
		benchWaitSchema(ctx, b, in, p, d.ID, c.ID)
	}
	for _, c := range d.Collections {
		for _, ix := range c.Indexes {
			t := cairnv1.IndexType_INDEX_TYPE_KEY
			if ix.Type == "unique" {
				t = cairnv1.IndexType_INDEX_TYPE_UNIQUE
			}
			if _, err := db.CreateIndex(ctx, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: d.ID, CollectionId: c.ID,
				Index: &cairnv1.Index{Key: ix.Key, Type: t, Attributes: ix.Attributes, Desc: ix.Desc}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, c := range d.Collections {
		benchWaitSchema(ctx, b, in, p, d.ID, c.ID)
	}
}

func benchWaitSchema(ctx context.Context, b *testing.B, in *instance, p, db, coll string) {
	for {
		res, err := in.databases().GetCollection(ctx, &cairnv1.GetCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll})
		if err != nil {
			b.Fatal(err)
		}
		ready := true
		for _, a := range res.GetCollection().GetAttributes() {
			ready = ready && a.GetStatus() == "available"
		}
		for _, ix := range res.GetCollection().GetIndexes() {
			ready = ready && ix.GetStatus() == "available"
		}
		if ready {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
