package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkObserve measures what the request log and tracing cost a read:
// GetDocument as Connect JSON over HTTP/1.1 keep-alive, 16 concurrent
// clients, against four in-process servers that differ only in those two
// settings, each b.N a round of 400 requests of every variant in turn
// (requests/s, and a percentage of the first):
//
//	quiet     --request-log=false (the line at debug, not logged), no tracing
//	log       the request line at info, JSON, to a discarding writer
//	trace     every request traced, spans exported over OTLP/HTTP to an
//	          in-process receiver that decodes and counts them
//	log+trace both
func BenchmarkObserve(b *testing.B) {
	rc := startOTLPReceiver(b)
	rc.discard = true
	variants := []struct {
		name       string
		requestLog bool
		trace      bool
		url        string
	}{{name: "quiet"}, {name: "log", requestLog: true}, {name: "trace", trace: true}, {name: "log+trace", requestLog: true, trace: true}}
	body := `{"projectId":"obs","databaseId":"main","collectionId":"notes","documentId":"d1"}`
	for i := range variants {
		v := &variants[i]
		logger, err := newLogger(io.Discard, "info", "json")
		if err != nil {
			b.Fatal(err)
		}
		cfg := config{DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", AdminKey: testAdminKey, Sync: defaultSync,
			LogLevel: "info", MaxRequestBytes: 1 << 20, SitesDomain: "localhost", RequestLog: v.requestLog}
		if v.trace {
			cfg.OTLPEndpoint = rc.url
		}
		srv, err := startBenchServer(context.Background(), &cfg, logger)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { srv.shutdown(logger) })
		v.url = srv.url + "/cairn.v1.DatabasesService/GetDocument"
		readableDocFixture(b, srv.url, "obs")
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(u string) error {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	turns := make([]turn, len(variants))
	for i, v := range variants {
		turns[i] = turn{v.name, func() error { return get(v.url) }}
	}
	runInTurns(b, 16, 400, turns)
}
