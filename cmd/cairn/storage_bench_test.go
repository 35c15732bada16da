package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// benchChunk is the chunk size of the benchmarks' uploads: what the
// Appwrite SDKs send.
const benchChunk = 5 << 20

// benchFileMBDefault is BenchmarkStorageThroughput's file size in MiB unless
// CAIRN_BENCH_FILE_MB says otherwise (256 for the closing note).
const benchFileMBDefault = 64

// envMiB reads a size in MiB from the environment.
func envMiB(tb testing.TB, name string, def int) int64 {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return int64(def) << 20
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a number of MiB of at least 1", name, v)
	}
	return int64(n) << 20
}

// genBlock is the block size of genReader's alternation.
const genBlock = 4096

var genPattern = bytes.Repeat([]byte("cairn storage "), genBlock/14+2)

// genReader yields n deterministic bytes shaped like fileBytes (4 KiB
// blocks, alternately random and a repeated pattern, so compression has
// half of them to work on) without holding them: a 256 MiB upload costs the
// test no memory. Read always fills p (to the end), since obs.Put makes
// one object store chunk of each Read.
type genReader struct {
	off, n int64
	rng    *rand.ChaCha8
}

func newGen(n int64, seed uint64) *genReader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return &genReader{n: n, rng: rand.NewChaCha8(s)}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n-g.off)]
	for i := 0; i < len(p); {
		k := int(min(int64(len(p)-i), (g.off/genBlock+1)*genBlock-g.off))
		if (g.off/genBlock)%2 == 0 {
			_, _ = g.rng.Read(p[i : i+k])
		} else {
			at := int(g.off % 14)
			copy(p[i:i+k], genPattern[at:at+k])
		}
		i += k
		g.off += int64(k)
	}
	return len(p), nil
}

var genSums sync.Map // [2]int64{n, seed} → hex sha256

// genSHA is the sha256 of newGen(n, seed)'s bytes, computed once.
func genSHA(n int64, seed uint64) string {
	key := [2]int64{n, int64(seed)}
	if v, ok := genSums.Load(key); ok {
		return v.(string)
	}
	h := sha256.New()
	_, _ = io.CopyBuffer(h, newGen(n, seed), make([]byte, 1<<20))
	s := hex.EncodeToString(h.Sum(nil))
	genSums.Store(key, s)
	return s
}

// fileClient speaks the plain HTTP storage routes to one project with a
// key, streaming bodies both ways.
type fileClient struct {
	hc                *http.Client
	url, project, key string
}

func (fc fileClient) request(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("project", fc.project)
	req, err := http.NewRequestWithContext(ctx, method, fc.url+path+"?"+q.Encode(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+fc.key)
	return req, nil
}

// upload sends size bytes of r as a file in chunks of chunk bytes, as the
// SDKs do (raw body, Content-Range), reading r as it goes, and returns the
// created file.
func (fc fileClient) upload(tb testing.TB, bucket, fileID, name string, r io.Reader, size int64, chunk int64) *cairnv1.File {
	tb.Helper()
	var last []byte
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		req, err := fc.request(context.Background(), http.MethodPost, filesPath(bucket),
			url.Values{"fileId": {fileID}, "name": {name}}, io.LimitReader(r, n))
		if err != nil {
			tb.Fatal(err)
		}
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
		res, err := fc.hc.Do(req)
		if err != nil {
			tb.Fatalf("chunk at %d of %s: %v", off, name, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			tb.Fatalf("chunk at %d of %s: %v", off, name, err)
		}
		want := http.StatusAccepted
		if off+n == size {
			want = http.StatusCreated
		}
		if res.StatusCode != want {
			tb.Fatalf("chunk at %d of %s: %d %s", off, name, res.StatusCode, truncateBody(body))
		}
		if got := res.Header.Get("Cairn-Upload-Received"); got != strconv.FormatInt(off+n, 10) {
			tb.Fatalf("chunk at %d of %s: received %q, want %d", off, name, got, off+n)
		}
		last = body
	}
	f := &cairnv1.File{}
	if err := protojson.Unmarshal(last, f); err != nil {
		tb.Fatalf("upload %s: %v in %s", name, err, truncateBody(last))
	}
	return f
}

// download streams a file's bytes into w and returns how many there were.
func (fc fileClient) download(tb testing.TB, bucket, fileID string, w io.Writer, buf []byte) int64 {
	tb.Helper()
	req, err := fc.request(context.Background(), http.MethodGet, filePath(bucket, fileID, "download"), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := fc.hc.Do(req)
	if err != nil {
		tb.Fatalf("download %s: %v", fileID, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		tb.Fatalf("download %s: %d %s", fileID, res.StatusCode, truncateBody(body))
	}
	n, err := io.CopyBuffer(w, res.Body, buf)
	if err != nil {
		tb.Fatalf("download %s: %v after %d bytes", fileID, err, n)
	}
	return n
}

// get is a small GET of a file route, read whole.
func (fc fileClient) get(tb testing.TB, bucket, fileID, what string, q url.Values) httpResult {
	tb.Helper()
	req, err := fc.request(context.Background(), http.MethodGet, filePath(bucket, fileID, what), q, nil)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := fc.hc.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", what, fileID, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: %v", what, fileID, err)
	}
	return httpResult{status: res.StatusCode, header: res.Header, body: body}
}

// storageBench is an in-process server (as BenchmarkDocuments uses: the
// bench reaches its JetStream too) with one project, a key of every scope
// and buckets.
type storageBench struct {
	srv *server
	cl  clients
	fileClient
}

func startStorageBench(b *testing.B, project string) *storageBench {
	b.Helper()
	ctx := context.Background()
	srv := benchServer(b)
	sb := &storageBench{srv: srv, cl: clients{client: benchConnect(srv.url)}}
	op := authed(ctx, testAdminKey)
	if _, err := sb.cl.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: project, Name: project}); err != nil {
		b.Fatal(err)
	}
	key, err := sb.cl.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: project, Name: "server", Scopes: &cairnv1.Scopes{Scopes: allScopes()}})
	if err != nil {
		b.Fatal(err)
	}
	// HTTP/1.1 with keep-alive, as the SDKs upload.
	sb.fileClient = fileClient{hc: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		url: srv.url, project: project, key: key.GetSecret()}
	return sb
}

func (sb *storageBench) bucket(b *testing.B, req *cairnv1.CreateBucketRequest) {
	b.Helper()
	req.ProjectId = sb.project
	if req.Name == "" {
		req.Name = req.BucketId
	}
	if _, err := sb.cl.storage().CreateBucket(authed(context.Background(), sb.key), req); err != nil {
		b.Fatalf("bucket %s: %v", req.BucketId, err)
	}
}

// mbps is bytes per second in the unit of go test's MB/s (10^6 bytes).
func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// BenchmarkStorageThroughput uploads and downloads a file of
// CAIRN_BENCH_FILE_MB MiB (default 64; 256 for the closing note) through
// the HTTP routes of one in-process server, in 5 MiB chunks over HTTP/1.1
// as the SDKs upload, next to the raw object store of the same server:
//
//	<bucket>/upload     POST …/files in chunks: MB/s, and raw-put-MB/s of
//	                    obs.Put of the same bytes from a streaming reader,
//	                    run (untimed) before each upload; upload-%-of-raw
//	<bucket>/download   GET …/download into sha256: MB/s, and raw-get-MB/s
//	                    of obs.Get copied into sha256 likewise (so both
//	                    sides hash); download-%-of-raw
//
// for buckets plain (no compression, no encryption), encrypted (AES-GCM)
// and zstd. The bytes come from a generator (half random, half a
// pattern) and the download's sha256, computed as it streams, must be the
// generator's. MB/s is go test's: 10^6 bytes per second.
func BenchmarkStorageThroughput(b *testing.B) {
	size := envMiB(b, "CAIRN_BENCH_FILE_MB", benchFileMBDefault)
	const project, seed = "benchfiles", 1
	sb := startStorageBench(b, project)
	want := genSHA(size, seed)
	ctx := context.Background()
	obs, err := sb.srv.node.store.ObjectStore(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	copyBuf := make([]byte, 256<<10)

	// The raw object store puts and gets alternate with the uploads and
	// downloads, so that both meet the same state of the machine (page
	// cache, writeback), which drifts over a run: the ratios compare
	// neighbours.
	var rawName string
	var rawN, rawRetries int
	// obs.Put publishes a large object's chunks with nothing but the
	// client's 4000 pending acks as flow control, so when the disk lags
	// the stream's inbound queue (128 MiB) overflows and the put fails
	// with 429 Too Many Requests; the bench then retries, counting it.
	// (filestore's parts are 1 MiB, 4 in flight: they never meet this.)
	// putRaw and getRaw return the time of their (successful) transfer.
	putRaw := func(b *testing.B) time.Duration {
		for attempt := 1; ; attempt++ {
			rawN++
			name := "bench/raw-" + strconv.Itoa(rawN)
			t0 := time.Now()
			info, err := obs.Put(ctx, jetstream.ObjectMeta{Name: name}, newGen(size, seed))
			if err == nil && int64(info.Size) == size {
				rawName = name
				return time.Since(t0)
			}
			if attempt == 3 {
				b.Fatalf("raw put, attempt %d: %v", attempt, err)
			}
			b.Logf("raw put, attempt %d: %v; retrying", attempt, err)
			rawRetries++
			time.Sleep(2 * time.Second)
		}
	}
	getRaw := func(b *testing.B) time.Duration {
		t0 := time.Now()
		res, err := obs.Get(ctx, rawName)
		if err != nil {
			b.Fatalf("raw get: %v", err)
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, res, copyBuf)
		res.Close()
		if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
			b.Fatalf("raw get: %d of %d bytes, %v", n, size, err)
		}
		return time.Since(t0)
	}
	report := func(b *testing.B, raw time.Duration, rawUnit, ratioUnit string) {
		n := size * int64(b.N)
		b.ReportMetric(mbps(n, raw), rawUnit)
		b.ReportMetric(100*raw.Seconds()/b.Elapsed().Seconds(), ratioUnit)
	}

	buckets := []*cairnv1.CreateBucketRequest{
		{BucketId: "plain", Compression: cairnv1.Compression_COMPRESSION_NONE},
		{BucketId: "encrypted", Compression: cairnv1.Compression_COMPRESSION_NONE, Encryption: true},
		{BucketId: "zstd", Compression: cairnv1.Compression_COMPRESSION_ZSTD},
	}
	for _, req := range buckets {
		bucket := req.BucketId
		sb.bucket(b, req)
		var files int
		var lastFile string
		upload := func(b *testing.B) {
			files++
			lastFile = "f" + strconv.Itoa(files)
			f := sb.upload(b, bucket, lastFile, "data.bin", newGen(size, seed), size, benchChunk)
			if f.GetSize() != size || f.GetSha256() != want {
				b.Fatalf("uploaded %d bytes, sha256 %s; want %d, %s", f.GetSize(), f.GetSha256(), size, want)
			}
		}
		b.Run(bucket+"/upload", func(b *testing.B) {
			retries := rawRetries
			b.SetBytes(size)
			var raw time.Duration
			for b.Loop() {
				b.StopTimer()
				raw += putRaw(b)
				b.StartTimer()
				upload(b)
			}
			report(b, raw, "raw-put-MB/s", "upload-%-of-raw")
			b.ReportMetric(float64(rawRetries-retries), "raw-put-retries")
		})
		b.Run(bucket+"/download", func(b *testing.B) {
			if lastFile == "" {
				upload(b)
			}
			if rawName == "" {
				putRaw(b)
			}
			b.SetBytes(size)
			var raw time.Duration
			for b.Loop() {
				b.StopTimer()
				raw += getRaw(b)
				b.StartTimer()
				h := sha256.New()
				if n := sb.download(b, bucket, lastFile, h, copyBuf); n != size {
					b.Fatalf("downloaded %d bytes, want %d", n, size)
				}
				if got := hex.EncodeToString(h.Sum(nil)); got != want {
					b.Fatalf("download sha256 %s, want %s", got, want)
				}
			}
			report(b, raw, "raw-get-MB/s", "download-%-of-raw")
		})
	}
}

// heapSampler records the peak HeapInuse, sampled every 20 ms; with
// collect, a collection precedes each sample (every 100 ms), so the peak is
// of the live heap rather than of the garbage the GC's pacing lets grow.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

func sampleHeap(collect bool) *heapSampler {
	s := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	every := 20 * time.Millisecond
	if collect {
		every = 100 * time.Millisecond
	}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			if collect {
				runtime.GC()
			}
			runtime.ReadMemStats(&ms)
			s.peak = max(s.peak, ms.HeapInuse)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// end stops sampling and returns the peak.
func (s *heapSampler) end() uint64 {
	close(s.stop)
	<-s.done
	return s.peak
}

func heapBaseline() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestStorageUploadMemory uploads CAIRN_BENCH_BIG_MB MiB (default 1024) in
// 5 MiB chunks from a generator while sampling the Go heap, then downloads
// it likewise. Client, server and the embedded NATS server are one
// process, so the figures cover all three. Each transfer runs twice:
//
//	heap   HeapInuse every 20 ms, peak − baseline: what the process needs,
//	       including the garbage the GC's pacing (GOGC=100, so up to about
//	       the baseline's live heap again) lets accumulate
//	live   the same after a forced collection every 100 ms: what stays
//	       referenced. The upload's must stay a few chunks' worth (under
//	       64 MiB) whatever the file's size; the download's is logged only,
//	       since most of it is the NATS server's cache of the blocks read.
//
// Set CAIRN_BENCH_BIG=1 to run it (CI does not).
func TestStorageUploadMemory(t *testing.T) {
	if os.Getenv("CAIRN_BENCH_BIG") != "1" {
		t.Skip("set CAIRN_BENCH_BIG=1 to measure memory during a large upload")
	}
	const maxLiveGrowth = 64 << 20
	size := envMiB(t, "CAIRN_BENCH_BIG_MB", 1024)
	const seed = 2
	want := genSHA(size, seed)
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "big", allScopes()...)
	ctx, _ := as(context.Background(), key)
	if _, err := in.storage().CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: "big", BucketId: "b", Name: "b",
		Compression: cairnv1.Compression_COMPRESSION_NONE}); err != nil {
		t.Fatal(err)
	}
	fc := fileClient{hc: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, url: in.url, project: "big", key: key}
	// The NATS server keeps the blocks a read loaded for 10 s after their
	// last use: each measurement starts once the live heap is back near
	// where it began, so one transfer's cache is not the next's baseline.
	start := heapBaseline()
	settle := func() uint64 {
		base := heapBaseline()
		for deadline := time.Now().Add(30 * time.Second); base > start+8<<20 && time.Now().Before(deadline); {
			time.Sleep(time.Second)
			base = heapBaseline()
		}
		return base
	}
	measure := func(what string, collect bool, transfer func()) int64 {
		base := settle()
		s := sampleHeap(collect)
		t0 := time.Now()
		transfer()
		d := time.Since(t0)
		peak := s.end()
		kind := "heap"
		if collect {
			kind = "live"
		}
		growth := int64(peak) - int64(base)
		t.Logf("%-8s %d MiB in %6s (%4.0f MB/s), %s: HeapInuse baseline %5.1f MiB, peak %5.1f MiB, growth %5.1f MiB",
			what, size>>20, d.Round(time.Millisecond), mbps(size, d), kind, float64(base)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
		return growth
	}
	for i, collect := range []bool{false, true} {
		id := "big" + strconv.Itoa(i)
		growth := measure("upload", collect, func() {
			f := fc.upload(t, "b", id, "big.bin", newGen(size, seed), size, benchChunk)
			if f.GetSize() != size || f.GetSha256() != want {
				t.Fatalf("uploaded %d bytes, sha256 %s; want %d, %s", f.GetSize(), f.GetSha256(), size, want)
			}
		})
		if collect && growth > maxLiveGrowth {
			t.Errorf("upload: the live heap grew %.1f MiB, want under %d MiB", float64(growth)/(1<<20), maxLiveGrowth>>20)
		}
		measure("download", collect, func() {
			h := sha256.New()
			n := fc.download(t, "b", id, h, make([]byte, 256<<10))
			if n != size || hex.EncodeToString(h.Sum(nil)) != want {
				t.Fatalf("downloaded %d bytes, want %d with sha256 %s", n, size, want)
			}
		})
	}
	if st, err := readProcStats(os.Getpid()); err == nil {
		t.Logf("process: VmHWM %.0f MiB, VmRSS %.0f MiB", float64(st.HWMKiB)/1024, float64(st.RSSKiB)/1024)
	}
}

// benchJPEG is a w×h JPEG of gradients and noise (so it is not trivially
// compressible), about what a camera photo costs to decode.
func benchJPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(3, 4))
	for y := range h {
		for x := range w {
			n := uint8(r.IntN(32))
			img.SetRGBA(x, y, color.RGBA{uint8(x*255/w) ^ n, uint8(y*255/h) + n, uint8((x+y)/16) - n, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkPreview measures GET …/preview?width=400&height=300 of a
// 2000×1500 JPEG: cold renders (every request a new quality and width, so
// never cached; Cairn-Preview-Cache: miss) and cached ones (the same
// parameters each time; hit).
func BenchmarkPreview(b *testing.B) {
	sb := startStorageBench(b, "benchpreview")
	sb.bucket(b, &cairnv1.CreateBucketRequest{BucketId: "img"})
	src := benchJPEG(b, 2000, 1500)
	b.Logf("source: 2000x1500 JPEG, %d KiB", len(src)>>10)
	f := sb.upload(b, "img", "photo", "photo.jpg", bytes.NewReader(src), int64(len(src)), benchChunk)
	if f.GetMimeType() != "image/jpeg" {
		b.Fatalf("uploaded as %q", f.GetMimeType())
	}
	preview := func(b *testing.B, q url.Values, cache string) {
		res := sb.get(b, "img", "photo", "preview", q)
		if res.status != http.StatusOK || res.header.Get("Content-Type") != "image/jpeg" {
			b.Fatalf("preview %v: %s", q, res)
		}
		if got := res.header.Get("Cairn-Preview-Cache"); got != cache {
			b.Fatalf("preview %v: Cairn-Preview-Cache %q, want %q", q, got, cache)
		}
	}

	var renders int // across runs, so no parameters repeat
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			i := renders
			renders++
			q := url.Values{"width": {strconv.Itoa(400 + i/100)}, "height": {"300"}, "quality": {strconv.Itoa(1 + i%100)}}
			preview(b, q, "miss")
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/render")
	})
	b.Run("cached", func(b *testing.B) {
		q := url.Values{"width": {"400"}, "height": {"300"}}
		res := sb.get(b, "img", "photo", "preview", q) // warm (or already cached by the last run)
		if res.status != http.StatusOK {
			b.Fatalf("preview: %s", res)
		}
		for b.Loop() {
			preview(b, q, "hit")
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
