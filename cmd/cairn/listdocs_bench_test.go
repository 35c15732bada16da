package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkListDocumentsHTTP is issue 19's list over the whole request, as
// tools/pbcompare sends it: ListDocuments in Connect JSON over HTTP/1.1
// keep-alive from 64 clients (plain net/http and encoding/json), 25 documents {title, n, tag} with tag = one
// of 10 values (2,000 of 20,000 match), sorted by n descending, no total.
// "uncovered" has an index on tag only (a sort in memory), "covered" adds
// one on (tag, n desc). Each reports the process's CPU per call
// (cpu-ns/op: server and client, which the machine's other load moves less
// than wall time) and calls/s. "covered-writes-same" and
// "covered-writes-other" run the covered list while another goroutine
// writes about 100 documents a second to the same collection or to another
// collection of the same project (a write-heavy project; the writes' CPU
// is in cpu-ns/op too, writes/s says how many there were).
// CAIRN_LIST_DOCS sets the documents (default 20000).
func BenchmarkListDocumentsHTTP(b *testing.B) {
	docs := 20_000
	if v := os.Getenv("CAIRN_LIST_DOCS"); v != "" {
		var err error
		if docs, err = strconv.Atoi(v); err != nil || docs < 1000 {
			b.Fatalf("CAIRN_LIST_DOCS=%q: want a number of at least 1000", v)
		}
	}
	ctx := context.Background()
	srv := benchServer(b)
	cl := clients{client: benchConnect(srv.url)}
	const p, db, coll, tags = "bench", "main", "posts", 10
	secret := benchTitleCollection(b, cl, p, db, coll, 256)
	dbs := cl.databases()
	index := func(ix *cairnv1.Index) {
		if _, err := dbs.CreateIndex(authed(ctx, secret), &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Index: ix}); err != nil {
			b.Fatal(err)
		}
		waitIndexes(b, dbs, authed(ctx, secret), p, db, coll)
	}
	index(&cairnv1.Index{Key: "tag", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"tag"}})
	for i := 0; i < docs; i += 100 {
		req := &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll}
		for j := i; j < min(i+100, docs); j++ {
			// pbcompare's documents.
			data, err := structpb.NewStruct(map[string]any{"title": "document number " + strconv.Itoa(j), "n": j * 7919 % 1_000_003, "tag": "t" + strconv.Itoa(j%tags)})
			if err != nil {
				b.Fatal(err)
			}
			req.Documents = append(req.Documents, &cairnv1.DocumentInput{DocumentId: "d" + strconv.Itoa(j), Data: data})
		}
		if _, err := dbs.CreateDocuments(authed(ctx, secret), req); err != nil {
			b.Fatalf("preload: %v", err)
		}
	}
	// Plain JSON over HTTP/1.1, decoded with encoding/json as pbcompare
	// does: the client's share of the CPU stays small.
	hc := h1Client(b)
	list := func(i int) error {
		body := `{"projectId":"` + p + `","databaseId":"` + db + `","collectionId":"` + coll + `","filters":[{"op":"OPERATOR_EQUAL","attribute":"tag","values":["t` +
			strconv.Itoa(i%tags) + `"]}],"orders":[{"attribute":"n","desc":true}],"limit":25,"total":false}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/cairn.v1.DatabasesService/ListDocuments", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", res.StatusCode, raw)
		}
		var out struct {
			Documents []struct{ Data struct{ N float64 } }
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		ds := out.Documents
		if len(ds) != 25 {
			return fmt.Errorf("%d documents, want 25", len(ds))
		}
		for k := 1; k < len(ds); k++ {
			if ds[k-1].Data.N < ds[k].Data.N {
				return fmt.Errorf("documents not sorted by n descending")
			}
		}
		return nil
	}
	run := func(b *testing.B) {
		if err := list(0); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		parallelFor(b, benchConcurrency)
		cpu0 := processCPU(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if err := list(i); err != nil {
					b.Errorf("list: %v", err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.Run("uncovered", run)
	index(&cairnv1.Index{Key: "tag_n", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"tag", "n"}, Desc: []bool{false, true}})
	b.Run("covered", run)
	const other = "other"
	if _, err := dbs.CreateCollection(authed(ctx, secret), &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: other, Name: other}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(authed(ctx, secret), &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: other,
		Attribute: &cairnv1.Attribute{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 256}}); err != nil {
		b.Fatal(err)
	}
	writing := func(write func(i int) error) func(b *testing.B) {
		return func(b *testing.B) {
			stop, done := make(chan struct{}), make(chan int)
			go func() {
				t := time.NewTicker(10 * time.Millisecond)
				defer t.Stop()
				n := 0
				for {
					select {
					case <-stop:
						done <- n
						return
					case <-t.C:
					}
					if err := write(n); err != nil {
						b.Errorf("write: %v", err)
					}
					n++
				}
			}()
			run(b)
			close(stop)
			b.ReportMetric(float64(<-done)/b.Elapsed().Seconds(), "writes/s")
		}
	}
	b.Run("covered-writes-same", writing(func(i int) error {
		data, err := structpb.NewStruct(map[string]any{"title": "updated " + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		// Documents of every tag, most of them on no first page.
		_, err = dbs.UpdateDocument(authed(ctx, secret), &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: coll,
			DocumentId: "d" + strconv.Itoa(i*37%docs), Data: data})
		return err
	}))
	b.Run("covered-writes-other", writing(func(i int) error {
		data, err := structpb.NewStruct(map[string]any{"title": "other " + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		_, err = dbs.CreateDocument(authed(ctx, secret), &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: other,
			Document: &cairnv1.DocumentInput{DocumentId: "unique()", Data: data}})
		return err
	}))
}
