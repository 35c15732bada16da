package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// replayEvents is the document stream's length: CAIRN_BENCH_REPLAY_EVENTS
// (e.g. 1000000) or a short default that keeps `go test -bench` quick.
func replayEvents(tb testing.TB) int {
	if s := os.Getenv("CAIRN_BENCH_REPLAY_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			tb.Fatalf("CAIRN_BENCH_REPLAY_EVENTS=%q: want a number >= 10", s)
		}
		return n
	}
	return 20_000
}

// docCollection is the document stream's collection: title, n and tag,
// with an index on tag and one on (tag, n desc), as in issue 19's workload.
func docCollection(project string) *eventsv1.Collection {
	return &eventsv1.Collection{Id: "items", ProjectId: project, DatabaseId: "main", DatabaseUid: "01DBUID", Uid: "01COLLUID",
		Name: "Items", Enabled: true, Version: 1, Permissions: []string{`read("any")`},
		Attributes: []*eventsv1.Attribute{
			{Key: "title", Type: string(database.TypeString), Size: 200, Status: string(database.StatusAvailable)},
			{Key: "n", Type: string(database.TypeInteger), IntMin: -1 << 40, IntMax: 1 << 40, Status: string(database.StatusAvailable)},
			{Key: "tag", Type: string(database.TypeString), Size: 32, Status: string(database.StatusAvailable)},
		},
		Indexes: []*eventsv1.Index{
			{Key: "by_tag", Type: string(database.IndexKey), Attributes: []string{"tag"}, Desc: []bool{false}, Uid: "01IXTAG"},
			{Key: "by_tag_n", Type: string(database.IndexKey), Attributes: []string{"tag", "n"}, Desc: []bool{false, true}, Uid: "01IXTAGN"},
		},
		CreatedAt: timestamppb.New(time.Unix(1_700_000_000, 0)), UpdatedAt: timestamppb.New(time.Unix(1_700_000_000, 0)),
	}
}

// docStream fills project's stream with a database, docCollection and then
// events-2 document events as the write path appends them: the first quarter
// creates, the rest updates (with the state before) spread over those
// documents, each changing n and, every third, the tag. Published
// asynchronously: the write path's speed is not measured here.
func docStream(tb testing.TB, e *env, project string, events int) {
	tb.Helper()
	ctx := context.Background()
	if err := e.store.EnsureProjectStream(ctx, project, streams.Limits{}); err != nil {
		tb.Fatal(err)
	}
	js := e.store.JetStream()
	t0 := time.Unix(1_700_000_000, 0)
	n := 0
	publish := func(subject string, ev *eventsv1.Envelope) {
		n++
		ev.Id = fmt.Sprintf("01DOCBENCH%016d", n)
		ev.OccurredAt = timestamppb.New(t0.Add(time.Duration(n) * time.Millisecond))
		ev.Actor = &eventsv1.Actor{Kind: eventsv1.Actor_KIND_API_KEY, Id: "admin", ProjectId: project}
		data, err := proto.Marshal(ev)
		if err != nil {
			tb.Fatal(err)
		}
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(streams.HeaderMsgID, ev.Id)
		if _, err := js.PublishMsgAsync(m); err != nil {
			tb.Fatal(err)
		}
	}
	c := docCollection(project)
	publish(streams.ProjectSubject(project, "databases", "main", "create"), &eventsv1.Envelope{Payload: &eventsv1.Envelope_DatabaseCreated{
		DatabaseCreated: &eventsv1.DatabaseCreated{Database: &eventsv1.Database{Id: "main", ProjectId: project, Name: "Main", Enabled: true, Uid: c.DatabaseUid}}}})
	publish(streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "create"), &eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionCreated{
		CollectionCreated: &eventsv1.CollectionCreated{Collection: c}}})
	docs := max((events-2)/4, 1)
	state := make([]*eventsv1.Document, docs)
	for i := range events - 2 {
		at := timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond))
		id := fmt.Sprintf("doc%07d", i%docs)
		data, _ := json.Marshal(map[string]any{"tag": fmt.Sprintf("t%d", (i/docs+i)%100), "n": i,
			"title": fmt.Sprintf("document %s of the replay benchmark, padded with some text to look like a real one", id)})
		d := &eventsv1.Document{Id: id, ProjectId: project, DatabaseId: "main", CollectionId: c.Id, CollectionUid: c.Uid,
			DataJson: string(data), Permissions: []string{`read("any")`, `update("users")`}, CreatedAt: at, UpdatedAt: at, SchemaVersion: 1}
		subject := streams.ProjectSubject(project, "databases", "main", "collections", c.Id, "documents", id)
		if before := state[i%docs]; before == nil {
			publish(subject+".create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}})
		} else {
			d.CreatedAt, d.Sequence = before.CreatedAt, before.Sequence
			publish(subject+".update", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: d, Before: before, Change: "update"}}})
		}
		if state[i%docs] == nil {
			d = proto.Clone(d).(*eventsv1.Document)
			d.Sequence = uint64(n) // the create's own sequence
		}
		state[i%docs] = d
		if n%2_000 == 0 { // bound the publisher's outstanding acks (below nats.go's 4,000, or it stalls under load)
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				tb.Fatal("async publish did not complete")
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("async publish did not complete")
	}
	info, err := e.store.StreamInfo(ctx, streams.ProjectStream(project))
	if err != nil || info.LastSeq != uint64(events) {
		tb.Fatalf("stream has %d messages (%v), want %d", info.LastSeq, err, events)
	}
}

// orderedRead reads the whole stream through the ordered consumer in the
// projector's batches, decoding nothing: the ceiling of a rebuild.
func orderedRead(tb testing.TB, e *env, stream string, events int) {
	tb.Helper()
	stop := errors.New("done")
	n := 0
	err := e.store.Subscribe(context.Background(), stream, 1, DefaultBatch, func(batch []streams.StoredMsg) error {
		n += len(batch)
		if n >= events {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		tb.Fatalf("Subscribe: %v after %d", err, n)
	}
}

// BenchmarkReplayDocuments measures, in the same run and over the same
// document-heavy stream, (a) the raw ordered read, (b) `cairn replay` of
// the project (drop, then decode and apply every event into Badger) and
// (c) the same with the bulk writes before sortedLoad (one WriteBatch,
// unsorted: batchWriter) into a second Badger, reporting the rates and
// rebuild/read (issue 19 wants >= 0.5); (b) and (c) take turns going
// first. Set CAIRN_BENCH_REPLAY_EVENTS for a longer stream (e.g.
// 1000000). Badger is opened as `cairn serve` opens it
// (serveBadgerOptions): Badger's own 64 MiB memtables made each rebuild's
// drop allocate and clear 64 MiB.
func BenchmarkReplayDocuments(b *testing.B) {
	events := replayEvents(b)
	e := newServeEnv(b)
	docStream(b, e, "bench", events)
	p := New(e.db, e.store, Options{Logger: e.log})
	defer p.Close()
	unsorted := New(e.secondBadger(), e.store, Options{Logger: e.log})
	defer unsorted.Close()
	unsorted.newBulkWriter = newBatchWriter(unsorted)
	ctx := context.Background()
	stream := streams.ProjectStream("bench")
	var read, readCPU time.Duration
	var rebuild, rebuildCPU [2]time.Duration // sorted, unsorted
	replayRuns++
	for b.Loop() {
		stopProfile := profilePhase(b, "read")
		start, cpu := time.Now(), processCPU()
		orderedRead(b, e, stream, events)
		read += time.Since(start)
		readCPU += processCPU() - cpu
		stopProfile()
		for turn := range 2 {
			which := (turn + replayRuns) % 2
			name := [2]string{"rebuild", "rebuild-unsorted"}[which]
			stopProfile = profilePhase(b, name)
			start, cpu = time.Now(), processCPU()
			n, err := [2]*Projections{p, unsorted}[which].Rebuild(ctx, "bench")
			if err != nil || n != events {
				b.Fatalf("%s = %d, %v", name, n, err)
			}
			rebuild[which] += time.Since(start)
			rebuildCPU[which] += processCPU() - cpu
			stopProfile()
		}
	}
	total := float64(events * b.N)
	readRate := total / read.Seconds()
	b.ReportMetric(readRate, "read-events/s")
	for which, name := range [2]string{"rebuild", "unsorted"} {
		rate := total / rebuild[which].Seconds()
		b.ReportMetric(rate, name+"-events/s")
		b.ReportMetric(rate/readRate, name+"/read")
		// The same per CPU second of the whole process (NATS server
		// included): steadier than wall time when other work shares the
		// cores.
		if readCPU > 0 && rebuildCPU[which] > 0 {
			b.ReportMetric(float64(rebuildCPU[which].Microseconds())/total, name+"-cpu-µs/event")
			b.ReportMetric(readCPU.Seconds()/rebuildCPU[which].Seconds(), name+"/read-cpu")
		}
	}
	if readCPU > 0 {
		b.ReportMetric(float64(readCPU.Microseconds())/total, "read-cpu-µs/event")
	}
}

// replayRuns counts BenchmarkReplayDocuments' runs: with -count, the
// sorted and the unsorted rebuild take turns going first.
var replayRuns int

// batchWriter is a bulk run's writes as they were before sortedLoad
// (f0801d7): one WriteBatch, in the order its map keeps. The benchmarks
// run it beside the sorted load.
type batchWriter struct{ wb *badger.WriteBatch }

func newBatchWriter(p *Projections) func(keyspace) (bulkWriter, error) {
	return func(keyspace) (bulkWriter, error) { return batchWriter{p.db.NewWriteBatch()}, nil }
}

func (w batchWriter) set(k, v []byte) error { return w.wb.Set(k, v) }
func (w batchWriter) delete(k []byte) error { return w.wb.Delete(k) }
func (w batchWriter) finish() error         { return w.wb.Flush() }

// profilePhase starts a CPU profile of one phase of a replay benchmark when
// CAIRN_BENCH_REPLAY_PROFILE names a file prefix (the profile of the whole
// benchmark is mostly the stream's set-up): <prefix>.<phase>.<n>.cpu, one
// file per call. It returns what stops it.
func profilePhase(tb testing.TB, phase string) func() {
	prefix := os.Getenv("CAIRN_BENCH_REPLAY_PROFILE")
	if prefix == "" {
		return func() {}
	}
	profiles[phase]++
	f, err := os.Create(fmt.Sprintf("%s.%s.%d.cpu", prefix, phase, profiles[phase]))
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
	}
}

// profiles counts profilePhase's files per phase (benchmarks run one at a
// time).
var profiles = map[string]int{}

// BenchmarkApplyDocuments is BenchmarkReplayDocuments' rebuild without the
// read: the same stream, held in memory, applied in rebuild batches into a
// dropped read model, then its indexes built. It profiles the apply path
// alone.
func BenchmarkApplyDocuments(b *testing.B) {
	events := replayEvents(b)
	e := newServeEnv(b)
	docStream(b, e, "bench", events)
	var msgs []streams.StoredMsg
	stop := errors.New("done")
	err := e.store.Subscribe(context.Background(), streams.ProjectStream("bench"), 1, bulkBatch, func(batch []streams.StoredMsg) error {
		msgs = append(msgs, batch...)
		if len(msgs) >= events {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		b.Fatal(err)
	}
	p := New(e.db, e.store, Options{Logger: e.log})
	defer p.Close()
	ctx := context.Background()
	sp := projectSpace("bench")
	info, err := e.store.StreamInfo(ctx, sp.stream)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		sp.bulk = newBulkState()
		if err := p.drop(sp); err != nil {
			b.Fatal(err)
		}
		r := &run{sp: sp, st: newState(), created: info.Created}
		for i := 0; i < len(msgs); i += bulkBatch {
			if err := p.applyBatch(ctx, r, msgs[i:min(i+bulkBatch, len(msgs))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.settle(r); err != nil {
			b.Fatal(err)
		}
		if err := p.flushWindow(sp, r.ck.Seq); err != nil {
			b.Fatal(err)
		}
		if _, err := p.buildIndexesInBulk(ctx, sp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplayProjects rebuilds four projects, each with a quarter of
// BenchmarkReplayDocuments' stream, one after another and then the way
// `cairn replay --all` does (RebuildAll: as many at once as there are
// cores), in the same run, and reports both per event, by wall and CPU
// time.
func BenchmarkReplayProjects(b *testing.B) {
	const projects = 4
	events := max(replayEvents(b)/projects, 10)
	e := newServeEnv(b)
	p, _ := e.newProjections()
	ids := make([]string, projects)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench%d", i)
		e.createProject(ids[i])
		docStream(b, e, ids[i], events)
		wait(b, p, streams.ProjectStream(ids[i]), uint64(events))
	}
	ctx := context.Background()
	var seq, par, seqCPU, parCPU time.Duration
	for b.Loop() {
		start, cpu := time.Now(), processCPU()
		for _, id := range ids {
			if n, err := p.Rebuild(ctx, id); err != nil || n != events {
				b.Fatalf("Rebuild(%s) = %d, %v", id, n, err)
			}
		}
		seq += time.Since(start)
		seqCPU += processCPU() - cpu
		start, cpu = time.Now(), processCPU()
		if _, err := p.RebuildAll(ctx, nil); err != nil {
			b.Fatal(err)
		}
		par += time.Since(start)
		parCPU += processCPU() - cpu
	}
	total := float64(projects * events * b.N)
	b.ReportMetric(total/seq.Seconds(), "one-by-one-events/s")
	b.ReportMetric(total/par.Seconds(), "all-events/s")
	b.ReportMetric(float64(seqCPU.Microseconds())/total, "one-by-one-cpu-µs/event")
	b.ReportMetric(float64(parCPU.Microseconds())/total, "all-cpu-µs/event")
}
