package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// Project ids the bench creates on each server.
const (
	benchRawProject    = "bench-raw"    // (a): a stream only, never registered
	benchWriteProject  = "bench-write"  // (b)
	benchReplayProject = "bench-replay" // (c)
	benchReplayKeys    = 1000           // distinct keys (c)'s events update
)

// publishOp is (a): a plain JetStream publish awaiting the ack, to a
// scratch stream with exactly a project stream's settings.
func (r *benchRun) publishOp(ctx context.Context, h *server) (opFunc, error) {
	if err := h.node.store.EnsureProjectStream(ctx, benchRawProject, streams.Limits{}); err != nil {
		return nil, err
	}
	js := h.node.store.JetStream()
	subject := streams.ProjectSubject(benchRawProject, "bench", "msg")
	data := make([]byte, r.o.msgBytes)
	return func(ctx context.Context, _ int, _ uint64) error {
		_, err := js.Publish(ctx, subject, data)
		return err
	}, nil
}

// writeOp is (b): UpdateKey renaming one of --keys keys (worker i renames
// key i mod keys, so writers do not contend on one aggregate), as the
// operator, through the generated Connect client over loopback h2c. It also
// returns a GetKey op on the same keys.
func (r *benchRun) writeOp(ctx context.Context, h *server) (get, write opFunc, err error) {
	cl := benchConnect(h.url)
	projects := cairnv1connect.NewProjectsServiceClient(cl)
	keys := cairnv1connect.NewKeysServiceClient(cl)
	if _, err := projects.CreateProject(authed(ctx, r.adminKey),
		&cairnv1.CreateProjectRequest{ProjectId: benchWriteProject, Name: "bench writes"}); err != nil {
		return nil, nil, fmt.Errorf("create project %s: %w", benchWriteProject, err)
	}
	ids := make([]string, r.o.keys)
	for i := range ids {
		res, err := keys.CreateKey(authed(ctx, r.adminKey), &cairnv1.CreateKeyRequest{ProjectId: benchWriteProject,
			Name: "key " + strconv.Itoa(i), Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
		if err != nil {
			return nil, nil, fmt.Errorf("create key %d: %w", i, err)
		}
		ids[i] = res.GetKey().GetId()
	}
	// The same RPC shape without the write path: what the transport alone
	// allows on this machine, to tell Cairn's cost from HTTP's.
	get = func(ctx context.Context, worker int, _ uint64) error {
		_, err := keys.GetKey(authed(ctx, r.adminKey), &cairnv1.GetKeyRequest{ProjectId: benchWriteProject, KeyId: ids[worker%len(ids)]})
		return err
	}
	return get, func(ctx context.Context, worker int, seq uint64) error {
		// A name never used before, so every call really writes an event.
		name := "n" + strconv.FormatUint(seq, 36)
		_, err := keys.UpdateKey(authed(ctx, r.adminKey), &cairnv1.UpdateKeyRequest{
			ProjectId: benchWriteProject, KeyId: ids[worker%len(ids)], Name: &name})
		return err
	}, nil
}

// replayRow is one (c) measurement: medians over --rounds.
type replayRow struct {
	sync     string
	events   int
	fill     time.Duration // async-publishing the events (pipelined, not a target)
	reads    []time.Duration
	rebuilds []time.Duration
}

func (rr replayRow) readRate() float64    { return rate(rr.events, median(rr.reads)) }
func (rr replayRow) rebuildRate() float64 { return rate(rr.events, median(rr.rebuilds)) }

// replay is (c): fill a registered project's stream with --events key
// updates, then time the raw ordered read of it (counting only) and
// projections.Rebuild of it (drop, decode, apply, checkpoint).
func (r *benchRun) replay(ctx context.Context, h *server, mode string) (replayRow, error) {
	rr := replayRow{sync: mode, events: r.o.events}
	projects := cairnv1connect.NewProjectsServiceClient(benchConnect(h.url))
	if _, err := projects.CreateProject(authed(ctx, r.adminKey),
		&cairnv1.CreateProjectRequest{ProjectId: benchReplayProject, Name: "bench replay"}); err != nil {
		return rr, fmt.Errorf("create project %s: %w", benchReplayProject, err)
	}
	stream := streams.ProjectStream(benchReplayProject)
	start := time.Now()
	last, err := r.fill(ctx, h, r.o.events)
	if err != nil {
		return rr, err
	}
	rr.fill = time.Since(start)
	// The live projector applies the fill too; let it finish first so it
	// does not compete with what is timed.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	err = h.node.reads.WaitApplied(wctx, stream, last)
	cancel()
	if err != nil {
		return rr, err
	}
	r.progress("bench: sync %-6s filled %d events in %s", mode, r.o.events, fmtDur(rr.fill))

	err = r.profiled("read.sync-"+mode, func() error {
		for range r.o.rounds {
			t0 := time.Now()
			n := 0
			for _, err := range h.node.store.Read(ctx, stream, streams.ReadOptions{}) {
				if err != nil {
					return fmt.Errorf("read %s: %w", stream, err)
				}
				n++
			}
			if n != r.o.events {
				return fmt.Errorf("read %s: %d messages, want %d", stream, n, r.o.events)
			}
			rr.reads = append(rr.reads, time.Since(t0))
		}
		return nil
	})
	if err != nil {
		return rr, err
	}
	err = r.profiled("rebuild.sync-"+mode, func() error {
		for range r.o.rounds {
			t0 := time.Now()
			n, err := h.node.reads.Rebuild(ctx, benchReplayProject)
			if err != nil {
				return err
			}
			if n != r.o.events {
				return fmt.Errorf("rebuild %s: applied %d events, want %d", stream, n, r.o.events)
			}
			rr.rebuilds = append(rr.rebuilds, time.Since(t0))
		}
		return nil
	})
	if err != nil {
		return rr, err
	}
	r.progress("bench: sync %-6s read %9.0f events/s   rebuild %9.0f events/s",
		mode, rr.readRate(), rr.rebuildRate())
	return rr, nil
}

// fill publishes n KeyUpdated events to the replay project asynchronously
// (the fill's speed is not a target) and returns the last sequence.
func (r *benchRun) fill(ctx context.Context, h *server, n int) (uint64, error) {
	const fillWindow = 1024
	js, err := jetstream.New(h.node.nc, jetstream.WithPublishAsyncMaxPending(2*fillWindow))
	if err != nil {
		return 0, fmt.Errorf("fill: %w", err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	hash := make([]byte, 32)
	actor := &eventsv1.Actor{Kind: eventsv1.Actor_KIND_OPERATOR}
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		at := timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond))
		k := &eventsv1.Key{Id: fmt.Sprintf("k%04d", i%benchReplayKeys), ProjectId: benchReplayProject,
			Name: "name " + strconv.Itoa(i), Scopes: []string{"keys.read"}, SecretHash: hash,
			CreatedAt: timestamppb.New(t0), UpdatedAt: at}
		env := &eventsv1.Envelope{Id: h.node.log.NewID(), OccurredAt: at, Actor: actor,
			Payload: &eventsv1.Envelope_KeyUpdated{KeyUpdated: &eventsv1.KeyUpdated{Key: k}}}
		subject, err := eventlog.Subject(env)
		if err != nil {
			return 0, err
		}
		data, err := eventlog.Encode(env)
		if err != nil {
			return 0, err
		}
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(streams.HeaderMsgID, env.GetId())
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return 0, fmt.Errorf("fill: publish %d: %w", i, err)
		}
		futures = append(futures, f)
		// Drain every window: with fsync on every message the server falls
		// behind an unbounded pipeline and the client reports a stall.
		if (i+1)%fillWindow == 0 || i == n-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	var last uint64
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			return 0, fmt.Errorf("fill: publish %d: %w", i, err)
		}
	}
	return last, nil
}

// projectRow is one (d) step: projects created up to total, then a restart.
type projectRow struct {
	total, created int
	create         sample
	after          procStats // right after creating them
	stop           time.Duration
	listen, ready  time.Duration // restart: exec to HTTP up, to /readyz 200
	restarted      procStats     // once ready again
}

// runProjects is (d): a `cairn serve` child process on a fresh directory;
// for each count, create projects up to it through the API, read the
// server's RSS, restart it and time until /readyz answers 200.
func (r *benchRun) runProjects(ctx context.Context) error {
	bin := r.o.bin
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find the cairn binary (give --bin): %w", err)
		}
	}
	dir := filepath.Join(r.root, "projects")
	if err := emptyDir(dir); err != nil {
		return err
	}
	ready := benchHTTPClient()
	child, err := startBenchChild(ctx, bin, dir, r.adminKey, r.o.projSync, r.stderr)
	if err != nil {
		return err
	}
	defer func() {
		if child != nil {
			_ = child.stop()
		}
	}()
	if err := waitReady(ctx, ready, child.url, time.Minute); err != nil {
		return err
	}
	r.progress("bench: projects: server pid %d at %s", child.cmd.Process.Pid, child.url)
	var next atomic.Int64
	for _, total := range r.o.projects {
		row := projectRow{total: total, created: total - int(next.Load())}
		if row.created <= 0 {
			continue
		}
		hc := benchHTTPClient()
		projects := cairnv1connect.NewProjectsServiceClient(connect.NewClient(connecthttp.NewTransport(hc, child.url)))
		create := func(ctx context.Context, _ int, _ uint64) error {
			id := fmt.Sprintf("p%06d", next.Add(1))
			_, err := projects.CreateProject(authed(ctx, r.adminKey), &cairnv1.CreateProjectRequest{ProjectId: id, Name: id})
			return err
		}
		err := r.profiled(fmt.Sprintf("projects.create-%d", total), func() error {
			row.create = drive(ctx, r.o.projConc, 0, row.created, &r.seq, create)
			return nil
		})
		if err != nil {
			return err
		}
		// Failed creations are reported, not fatal: timeouts under load are
		// part of what this phase is there to show.
		if row.create.ops == 0 {
			return fmt.Errorf("every CreateProject call failed, first: %w", row.create.firstErr)
		}
		if row.create.errs > 0 {
			r.progress("bench: projects: %d of %d CreateProject calls failed, first: %v", row.create.errs, row.created, row.create.firstErr)
		}
		if row.after, err = readProcStats(child.cmd.Process.Pid); err != nil {
			return err
		}
		r.progress("bench: projects: %d created in %s, RSS %d MiB", total, fmtDur(row.create.elapsed), row.after.RSSKiB>>10)

		// An open HTTP/2 connection holds a graceful shutdown for a second
		// (the server's GOAWAY timeout); time the server's own stop instead.
		hc.CloseIdleConnections()
		ready.CloseIdleConnections()
		t0 := time.Now()
		err = child.stop()
		child = nil
		if err != nil {
			return err
		}
		row.stop = time.Since(t0)
		t0 = time.Now()
		if child, err = startBenchChild(ctx, bin, dir, r.adminKey, r.o.projSync, r.stderr); err != nil {
			return err
		}
		row.listen = time.Since(t0)
		if err := waitReady(ctx, ready, child.url, 30*time.Minute); err != nil {
			return err
		}
		row.ready = time.Since(t0)
		if row.restarted, err = readProcStats(child.cmd.Process.Pid); err != nil {
			return err
		}
		r.progress("bench: projects: %d: restart ready in %s, RSS %d MiB", total, fmtDur(row.ready), row.restarted.RSSKiB>>10)
		r.projects = append(r.projects, row)
	}
	return nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
