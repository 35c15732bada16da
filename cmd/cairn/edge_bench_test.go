package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkEdge measures what the browser edge costs a read, as a browser
// sends it (Connect JSON over HTTP/1.1 keep-alive, 16 concurrent clients),
// in one run against one in-process server:
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
	call := func(method, u, origin string, want func(*http.Response) bool) func(*testing.B) {
		return func(b *testing.B) {
			parallelFor(b, 16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
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
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if !want(res) {
						b.Errorf("%s %s from %q: %d %v", method, u, origin, res.StatusCode, res.Header)
						return
					}
				}
			})
			reportOps(b)
		}
	}
	ok := func(r *http.Response) bool { return r.StatusCode == 200 }
	cors := func(r *http.Response) bool {
		return r.StatusCode/100 == 2 && r.Header.Get("Access-Control-Allow-Origin") == app
	}
	get := "/cairn.v1.DatabasesService/GetDocument"
	b.Run("get-no-origin", call(http.MethodPost, srv.url+get, "", ok))
	b.Run("get-allowed-origin", call(http.MethodPost, srv.url+get, app, cors))
	b.Run("preflight", call(http.MethodOptions, srv.url+get, app, cors))
	b.Run("get-site-api", call(http.MethodPost, site+"/_cairn"+get, site, ok))
}
