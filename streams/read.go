package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredMsg is a message as stored in a stream.
type StoredMsg struct {
	Seq     uint64
	Subject string
	Data    []byte
	// Header is what the writer sent (including Nats-Msg-Id and the
	// expectation headers); the server's delivery metadata is removed.
	Header nats.Header
	Time   time.Time
	// Pending is, for a message delivered by Read or Subscribe, how many
	// messages the reader still had to deliver after it when it was
	// delivered (the consumer's num_pending): 0 means the reader had caught
	// up with the stream at that moment. Seq+Pending is the stream's last
	// sequence as the server saw it then. Get and Last leave it 0.
	Pending uint64
}

// MsgID returns the message's deduplication id.
func (m StoredMsg) MsgID() string { return m.Header.Get(HeaderMsgID) }

// Headers the server adds to a direct-get reply, not part of the message.
var directGetHeaders = []string{
	jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer,
	jetstream.SubjectHeader, "Nats-Num-Pending", "Nats-Last-Sequence", "Nats-UpTo-Sequence",
}

// Last returns the last message on filter, which may contain wildcards
// ("cairn.p1.users.U1.>"). That is how the write path loads an aggregate:
// events carry the full state, and the message's Seq is the ExpectSeq of the
// next append. found is false when no message matches; ErrNoStream if the
// stream does not exist.
func (s *Store) Last(ctx context.Context, stream, filter string) (msg StoredMsg, found bool, err error) {
	// The JSON form of direct get, not the subject-appended one nats.go uses
	// for last-by-subject: a request subject cannot carry wildcards.
	msg, err = s.directGet(ctx, stream, map[string]any{"last_by_subj": filter})
	if errors.Is(err, ErrNotFound) {
		return StoredMsg{}, false, nil
	}
	if err != nil {
		return StoredMsg{}, false, fmt.Errorf("streams: last message on %s in %s: %w", filter, stream, err)
	}
	return msg, true, nil
}

// Get returns the message at seq; ErrNotFound if there is none.
func (s *Store) Get(ctx context.Context, stream string, seq uint64) (StoredMsg, error) {
	msg, err := s.directGet(ctx, stream, map[string]any{"seq": seq})
	if err != nil {
		return StoredMsg{}, fmt.Errorf("streams: message %d in %s: %w", seq, stream, err)
	}
	return msg, nil
}

func (s *Store) directGet(ctx context.Context, stream string, req map[string]any) (StoredMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return StoredMsg{}, err
	}
	if s.nc.ConnectedClusterName() != "" {
		// In a cluster a direct get may be answered by a follower that has
		// not applied the latest writes yet, and the write path decides on
		// what it reads (an upload's offset, an aggregate's state): there
		// the stream's leader answers. A single server is always current.
		return s.leaderGet(ctx, stream, body)
	}
	reply, err := s.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream, body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return StoredMsg{}, ErrNoStream
		}
		return StoredMsg{}, err
	}
	if len(reply.Data) == 0 && reply.Header.Get("Status") != "" {
		switch reply.Header.Get("Status") {
		case "404":
			return StoredMsg{}, ErrNotFound
		default:
			return StoredMsg{}, fmt.Errorf("direct get: %s %s", reply.Header.Get("Status"), reply.Header.Get("Description"))
		}
	}
	seq, err := strconv.ParseUint(reply.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return StoredMsg{}, fmt.Errorf("direct get: bad sequence header: %w", err)
	}
	ts, err := time.Parse(time.RFC3339Nano, reply.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return StoredMsg{}, fmt.Errorf("direct get: bad time stamp header: %w", err)
	}
	msg := StoredMsg{Seq: seq, Subject: reply.Header.Get(jetstream.SubjectHeader), Data: reply.Data, Header: reply.Header, Time: ts}
	for _, h := range directGetHeaders {
		msg.Header.Del(h)
	}
	return msg, nil
}

// ReadOptions selects what Read delivers.
type ReadOptions struct {
	// Filters restricts delivery to these subject filters; empty means the
	// whole stream. Validate user input with ValidRelativeFilter first.
	Filters []string
	// StartSeq is the first sequence to deliver; 0 means from the start,
	// or from StartTime when that is set.
	StartSeq uint64
	// StartTime delivers from the first message at or after it, when
	// StartSeq is 0.
	StartTime time.Time
	// Follow keeps delivering new messages until ctx is done. Without it,
	// Read ends at the stream's last sequence at the time of the call.
	Follow bool
}

// Read returns the messages selected by opts, in stream order, from an
// ordered consumer. Stop early by breaking out of the loop. An unfiltered
// read yields every sequence exactly once (a gap is reported as ErrGap);
// a filtered one yields strictly increasing sequences. A following read ends
// without error when ctx is done; a bounded one yields ctx.Err().
func (s *Store) Read(ctx context.Context, stream string, opts ReadOptions) iter.Seq2[StoredMsg, error] {
	return func(yield func(StoredMsg, error) bool) {
		r, err := s.openReader(ctx, stream, opts, 0)
		if err != nil {
			yield(StoredMsg{}, err)
			return
		}
		if r == nil {
			return // nothing to read
		}
		defer r.close()
		for {
			msg, done, err := r.next(ctx)
			if err != nil {
				if opts.Follow && ctx.Err() != nil {
					return
				}
				yield(StoredMsg{}, err)
				return
			}
			if msg.Seq != 0 && !yield(msg, nil) {
				return
			}
			if done {
				return
			}
		}
	}
}

// DefaultBatch is Subscribe's batch size when none is given.
const DefaultBatch = 256

// ErrIdle ends a SubscribeWith whose OnIdle agreed to stop.
var ErrIdle = errors.New("streams: subscription idle")

// SubscribeOptions tune SubscribeWith.
type SubscribeOptions struct {
	// StartSeq is the first sequence to deliver (0 or 1: the beginning).
	StartSeq uint64
	// MaxBatch is the most messages handed to fn at once; default
	// DefaultBatch.
	MaxBatch int
	// Idle, when > 0, is how long the subscription may go without a message
	// while caught up (the last message delivered had nothing pending after
	// it, or there was nothing to deliver at all) before OnIdle is asked
	// whether to stop. OnIdle runs on the subscription's goroutine, never
	// concurrently with fn. When it returns true, SubscribeWith stops the
	// consumer, deletes it on the server (best effort, so it does not linger
	// for its inactivity threshold) and returns ErrIdle; when it returns
	// false, the idle period starts again.
	Idle   time.Duration
	OnIdle func() bool
}

// Subscribe delivers the whole stream from startSeq on (0 or 1: from the
// beginning) to fn in batches, in order, every sequence exactly once, and
// keeps following new messages until ctx is done or fn returns an error.
// A batch holds whatever has arrived, up to maxBatch messages, so a lone
// live message is delivered at once. fn's batch is not reused.
//
// It is the projector's loop: apply a batch and its checkpoint in one
// transaction, resume from checkpoint+1 after a restart. A sequence gap (a
// message that would be skipped) ends it with ErrGap. It returns nil when
// ctx is done and fn's error unchanged.
func (s *Store) Subscribe(ctx context.Context, stream string, startSeq uint64, maxBatch int, fn func(batch []StoredMsg) error) error {
	return s.SubscribeWith(ctx, stream, SubscribeOptions{StartSeq: startSeq, MaxBatch: maxBatch}, fn)
}

// SubscribeWith is Subscribe with options; see SubscribeOptions for how an
// idle subscription ends.
func (s *Store) SubscribeWith(ctx context.Context, stream string, o SubscribeOptions, fn func(batch []StoredMsg) error) error {
	maxBatch, startSeq := o.MaxBatch, o.StartSeq
	if maxBatch <= 0 {
		maxBatch = DefaultBatch
	}
	if startSeq == 0 {
		startSeq = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := s.openReader(ctx, stream, ReadOptions{StartSeq: startSeq, Follow: true}, maxBatch)
	if err != nil {
		return err
	}
	defer r.close()

	// A pump goroutine turns the blocking iterator into a channel, so the
	// loop below can take whatever is already there without waiting.
	type item struct {
		msg StoredMsg
		err error
	}
	ch := make(chan item, maxBatch)
	go func() {
		defer close(ch)
		for {
			msg, _, err := r.next(ctx)
			select {
			case ch <- item{msg, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	// The idle timer runs only while caught up: pending is what the last
	// delivered message (or the consumer, before any) had still to come.
	var idle <-chan time.Time
	var timer *time.Timer
	pending := r.pending
	if o.Idle > 0 && o.OnIdle != nil {
		timer = time.NewTimer(o.Idle)
		defer timer.Stop()
		idle = timer.C
	}
	for {
		var first item
		select {
		case <-ctx.Done():
			return nil
		case <-idle:
			if pending == 0 && len(ch) == 0 && o.OnIdle() {
				r.close()
				r.deleteConsumer(ctx, s.js)
				return ErrIdle
			}
			timer.Reset(o.Idle)
			continue
		case it, ok := <-ch:
			if !ok {
				return nil
			}
			first = it
		}
		if first.err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return first.err
		}
		// Sized for what has arrived, not maxBatch: a rebuild's batches are
		// large, and most live ones a single message.
		batch := append(make([]StoredMsg, 0, min(maxBatch, 1+len(ch))), first.msg)
		var pendingErr error
	drain:
		for len(batch) < maxBatch {
			select {
			case it, ok := <-ch:
				if !ok {
					break drain
				}
				if it.err != nil {
					pendingErr = it.err
					break drain
				}
				batch = append(batch, it.msg)
			default:
				break drain
			}
		}
		pending = batch[len(batch)-1].Pending
		if err := fn(batch); err != nil {
			return err
		}
		if pendingErr != nil {
			if ctx.Err() != nil {
				return nil
			}
			return pendingErr
		}
		if timer != nil {
			timer.Reset(o.Idle)
		}
	}
}

// reader wraps an ordered consumer with the gap check and the end of a
// bounded read.
type reader struct {
	stream     string
	cons       jetstream.Consumer
	it         jetstream.MessagesContext
	stopOnCtx  func() bool
	unfiltered bool
	expect     uint64 // next sequence an unfiltered read must see; 0 = any
	last       uint64 // last sequence delivered
	endSeq     uint64 // bounded read: stream's last sequence at call time; 0 = follow
	pending    uint64 // the consumer's num_pending when it was created
}

// openReader returns nil, nil when a bounded read has nothing to deliver.
func (s *Store) openReader(ctx context.Context, stream string, opts ReadOptions, pull int) (*reader, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: opts.Filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case opts.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, opts.StartSeq
	case !opts.StartTime.IsZero():
		t := opts.StartTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	r := &reader{stream: stream, unfiltered: len(opts.Filters) == 0}
	if r.unfiltered && opts.StartSeq > 0 {
		r.expect = opts.StartSeq
	}
	if !opts.Follow {
		info, err := s.StreamInfo(ctx, stream)
		if err != nil {
			return nil, err
		}
		if info.LastSeq == 0 || opts.StartSeq > info.LastSeq {
			return nil, nil
		}
		r.endSeq = info.LastSeq
	}
	cons, err := s.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("streams: read %s: %w", stream, ErrNoStream)
		}
		return nil, fmt.Errorf("streams: read %s: %w", stream, err)
	}
	mopts := []jetstream.PullMessagesOpt{jetstream.PullHeartbeat(s.opts.ReadHeartbeat)}
	if pull > 0 {
		mopts = append(mopts, jetstream.PullMaxMessages(max(pull, 64)))
	}
	it, err := cons.Messages(mopts...)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("streams: read %s: %w", stream, ErrNoStream)
		}
		return nil, fmt.Errorf("streams: read %s: %w", stream, err)
	}
	r.it, r.cons = it, cons
	if ci := cons.CachedInfo(); ci != nil {
		r.pending = ci.NumPending
	}
	// The consumer's creation-time count says whether a bounded read has
	// anything at all to wait for; without it a filter matching nothing
	// would block forever.
	if !opts.Follow {
		if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
			it.Stop()
			return nil, nil
		}
	}
	r.stopOnCtx = context.AfterFunc(ctx, it.Stop)
	return r, nil
}

func (r *reader) close() {
	r.stopOnCtx()
	r.it.Stop()
}

// deleteConsumer deletes the reader's server-side consumer once it is
// stopped, best effort: an ordered consumer is otherwise left to the
// server's inactivity threshold (5 minutes) and costs it meanwhile.
func (r *reader) deleteConsumer(ctx context.Context, js jetstream.JetStream) {
	ci := r.cons.CachedInfo()
	if ci == nil || ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, r.stream, ci.Name)
}

// next returns the next message, or done for a bounded read that reached its
// end (msg.Seq is 0 when that end was found without a message to deliver).
func (r *reader) next(ctx context.Context) (msg StoredMsg, done bool, err error) {
	m, err := r.it.Next()
	if err != nil {
		if ctx.Err() != nil {
			return StoredMsg{}, true, ctx.Err()
		}
		return StoredMsg{}, true, fmt.Errorf("streams: read %s: %w", r.stream, err)
	}
	meta, err := m.Metadata()
	if err != nil {
		return StoredMsg{}, true, fmt.Errorf("streams: read %s: message metadata: %w", r.stream, err)
	}
	seq := meta.Sequence.Stream
	if r.endSeq > 0 && seq > r.endSeq {
		return StoredMsg{}, true, nil
	}
	switch {
	case r.unfiltered && r.expect != 0 && seq != r.expect:
		return StoredMsg{}, true, fmt.Errorf("streams: read %s: expected sequence %d, got %d: %w", r.stream, r.expect, seq, ErrGap)
	case seq <= r.last:
		return StoredMsg{}, true, fmt.Errorf("streams: read %s: sequence %d after %d: %w", r.stream, seq, r.last, ErrGap)
	}
	r.last, r.expect = seq, seq+1
	if !r.unfiltered {
		r.expect = 0
	}
	h := m.Headers()
	msg = StoredMsg{Seq: seq, Subject: m.Subject(), Data: m.Data(), Header: h, Time: meta.Timestamp, Pending: meta.NumPending}
	done = r.endSeq > 0 && (seq >= r.endSeq || meta.NumPending == 0)
	return msg, done, nil
}

// StreamStates returns the state of every Cairn stream (the system stream
// and every project's), keyed by stream name, in few requests: the server
// pages its list (256 streams a page), so 10,000 projects cost about 40
// requests, not 10,000. A stream created or deleted while the pages are
// read may be missing from the result; look such a one up with StreamInfo.
func (s *Store) StreamStates(ctx context.Context) (map[string]Info, error) {
	lister := s.js.ListStreams(ctx, jetstream.WithStreamListSubject(SubjectRoot+".>"))
	out := map[string]Info{}
	for si := range lister.Info() {
		out[si.Config.Name] = infoOf(si)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("streams: list streams: %w", err)
	}
	return out, nil
}

func infoOf(si *jetstream.StreamInfo) Info {
	return Info{
		FirstSeq: si.State.FirstSeq,
		LastSeq:  si.State.LastSeq,
		Msgs:     si.State.Msgs,
		Bytes:    si.State.Bytes,
		Created:  si.Created,
		MaxBytes: si.Config.MaxBytes,
	}
}

// NotifyProjects calls fn with the project id of every message published
// on a project subject ("cairn.<project>.>"; the system stream's subjects
// are left out), through one plain NATS subscription. It is a hint, not a
// delivery: at most once, unordered, and published before (or without) the
// stream storing the message; a reader still reads the stream. fn runs on
// the subscription's goroutine for every message, so it must be quick and
// must not block. stop ends the subscription.
func (s *Store) NotifyProjects(fn func(project string)) (stop func(), err error) {
	sub, err := s.nc.Subscribe(SubjectRoot+".*.>", func(m *nats.Msg) {
		if id, ok := projectOfSubject(m.Subject); ok {
			fn(id)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("streams: subscribe to project subjects: %w", err)
	}
	// The handler is trivial; a burst beyond these limits drops hints only.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	return func() { _ = sub.Unsubscribe() }, nil
}

// projectOfSubject returns the second token of "cairn.<project>.…" when it
// is a project id ("_sys" is not).
func projectOfSubject(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectRoot+".")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	if !ok || id == "" || id[0] == '_' {
		return "", false
	}
	return strings.Clone(id), true
}

// leaderGet is directGet answered by the stream's leader through the
// JetStream API (STREAM.MSG.GET), whose reply carries the message in JSON.
func (s *Store) leaderGet(ctx context.Context, stream string, body []byte) (StoredMsg, error) {
	reply, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return StoredMsg{}, ErrNoStream
		}
		return StoredMsg{}, err
	}
	var res struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &res); err != nil {
		return StoredMsg{}, fmt.Errorf("msg get: decode reply: %w", err)
	}
	switch {
	case res.Error != nil && res.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return StoredMsg{}, ErrNotFound
	case res.Error != nil && res.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return StoredMsg{}, ErrNoStream
	case res.Error != nil:
		return StoredMsg{}, fmt.Errorf("msg get: %w", res.Error)
	case res.Message == nil:
		return StoredMsg{}, errors.New("msg get: reply without a message")
	}
	m := res.Message
	h, err := parseHeaderBlock(m.Header)
	if err != nil {
		return StoredMsg{}, fmt.Errorf("msg get: seq %d: %w", m.Seq, err)
	}
	return StoredMsg{Seq: m.Seq, Subject: m.Subject, Data: m.Data, Header: h, Time: m.Time}, nil
}

// parseHeaderBlock reads a NATS header block ("NATS/1.0\r\nKey: value\r\n…")
// keeping keys as written, as nats.go does for delivered messages.
func parseHeaderBlock(b []byte) (nats.Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\r\n")
	if !strings.HasPrefix(lines[0], "NATS/1.0") {
		return nil, fmt.Errorf("header block starts with %q", lines[0])
	}
	h := nats.Header{}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("header line %q has no colon", l)
		}
		h[k] = append(h[k], strings.TrimSpace(v))
	}
	return h, nil
}
