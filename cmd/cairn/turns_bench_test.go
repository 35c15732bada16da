package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// turn is one variant of a benchmark run in turns; do sends one request.
type turn struct {
	name string
	do   func() error
}

// runInTurns runs every turn for perRound requests from clients goroutines,
// turn after turn, b.N rounds: a noisy neighbour slows them alike, so their
// ratios hold where absolute rates do not. It reports each turn's
// requests/s and, after the first, its percentage of the first's as
// <name>-%-of-<first>.
func runInTurns(b *testing.B, clients, perRound int, turns []turn) {
	elapsed := make([]time.Duration, len(turns))
	count := make([]int, len(turns))
	b.ResetTimer()
	for round := 0; round < max(1, b.N); round++ {
		for i, t := range turns {
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Value
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < perRound/clients; j++ {
						if err := t.do(); err != nil {
							failed.Store(fmt.Sprintf("%s: %v", t.name, err))
							return
						}
					}
				}()
			}
			wg.Wait()
			if f := failed.Load(); f != nil {
				b.Fatal(f)
			}
			elapsed[i] += time.Since(start)
			count[i] += perRound
		}
	}
	b.StopTimer()
	base := float64(count[0]) / elapsed[0].Seconds()
	for i, t := range turns {
		rate := float64(count[i]) / elapsed[i].Seconds()
		b.ReportMetric(rate, t.name+"/s")
		if i > 0 {
			b.ReportMetric(100*rate/base, t.name+"-%-of-"+turns[0].name)
		}
	}
}

// readableDocFixture makes project p with document d1 in main/notes,
// readable by anyone, through the server at url.
func readableDocFixture(b *testing.B, url, p string) {
	b.Helper()
	cl := clients{client: benchConnect(url)}
	op := authed(context.Background(), testAdminKey)
	if _, err := cl.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
		b.Fatal(err)
	}
	dbs := cl.databases()
	if _, err := dbs.CreateDatabase(op, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateCollection(op, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", Name: "notes",
		Permissions: []string{`read("any")`}}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(op, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes",
		Attribute: &cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64}}); err != nil {
		b.Fatal(err)
	}
	data, _ := structpb.NewStruct(map[string]any{"title": "hello"})
	if _, err := dbs.CreateDocument(op, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data}}); err != nil {
		b.Fatal(err)
	}
}
