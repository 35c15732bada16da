package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/streams"
)

// presenceNode is one node's presence: its own NATS connection to the
// shared server, as a Cairn node has.
type presenceNode struct {
	nc *nats.Conn
	p  *Presence
}

func startPresenceServer(t testing.TB) *streams.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	return emb
}

func startPresenceNode(t testing.TB, emb *streams.Embedded, ttl time.Duration, lim PresenceLimits) *presenceNode {
	t.Helper()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	quiet := slog.New(slog.DiscardHandler)
	st, err := streams.Open(context.Background(), nc, streams.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &presenceNode{nc: nc, p: NewPresence(ctx, st.Presence(ttl), quiet, lim)}
}

// inbox collects what a connection is delivered.
type inbox struct {
	mu  sync.Mutex
	got []PresenceDelivery
	new chan struct{}
}

func newInbox() *inbox { return &inbox{new: make(chan struct{}, 1)} }

func (b *inbox) deliver(d PresenceDelivery) {
	b.mu.Lock()
	b.got = append(b.got, d)
	b.mu.Unlock()
	select {
	case b.new <- struct{}{}:
	default:
	}
}

// wait returns the first delivery after the first n that ok accepts.
func (b *inbox) wait(t testing.TB, within time.Duration, ok func(PresenceDelivery) bool) PresenceDelivery {
	t.Helper()
	deadline := time.After(within)
	for {
		b.mu.Lock()
		for _, d := range b.got {
			if ok(d) {
				b.mu.Unlock()
				return d
			}
		}
		b.mu.Unlock()
		select {
		case <-b.new:
		case <-deadline:
			t.Fatalf("not delivered within %s; got %+v", within, b.got)
		}
	}
}

func action(a PresenceAction, id string) func(PresenceDelivery) bool {
	return func(d PresenceDelivery) bool { return !d.Sync && d.Action == a && d.Member.ID == id }
}

// TestPresenceAcrossNodes: a member joining through one node is seen,
// with its payload and updates, by a watcher on the other; the current set
// comes first; leaving and closing are seen at once; caps hold at their
// edge; another project's watcher sees nothing.
func TestPresenceAcrossNodes(t *testing.T) {
	emb := startPresenceServer(t)
	lim := PresenceLimits{MaxMembers: 2, MaxPerConn: 2, MaxPayload: 16}
	a := startPresenceNode(t, emb, 30*time.Second, lim)
	b := startPresenceNode(t, emb, 30*time.Second, lim)
	ctx := context.Background()
	const ch = "databases.db.collections.c.documents"

	first := a.p.Conn("p", "u1", func(PresenceDelivery) {})
	if err := first.Join(ctx, ch, json.RawMessage(`{"s":"on"}`)); err != nil {
		t.Fatal(err)
	}
	seen := newInbox()
	watcher := b.p.Conn("p", "u2", seen.deliver)
	if err := watcher.Watch(ctx, ch); err != nil {
		t.Fatal(err)
	}
	sync := seen.wait(t, 5*time.Second, func(d PresenceDelivery) bool { return d.Sync })
	if len(sync.Members) != 1 || sync.Members[0].ID != first.ID() || sync.Members[0].UserID != "u1" || string(sync.Members[0].Payload) != `{"s":"on"}` {
		t.Fatalf("current set: %+v", sync.Members)
	}
	other := newInbox()
	elsewhere := b.p.Conn("q", "u3", other.deliver)
	if err := elsewhere.Watch(ctx, ch); err != nil {
		t.Fatal(err)
	}

	if err := first.Join(ctx, ch, json.RawMessage(`{"s":"away"}`)); err != nil {
		t.Fatal(err)
	}
	if d := seen.wait(t, 5*time.Second, action(PresenceUpdate, first.ID())); string(d.Member.Payload) != `{"s":"away"}` {
		t.Errorf("update: %+v", d)
	}
	second := a.p.Conn("p", "u1", func(PresenceDelivery) {}) // the same user in a second tab
	if err := second.Join(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	seen.wait(t, 5*time.Second, action(PresenceJoin, second.ID()))
	// Caps at their edge: a third member, a third channel, a 17-byte payload.
	if err := watcher.Join(ctx, ch, nil); !errors.Is(err, ErrPresenceFull) {
		t.Errorf("third member: %v", err)
	}
	if err := second.Join(ctx, ch, json.RawMessage(`{"s":"123456789"}`)); !errors.Is(err, ErrPresencePayload) {
		t.Errorf("17-byte payload: %v", err)
	}
	if err := second.Join(ctx, ch, json.RawMessage(`{"s":"12345678"}`)); err != nil {
		t.Errorf("16-byte payload: %v", err)
	}
	if err := second.Watch(ctx, "teams.t"); err != nil {
		t.Fatal(err)
	}
	if err := second.Watch(ctx, "teams.u"); !errors.Is(err, ErrPresencePerConn) {
		t.Errorf("third channel: %v", err)
	}

	if err := first.Leave(ctx, ch); err != nil {
		t.Fatal(err)
	}
	seen.wait(t, 5*time.Second, action(PresenceLeave, first.ID()))
	second.Close()
	seen.wait(t, 5*time.Second, action(PresenceLeave, second.ID()))

	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.got) != 1 || !other.got[0].Sync || len(other.got[0].Members) != 0 {
		t.Errorf("project q saw project p's presence: %+v", other.got)
	}
}

// TestPresenceExpiresWithItsNode: a node that dies without leaving (its
// NATS connection cut) has its members expire within the TTL, and the
// other node's watchers see them leave; a live node's member outlives
// several TTLs through its heartbeat.
func TestPresenceExpiresWithItsNode(t *testing.T) {
	emb := startPresenceServer(t)
	const ttl = 2 * time.Second
	a := startPresenceNode(t, emb, ttl, PresenceLimits{})
	b := startPresenceNode(t, emb, ttl, PresenceLimits{})
	ctx := context.Background()
	const ch = "teams.t"
	doomed := a.p.Conn("p", "u1", func(PresenceDelivery) {})
	if err := doomed.Join(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	alive := b.p.Conn("p", "u2", func(PresenceDelivery) {})
	if err := alive.Join(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	seen := newInbox()
	w := b.p.Conn("p", "", seen.deliver)
	if err := w.Watch(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if s := seen.wait(t, 5*time.Second, func(d PresenceDelivery) bool { return d.Sync }); len(s.Members) != 2 {
		t.Fatalf("current set: %+v", s.Members)
	}
	a.nc.Close() // the crash: nothing is deleted, nothing rewritten
	killed := time.Now()
	seen.wait(t, 3*ttl, action(PresenceLeave, doomed.ID()))
	if took := time.Since(killed); took > ttl+1500*time.Millisecond {
		t.Errorf("expired after %s, TTL %s", took, ttl)
	}
	time.Sleep(2 * ttl)
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for _, d := range seen.got {
		if d.Action == PresenceLeave && d.Member.ID == alive.ID() {
			t.Errorf("the live node's member expired despite its heartbeat")
		}
	}
}
