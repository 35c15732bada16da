package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/cairn-dev/cairn/api"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
)

// fileBytes is n deterministic bytes: half random (incompressible), half
// a repeated pattern, so compression has something to do.
func fileBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]byte, n)
	for i := range out {
		if (i/4096)%2 == 0 {
			out[i] = byte(r.Uint32())
		} else {
			out[i] = "cairn storage "[i%14]
		}
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// storageFixture is a project with an all-scopes key and three buckets:
// plain, gzip + encrypted, zstd.
func storageFixture(t *testing.T, in *instance, project string) string {
	t.Helper()
	key := newProjectWithKey(t, in, project, allScopes()...)
	ctx, _ := as(context.Background(), key)
	for _, b := range []*cairnv1.CreateBucketRequest{
		{ProjectId: project, BucketId: "plain", Name: "plain"},
		{ProjectId: project, BucketId: "sealed", Name: "sealed", Compression: cairnv1.Compression_COMPRESSION_GZIP, Encryption: true},
		{ProjectId: project, BucketId: "zstd", Name: "zstd", Compression: cairnv1.Compression_COMPRESSION_ZSTD},
	} {
		if _, err := in.storage().CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	return key
}

// TestStorageRoundTrips uploads files of sizes around the chunk and part
// boundaries in every bucket kind, downloads them whole and by ranges,
// and checks that a rebuild of the read models equals them.
func TestStorageRoundTrips(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	key := storageFixture(t, in, "st")
	const chunk = 1 << 20 // the server's part size: chunk edges are part edges
	sizes := []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 1}
	files := map[string][]byte{}
	for _, bucket := range []string{"plain", "sealed", "zstd"} {
		for i, n := range sizes {
			id := fmt.Sprintf("%s-%d", bucket, i)
			data := fileBytes(n, uint64(i))
			// Odd chunk sizes too: parts then end inside chunks.
			c := chunk
			if i%2 == 1 {
				c = 700_000
			}
			f := in.uploadChunked(t, key, "st", bucket, id, id+".bin", data, c)
			if f.GetSha256() != sha(data) || f.GetSize() != int64(n) || f.GetMimeType() == "" {
				t.Fatalf("%s: file %v", id, f)
			}
			if got, want := f.GetEncrypted(), bucket == "sealed"; got != want {
				t.Errorf("%s: encrypted %v", id, got)
			}
			files[id] = data
			res := in.fetch(t, key, "st", bucket, id, "download", nil)
			if res.status != http.StatusOK || !bytes.Equal(res.body, data) {
				t.Fatalf("%s: download %d, %d bytes (want %d)", id, res.status, len(res.body), n)
			}
			if res.header.Get("ETag") != `"`+sha(data)+`"` {
				t.Errorf("%s: ETag %q", id, res.header.Get("ETag"))
			}
		}
	}
	// Compression shrank the compressible half; encryption and compression
	// are both visible in the metadata.
	ctx, _ := as(context.Background(), key)
	z, err := in.storage().GetFile(ctx, &cairnv1.GetFileRequest{ProjectId: "st", BucketId: "zstd", FileId: "zstd-5"})
	if err != nil {
		t.Fatal(err)
	}
	if z.GetFile().GetStoredSize() >= z.GetFile().GetSize()*3/4 {
		t.Errorf("zstd stored %d of %d bytes", z.GetFile().GetStoredSize(), z.GetFile().GetSize())
	}

	// Ranges: first byte, a middle spanning a part edge, a suffix, past the end.
	data := files["sealed-5"]
	n := len(data)
	for _, c := range []struct {
		rng        string
		start, end int // [start, end)
		status     int
	}{
		{"bytes=0-0", 0, 1, http.StatusPartialContent},
		{fmt.Sprintf("bytes=%d-%d", chunk-10, chunk+10), chunk - 10, chunk + 11, http.StatusPartialContent},
		{"bytes=-100", n - 100, n, http.StatusPartialContent},
		{fmt.Sprintf("bytes=%d-", n-1), n - 1, n, http.StatusPartialContent},
		{fmt.Sprintf("bytes=%d-", n), 0, 0, http.StatusRequestedRangeNotSatisfiable},
		{"bytes=0-1,5-6", 0, n, http.StatusOK}, // multi-range: served whole
	} {
		res := in.fetch(t, key, "st", "sealed", "sealed-5", "download", nil, "Range", c.rng)
		if res.status != c.status {
			t.Errorf("%s: status %s", c.rng, res)
			continue
		}
		if c.status == http.StatusRequestedRangeNotSatisfiable {
			if res.header.Get("Content-Range") != fmt.Sprintf("bytes */%d", n) {
				t.Errorf("%s: Content-Range %q", c.rng, res.header.Get("Content-Range"))
			}
			continue
		}
		if !bytes.Equal(res.body, data[c.start:c.end]) {
			t.Errorf("%s: %d bytes, not bytes %d-%d", c.rng, len(res.body), c.start, c.end)
		}
	}
	// Conditional requests.
	etag := `"` + sha(data) + `"`
	if res := in.fetch(t, key, "st", "sealed", "sealed-5", "download", nil, "If-None-Match", etag); res.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %s", res)
	}
	if res := in.fetch(t, key, "st", "sealed", "sealed-5", "download", nil, "Range", "bytes=0-9", "If-Range", `"stale"`); res.status != http.StatusOK || len(res.body) != n {
		t.Errorf("stale If-Range: %d, %d bytes", res.status, len(res.body))
	}
	in.stop()

	// The object store holds parts, never the plaintext of an encrypted file.
	nd := openStopped(t, dir)
	defer nd.close()
	checkRebuild(t, nd, "st", "storage")
	obs, err := nd.store.ObjectStore(context.Background(), "st")
	if err != nil {
		t.Fatal(err)
	}
	infos, err := obs.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	needle := files["sealed-5"][4096 : 4096+64] // the repeated pattern
	sealedParts := 0
	for _, info := range infos {
		raw, err := obs.GetBytes(context.Background(), info.Name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, needle) && strings.Contains(info.Name, "files/") {
			if f := partOwner(t, nd, info.Name); strings.HasPrefix(f, "sealed") {
				t.Errorf("object %s of an encrypted file holds plaintext", info.Name)
			}
		}
		sealedParts++
	}
	if sealedParts == 0 {
		t.Error("no objects stored")
	}
}

// partOwner names the bucket of an object (its name holds the bucket uid).
func partOwner(t *testing.T, nd *node, object string) string {
	t.Helper()
	for _, b := range []string{"plain", "sealed", "zstd"} {
		bk, err := nd.reads.Bucket("st", b)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(object, "files/"+bk.GetUid()+"-") {
			return b
		}
	}
	return ""
}

// TestStorageResume: a chunk at the wrong offset is refused and says where
// to resume; an interrupted chunk changes nothing; the upload continues on
// another node that shares the NATS server.
func TestStorageResume(t *testing.T) {
	url := startSharedNATS(t)
	// Nodes of one instance share its master key (it seals file keys).
	a := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	b := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	key := storageFixture(t, a, "rs")
	const chunk = 256 << 10
	data := fileBytes(4*chunk+17, 9)
	put := func(in *instance, off, end int) httpResult {
		return in.putChunk(t, key, "rs", "sealed", "big", "big.bin", int64(off), int64(len(data)), data[off:end])
	}
	if res := put(a, 0, chunk); res.status != http.StatusAccepted {
		t.Fatalf("first chunk: %s", res)
	}
	// Chunk 3 before chunk 2: refused, naming where to resume.
	res := put(b, 2*chunk, 3*chunk)
	if res.status != http.StatusPreconditionFailed || !strings.Contains(string(res.body), fmt.Sprintf("resume from byte %d", chunk)) {
		t.Fatalf("out-of-order chunk: %s", res)
	}
	// An interrupted chunk: the body ends before Content-Range's length.
	h := http.Header{}
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", chunk, 2*chunk-1, len(data)))
	res = b.do(t, httpCall{method: http.MethodPost, path: filesPath("sealed"), project: "rs", token: key,
		query: map[string][]string{"fileId": {"big"}, "name": {"big.bin"}}, header: h, body: bytes.NewReader(data[chunk : chunk+1000])})
	if res.status != http.StatusBadRequest {
		t.Fatalf("short chunk: %s", res)
	}
	ctx, _ := as(context.Background(), key)
	up, err := b.storage().GetUpload(ctx, &cairnv1.GetUploadRequest{ProjectId: "rs", BucketId: "sealed", FileId: "big"})
	if err != nil || up.GetReceived() != chunk || up.GetSize() != int64(len(data)) {
		t.Fatalf("upload state: %v %v", up, err)
	}
	// The rest alternates between the nodes.
	nodes := []*instance{b, a}
	for off, i := chunk, 0; off < len(data); off, i = off+chunk, i+1 {
		end := min(off+chunk, len(data))
		want := http.StatusAccepted
		if end == len(data) {
			want = http.StatusCreated
		}
		if res := put(nodes[i%2], off, end); res.status != want {
			t.Fatalf("chunk at %d: %s", off, res)
		}
	}
	for _, in := range []*instance{a, b} {
		res := in.fetch(t, key, "rs", "sealed", "big", "download", nil, "Cairn-Min-Seq", "0")
		if res.status != http.StatusOK || sha(res.body) != sha(data) {
			t.Fatalf("download from %s: %d", in.url, res.status)
		}
	}
}

// startSharedNATS runs a JetStream server for several Cairn nodes.
func startSharedNATS(t *testing.T) string {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, MaxPayload: streams.RequiredMaxPayload, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// TestStorageLimitsAndSafety: extension and size limits, quotas, served
// headers for active content, and the preview cache.
func TestStorageLimitsAndSafety(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, "--storage-sweep-every", "100ms", "--upload-expiry", "1s")
	key := newProjectWithKey(t, in, "lim", allScopes()...)
	ctx, _ := as(context.Background(), key)
	st := in.storage()
	if _, err := st.CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: "lim", BucketId: "img", Name: "img",
		MaximumFileSize: 100_000, AllowedFileExtensions: []string{"png", "html", "svg"}}); err != nil {
		t.Fatal(err)
	}
	if res := in.putChunk(t, key, "lim", "img", "x", "x.exe", 0, 10, make([]byte, 10)); res.status != http.StatusBadRequest || !strings.Contains(string(res.body), `extension \"exe\"`) {
		t.Errorf("extension: %s", res)
	}
	if res := in.putChunk(t, key, "lim", "img", "x", "x.png", 0, 200_000, make([]byte, 10)); res.status != http.StatusBadRequest || !strings.Contains(string(res.body), "larger than bucket") {
		t.Errorf("size: %s", res)
	}
	// A streamed single request over the limit is cut off and leaves nothing.
	res := in.do(t, httpCall{method: http.MethodPost, path: filesPath("img"), project: "lim", token: key,
		query: url.Values{"fileId": {"y"}, "name": {"y.png"}}, body: bytes.NewReader(make([]byte, 100_001))})
	if res.status != http.StatusBadRequest {
		t.Errorf("streamed over the limit: %s", res)
	}

	// Active content is never inline.
	html := []byte("<!doctype html><html><script>alert(1)</script></html>")
	in.uploadChunked(t, key, "lim", "img", "page", "page.html", html, 1<<20)
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`)
	f := in.uploadChunked(t, key, "lim", "img", "pic", "pic.png", svg, 1<<20) // the name lies
	if f.GetMimeType() != "image/svg+xml" {
		t.Errorf("svg sniffed as %q", f.GetMimeType())
	}
	for _, id := range []string{"page", "pic"} {
		res := in.fetch(t, key, "lim", "img", id, "view", nil)
		if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Disposition"), "attachment") ||
			res.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(res.header.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("view %s: %d %v", id, res.status, res.header)
		}
	}

	// Previews: a second request is served from the cache.
	var img bytes.Buffer
	m := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for x := range 200 {
		for y := range 100 {
			m.Set(x, y, color.RGBA{uint8(x), uint8(y), 99, 255})
		}
	}
	if err := png.Encode(&img, m); err != nil {
		t.Fatal(err)
	}
	in.uploadChunked(t, key, "lim", "img", "photo", "photo.png", img.Bytes(), 1<<20)
	q := url.Values{"width": {"50"}, "output": {"jpeg"}}
	for i, want := range []string{"miss", "hit"} {
		res := in.fetch(t, key, "lim", "img", "photo", "preview", q)
		if res.status != http.StatusOK || res.header.Get("Cairn-Preview-Cache") != want || res.header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("preview %d: %d %s %v", i, res.status, res.header.Get("Cairn-Preview-Cache"), truncateBody(res.body))
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(res.body))
		if err != nil || cfg.Width != 50 || cfg.Height != 25 {
			t.Fatalf("preview %d: %+v %v", i, cfg, err)
		}
	}
	if res := in.fetch(t, key, "lim", "img", "photo", "preview", url.Values{"width": {"99999"}}); res.status != http.StatusBadRequest || !strings.Contains(string(res.body), "width") {
		t.Errorf("bad preview option: %s", res)
	}
	if res := in.fetch(t, key, "lim", "img", "page", "preview", nil); res.status != http.StatusBadRequest {
		t.Errorf("preview of html: %s", res)
	}

	// Quota: the project may store 2,000 bytes more than it has now.
	op, _ := as(context.Background(), testAdminKey)
	usage, err := st.GetStorageUsage(ctx, &cairnv1.GetStorageUsageRequest{ProjectId: "lim"})
	if err != nil {
		t.Fatal(err)
	}
	used := usage.GetUsedBytes()
	if used != int64(len(html)+len(svg)+img.Len()) || usage.GetFiles() != 3 {
		t.Fatalf("usage %v", usage)
	}
	if _, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "lim",
		Limits: &cairnv1.ProjectLimits{MaxStorageBytes: used + 2000}}); err != nil {
		t.Fatal(err)
	}
	if res := in.putChunk(t, key, "lim", "img", "q", "q.png", 0, 2001, make([]byte, 2001)); res.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(res.body), "quota") {
		t.Errorf("over quota: %s", res)
	}
	in.uploadChunked(t, key, "lim", "img", "q", "q.png", make([]byte, 2000), 1<<20)
	if _, err := st.DeleteFile(ctx, &cairnv1.DeleteFileRequest{ProjectId: "lim", BucketId: "img", FileId: "q"}); err != nil {
		t.Fatal(err)
	}
	if res := in.fetch(t, key, "lim", "img", "q", "download", nil); res.status != http.StatusNotFound {
		t.Errorf("deleted file: %s", res)
	}

	// An abandoned upload is swept: its bytes no longer count.
	if res := in.putChunk(t, key, "lim", "img", "half", "half.png", 0, 1000, make([]byte, 500)); res.status != http.StatusAccepted {
		t.Fatalf("half upload: %s", res)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.GetUpload(ctx, &cairnv1.GetUploadRequest{ProjectId: "lim", BucketId: "img", FileId: "half"})
		if connect.CodeOf(err) == connect.CodeNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload not abandoned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	usage, err = st.GetStorageUsage(ctx, &cairnv1.GetStorageUsageRequest{ProjectId: "lim"})
	if err != nil || usage.GetUsedBytes() != used || usage.GetQuotaBytes() != used+2000 {
		t.Errorf("usage after delete and abandon: %v %v (want %d used)", usage, err, used)
	}

	// A deleted bucket takes its files along.
	if _, err := in.projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "lim", Limits: &cairnv1.ProjectLimits{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: "lim", BucketId: "tmp", Name: "tmp"}); err != nil {
		t.Fatal(err)
	}
	in.uploadChunked(t, key, "lim", "tmp", "t1", "t1.bin", fileBytes(3000, 1), 1<<20)
	in.uploadChunked(t, key, "lim", "tmp", "t2", "t2.bin", fileBytes(3000, 2), 1000)
	if _, err := st.DeleteBucket(ctx, &cairnv1.DeleteBucketRequest{ProjectId: "lim", BucketId: "tmp"}); err != nil {
		t.Fatal(err)
	}
	usage, err = st.GetStorageUsage(ctx, &cairnv1.GetStorageUsageRequest{ProjectId: "lim"})
	if err != nil || usage.GetUsedBytes() != used || usage.GetFiles() != 3 {
		t.Errorf("usage after a bucket's deletion: %v %v", usage, err)
	}
	in.stop()

	// After a sweep the object store holds the parts of the three live
	// files only: the deleted file's, the abandoned upload's and the
	// deleted bucket's are gone.
	nd := openStopped(t, dir)
	defer nd.close()
	sweeper := &api.StorageSweeper{Log: nd.log, Reads: nd.reads, Store: nd.store, Logger: slog.New(slog.DiscardHandler)}
	if err := sweeper.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs, err := nd.store.ObjectStore(context.Background(), "lim")
	if err != nil {
		t.Fatal(err)
	}
	infos, err := obs.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		var names []string
		for _, i := range infos {
			names = append(names, i.Name)
		}
		t.Errorf("objects after the sweep: %v, want the 3 live files' parts", names)
	}
	if pending, err := nd.reads.PendingStorageGarbage(10); err != nil || len(pending) != 0 {
		t.Errorf("storage garbage left: %v %v", pending, err)
	}
	checkRebuild(t, nd, "lim", "storage limits")
}
