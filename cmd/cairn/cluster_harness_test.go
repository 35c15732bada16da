package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/projections"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
)

// The Cairn side of the cluster tests: several `cairn serve` child
// processes against one NATS cluster, a load that retries like a client,
// and the checks on the log and the read models.

// clusterMasterKey is the instance master key every node shares.
const clusterMasterKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"

// clusterHarness is a NATS cluster and the Cairn nodes using it.
type clusterHarness struct {
	t        *testing.T // the top-level test: owns the processes
	bin      string
	nats     *natsCluster
	dir      string
	replicas int

	mu       sync.Mutex
	nodes    []*crashChild // by Cairn node number - 1; nil while down
	dataDirs []string
	logs     []string // every child log, for the failure dump
}

func newClusterHarness(t *testing.T, replicas int) *clusterHarness {
	t.Helper()
	h := &clusterHarness{t: t, bin: buildCrashBinary(t), dir: t.TempDir(), replicas: replicas}
	// Registered first, so it runs last: after every process is gone.
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CAIRN_CLUSTER_LOGS") != "" {
			h.dumpLogs()
		}
	})
	h.nats = startNATSCluster(t, 3)
	return h
}

// dumpLogs prints the tail of every child's log.
func (h *clusterHarness) dumpLogs() {
	var logs []string
	for _, p := range h.nats.procs {
		for i := 1; i <= p.starts; i++ {
			logs = append(logs, filepath.Join(h.nats.dir, fmt.Sprintf("%s-start%d.log", p.name, i)))
		}
	}
	h.mu.Lock()
	logs = append(logs, h.logs...)
	h.mu.Unlock()
	for _, l := range logs {
		h.t.Logf("--- tail of %s ---\n%s", filepath.Base(l), tailFile(l, 8<<10, "Error trying to connect to route"))
	}
}

// node returns Cairn node i (0-based), nil while it is down.
func (h *clusterHarness) node(i int) *crashChild {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i >= len(h.nodes) {
		return nil
	}
	return h.nodes[i]
}

// readyObservation is what a start saw on /readyz before it turned 200.

// startNode starts Cairn node i (a new one when i == len(nodes)) on its data
// directory and waits until /readyz is 200. Every /readyz answer before that
// is recorded. When onReady is set, it runs right after the first 200, before
// anything else can happen: what the node serves at that moment.
func (h *clusterHarness) startNode(t *testing.T, i int, onReady func(c *crashChild)) (*crashChild, readyObservation) {
	t.Helper()
	h.mu.Lock()
	if i == len(h.nodes) {
		h.nodes = append(h.nodes, nil)
		h.dataDirs = append(h.dataDirs, filepath.Join(h.dir, fmt.Sprintf("cairn%d", i+1), "data"))
	}
	dataDir := h.dataDirs[i]
	h.mu.Unlock()
	for attempt := 1; ; attempt++ {
		logName := fmt.Sprintf("cairn%d-%s-%d.log", i+1, time.Now().Format("150405.000"), attempt)
		c, obs, err := h.tryStartNode(t, dataDir, logName, onReady)
		if err == nil {
			h.mu.Lock()
			h.nodes[i] = c
			h.mu.Unlock()
			return c, obs
		}
		if attempt < 3 && strings.Contains(c.logTail(), "address already in use") {
			continue
		}
		t.Fatalf("cairn node %d: %v\n--- child log ---\n%s", i+1, err, c.logTail())
	}
}

func (h *clusterHarness) tryStartNode(t *testing.T, dataDir, logName string, onReady func(*crashChild)) (*crashChild, readyObservation, error) {
	c, obs, err := launchChild(t, childSpec{
		owner: h.t, // the processes belong to the top-level test: they outlive a subtest
		bin:   h.bin, dataDir: dataDir, logName: logName,
		args:    []string{"--log-level", "info", "--nats-url", h.nats.urls(), "--replicas", strconv.Itoa(h.replicas)},
		env:     []string{"CAIRN_ADMIN_KEY=" + testAdminKey, "CAIRN_MASTER_KEY=" + clusterMasterKey},
		onReady: onReady, readyPoll: 2 * time.Millisecond, probe: 2 * time.Second,
	})
	h.mu.Lock()
	h.logs = append(h.logs, c.logPath)
	h.mu.Unlock()
	return c, obs, err
}

// stopNode stops node i with SIGTERM and requires exit status 0.
func (h *clusterHarness) stopNode(t *testing.T, i int) {
	t.Helper()
	c := h.node(i)
	c.t = t
	c.stopGracefully()
	h.mu.Lock()
	h.nodes[i] = nil
	h.mu.Unlock()
}

// killNode kills node i with SIGKILL.
func (h *clusterHarness) killNode(t *testing.T, i int) {
	t.Helper()
	c := h.node(i)
	c.t = t
	h.mu.Lock()
	h.nodes[i] = nil
	h.mu.Unlock()
	if st, _ := c.signal(os.Kill, 10*time.Second); st.Success() {
		t.Fatalf("SIGKILL: exit %v", st)
	}
}

// seqOf returns a write's Cairn-Seq.
func seqOf(t *testing.T, info *connect.CallInfo) uint64 {
	t.Helper()
	seq, err := strconv.ParseUint(info.ResponseHeader().Get("Cairn-Seq"), 10, 64)
	if err != nil || seq == 0 {
		t.Fatalf("write answered without a valid Cairn-Seq: %q", info.ResponseHeader().Get("Cairn-Seq"))
	}
	return seq
}

// minSeq returns an operator context that asks the serving node to have
// applied seq first.
func minSeq(ctx context.Context, seq uint64) (context.Context, *connect.CallInfo) {
	ctx, info := as(ctx, testAdminKey)
	if seq > 0 {
		info.RequestHeader().Set("Cairn-Min-Seq", strconv.FormatUint(seq, 10))
	}
	return ctx, info
}

// --- load -------------------------------------------------------------

// clusterLoad is writers renaming keys through several Cairn nodes. Each
// logical write has a unique name and its own Idempotency-Key; a failed
// attempt is retried with the same key, as a client would: twice on its home
// node, then on the next one (a load balancer taking a node out).
type clusterLoad struct {
	h       *clusterHarness
	project string
	keyIDs  []string
	stop    chan struct{}
	wg      sync.WaitGroup
	// deadline bounds the whole load, so a cluster that stops taking writes
	// fails the test in bounded time instead of retrying for minutes.
	deadline time.Time

	acked   atomic.Int64
	perNode []atomic.Int64 // acknowledgements by the node that answered

	mu         sync.Mutex
	acks       []crashAck
	unexpected []error
	codes      map[string]int      // retried errors by code
	samples    map[string][]string // a few messages per code
	gaveUp     []string
}

const (
	clusterAttempts       = 10
	clusterAttemptTimeout = 5 * time.Second
	clusterLoadBound      = 45 * time.Second
)

// startClusterLoad starts writersPerNode writers homed on each of nodes;
// each stops after perWriter logical writes (0: until stop).
func (h *clusterHarness) startClusterLoad(project, phase string, keyIDs []string, nodes []int, writersPerNode, perWriter int) *clusterLoad {
	l := &clusterLoad{h: h, project: project, keyIDs: keyIDs, stop: make(chan struct{}), deadline: time.Now().Add(clusterLoadBound),
		perNode: make([]atomic.Int64, len(h.dataDirs)), codes: map[string]int{}, samples: map[string][]string{}}
	for w := range writersPerNode * len(nodes) {
		home := w % len(nodes)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; perWriter == 0 || i < perWriter; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if time.Now().After(l.deadline) {
					l.mu.Lock()
					l.unexpected = append(l.unexpected, fmt.Errorf("writer %d stopped after %s with %d of its writes done", w, clusterLoadBound, i))
					l.mu.Unlock()
					return
				}
				name := fmt.Sprintf("%s-w%d-%d", phase, w, i)
				l.write(nodes, home, keyIDs[rand.IntN(len(keyIDs))], name)
			}
		}()
	}
	return l
}

// write performs one logical write with bounded retries.
func (l *clusterLoad) write(nodes []int, home int, key, name string) {
	backoff := 50 * time.Millisecond
	for attempt := range clusterAttempts {
		ni := nodes[(home+attempt/2)%len(nodes)]
		c := l.h.node(ni)
		var err error
		if c == nil {
			err = connect.NewError(connect.CodeUnavailable, "node is down (test)")
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), clusterAttemptTimeout)
			op, info := as(ctx, testAdminKey)
			info.RequestHeader().Set("Idempotency-Key", name)
			var res *cairnv1.UpdateKeyResponse
			res, err = c.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: l.project, KeyId: key, Name: &name})
			cancel()
			if err == nil {
				seq, perr := strconv.ParseUint(info.ResponseHeader().Get("Cairn-Seq"), 10, 64)
				l.mu.Lock()
				switch {
				case perr != nil || seq == 0:
					l.unexpected = append(l.unexpected, fmt.Errorf("write %s acknowledged by node %d without a valid Cairn-Seq %q", name, ni+1, info.ResponseHeader().Get("Cairn-Seq")))
				case res.GetKey().GetName() != name:
					l.unexpected = append(l.unexpected, fmt.Errorf("write %s acknowledged by node %d (seq %d, attempt %d) with key name %q", name, ni+1, seq, attempt+1, res.GetKey().GetName()))
				default:
					l.acks = append(l.acks, crashAck{key: key, name: name, seq: seq})
				}
				l.mu.Unlock()
				l.acked.Add(1)
				l.perNode[ni].Add(1)
				return
			}
		}
		code := connect.CodeOf(err)
		switch code {
		case connect.CodeNotFound, connect.CodeInvalidArgument, connect.CodePermissionDenied, connect.CodeUnauthenticated,
			connect.CodeFailedPrecondition, connect.CodeAlreadyExists, connect.CodeUnimplemented, connect.CodeResourceExhausted:
			// Not an error a client retries: this logical write is lost to it.
			l.mu.Lock()
			l.unexpected = append(l.unexpected, fmt.Errorf("write %s on node %d (attempt %d): %w", name, ni+1, attempt+1, err))
			l.mu.Unlock()
			return
		}
		l.mu.Lock()
		l.codes[code.String()]++
		if len(l.samples[code.String()]) < 3 {
			l.samples[code.String()] = append(l.samples[code.String()], fmt.Sprintf("node %d: %v", ni+1, err))
		}
		l.mu.Unlock()
		if time.Now().After(l.deadline) {
			break
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
	l.mu.Lock()
	l.gaveUp = append(l.gaveUp, name)
	l.mu.Unlock()
}

// wait waits for the writers (closing stop first when asked) and reports.
// Every logical write must be acknowledged within its retries: the load runs
// only where a majority of NATS and at least one Cairn node stay up.
func (l *clusterLoad) wait(t *testing.T, phase string, stop bool) []crashAck {
	t.Helper()
	if stop {
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, err := range l.unexpected {
		if i == 8 {
			t.Errorf("%s: … and %d more", phase, len(l.unexpected)-8)
			break
		}
		t.Errorf("%s: unexpected: %v", phase, err)
	}
	if len(l.gaveUp) > 0 {
		t.Errorf("%s: %d logical writes not acknowledged after %d attempts each (first: %s)", phase, len(l.gaveUp), clusterAttempts, l.gaveUp[0])
	}
	var per []string
	for i := range l.perNode {
		per = append(per, fmt.Sprintf("node%d=%d", i+1, l.perNode[i].Load()))
	}
	var codes []string
	for c, n := range l.codes {
		codes = append(codes, fmt.Sprintf("%s×%d %q", c, n, l.samples[c]))
	}
	sort.Strings(codes)
	t.Logf("%s: %d writes acknowledged (%s); retried errors: %v", phase, len(l.acks), strings.Join(per, " "), codes)
	if len(l.acks) == 0 {
		t.Fatalf("%s: no write was acknowledged; the test proves nothing", phase)
	}
	return l.acks
}

// waitAcked waits until at least n writes are acknowledged in all.
func (l *clusterLoad) waitAcked(t *testing.T, n int64, bound time.Duration, what string) bool {
	t.Helper()
	deadline := time.Now().Add(bound)
	for l.acked.Load() < n {
		if time.Now().After(deadline) {
			t.Errorf("%s: only %d of %d writes acknowledged within %s", what, l.acked.Load(), n, bound)
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// waitNodeAcked waits until Cairn node i has acknowledged at least n writes.
func (l *clusterLoad) waitNodeAcked(t *testing.T, i int, n int64, bound time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(bound)
	for l.perNode[i].Load() < n {
		if time.Now().After(deadline) {
			t.Errorf("Cairn node %d: only %d of %d writes acknowledged within %s", i+1, l.perNode[i].Load(), n, bound)
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// metrics returns node i's /metrics lines about projections, appends and
// NATS (what a stalled node is doing), for failure messages.
func (h *clusterHarness) metrics(i int) string {
	c := h.node(i)
	if c == nil {
		return "(node down)"
	}
	status, body := httpGet(&http.Client{Timeout: 2 * time.Second, Transport: operatorTransport{}}, c.url+"/metrics")
	if status != http.StatusOK {
		return fmt.Sprintf("(/metrics: %d %s)", status, body)
	}
	var keep []string
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "#") && (strings.Contains(l, "cairn_projection") || strings.Contains(l, "cairn_nats") ||
			strings.Contains(l, "cairn_append_duration_seconds_count")) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// --- checks -----------------------------------------------------------

// clusterLog reads the project's key events, paginated, from the stream
// (ListEvents reads the log, not the read models).
func clusterLog(t *testing.T, c *crashChild, project string) []crashKeyEvent2 {
	t.Helper()
	var out []crashKeyEvent2
	token := ""
	for {
		op, _ := as(context.Background(), testAdminKey)
		res, err := c.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: project, Subject: "keys.>", PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("list events of %s: %v", project, err)
		}
		for _, e := range res.GetEvents() {
			k := crashKeyOf(e.GetEnvelope())
			if k == nil {
				t.Fatalf("seq %d on %s is not a key event: %v", e.GetSeq(), e.GetSubject(), e.GetEnvelope())
			}
			out = append(out, crashKeyEvent2{crashKeyEvent: crashKeyEvent{seq: e.GetSeq(), id: e.GetEnvelope().GetId(), name: k.GetName()}, key: k.GetId()})
		}
		if token = res.GetNextPageToken(); token == "" {
			return out
		}
	}
}

type crashKeyEvent2 struct {
	crashKeyEvent
	key string
}

// clusterVerify checks that every acknowledged write is in the log exactly
// once, at its acknowledged sequence and on its key, that no event id and
// no sequence repeats, and that the log is the only writer's: each logged
// name is one logical write's. It returns the log's last sequence.
func clusterVerify(t *testing.T, c *crashChild, project string, acks []crashAck) uint64 {
	t.Helper()
	evs := clusterLog(t, c, project)
	atSeq := map[uint64]crashKeyEvent2{}
	ids := map[string]uint64{}
	names := map[string]int{}
	var last uint64
	for _, e := range evs {
		if e.seq <= last {
			t.Errorf("sequences not increasing: %d after %d", e.seq, last)
		}
		last = e.seq
		if prev, dup := ids[e.id]; dup {
			t.Errorf("DUPLICATE: event id %s stored twice (seq %d and %d)", e.id, prev, e.seq)
		}
		ids[e.id] = e.seq
		atSeq[e.seq] = e
		names[e.name]++
	}
	lost, dups := 0, 0
	for _, a := range acks {
		e, ok := atSeq[a.seq]
		switch {
		case !ok:
			lost++
			if lost <= 5 {
				t.Errorf("LOST: acknowledged write %q to key %s at seq %d is not in the log", a.name, a.key, a.seq)
			}
		case e.name != a.name || e.key != a.key:
			t.Errorf("seq %d holds %q on key %s, but %q on key %s was acknowledged at that seq", a.seq, e.name, e.key, a.name, a.key)
		}
		if n := names[a.name]; n != 1 && ok {
			dups++
			if dups <= 5 {
				t.Errorf("DUPLICATE: acknowledged write %q appears %d times in the log (want exactly once)", a.name, n)
			}
		}
	}
	// A logical write that was never acknowledged may be in the log, but at
	// most once: its retries shared one Idempotency-Key.
	for name, n := range names {
		if n > 1 && !strings.HasPrefix(name, "key-") {
			t.Errorf("DUPLICATE: %q is in the log %d times", name, n)
		}
	}
	if lost > 5 || dups > 5 {
		t.Errorf("in all %d lost and %d duplicated acknowledged writes", lost, dups)
	}
	t.Logf("verified %d acknowledged writes against %d logged key events (last seq %d)", len(acks), len(evs), last)
	return last
}

// clusterReads is what a node serves for the project: every key, listed
// and fetched one by one, after it has applied seq.
func clusterReads(t *testing.T, c *crashChild, project string, keyIDs []string, seq uint64) []*cairnv1.Key {
	t.Helper()
	var out []*cairnv1.Key
	token := ""
	for {
		op, _ := minSeq(context.Background(), seq)
		res, err := c.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: project, PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("%s: list keys (min seq %d): %v", c.url, seq, err)
		}
		out = append(out, res.GetKeys()...)
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	for _, id := range keyIDs {
		op, _ := minSeq(context.Background(), seq)
		res, err := c.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: project, KeyId: id})
		if err != nil {
			t.Fatalf("%s: get key %s (min seq %d): %v", c.url, id, seq, err)
		}
		out = append(out, res.GetKey())
	}
	return out
}

// sameReads requires two nodes' reads to be equal.
func sameReads(t *testing.T, what string, a, b []*cairnv1.Key) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s: %d vs %d keys", what, len(a), len(b))
		return
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Errorf("%s: entry %d differs:\n  %v\n  %v", what, i, a[i], b[i])
			return
		}
	}
}

// clusterCheckRebuild opens each stopped node's data dir in-process (against
// the cluster) and requires that its incrementally built read models equal a
// fresh rebuild from the streams, and equal every other node's.
func (h *clusterHarness) clusterCheckRebuild(t *testing.T, nodes []int, project string) {
	t.Helper()
	ctx := context.Background()
	var first map[string][]projections.KV
	for _, i := range nodes {
		cfg := &config{DataDir: h.dataDirs[i], NATSURL: h.nats.urls(), Sync: defaultSync, Replicas: h.replicas}
		n, err := openNode(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("node %d: open data dir in-process: %v", i+1, err)
		}
		label := fmt.Sprintf("node %d", i+1)
		snaps := map[string][]projections.KV{
			streams.SystemStream:           checkRebuild(t, n, "", label),
			streams.ProjectStream(project): checkRebuild(t, n, project, label),
		}
		n.close()
		if first == nil {
			first = snaps
			continue
		}
		for stream, s := range snaps {
			if d := crashDiffKV(first[stream], s); d != "" {
				t.Errorf("%s: node %d's read models differ from node %d's: %s", stream, i+1, nodes[0]+1, d)
			}
		}
	}
}
