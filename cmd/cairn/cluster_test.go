package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
)

// TestCluster runs Cairn the way it grows past one machine (DESIGN.md §8,
// issue 8): three real nats-server processes clustered on loopback, R3
// streams, and several `cairn serve` processes sharing them, each with its
// own Badger read models. One cluster serves the subtests in order:
//
//  1. read-your-writes across nodes with the Cairn-Seq / Cairn-Min-Seq token;
//  2. kill -9 of the project stream's NATS leader during ~2,000 writes spread
//     over both nodes, then its restart: every acknowledged write is in the
//     log exactly once, and both nodes' read models equal a rebuild and each
//     other;
//  3. kill -9 of a Cairn node mid-load and its restart: it catches up from
//     its checkpoint and serves the same reads;
//  4. a new node with an empty data dir: not ready until caught up, then
//     serving the same reads; finally all three nodes' read models equal a
//     rebuild and each other.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and several cairn processes; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL/SIGTERM semantics")
	}
	start := time.Now()
	h := newClusterHarness(t, 3)
	t.Logf("NATS cluster up after %s", time.Since(start).Round(time.Millisecond))
	h.startNode(t, 0, nil)
	h.startNode(t, 1, nil)
	_, js := h.nats.connect(t)
	if info := streamInfo(t, js, streams.SystemStream); info.Config.Replicas != 3 {
		t.Errorf("system stream has %d replicas, want 3", info.Config.Replicas)
	}
	t.Logf("cluster and two Cairn nodes up after %s", time.Since(start).Round(time.Millisecond))

	steps := []struct {
		name string
		fn   func(t *testing.T, h *clusterHarness)
	}{
		{"ReadYourWritesAcrossNodes", clusterReadYourWrites},
		{"PerProjectReplicas", clusterProjectReplicas},
		{"SitesBothNodes", clusterSitesBothNodes},
		{"SessionsAcrossNodes", clusterSessions},
		{"NATSNodeKilledUnderLoad", clusterNATSKill},
		{"CairnNodeKilledUnderLoad", clusterCairnKill},
		{"NewNodeJoins", clusterNewNode},
	}
	for _, s := range steps {
		t0 := time.Now()
		ok := t.Run(s.name, func(t *testing.T) { s.fn(t, h) })
		t.Logf("%s: %s", s.name, time.Since(t0).Round(time.Millisecond))
		if !ok {
			// The later steps build on the earlier ones' cluster state.
			break
		}
	}
}

// clusterProject creates a project through node 1 with keys, and returns
// the key ids and the sequence (of the project stream) of the last write.
func clusterProject(t *testing.T, h *clusterHarness, project string, keys int) ([]string, uint64) {
	t.Helper()
	n1, n2 := h.node(0), h.node(1)
	op, info := as(context.Background(), testAdminKey)
	if _, err := n1.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: project, Name: project}); err != nil {
		t.Fatal(err)
	}
	sysSeq := seqOf(t, info)
	// Node 2 learns of the project from the system stream: a project call
	// carrying Cairn-Min-Sys-Seq waits for it.
	op, sinfo := as(context.Background(), testAdminKey)
	sinfo.RequestHeader().Set("Cairn-Min-Sys-Seq", strconv.FormatUint(sysSeq, 10))
	if _, err := n2.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: project}); err != nil {
		t.Fatalf("node 2: project %s after Cairn-Min-Sys-Seq %d of its creation on node 1: %v", project, sysSeq, err)
	}
	var ids []string
	var seq uint64
	for i := range keys {
		// Unavailable is an answer a client retries, with the same
		// Idempotency-Key (a new stream may still be electing its leader).
		for attempt := 1; ; attempt++ {
			op, info := as(context.Background(), testAdminKey)
			info.RequestHeader().Set("Idempotency-Key", fmt.Sprintf("%s-key-%d", project, i))
			res, err := n1.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: project, Name: fmt.Sprintf("key-%d", i),
				Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
			if connect.CodeOf(err) == connect.CodeUnavailable && attempt < 50 {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatalf("create key %d in the new project %s (attempt %d): %v", i, project, attempt, err)
			}
			ids = append(ids, res.GetKey().GetId())
			seq = seqOf(t, info)
			break
		}
	}
	_, js := h.nats.connect(t)
	if info := streamInfo(t, js, streams.ProjectStream(project)); info.Config.Replicas != h.replicas {
		t.Errorf("stream %s has %d replicas, want %d", streams.ProjectStream(project), info.Config.Replicas, h.replicas)
	}
	return ids, seq
}

// The operator sets a project's replicas as a limit; the stream follows it,
// also when it changes.
func clusterProjectReplicas(t *testing.T, h *clusterHarness) {
	op, _ := as(context.Background(), testAdminKey)
	if _, err := h.node(0).projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "solo", Name: "solo",
		Limits: &cairnv1.ProjectLimits{Replicas: 1}}); err != nil {
		t.Fatal(err)
	}
	_, js := h.nats.connect(t)
	if r := streamInfo(t, js, streams.ProjectStream("solo")).Config.Replicas; r != 1 {
		t.Fatalf("project with limits.replicas=1 got an R%d stream", r)
	}
	res, err := h.node(1).projects().UpdateProject(op, &cairnv1.UpdateProjectRequest{ProjectId: "solo",
		Limits: &cairnv1.ProjectLimits{Replicas: 3}})
	if err != nil || res.GetProject().GetLimits().GetReplicas() != 3 {
		t.Fatalf("raise replicas: %v %v", res, err)
	}
	if r := streamInfo(t, js, streams.ProjectStream("solo")).Config.Replicas; r != 3 {
		t.Fatalf("after raising the limit the stream is R%d", r)
	}
}

// 1. A write on one node is readable on the other at once with its token.
func clusterReadYourWrites(t *testing.T, h *clusterHarness) {
	const project = "ryw"
	ids, _ := clusterProject(t, h, project, 4)
	nodes := []*crashChild{h.node(0), h.node(1)}
	const rounds = 150
	for i := range rounds {
		w, r := nodes[i%2], nodes[(i+1)%2]
		ctx := context.Background()
		// Create on one node, read on the other.
		op, info := as(ctx, testAdminKey)
		created, err := w.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: project, Name: fmt.Sprintf("new-%d", i),
			Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
		if err != nil {
			t.Fatalf("round %d: create key: %v", i, err)
		}
		op, _ = minSeq(ctx, seqOf(t, info))
		got, err := r.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: project, KeyId: created.GetKey().GetId()})
		if err != nil {
			t.Fatalf("round %d: key created on %s, read on %s with its Cairn-Min-Seq: %v", i, w.url, r.url, err)
		}
		if got.GetKey().GetName() != fmt.Sprintf("new-%d", i) {
			t.Fatalf("round %d: read %q", i, got.GetKey().GetName())
		}
		// Update on one node, read on the other.
		name := fmt.Sprintf("renamed-%d", i)
		key := ids[i%len(ids)]
		op, info = as(ctx, testAdminKey)
		if _, err := w.keys().UpdateKey(op, &cairnv1.UpdateKeyRequest{ProjectId: project, KeyId: key, Name: &name}); err != nil {
			t.Fatalf("round %d: update key: %v", i, err)
		}
		op, _ = minSeq(ctx, seqOf(t, info))
		got, err = r.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: project, KeyId: key})
		if err != nil {
			t.Fatalf("round %d: get key: %v", i, err)
		}
		if got.GetKey().GetName() != name {
			t.Fatalf("round %d: key updated to %q on %s, but %s serves %q with Cairn-Min-Seq of the write", i, name, w.url, r.url, got.GetKey().GetName())
		}
	}

	// A deleted key is refused on the other node once it has applied the
	// deletion.
	n1, n2 := h.node(0), h.node(1)
	op, info := as(context.Background(), testAdminKey)
	created, err := n1.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: project, Name: "doomed",
		Scopes: &cairnv1.Scopes{Scopes: []string{"keys.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	op, _ = minSeq(context.Background(), seqOf(t, info))
	if _, err := n2.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: project, KeyId: created.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	kctx, _ := as(context.Background(), created.GetSecret())
	if _, err := n2.keys().ListKeys(kctx, &cairnv1.ListKeysRequest{ProjectId: project}); err != nil {
		t.Fatalf("node 2: the new key's own credential: %v", err)
	}
	op, info = as(context.Background(), testAdminKey)
	if _, err := n1.keys().DeleteKey(op, &cairnv1.DeleteKeyRequest{ProjectId: project, KeyId: created.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	op, _ = minSeq(context.Background(), seqOf(t, info))
	_, err = n2.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: project, KeyId: created.GetKey().GetId()})
	wantCode(t, err, connect.CodeNotFound)
	kctx, _ = as(context.Background(), created.GetSecret())
	_, err = n2.keys().ListKeys(kctx, &cairnv1.ListKeysRequest{ProjectId: project})
	wantCode(t, err, connect.CodeUnauthenticated)
	kctx, _ = as(context.Background(), created.GetSecret())
	_, err = n1.keys().ListKeys(kctx, &cairnv1.ListKeysRequest{ProjectId: project})
	wantCode(t, err, connect.CodeUnauthenticated)
}

const (
	loadProject = "load"
	loadKeys    = 16
)

// 2. The project stream's NATS leader is killed during sustained writes on
// both Cairn nodes, and restarted.
func clusterNATSKill(t *testing.T, h *clusterHarness) {
	keyIDs, _ := clusterProject(t, h, loadProject, loadKeys)
	_, js := h.nats.connect(t)
	stream := streams.ProjectStream(loadProject)
	info := streamInfo(t, js, stream)
	victim := h.nats.index(t, info.Cluster.Leader)
	t.Logf("%s leader is %s; meta leader %s", stream, info.Cluster.Leader, h.nats.metaLeader())

	const writersPerNode, perWriter = 4, 250 // 2,000 logical writes
	l := h.startClusterLoad(loadProject, "nk", keyIDs, []int{0, 1}, writersPerNode, perWriter)
	if !l.waitAcked(t, 400, 30*time.Second, "before the kill") {
		l.wait(t, "before the NATS kill", true)
		t.FailNow()
	}
	killedAt := l.acked.Load()
	before := []int64{l.perNode[0].Load(), l.perNode[1].Load()}
	t0 := time.Now()
	h.nats.kill(t, victim)
	t.Logf("killed nats %s (stream leader) after %d acknowledged writes", h.nats.procs[victim].name, killedAt)

	// Two of three NATS nodes are a majority: writes go on, on both nodes.
	for i := range 2 {
		if !l.waitNodeAcked(t, i, before[i]+100, 30*time.Second) {
			t.Logf("node %d /metrics:\n%s\nnode %d /metrics:\n%s", i+1, h.metrics(i), 2-i, h.metrics(1-i))
			break
		}
		t.Logf("Cairn node %d: 100 more writes acknowledged %s after the kill", i+1, time.Since(t0).Round(time.Millisecond))
	}
	h.nats.start(t, victim)
	t1 := time.Now()
	acks := l.wait(t, "NATS kill", false)
	h.nats.waitHealthy(t, victim, 30*time.Second)
	t.Logf("restarted nats %s healthy (JetStream current) %s after its restart", h.nats.procs[victim].name, time.Since(t1).Round(time.Millisecond))

	// Exactly once, and the same reads on both nodes after the last write.
	last := clusterVerify(t, h.node(0), loadProject, acks)
	r1 := clusterReads(t, h.node(0), loadProject, keyIDs, last)
	r2 := clusterReads(t, h.node(1), loadProject, keyIDs, last)
	sameReads(t, "node 1 vs node 2", r1, r2)
	checkReadModelMatchesLog(t, h.node(0), loadProject, keyIDs, last)

	// Read models equal a rebuild, and each other.
	h.stopNode(t, 0)
	h.stopNode(t, 1)
	h.clusterCheckRebuild(t, []int{0, 1}, loadProject)
	h.startNode(t, 0, nil)
	h.startNode(t, 1, nil)
}

// checkReadModelMatchesLog requires each key's read model to be its last
// logged event.
func checkReadModelMatchesLog(t *testing.T, c *crashChild, project string, keyIDs []string, seq uint64) {
	t.Helper()
	lastName := map[string]string{}
	for _, e := range clusterLog(t, c, project) {
		lastName[e.key] = e.name
	}
	for _, id := range keyIDs {
		op, _ := minSeq(context.Background(), seq)
		res, err := c.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: project, KeyId: id})
		if err != nil {
			t.Fatalf("get key %s: %v", id, err)
		}
		if res.GetKey().GetName() != lastName[id] {
			t.Errorf("key %s: read model has %q, its log's last event %q", id, res.GetKey().GetName(), lastName[id])
		}
	}
}

// 3. A Cairn node killed mid-load restarts and catches up.
func clusterCairnKill(t *testing.T, h *clusterHarness) {
	keyIDs := loadKeyIDs(t, h)
	l := h.startClusterLoad(loadProject, "ck", keyIDs, []int{0, 1}, 4, 0)
	if !l.waitAcked(t, 300, 30*time.Second, "before the kill") {
		l.wait(t, "before the Cairn kill", true)
		t.FailNow()
	}
	h.killNode(t, 1)
	killedAt := l.acked.Load()
	l.waitAcked(t, killedAt+300, 30*time.Second, "with Cairn node 2 down")
	c2, obs := h.startNode(t, 1, nil)
	t.Logf("node 2 restarted: ready after %s (%d× 503 before)", obs.took.Round(time.Millisecond), obs.notReady)
	l.waitAcked(t, l.acked.Load()+200, 30*time.Second, "after the restart")
	acks := l.wait(t, "Cairn kill", true)
	last := clusterVerify(t, h.node(0), loadProject, acks)
	sameReads(t, "node 1 vs restarted node 2",
		clusterReads(t, h.node(0), loadProject, keyIDs, last), clusterReads(t, c2, loadProject, keyIDs, last))
	checkReadModelMatchesLog(t, c2, loadProject, keyIDs, last)
	// It resumed from its checkpoint: no rebuild from scratch.
	if b, _ := os.ReadFile(c2.logPath); strings.Contains(string(b), "inconsistent with its stream") || strings.Contains(string(b), "PROJECTOR STOPPED") {
		t.Errorf("restarted node 2 did not resume from its checkpoint:\n%s", c2.logTail())
	}
}

// loadKeyIDs lists the load project's keys (in id order).
func loadKeyIDs(t *testing.T, h *clusterHarness) []string {
	t.Helper()
	op, _ := as(context.Background(), testAdminKey)
	res, err := h.node(0).keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: loadProject, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range res.GetKeys() {
		ids = append(ids, k.GetId())
	}
	if len(ids) != loadKeys {
		t.Fatalf("load project has %d keys, want %d", len(ids), loadKeys)
	}
	return ids
}

// 4. A third node joins with an empty data dir.
func clusterNewNode(t *testing.T, h *clusterHarness) {
	keyIDs := loadKeyIDs(t, h)
	want := clusterReads(t, h.node(0), loadProject, keyIDs, 0)
	var atReady []*cairnv1.Key
	c3, obs := h.startNode(t, 2, func(c *crashChild) {
		// The very first moment /readyz says 200, without any Cairn-Min-Seq:
		// a load balancer sends traffic now, so the reads must be complete.
		atReady = clusterReads(t, c, loadProject, keyIDs, 0)
	})
	t.Logf("node 3 (empty data dir) ready after %s; /readyz answered 503 %d× before", obs.took.Round(time.Millisecond), obs.notReady)
	if len(obs.other) > 0 {
		t.Errorf("/readyz answered neither 200 nor 503 while catching up: %v", obs.other)
	}
	sameReads(t, "new node 3 at its first ready vs node 1", want, atReady)
	_ = c3

	// Finally, with everything stopped: all three nodes' read models equal a
	// fresh rebuild and each other.
	for i := range 3 {
		h.stopNode(t, i)
	}
	h.clusterCheckRebuild(t, []int{0, 1, 2}, loadProject)
}
