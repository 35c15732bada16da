package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

func (c clients) storage() cairnv1connect.StorageServiceClient {
	return cairnv1connect.NewStorageServiceClient(c.client)
}

// httpCall is one plain HTTP request to a storage route.
type httpCall struct {
	method, path string
	project      string
	token        string // Authorization: Bearer (empty: none)
	query        url.Values
	header       http.Header
	body         io.Reader
}

// httpResult is a storage route's answer, read whole.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResult) String() string {
	return fmt.Sprintf("%d %s", r.status, truncateBody(r.body))
}

func truncateBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

func (in *instance) do(t testing.TB, c httpCall) httpResult {
	t.Helper()
	q := url.Values{}
	for k, v := range c.query {
		q[k] = v
	}
	if c.project != "" {
		q.Set("project", c.project)
	}
	u := in.routeURL(c.path)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(context.Background(), c.method, u, c.body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", c.method, c.path, err)
	}
	return httpResult{status: res.StatusCode, header: res.Header, body: body}
}

func filesPath(bucket string) string { return "/v1/storage/buckets/" + bucket + "/files" }

func filePath(bucket, file, what string) string {
	return "/v1/storage/buckets/" + bucket + "/files/" + file + "/" + what
}

// putChunk sends data as bytes [offset, offset+len) of a file of total
// bytes.
func (in *instance) putChunk(t testing.TB, token, project, bucket, fileID, name string, offset, total int64, data []byte) httpResult {
	t.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	if len(data) > 0 || total > 0 {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", offset, offset+int64(len(data))-1, total))
	}
	return in.do(t, httpCall{method: http.MethodPost, path: filesPath(bucket), project: project, token: token,
		query: url.Values{"fileId": {fileID}, "name": {name}}, header: h, body: bytes.NewReader(data)})
}

// uploadChunked uploads data in chunks of chunk bytes (one request when
// data is empty) and returns the created file.
func (in *instance) uploadChunked(t testing.TB, token, project, bucket, fileID, name string, data []byte, chunk int) *cairnv1.File {
	t.Helper()
	var res httpResult
	if len(data) == 0 {
		res = in.do(t, httpCall{method: http.MethodPost, path: filesPath(bucket), project: project, token: token,
			query: url.Values{"fileId": {fileID}, "name": {name}}, body: bytes.NewReader(nil)})
	}
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		res = in.putChunk(t, token, project, bucket, fileID, name, int64(off), int64(len(data)), data[off:end])
		want := http.StatusAccepted
		if end == len(data) {
			want = http.StatusCreated
		}
		if res.status != want {
			t.Fatalf("chunk at %d of %s: %s", off, name, res)
		}
		if got := res.header.Get("Cairn-Upload-Received"); got != strconv.Itoa(end) {
			t.Fatalf("chunk at %d of %s: received %q, want %d", off, name, got, end)
		}
	}
	if res.status != http.StatusCreated {
		t.Fatalf("upload %s: %s", name, res)
	}
	f := &cairnv1.File{}
	if err := protojson.Unmarshal(res.body, f); err != nil {
		t.Fatalf("upload %s: %v in %s", name, err, res.body)
	}
	return f
}

// fetch GETs a file route (download, view, preview) with extra headers
// and query (e.g. Range, token).
func (in *instance) fetch(t testing.TB, token, project, bucket, file, what string, query url.Values, header ...string) httpResult {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return in.do(t, httpCall{method: http.MethodGet, path: filePath(bucket, file, what), project: project, token: token, query: query, header: h})
}
