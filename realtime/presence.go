package realtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/streams"
)

// PresenceStore is where members live, shared by every node
// (streams.Presence).
type PresenceStore interface {
	Put(ctx context.Context, project, channel, member string, value []byte) (uint64, error)
	Delete(ctx context.Context, project, channel, member string) error
	WatchPresence(ctx context.Context, project, channel string) (<-chan streams.PresenceChange, error)
	TTL() time.Duration
}

// PresenceLimits bound presence; zero fields take the defaults.
type PresenceLimits struct {
	// MaxMembers is the most members of one channel (all nodes).
	MaxMembers int
	// MaxPerConn is the most channels one connection is present on.
	MaxPerConn int
	// MaxPayload is the most bytes of a member's payload (JSON).
	MaxPayload int
}

// Default presence limits.
const (
	DefaultMaxMembers = 1000
	DefaultMaxPerConn = 10
	DefaultMaxPayload = 1024
)

func (l PresenceLimits) withDefaults() PresenceLimits {
	if l.MaxMembers <= 0 {
		l.MaxMembers = DefaultMaxMembers
	}
	if l.MaxPerConn <= 0 {
		l.MaxPerConn = DefaultMaxPerConn
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	return l
}

// Errors of Join.
var (
	ErrPresenceFull    = errors.New("presence: the channel has the most members it takes")
	ErrPresencePerConn = errors.New("presence: the connection is present on the most channels it may be")
	ErrPresencePayload = errors.New("presence: payload too large")
)

// PresenceAction is what happened to a member.
type PresenceAction int

// Actions.
const (
	PresenceJoin PresenceAction = iota + 1
	PresenceUpdate
	PresenceLeave
)

// Member is one connection present on a channel. The same user in two
// tabs is two members with the same UserID.
type Member struct {
	ID        string
	UserID    string
	Payload   json.RawMessage
	JoinedAt  time.Time
	UpdatedAt time.Time
}

// PresenceDelivery is what a watching connection receives: the channel's
// members when it begins watching (Sync), then each change.
type PresenceDelivery struct {
	Channel string
	Sync    bool
	Members []Member // Sync
	Action  PresenceAction
	Member  Member
}

// Presence tracks members of channels across the nodes of an instance:
// each node watches, once, the channels its connections watch, keeps
// their members in memory, and rewrites its own members before they
// expire.
type Presence struct {
	kv  PresenceStore
	log *slog.Logger
	lim PresenceLimits
	ctx context.Context

	mu    sync.Mutex
	rooms map[string]*room // project + "\x00" + channel
	conns map[*PresenceConn]struct{}
}

// room is one watched channel on this node.
type room struct {
	project, channel string
	cancel           context.CancelFunc
	ready            chan struct{} // closed once the members present at the watch's start are in
	err              error         // set before ready closes when the watch failed

	mu      sync.Mutex
	members map[string]storedMember
	raw     map[string][]byte
	// rev is the revision of each member's last value taken in, kept
	// after a local leave until the store's removal arrives: a node takes
	// in its own writes at once (read-your-writes on the node) and the
	// watch's older copies of them are then ignored.
	rev      map[string]uint64
	watchers map[*PresenceConn]struct{}
}

// storedMember is a member's value in the store.
type storedMember struct {
	UserID    string          `json:"u,omitempty"`
	Payload   json.RawMessage `json:"p,omitempty"`
	JoinedAt  int64           `json:"j"`
	UpdatedAt int64           `json:"t"`
}

func (m storedMember) member(id string) Member {
	return Member{ID: id, UserID: m.UserID, Payload: m.Payload, JoinedAt: time.UnixMilli(m.JoinedAt), UpdatedAt: time.UnixMilli(m.UpdatedAt)}
}

// NewPresence tracks presence in kv until ctx ends; it rewrites this
// node's members every third of the store's TTL.
func NewPresence(ctx context.Context, kv PresenceStore, log *slog.Logger, lim PresenceLimits) *Presence {
	p := &Presence{kv: kv, log: log, lim: lim.withDefaults(), ctx: ctx, rooms: map[string]*room{}, conns: map[*PresenceConn]struct{}{}}
	go p.heartbeat()
	return p
}

// Limits returns the limits with defaults applied.
func (p *Presence) Limits() PresenceLimits { return p.lim }

// heartbeat rewrites every local member, unchanged, so it outlives the
// TTL while its connection lasts (watchers see the same bytes: no event).
func (p *Presence) heartbeat() {
	t := time.NewTicker(p.kv.TTL() / 3)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		conns := make([]*PresenceConn, 0, len(p.conns))
		for c := range p.conns {
			conns = append(conns, c)
		}
		p.mu.Unlock()
		for _, c := range conns {
			c.mu.Lock()
			joined := make(map[string][]byte, len(c.joined))
			for ch, v := range c.joined {
				joined[ch] = v
			}
			c.mu.Unlock()
			for ch, v := range joined {
				ctx, cancel := context.WithTimeout(p.ctx, p.kv.TTL()/3)
				if _, err := p.kv.Put(ctx, c.project, ch, c.id, v); err != nil && p.ctx.Err() == nil {
					p.log.Warn("presence: heartbeat", "project", c.project, "channel", ch, "err", err)
				}
				cancel()
			}
		}
	}
}

// PresenceConn is one client connection's presence: the channels it is
// present on and those it watches.
type PresenceConn struct {
	p       *Presence
	project string
	id      string
	user    string
	deliver func(PresenceDelivery)

	mu       sync.Mutex
	joined   map[string][]byte // channel → stored value
	watching map[string]*room
	closed   bool
}

// Conn starts a connection's presence in project as user (empty for a
// key or a guest). deliver gets the channels' members and changes, in
// order per channel; it must not block.
func (p *Presence) Conn(project, user string, deliver func(PresenceDelivery)) *PresenceConn {
	var b [12]byte
	_, _ = rand.Read(b[:])
	c := &PresenceConn{p: p, project: project, id: hex.EncodeToString(b[:]), user: user, deliver: deliver,
		joined: map[string][]byte{}, watching: map[string]*room{}}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	return c
}

// ID is the connection's member id.
func (c *PresenceConn) ID() string { return c.id }

// SetUser changes who the connection is (a new credential); its next
// join says so. It reports whether the user changed.
func (c *PresenceConn) SetUser(user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := c.user != user
	c.user = user
	return changed
}

// Watch starts delivering a channel's members (one Sync, then changes).
// Watching a channel already watched does nothing.
func (c *PresenceConn) Watch(ctx context.Context, channel string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if _, ok := c.watching[channel]; ok {
		c.mu.Unlock()
		return nil
	}
	if len(c.watching) >= c.p.lim.MaxPerConn {
		c.mu.Unlock()
		return fmt.Errorf("%w (%d)", ErrPresencePerConn, c.p.lim.MaxPerConn)
	}
	c.mu.Unlock()
	r, err := c.p.enter(ctx, c, channel)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.p.exit(r, c)
		return ErrClosed
	}
	if _, ok := c.watching[channel]; ok {
		c.p.exit(r, c) // a concurrent Watch won
		return nil
	}
	c.watching[channel] = r
	return nil
}

// Join makes the connection present on channel with payload (JSON), or
// updates its payload when it is present already; it watches the channel
// too.
func (c *PresenceConn) Join(ctx context.Context, channel string, payload json.RawMessage) error {
	if len(payload) > c.p.lim.MaxPayload {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPresencePayload, len(payload), c.p.lim.MaxPayload)
	}
	if err := c.Watch(ctx, channel); err != nil {
		return err
	}
	c.mu.Lock()
	r := c.watching[channel]
	old, present := c.joined[channel]
	user := c.user
	c.mu.Unlock()
	if r == nil {
		return ErrClosed
	}
	now := time.Now().UnixMilli()
	m := storedMember{UserID: user, Payload: payload, JoinedAt: now, UpdatedAt: now}
	if present {
		var prev storedMember
		if json.Unmarshal(old, &prev) == nil {
			m.JoinedAt = prev.JoinedAt
		}
	} else {
		r.mu.Lock()
		n := len(r.members)
		_, there := r.members[c.id]
		r.mu.Unlock()
		// Counted from what every node wrote: two nodes admitting the
		// last place at once may both succeed, by one member each.
		if !there && n >= c.p.lim.MaxMembers {
			return fmt.Errorf("%w (%d)", ErrPresenceFull, c.p.lim.MaxMembers)
		}
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	rev, err := c.p.kv.Put(ctx, c.project, channel, c.id, v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed || c.watching[channel] == nil {
		c.mu.Unlock()
		// Closed or unwatched meanwhile: take back what was written.
		c.p.remove(c.project, channel, c.id)
		return ErrClosed
	}
	c.joined[channel] = v
	c.mu.Unlock()
	r.take(streams.PresenceChange{Member: c.id, Value: v, Revision: rev})
	return nil
}

// take applies a change and tells the watchers.
func (r *room) take(ch streams.PresenceChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.apply(ch); d != nil {
		for w := range r.watchers {
			w.deliver(*d)
		}
	}
}

// Leave removes the connection from channel's members; it keeps watching.
func (c *PresenceConn) Leave(ctx context.Context, channel string) error {
	c.mu.Lock()
	_, present := c.joined[channel]
	delete(c.joined, channel)
	r := c.watching[channel]
	c.mu.Unlock()
	if !present {
		return nil
	}
	if err := c.p.kv.Delete(ctx, c.project, channel, c.id); err != nil {
		return err
	}
	if r != nil {
		r.take(streams.PresenceChange{Member: c.id, Gone: true})
	}
	return nil
}

// Unwatch leaves channel and stops watching it.
func (c *PresenceConn) Unwatch(channel string) {
	c.mu.Lock()
	_, present := c.joined[channel]
	delete(c.joined, channel)
	r := c.watching[channel]
	delete(c.watching, channel)
	c.mu.Unlock()
	if present {
		c.p.remove(c.project, channel, c.id)
	}
	if r != nil {
		c.p.exit(r, c)
	}
}

// Channels returns the channels the connection watches.
func (c *PresenceConn) Channels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.watching))
	for ch := range c.watching {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out
}

// Close leaves every channel at once (others see the leaves) and stops
// watching.
func (c *PresenceConn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	joined := c.joined
	watching := c.watching
	c.joined, c.watching = map[string][]byte{}, map[string]*room{}
	c.mu.Unlock()
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	for ch := range joined {
		c.p.remove(c.project, ch, c.id)
	}
	for _, r := range watching {
		c.p.exit(r, c)
	}
}

// remove deletes a member on a context of its own: the connection's has
// usually ended already.
func (p *Presence) remove(project, channel, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 5*time.Second)
	defer cancel()
	if err := p.kv.Delete(ctx, project, channel, id); err != nil {
		// Not fatal: it expires within the TTL.
		p.log.Warn("presence: leave", "project", project, "channel", channel, "err", err)
	}
}

// enter adds c to the channel's room, opening it (and its watch) if it is
// the first, and delivers c the members once the room has them.
func (p *Presence) enter(ctx context.Context, c *PresenceConn, channel string) (*room, error) {
	key := c.project + "\x00" + channel
	p.mu.Lock()
	r := p.rooms[key]
	if r == nil {
		wctx, cancel := context.WithCancel(p.ctx)
		r = &room{project: c.project, channel: channel, cancel: cancel, ready: make(chan struct{}),
			members: map[string]storedMember{}, raw: map[string][]byte{}, rev: map[string]uint64{}, watchers: map[*PresenceConn]struct{}{}}
		p.rooms[key] = r
		go p.watch(wctx, r)
	}
	// Registered before it is ready: the room stays open while c waits.
	r.mu.Lock()
	r.watchers[c] = struct{}{}
	r.mu.Unlock()
	p.mu.Unlock()
	select {
	case <-r.ready:
	case <-ctx.Done():
		p.exit(r, c)
		return nil, ctx.Err()
	}
	if r.err != nil {
		p.exit(r, c)
		return nil, r.err
	}
	// Under the room's lock no change is delivered: the sync comes first.
	r.mu.Lock()
	ms := make([]Member, 0, len(r.members))
	for id, m := range r.members {
		ms = append(ms, m.member(id))
	}
	slices.SortFunc(ms, func(a, b Member) int { return a.JoinedAt.Compare(b.JoinedAt) })
	c.deliver(PresenceDelivery{Channel: channel, Sync: true, Members: ms})
	r.mu.Unlock()
	return r, nil
}

// exit removes c from r, closing r when no one watches it any more.
func (p *Presence) exit(r *room, c *PresenceConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.mu.Lock()
	delete(r.watchers, c)
	empty := len(r.watchers) == 0
	r.mu.Unlock()
	key := r.project + "\x00" + r.channel
	if empty && p.rooms[key] == r {
		delete(p.rooms, key)
		r.cancel()
	}
}

// watch keeps r's members as the store has them and tells r's watchers
// of every change once the initial members are in.
func (p *Presence) watch(ctx context.Context, r *room) {
	changes, err := p.kv.WatchPresence(ctx, r.project, r.channel)
	if err != nil {
		r.err = err
		close(r.ready)
		p.mu.Lock()
		if p.rooms[r.project+"\x00"+r.channel] == r {
			delete(p.rooms, r.project+"\x00"+r.channel)
		}
		p.mu.Unlock()
		return
	}
	synced := false
	for ch := range changes {
		if ch.Synced {
			if !synced {
				synced = true
				close(r.ready)
			}
			continue
		}
		r.mu.Lock()
		d := r.apply(ch)
		if ch.Gone && !r.has(ch.Member) {
			delete(r.rev, ch.Member) // the store's removal: no older copy follows
		}
		if synced && d != nil {
			for c := range r.watchers {
				c.deliver(*d)
			}
		}
		r.mu.Unlock()
	}
	if !synced {
		r.err = fmt.Errorf("presence: watch of %q ended: %w", r.channel, context.Cause(ctx))
		close(r.ready)
	}
}

func (r *room) has(member string) bool {
	_, ok := r.members[member]
	return ok
}

// apply takes a change into r's members; it returns what watchers must
// hear, or nil (a heartbeat rewrites the same bytes).
func (r *room) apply(ch streams.PresenceChange) *PresenceDelivery {
	old, had := r.members[ch.Member]
	if ch.Revision != 0 && ch.Revision <= r.rev[ch.Member] {
		return nil // taken in already, or older than what was
	}
	if ch.Gone {
		if !had {
			return nil
		}
		delete(r.members, ch.Member)
		delete(r.raw, ch.Member)
		return &PresenceDelivery{Channel: r.channel, Action: PresenceLeave, Member: old.member(ch.Member)}
	}
	if had && bytes.Equal(r.raw[ch.Member], ch.Value) {
		return nil
	}
	var m storedMember
	if err := json.Unmarshal(ch.Value, &m); err != nil {
		return nil
	}
	r.members[ch.Member] = m
	r.raw[ch.Member] = ch.Value
	r.rev[ch.Member] = ch.Revision
	act := PresenceJoin
	if had {
		act = PresenceUpdate
	}
	return &PresenceDelivery{Channel: r.channel, Action: act, Member: m.member(ch.Member)}
}

// Payload is the connection's payload on channel, if it is present there.
func (c *PresenceConn) Payload(channel string) (json.RawMessage, bool) {
	c.mu.Lock()
	v, ok := c.joined[channel]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	var m storedMember
	_ = json.Unmarshal(v, &m)
	return m.Payload, true
}

// HasChannel reports whether the subscriber listens to channel.
func (s *Subscriber) HasChannel(channel string) bool {
	return (*s.channels.Load())[channel]
}
