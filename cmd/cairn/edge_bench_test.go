package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

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
	const p = "edge"
	readableDocFixture(b, srv.url, p)
	cl := clients{client: benchConnect(srv.url)}
	op := authed(ctx, testAdminKey)
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
	turns := make([]turn, len(variants))
	for i, v := range variants {
		turns[i] = turn{v.name, func() error {
			res, err := do(v.method, v.url, v.origin)
			if err == nil && !v.want(res) {
				err = fmt.Errorf("%d %v", res.StatusCode, res.Header)
			}
			return err
		}}
	}
	runInTurns(b, 16, 400, turns)
}
