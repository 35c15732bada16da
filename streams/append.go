package streams

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// Header names of the JetStream publish protocol used by Append.
const (
	HeaderMsgID         = jetstream.MsgIDHeader                         // "Nats-Msg-Id"
	hdrExpectedStream   = jetstream.ExpectedStreamHeader                // "Nats-Expected-Stream"
	hdrExpectedLastSubj = jetstream.ExpectedLastSubjSeqHeader           // "Nats-Expected-Last-Subject-Sequence"
	hdrExpectedSubjFilt = "Nats-Expected-Last-Subject-Sequence-Subject" // the aggregate's filter
	hdrExpectedLastID   = jetstream.ExpectedLastMsgIDHeader             // used only by probeDuplicate
	hdrBatchID          = "Nats-Batch-Id"
	hdrBatchSeq         = "Nats-Batch-Sequence"
	hdrBatchCommit      = "Nats-Batch-Commit"
)

// MaxBatch is the largest atomic batch nats-server accepts by default.
const MaxBatch = 1000

// Msg is one message to append.
type Msg struct {
	Subject string
	Data    []byte
	// MsgID is the deduplication key (Nats-Msg-Id). Required on the first
	// message of an Append; later messages left empty get the first's id
	// suffixed with ":<index>", so a retried batch deduplicates as a whole.
	MsgID string
	// Header holds optional extra headers; Nats-* headers set by Append win.
	Header nats.Header
	// ExpectFilter and ExpectSeq add an expectation of this message's own
	// (for example a uniqueness claim subject that must still be free,
	// ExpectSeq 0). The first message's expectation is Append's. The server
	// refuses an expectation on a subject written earlier in the same batch.
	ExpectFilter string
	ExpectSeq    uint64
}

// Append is an optimistic-concurrency append of one message or an atomic
// batch of messages to one stream.
type Append struct {
	// Stream the subjects must land in; the server refuses the append if
	// they belong to another stream.
	Stream string
	// ExpectFilter is the aggregate's subject filter (e.g.
	// "cairn.p1.keys.K1.>"). Empty means no concurrency check.
	ExpectFilter string
	// ExpectSeq is the aggregate's last sequence the caller decided on; 0
	// means no message may exist on ExpectFilter yet.
	ExpectSeq uint64
	// Msgs to append, in order. More than one is an atomic batch: all land,
	// contiguously, or none does.
	Msgs []Msg
}

// Ack reports a successful append.
type Ack struct {
	// Seq is the stream sequence of the last message appended.
	Seq uint64
	// Duplicate is true when the message ids were already stored within the
	// duplicate window: nothing was appended and Seq is the original's.
	Duplicate bool
}

// pubResponse is the server's reply to a JetStream publish or batch commit.
type pubResponse struct {
	Stream    string              `json:"stream"`
	Seq       uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate"`
	Batch     string              `json:"batch"`
	Count     int                 `json:"count"`
	Error     *jetstream.APIError `json:"error"`
}

// Append appends a.Msgs to a.Stream if the last message on a.ExpectFilter
// is still at a.ExpectSeq.
//
// Returns ErrConflict if the expectation is stale, ErrStreamFull if the
// stream is at its limit, ErrNoStream if it does not exist and ErrInvalid
// for a malformed request. A retry of an append that already succeeded
// (same message ids, within the duplicate window) returns the original
// sequence with Duplicate set, even though its expectation is stale by then.
func (s *Store) Append(ctx context.Context, a Append) (Ack, error) {
	msgs, err := s.buildMsgs(a)
	if err != nil {
		return Ack{}, err
	}
	var ack Ack
	if len(msgs) == 1 {
		ack, err = s.publish(ctx, msgs[0])
	} else {
		ack, err = s.publishBatch(ctx, msgs)
	}
	if err == nil {
		return ack, nil
	}
	// nats-server checks a single message's expected sequence before its
	// Nats-Msg-Id, and an atomic batch reports a known id as an error
	// without the original sequence. Either way a retried, already stored
	// append would look like a failure, so ask the server about the id of
	// the last message before reporting one.
	var apiErr *jetstream.APIError
	if errors.Is(err, ErrConflict) || (errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeBatchContainsDuplicateMsg) {
		last := msgs[len(msgs)-1]
		if seq, dup, perr := s.probeDuplicate(ctx, a.Stream, last.Subject, last.Header.Get(HeaderMsgID)); perr == nil && dup {
			return Ack{Seq: seq, Duplicate: true}, nil
		} else if perr != nil {
			s.log.WarnContext(ctx, "duplicate probe failed", "stream", a.Stream, "err", perr)
		}
		if !errors.Is(err, ErrConflict) {
			return Ack{}, fmt.Errorf("%w: batch reuses a message id already stored: %w", ErrInvalid, err)
		}
	}
	return Ack{}, fmt.Errorf("streams: append to %s: %w", a.Stream, err)
}

func (s *Store) buildMsgs(a Append) ([]*nats.Msg, error) {
	switch {
	case a.Stream == "":
		return nil, fmt.Errorf("%w: append without stream", ErrInvalid)
	case len(a.Msgs) == 0:
		return nil, fmt.Errorf("%w: append without messages", ErrInvalid)
	case len(a.Msgs) > MaxBatch:
		return nil, fmt.Errorf("%w: %d messages exceed the batch limit of %d", ErrInvalid, len(a.Msgs), MaxBatch)
	case a.Msgs[0].MsgID == "":
		return nil, fmt.Errorf("%w: append without message id", ErrInvalid)
	}
	out := make([]*nats.Msg, len(a.Msgs))
	for i, m := range a.Msgs {
		if m.Subject == "" {
			return nil, fmt.Errorf("%w: message %d has no subject", ErrInvalid, i)
		}
		id := m.MsgID
		if id == "" {
			id = a.Msgs[0].MsgID + ":" + strconv.Itoa(i)
		}
		h := make(nats.Header, len(m.Header)+4)
		for k, v := range m.Header {
			h[k] = append([]string(nil), v...)
		}
		// The (at most four) headers set here share one backing array: one
		// allocation instead of one per header. Each value's slice is capped
		// at its length, so a later Add cannot overwrite the next.
		vals := make([]string, 0, 4)
		set := func(k, v string) {
			vals = append(vals, v)
			n := len(vals)
			h[k] = vals[n-1 : n : n]
		}
		set(HeaderMsgID, id)
		set(hdrExpectedStream, a.Stream)
		// The aggregate's expectation goes on the first message; on commit the
		// server checks every message's expectation against the stream
		// before storing any of them.
		filter, seq := m.ExpectFilter, m.ExpectSeq
		if i == 0 && a.ExpectFilter != "" {
			if m.ExpectFilter != "" {
				return nil, fmt.Errorf("%w: first message has its own expectation and Append's", ErrInvalid)
			}
			filter, seq = a.ExpectFilter, a.ExpectSeq
		}
		if filter != "" {
			set(hdrExpectedLastSubj, strconv.FormatUint(seq, 10))
			set(hdrExpectedSubjFilt, filter)
		}
		out[i] = &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
		// Checked here, not left to the server, so the caller gets a sentinel
		// (and the size) instead of a closed batch.
		if n, limit := msgSize(out[i]), s.maxPayload(); limit > 0 && int64(n) > limit {
			return nil, fmt.Errorf("%w: an event of %d bytes exceeds the NATS max payload of %d bytes", ErrTooLarge, n, limit)
		}
	}
	return out, nil
}

// msgSize is what NATS counts against max_payload: the data and the
// encoded headers (with room for the batch headers publishBatch adds).
func msgSize(m *nats.Msg) int {
	n := len(m.Data) + len("NATS/1.0\r\n\r\n") + 128
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// publish sends one message and waits for the stream's ack.
func (s *Store) publish(ctx context.Context, m *nats.Msg) (Ack, error) {
	resp, err := s.request(ctx, m)
	if err != nil {
		return Ack{}, err
	}
	return Ack{Seq: resp.Seq, Duplicate: resp.Duplicate}, nil
}

// publishBatch sends msgs as one JetStream atomic batch: every message
// carries Nats-Batch-Id and Nats-Batch-Sequence, the last also
// Nats-Batch-Commit. The server stages the batch and, on commit, checks
// every message's headers (expected sequences, message ids, limits) before
// storing any, so the batch lands whole or not at all.
//
// Cost (nats-server 2.15, R1 file storage): the server stages each batch in
// a temporary file store, so a batch takes ~2 ms however small, against
// ~16 µs for a single message; at most 50 batches per stream are in flight.
// Use batches where atomicity is needed (claims), not for throughput.
func (s *Store) publishBatch(ctx context.Context, msgs []*nats.Msg) (Ack, error) {
	id := ulid.Make().String() // at most 64 bytes
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			// Staged messages need no reply: a failure abandons the batch
			// and the commit below reports it. One connection keeps order.
			if err := s.nc.PublishMsg(m); err != nil {
				return Ack{}, fmt.Errorf("stage batch message %d: %w", i+1, err)
			}
		}
	}
	commit := msgs[len(msgs)-1]
	commit.Header.Set(hdrBatchCommit, "1")
	resp, err := s.request(ctx, commit)
	if err != nil {
		return Ack{}, err
	}
	if resp.Count != len(msgs) {
		return Ack{}, fmt.Errorf("batch commit acknowledged %d of %d messages", resp.Count, len(msgs))
	}
	return Ack{Seq: resp.Seq}, nil
}

// request publishes m and decodes the stream's reply.
func (s *Store) request(ctx context.Context, m *nats.Msg) (pubResponse, error) {
	// Bound each attempt: during a NATS failover a request can go
	// unanswered, and the caller's context may have no deadline.
	var (
		reply *nats.Msg
		err   error
	)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.opts.RequestTimeout {
		reply, err = s.nc.RequestMsgWithContext(ctx, m)
	} else if err = ctx.Err(); err == nil {
		// Bounded by the timeout alone, without a context derived from
		// ctx: a timer context registered with every write's request
		// context was ~4 % of a create's CPU. A caller that gives up
		// meanwhile waits for the answer (microseconds; at most the
		// timeout while NATS does not answer).
		reply, err = s.nc.RequestMsg(m, s.opts.RequestTimeout)
	}
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return pubResponse{}, fmt.Errorf("no stream for subject %s: %w", m.Subject, ErrNoStream)
		}
		if errors.Is(err, nats.ErrMaxPayload) { // a limit lowered since maxPayload looked
			return pubResponse{}, fmt.Errorf("publish %s: %w: %w", m.Subject, ErrTooLarge, err)
		}
		if ctx.Err() == nil && unavailable(err) {
			return pubResponse{}, fmt.Errorf("publish %s: %w: %w", m.Subject, ErrUnavailable, err)
		}
		return pubResponse{}, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	resp, err := decodePubResponse(reply.Data)
	if err != nil {
		return pubResponse{}, fmt.Errorf("decode publish ack for %s: %w", m.Subject, err)
	}
	if resp.Error != nil {
		return pubResponse{}, classify(resp.Error)
	}
	if resp.Seq == 0 {
		return pubResponse{}, fmt.Errorf("publish ack for %s without sequence: %q", m.Subject, reply.Data)
	}
	return resp, nil
}

// probeDuplicate asks whether msgID is in the stream's duplicate window,
// and at which sequence. It publishes an empty message with that id and an
// expectation no message can meet: the server answers a known id with the
// original's sequence, and rejects an unknown one on the impossible
// expectation, so the probe itself never stores anything.
//
// Which expectation depends on the stream's replicas (nats-server 2.15):
//   - R1 checks the expected last subject sequence before the message id,
//     so the probe uses an impossible expected last message id;
//   - R3 checks the message id first at the leader, but checks an expected
//     last message id only when each replica applies the message, and a
//     mismatch there is a fatal write error that leaves the stream without
//     a leader. So a replicated stream gets an impossible expected last
//     subject sequence instead (found by the cluster test).
func (s *Store) probeDuplicate(ctx context.Context, stream, subject, msgID string) (uint64, bool, error) {
	if msgID == "" {
		return 0, false, nil
	}
	str, err := s.js.Stream(ctx, stream)
	if err != nil {
		return 0, false, fmt.Errorf("replicas of %s: %w", stream, err)
	}
	h := nats.Header{}
	h.Set(HeaderMsgID, msgID)
	h.Set(hdrExpectedStream, stream)
	if str.CachedInfo().Config.Replicas > 1 {
		h.Set(hdrExpectedLastSubj, strconv.FormatUint(math.MaxUint64, 10))
		h.Set(hdrExpectedSubjFilt, subject)
	} else {
		h.Set(hdrExpectedLastID, "cairn-probe-"+ulid.Make().String())
	}
	resp, err := s.request(ctx, &nats.Msg{Subject: subject, Header: h})
	switch {
	case err == nil && resp.Duplicate:
		return resp.Seq, true, nil
	case err == nil:
		// Cannot happen with the impossible expectation; say so loudly.
		return 0, false, fmt.Errorf("duplicate probe on %s was stored at %d", subject, resp.Seq)
	default:
		var apiErr *jetstream.APIError
		if errors.Is(err, ErrConflict) || (errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeWrongLastMsgID) {
			return 0, false, nil
		}
		return 0, false, err
	}
}
