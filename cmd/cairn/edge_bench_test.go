package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkEdge measures what the browser edge costs a read, as a browser
// sends it (Connect JSON over HTTP/1.1 keep-alive, 16 concurrent clients),
// in one run against one in-process server, each b.N a round of 400
// requests of every variant in turn (reported as requests/s and as a
// percentage of the first):
//
//	get-no-origin       GetDocument on the API host, no Origin (a server)
//	get-allowed-origin  the same with an Origin the project allows (CORS
//	                    headers added, the platform checked)
//	preflight           the OPTIONS a browser sends first (cached by it
//	                    for two hours)
//	get-site-api        GetDocument through a site's own API (/_cairn/ on
//	                    the site's host, same-origin)
func BenchmarkEdge(b *testing.B) {
	ctx := context.Background()
	srv := benchServer(b)
	cl := clients{client: benchConnect(srv.url)}
	const p = "edge"
	op := authed(ctx, testAdminKey)
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
	const app = "https://app.example.com"
	if _, err := cl.users().UpdateAuthSettings(op, &cairnv1.UpdateAuthSettingsRequest{ProjectId: p,
		Settings: &cairnv1.AuthSettings{AllowedOrigins: []string{app}}}); err != nil {
		b.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.url, "http://"))
	site := "http://web." + p + ".localhost:" + port
	hc := &http.Client{Transport: &http.Transport{DialContext: dialLocalhost, MaxIdleConnsPerHost: 64}}
	body := `{"projectId":"edge","databaseId":"main","collectionId":"notes","documentId":"d1"}`
	do := func(method, u, origin string) (*http.Response, error) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "cairn-project,content-type")
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res, nil
	}
	ok := func(r *http.Response) bool { return r.StatusCode == 200 }
	cors := func(r *http.Response) bool {
		return r.StatusCode/100 == 2 && r.Header.Get("Access-Control-Allow-Origin") == app
	}
	get := "/cairn.v1.DatabasesService/GetDocument"
	variants := []struct {
		name, method, url, origin string
		want                      func(*http.Response) bool
	}{
		{"get-no-origin", http.MethodPost, srv.url + get, "", ok},
		{"get-allowed-origin", http.MethodPost, srv.url + get, app, cors},
		{"preflight", http.MethodOptions, srv.url + get, app, cors},
		{"get-site-api", http.MethodPost, site + "/_cairn" + get, site, ok},
	}
	// The variants take turns in short rounds, so a noisy neighbour slows
	// them alike and their ratios hold.
	const clients, perRound = 16, 400
	elapsed := make([]time.Duration, len(variants))
	count := make([]int, len(variants))
	b.ResetTimer()
	for round := 0; round < max(1, b.N); round++ {
		for i, v := range variants {
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Value
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < perRound/clients; j++ {
						res, err := do(v.method, v.url, v.origin)
						if err != nil || !v.want(res) {
							failed.Store(fmt.Sprintf("%s: %v %v", v.name, err, res))
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
	for i, v := range variants {
		rate := float64(count[i]) / elapsed[i].Seconds()
		b.ReportMetric(rate, v.name+"/s")
		if i > 0 {
			b.ReportMetric(100*rate/base, v.name+"-%-of-no-origin")
		}
	}
}
