package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/api"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/transfer"
)

// benchTransferEventsDefault is how many documents BenchmarkTransfer
// creates (one event each) unless CAIRN_BENCH_TRANSFER_EVENTS says
// otherwise.
const benchTransferEventsDefault = 100_000

// benchTransferMBDefault is the MiB of files BenchmarkTransfer uploads
// unless CAIRN_BENCH_TRANSFER_MB says otherwise.
const benchTransferMBDefault = 64

// benchTransferFile is the size of one uploaded file: the files are spread
// over the documents, so a fork at the middle copies about half of them.
const benchTransferFile = 4 << 20

// BenchmarkTransfer measures export, import and fork of one project
// against the raw ordered read of the same stream, on one in-process
// server. The project holds CAIRN_BENCH_TRANSFER_EVENTS documents (default
// 100,000, created in batches of 100: one event each) and
// CAIRN_BENCH_TRANSFER_MB MiB of files (default 64, in 4 MiB files
// uploaded between the batches). Each b.N is a round of, in turn:
//
//	raw-read     the project's stream through streams.Store.Read (an
//	             ordered consumer, as export and fork read it): events/s,
//	             MB/s of envelopes
//	raw-get      every object of the project's object store through
//	             obs.Get: MB/s
//	export       GET /v1/projects/<p>/export with the passphrase header,
//	             as the CLI does, into a file: events/s and MB/s of the
//	             package over the whole export; export-events/s over the
//	             events part alone (until the first object entry arrives,
//	             the package parsed as it streams); both as a percentage
//	             of raw-read, and the whole export as a percentage of
//	             raw-read + raw-get (the same bytes read raw)
//	import       POST /v1/projects/import?as=<new id> of that package:
//	             events/s and MB/s of the package, until the answer (which
//	             waits for the new project's read models to be built);
//	             percentage of raw-read and of raw-read + raw-get;
//	             import-%-writing: the share of that time until the new
//	             stream held every event (polled every 10 ms), the rest
//	             being registration and the read models' build
//	fork-middle  POST /v1/projects/<p>/fork?at=<last seq/2>&as=<new id>:
//	             seconds (events copied, referenced objects copied, read
//	             models built); fork-middle-written-s until the new
//	             stream held the copied events
//
// MB/s is go test's: 10^6 bytes per second.
func BenchmarkTransfer(b *testing.B) {
	nEvents := benchTransferEventsDefault
	if v := os.Getenv("CAIRN_BENCH_TRANSFER_EVENTS"); v != "" {
		var err error
		if nEvents, err = strconv.Atoi(v); err != nil || nEvents < 100 {
			b.Fatalf("CAIRN_BENCH_TRANSFER_EVENTS=%q: want a number of at least 100", v)
		}
	}
	fileBytes := envMiB(b, "CAIRN_BENCH_TRANSFER_MB", benchTransferMBDefault)

	ctx := context.Background()
	const p, db, coll = "benchxfer", "main", "items"
	sb := startStorageBench(b, p)
	srv := sb.srv
	dbs := sb.cl.databases()
	k := func() context.Context { return authed(ctx, sb.key) }
	if _, err := dbs.CreateDatabase(k(), &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: "Main"}); err != nil {
		b.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k(), &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Name: coll}); err != nil {
		b.Fatal(err)
	}
	str := cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING
	integer := cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER
	for _, a := range []*cairnv1.Attribute{
		{Key: "name", Type: str, Size: 64},
		{Key: "cat", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM, Elements: benchCategories},
		{Key: "n", Type: integer},
		{Key: "score", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT},
		{Key: "flag", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN},
		{Key: "at", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_DATETIME},
		{Key: "note", Type: str, Size: 64},
		{Key: "color", Type: str, Size: 16},
		{Key: "count", Type: integer},
		{Key: "labels", Type: str, Size: 16, Array: true},
	} {
		if _, err := dbs.CreateAttribute(k(), &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Attribute: a}); err != nil {
			b.Fatalf("attribute %s: %v", a.GetKey(), err)
		}
	}
	sb.bucket(b, &cairnv1.CreateBucketRequest{BucketId: "files"})

	// The files go in between the document batches, evenly.
	nFiles := int((fileBytes + benchTransferFile - 1) / benchTransferFile)
	batches := (nEvents + 99) / 100
	var uploaded int64
	filesDone := 0
	upload := func() {
		n := min(int64(benchTransferFile), fileBytes-uploaded)
		id := "f" + strconv.Itoa(filesDone)
		sb.upload(b, "files", id, id+".bin", newGen(n, uint64(filesDone)), n, benchChunk)
		uploaded += n
		filesDone++
	}
	start := time.Now()
	for bi := 0; bi < batches; bi++ {
		for filesDone < nFiles && filesDone*batches <= bi*nFiles {
			upload()
		}
		req := &cairnv1.CreateDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll}
		for j := bi * 100; j < min(bi*100+100, nEvents); j++ {
			req.Documents = append(req.Documents, &cairnv1.DocumentInput{DocumentId: "d" + strconv.Itoa(j), Data: benchDocData(j)})
		}
		if _, err := dbs.CreateDocuments(k(), req); err != nil {
			b.Fatalf("preload: %v", err)
		}
	}
	for filesDone < nFiles {
		upload()
	}
	stream := streams.ProjectStream(p)
	info, err := srv.node.store.StreamInfo(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	events := info.LastSeq
	b.Logf("preloaded %d documents and %d files (%d MiB) in %s: %d events", nEvents, nFiles, fileBytes>>20,
		time.Since(start).Round(time.Millisecond), events)
	obs, err := srv.node.store.ObjectStore(ctx, p)
	if err != nil {
		b.Fatal(err)
	}

	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	operator := func(req *http.Request) *http.Request {
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		req.Header.Set(api.HeaderPassphrase, testPassphrase)
		return req
	}
	pkg := filepath.Join(b.TempDir(), p+".cairnpkg")
	copyBuf := make([]byte, 256<<10)

	// Each returns its duration; the rounds sum them.
	rawRead := func(b *testing.B) (time.Duration, int64) {
		t0 := time.Now()
		var n uint64
		var bytes int64
		for msg, err := range srv.node.store.Read(ctx, stream, streams.ReadOptions{StartSeq: 1}) {
			if err != nil {
				b.Fatalf("raw read: %v", err)
			}
			n++
			bytes += int64(len(msg.Data))
		}
		if n != events {
			b.Fatalf("raw read: %d events, want %d", n, events)
		}
		return time.Since(t0), bytes
	}
	rawGet := func(b *testing.B) (time.Duration, int64) {
		t0 := time.Now()
		list, err := obs.List(ctx)
		if err != nil {
			b.Fatalf("raw get: list: %v", err)
		}
		var total int64
		for _, o := range list {
			r, err := obs.Get(ctx, o.Name)
			if err != nil {
				b.Fatalf("raw get %s: %v", o.Name, err)
			}
			n, err := io.CopyBuffer(io.Discard, r, copyBuf)
			r.Close()
			if err != nil {
				b.Fatalf("raw get %s: %v", o.Name, err)
			}
			total += n
		}
		return time.Since(t0), total
	}
	// export returns the whole export's time, the time until the first
	// object entry's header arrived and the package's size.
	export := func(b *testing.B) (time.Duration, time.Duration, int64) {
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/v1/projects/"+p+"/export", nil)
		res, err := hc.Do(operator(req))
		if err != nil {
			b.Fatalf("export: %v", err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(res.Body)
			b.Fatalf("export: %d %s", res.StatusCode, truncateBody(body))
		}
		f, err := os.Create(pkg)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cr := &countingWriter{w: f}
		tr := tar.NewReader(io.TeeReader(res.Body, cr))
		var eventsDone time.Duration
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatalf("export: package: %v", err)
			}
			if eventsDone == 0 && !strings.HasPrefix(h.Name, "events/") && h.Name != "cairnpkg.json" {
				eventsDone = time.Since(t0)
			}
			if _, err := io.CopyBuffer(io.Discard, tr, copyBuf); err != nil {
				b.Fatalf("export: package: %v", err)
			}
		}
		// The tar's end padding, then the trailer.
		if _, err := io.CopyBuffer(cr, res.Body, copyBuf); err != nil {
			b.Fatalf("export: %v", err)
		}
		if st := res.Trailer.Get(api.TrailerExportStatus); st != "ok" {
			b.Fatalf("export: status %q", st)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0), eventsDone, cr.n
	}
	// appended watches the stream of project id from t0 until it holds
	// sequence seq and returns how long that took (0 if stop came first):
	// an import's or fork's writes, before registration and read models.
	appended := func(id string, seq uint64, t0 time.Time) (wait func() time.Duration) {
		stop := make(chan struct{})
		got := make(chan time.Duration, 1)
		go func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				if i, err := srv.node.store.StreamInfo(ctx, streams.ProjectStream(id)); err == nil && i.LastSeq >= seq {
					got <- time.Since(t0)
					return
				}
				select {
				case <-stop:
					got <- 0
					return
				case <-tick.C:
				}
			}
		}()
		return func() time.Duration { close(stop); return <-got }
	}
	var imports, forks int
	importPkg := func(b *testing.B) (time.Duration, time.Duration) {
		imports++
		as := p + "-imp" + strconv.Itoa(imports)
		f, err := os.Open(pkg)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		t0 := time.Now()
		wait := appended(as, events, t0)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/v1/projects/import?"+url.Values{"as": {as}}.Encode(), f)
		req.Header.Set("Content-Type", "application/x-tar")
		res, err := hc.Do(operator(req))
		if err != nil {
			b.Fatalf("import: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		d := time.Since(t0)
		var r transfer.Result
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Events < events || r.ObjectBytes == 0 {
			b.Fatalf("import: %d %s", res.StatusCode, truncateBody(body))
		}
		return d, wait()
	}
	mid := events / 2
	fork := func(b *testing.B) (time.Duration, time.Duration) {
		forks++
		as := p + "-fork" + strconv.Itoa(forks)
		t0 := time.Now()
		wait := appended(as, mid, t0)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/v1/projects/"+p+"/fork?"+
			url.Values{"as": {as}, "at": {strconv.FormatUint(mid, 10)}}.Encode(), nil)
		res, err := hc.Do(operator(req))
		if err != nil {
			b.Fatalf("fork: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		d := time.Since(t0)
		var r transfer.Result
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Events != mid {
			b.Fatalf("fork: %d %s", res.StatusCode, truncateBody(body))
		}
		if forks == 1 {
			b.Logf("fork at %d: %d events, %d objects (%d bytes) in %s", mid, r.Events, r.Objects, r.ObjectBytes, d.Round(time.Millisecond))
		}
		return d, wait()
	}

	// The steps take turns in each round, so a noisy neighbour slows them
	// alike and the ratios compare neighbours.
	var readT, getT, exportT, exportEventsT, importT, importWriteT, forkT, forkWriteT time.Duration
	var readBytes, getBytes, pkgBytes int64
	rounds := 0
	b.ResetTimer()
	for round := 0; round < max(1, b.N); round++ {
		d, n := rawRead(b)
		readT, readBytes = readT+d, readBytes+n
		d, n = rawGet(b)
		getT, getBytes = getT+d, getBytes+n
		d, de, n := export(b)
		exportT, exportEventsT, pkgBytes = exportT+d, exportEventsT+de, pkgBytes+n
		d, dw := importPkg(b)
		importT, importWriteT = importT+d, importWriteT+dw
		d, dw = fork(b)
		forkT, forkWriteT = forkT+d, forkWriteT+dw
		rounds++
	}
	b.StopTimer()
	ev := float64(events) * float64(rounds)
	rate := func(d time.Duration) float64 { return ev / d.Seconds() }
	b.Logf("%d rounds: %d events, stream %d bytes, objects %d bytes, package %d bytes; raw read %s, raw get %s, export %s (events part %s), import %s (written %s), fork %s (written %s)",
		rounds, events, readBytes/int64(rounds), getBytes/int64(rounds), pkgBytes/int64(rounds),
		readT.Round(time.Millisecond), getT.Round(time.Millisecond), exportT.Round(time.Millisecond),
		exportEventsT.Round(time.Millisecond), importT.Round(time.Millisecond), importWriteT.Round(time.Millisecond),
		forkT.Round(time.Millisecond), forkWriteT.Round(time.Millisecond))
	b.ReportMetric(rate(readT), "raw-read-events/s")
	b.ReportMetric(mbps(readBytes, readT), "raw-read-MB/s")
	b.ReportMetric(mbps(getBytes, getT), "raw-get-MB/s")
	b.ReportMetric(rate(exportT), "export-events/s")
	b.ReportMetric(mbps(pkgBytes, exportT), "export-MB/s")
	b.ReportMetric(100*readT.Seconds()/exportT.Seconds(), "export-%-of-raw-read")
	b.ReportMetric(100*(readT+getT).Seconds()/exportT.Seconds(), "export-%-of-raw-read+get")
	if exportEventsT > 0 {
		b.ReportMetric(rate(exportEventsT), "export-events-part-events/s")
		b.ReportMetric(100*readT.Seconds()/exportEventsT.Seconds(), "export-events-part-%-of-raw-read")
	}
	b.ReportMetric(rate(importT), "import-events/s")
	b.ReportMetric(mbps(pkgBytes, importT), "import-MB/s")
	b.ReportMetric(100*readT.Seconds()/importT.Seconds(), "import-%-of-raw-read")
	b.ReportMetric(100*(readT+getT).Seconds()/importT.Seconds(), "import-%-of-raw-read+get")
	if importWriteT > 0 {
		b.ReportMetric(100*importWriteT.Seconds()/importT.Seconds(), "import-%-writing")
	}
	b.ReportMetric(forkT.Seconds()/float64(rounds), "fork-middle-s")
	if forkWriteT > 0 {
		b.ReportMetric(forkWriteT.Seconds()/float64(rounds), "fork-middle-written-s")
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
