package sites

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// memBlobs is an in-memory Blobs: objects per project, counting loads.
type memBlobs struct {
	mu    sync.Mutex
	objs  map[string][]byte // project/sha → content
	loads map[string]int    // sha → loads
	gate  chan struct{}     // when set, each Load waits for it to close
	err   error             // when set, every Load fails with it
}

func newMemBlobs() *memBlobs {
	return &memBlobs{objs: map[string][]byte{}, loads: map[string]int{}}
}

func (b *memBlobs) put(project string, content []byte) string {
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	b.mu.Lock()
	b.objs[project+"/"+sha] = content
	b.mu.Unlock()
	return sha
}

func (b *memBlobs) Load(ctx context.Context, project, sha string) ([]byte, error) {
	b.mu.Lock()
	b.loads[sha]++
	gate, err := b.gate, b.err
	c, ok := b.objs[project+"/"+sha]
	b.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrBlobNotFound
	}
	return c, nil
}

func (b *memBlobs) loadsOf(sha string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.loads[sha]
}

func (b *memBlobs) totalLoads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, v := range b.loads {
		n += v
	}
	return n
}

// tfile is a test file: content and an optional manifest content type.
type tfile struct {
	body  string
	ctype string
}

var testCreated = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// deploy stores files in b under project and returns their deployment.
func deploy(b *memBlobs, project, id string, files map[string]tfile) *eventsv1.Deployment {
	d := &eventsv1.Deployment{Id: id, ProjectId: project, SiteId: "site1", CreatedAt: timestamppb.New(testCreated)}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := files[p]
		sha := b.put(project, []byte(f.body))
		d.Files = append(d.Files, &eventsv1.SiteFile{Path: p, Sha256: sha, Size: int64(len(f.body)), ContentType: f.ctype})
		d.TotalSize += int64(len(f.body))
	}
	return d
}

func shaOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// req is one request for serve.
type req struct {
	method string
	path   string // request URI path (and query)
	hdr    map[string]string
	base   string
}

// serve runs one request through Serve with a recorder; the site path is
// the URL's path, as the router would pass it.
func serve(t *testing.T, s *Server, set *eventsv1.SiteSettings, d *eventsv1.Deployment, q req) *httptest.ResponseRecorder {
	t.Helper()
	if q.method == "" {
		q.method = http.MethodGet
	}
	r := httptest.NewRequest(q.method, "http://example.test"+q.path, nil)
	for k, v := range q.hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Serve(w, r, set, d, q.base, r.URL.Path)
	return w
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(out)
}

func big(n int, seed string) string {
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.WriteString(seed)
	}
	return buf.String()[:n]
}
