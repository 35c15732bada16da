package projections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/streams"
)

// newParking returns a started Projections with the given idle and sweep
// periods, recording every commit.
func (e *env) newParking(idle, sweep time.Duration) (*Projections, *commits) {
	e.t.Helper()
	return e.newParkingMuted(idle, sweep, false)
}

// newParkingMuted is newParking losing every notification if muted.
func (e *env) newParkingMuted(idle, sweep time.Duration, muted bool) (*Projections, *commits) {
	e.t.Helper()
	p := New(e.db, e.store, Options{Logger: e.log, IdleAfter: idle, SweepEvery: sweep})
	c := &commits{}
	p.onCommit = c.add
	p.muteNotify.Store(muted)
	if err := p.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p, c
}

// consumers returns the server's consumer count of every stream.
func (e *env) consumers() map[string]int {
	e.t.Helper()
	lister := e.store.JetStream().ListStreams(context.Background())
	out := map[string]int{}
	for si := range lister.Info() {
		out[si.Config.Name] = si.State.Consumers
	}
	if err := lister.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func active(p *Projections, stream string) bool { return p.Lag()[stream].Active }

func parked(p *Projections, stream string) func() bool {
	return func() bool { l, ok := p.Lag()[stream]; return ok && !l.Active }
}

func TestIdleProjectorParksAndNotificationWakesIt(t *testing.T) {
	e := newEnv(t)
	p, c := e.newParking(50*time.Millisecond, time.Hour)
	ps := streams.ProjectStream("p1")
	e.createProject("p1")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k1", "x"), ""))

	eventually(t, "p1 parked", parked(p, ps))
	if n := e.consumers()[ps]; n != 0 {
		t.Fatalf("parked projector left %d consumers on its stream", n)
	}
	if !active(p, sys) {
		t.Fatal("the system projector parked")
	}

	// No WaitApplied: only the notification can wake it (the sweep is an
	// hour away).
	last := e.keyEvent("p1", "create", key("p1", "k2", "x"), "")
	eventually(t, "applied after a notification", func() bool { return p.AppliedSeq(ps) == last })
	eventually(t, "p1 parked again", parked(p, ps))
	if got := c.of(ps); !slices.Equal(got, seqRange(1, last)) {
		t.Fatalf("applied %v, want 1..%d once each", got, last)
	}
	if l := p.Lag()[ps]; l.Applied != last || l.Last != last || l.Active || l.Stopped {
		t.Fatalf("Lag = %+v", l)
	}
	if !p.Ready() {
		t.Fatal("not ready with parked projectors")
	}
}

func TestLostNotificationRecoveredByWaitApplied(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newParking(50*time.Millisecond, time.Hour)
	ps := streams.ProjectStream("p1")
	e.createProject("p1")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k1", "x"), ""))
	eventually(t, "p1 parked", parked(p, ps))

	p.muteNotify.Store(true)
	last := e.keyEvent("p1", "create", key("p1", "k2", "x"), "")
	time.Sleep(150 * time.Millisecond)
	if got := p.AppliedSeq(ps); got == last || active(p, ps) {
		t.Fatalf("woken without a notification (applied %d): the test proves nothing", got)
	}
	wait(t, p, ps, last) // read-your-writes wakes it
	if _, err := p.Key("p1", "k2"); err != nil {
		t.Fatal(err)
	}
}

func TestLostNotificationRecoveredBySweep(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newParking(50*time.Millisecond, 200*time.Millisecond)
	e.createProject("p1")
	e.createProject("p2")
	ps := streams.ProjectStream("p1")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k1", "x"), ""))
	eventually(t, "p1 parked", parked(p, ps))

	p.muteNotify.Store(true)
	last := e.keyEvent("p1", "create", key("p1", "k2", "x"), "")
	eventually(t, "applied after a sweep", func() bool { return p.AppliedSeq(ps) == last })

	// The other project, caught up, was not woken by the sweep.
	if active(p, streams.ProjectStream("p2")) {
		t.Fatal("the sweep woke a caught-up project")
	}
}

func TestRequestSweep(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newParking(50*time.Millisecond, time.Hour)
	ps := streams.ProjectStream("p1")
	e.createProject("p1")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k1", "x"), ""))
	eventually(t, "p1 parked", parked(p, ps))
	p.muteNotify.Store(true)
	last := e.keyEvent("p1", "create", key("p1", "k2", "x"), "")
	time.Sleep(100 * time.Millisecond)
	if p.AppliedSeq(ps) == last {
		t.Fatal("applied without a notification or a sweep: the test proves nothing")
	}
	p.RequestSweep() // as after a reconnect
	eventually(t, "applied after a requested sweep", func() bool { return p.AppliedSeq(ps) == last })
}

func TestStartupActivatesOnlyProjectsBehind(t *testing.T) {
	e := newEnv(t)
	const n = 40
	p, _ := e.newParking(time.Hour, time.Hour)
	lasts := map[string]uint64{}
	for i := range n {
		id := fmt.Sprintf("p%02d", i)
		e.createProject(id)
		if i%2 == 0 { // half of them have events, half are empty
			lasts[id] = e.keyEvent(id, "create", key(id, "k1", "x"), "")
		}
	}
	for id, last := range lasts {
		wait(t, p, streams.ProjectStream(id), last)
	}
	eventually(t, "ready", p.Ready)
	t0 := time.Now()
	p.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close with %d active projectors took %s", len(lasts), d)
	}

	// While the node is down, three projects get events.
	behind := []string{"p00", "p03", "p10"}
	for _, id := range behind {
		lasts[id] = e.keyEvent(id, "create", key(id, "k2", "y"), "")
	}
	e.restartNATS() // forget the old node's consumers
	e.reopenBadger()
	p, c := e.newParkingMuted(time.Hour, time.Hour, true) // only the start-up comparison may activate
	eventually(t, "ready", p.Ready)
	for _, id := range behind {
		if got := p.AppliedSeq(streams.ProjectStream(id)); got != lasts[id] {
			t.Fatalf("ready, but %s applied %d of %d", id, got, lasts[id])
		}
	}
	var activeNow []string
	for stream, l := range p.Lag() {
		if l.Active {
			activeNow = append(activeNow, stream)
		}
	}
	slices.Sort(activeNow)
	want := []string{sys, "PROJECT_p00", "PROJECT_p03", "PROJECT_p10"}
	if !slices.Equal(activeNow, want) {
		t.Fatalf("active after start: %v, want %v", activeNow, want)
	}
	for stream, cons := range e.consumers() {
		if wantActive := slices.Contains(want, stream); cons != 0 && !wantActive || cons > 1 {
			t.Errorf("stream %s has %d consumers", stream, cons)
		}
	}
	for _, id := range behind {
		if got := c.of(streams.ProjectStream(id)); len(got) != 1 || got[0] != lasts[id] {
			t.Errorf("%s applied %v after the restart, want only %d", id, got, lasts[id])
		}
	}
	for id, last := range lasts {
		if got := p.AppliedSeq(streams.ProjectStream(id)); got != last {
			t.Errorf("%s applied %d, want %d", id, got, last)
		}
	}

	// A fresh node (empty Badger, notifications lost) learns the projects
	// from the system stream and activates those with events: Ready means
	// they are applied.
	e2 := &env{t: t, dir: t.TempDir(), log: e.log, nats: e.nats, store: e.store}
	e2.openBadger()
	defer e2.db.Close()
	p2 := New(e2.db, e.store, Options{Logger: e.log, IdleAfter: time.Hour, SweepEvery: time.Hour})
	p2.muteNotify.Store(true)
	defer p2.Close()
	if err := p2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fresh node ready", p2.Ready)
	for id, last := range lasts {
		if got := p2.AppliedSeq(streams.ProjectStream(id)); got != last {
			t.Errorf("fresh node: %s applied %d, want %d", id, got, last)
		}
	}
	if l := p2.Lag()["PROJECT_p01"]; l.Active {
		t.Errorf("fresh node activated an empty project: %+v", l)
	}
}

func TestInconsistentParkedProjectRebuiltAtStart(t *testing.T) {
	e := newEnv(t)
	ps := streams.ProjectStream("p1")
	p, _ := e.newParking(time.Hour, time.Hour)
	e.createProject("p1")
	wait(t, p, ps, e.keyEvent("p1", "create", key("p1", "k1", "x"), ""))
	good, _ := p.Snapshot(ps)
	p.Close()
	ck, err := p.loadCheckpoint(projectSpace("p1"))
	if err != nil {
		t.Fatal(err)
	}
	// Same sequence and creation time as the stream, another event: only
	// the check of the event at the checkpoint can tell.
	ck.EventID = "01SOMETHINGELSE"
	setRaw(t, e.db, projectSpace("p1").checkpointKey(), ck.marshal())
	setRaw(t, e.db, keyKey("p1", "ghost"), []byte("x"))
	p, _ = e.newParkingMuted(time.Hour, time.Hour, true)
	eventually(t, "ready", p.Ready)
	if got, _ := p.Snapshot(ps); !slices.EqualFunc(got, good, func(a, b KV) bool {
		return a.Key == b.Key && string(a.Value) == string(b.Value) && a.ExpiresAt == b.ExpiresAt
	}) {
		t.Fatalf("read model not rebuilt:\n%v\nwant\n%v", got, good)
	}
}

// TestWakeWhileParkingRace parks and wakes projectors as fast as it can
// while writers append: every event must be applied exactly once, in
// order, whether a notification, a waiter or the sweep woke the projector.
func TestWakeWhileParkingRace(t *testing.T) {
	e := newEnv(t)
	p, c := e.newParking(time.Millisecond, 20*time.Millisecond)
	const projects, events = 4, 60
	for i := range projects {
		e.createProject(fmt.Sprintf("r%d", i))
	}
	var mu sync.Mutex // env is not safe for concurrent use
	var wg sync.WaitGroup
	lasts := make([]uint64, projects)
	for i := range projects {
		wg.Go(func() {
			id := fmt.Sprintf("r%d", i)
			ps := streams.ProjectStream(id)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range events {
				if i == 0 { // one project also loses notifications now and then
					p.muteNotify.Store(rng.IntN(2) == 0)
				}
				mu.Lock()
				seq := e.keyEvent(id, "update", key(id, fmt.Sprintf("k%d", j%5), e.nextID()), "")
				mu.Unlock()
				switch rng.IntN(3) {
				case 0: // a writer waiting for its own event
					wait(t, p, ps, seq)
				case 1:
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				}
				lasts[i] = seq
			}
		})
	}
	wg.Wait()
	p.muteNotify.Store(false)
	for i := range projects {
		ps := streams.ProjectStream(fmt.Sprintf("r%d", i))
		wait(t, p, ps, lasts[i])
		if got := c.of(ps); !slices.Equal(got, seqRange(1, lasts[i])) {
			t.Fatalf("%s applied %v, want 1..%d exactly once", ps, got, lasts[i])
		}
	}
	for i := range projects {
		eventually(t, "parked", parked(p, streams.ProjectStream(fmt.Sprintf("r%d", i))))
	}
	if n := p.activations.Load(); n < 2*projects {
		t.Fatalf("only %d activations: the projectors did not park and wake", n)
	}
	t.Logf("%d activations", p.activations.Load())
}
