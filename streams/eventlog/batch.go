package eventlog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// Change is one aggregate's part of a write (several of them: a bulk write,
// a transaction's commit).
type Change struct {
	Agg Aggregate
	// Decide turns the aggregate's last event and its sequence (nil and 0
	// when it has none) into new events; none leaves the aggregate as is.
	// A *domain.AfterWrite error with events stores them, then fails the
	// write with its cause.
	Decide func(last *eventsv1.Envelope, lastSeq uint64) ([]*eventsv1.Envelope, error)
	// New says the aggregate most likely has no event yet (a create): the
	// first attempt decides against nothing without reading the log and
	// appends expecting the aggregate empty. When it is not, the append is
	// refused as a conflict and the change is decided again on what the
	// log holds. Saves a read of the log per create.
	New bool
}

// WriteAll decides every change and appends all their events in one atomic
// batch in which each aggregate's first message expects the sequence its
// decision read: the batch lands only if none of the aggregates changed
// meanwhile, else every change is decided again. Claims among a change's
// events are resolved as in Write. The aggregates must be distinct and of
// one stream; changes that decide nothing are left out, and
// when none decides anything nothing is written.
func (l *Log) WriteAll(ctx context.Context, meta Meta, changes []Change) (Result, error) {
	if len(changes) == 0 {
		return Result{}, errors.New("eventlog: WriteAll without changes")
	}
	stream := changes[0].Agg.Stream
	if len(changes) > 1 { // one change (a create, an update) needs no map
		seen := make(map[string]bool, len(changes))
		for _, c := range changes {
			if c.Agg.Stream != stream {
				return Result{}, fmt.Errorf("eventlog: WriteAll across streams %s and %s", stream, c.Agg.Stream)
			}
			if seen[c.Agg.Filter] {
				return Result{}, fmt.Errorf("eventlog: WriteAll changes %s twice", c.Agg.Filter)
			}
			seen[c.Agg.Filter] = true
		}
	}
	msgID, own := "", true
	if meta.IdempotencyKey != "" {
		msgID, own = IdempotencyMsgID(meta.Scope, meta.IdempotencyKey), false
		seq, ok, err := l.reads.IdempotentSeq(stream, msgID)
		if err != nil {
			return Result{}, fmt.Errorf("idempotency lookup: %w", err)
		}
		if ok {
			return l.stored(ctx, stream, seq, msgID, true)
		}
	} else {
		msgID = "w:" + l.NewID()
	}
	for attempt := 1; ; attempt++ {
		var (
			all     []*eventsv1.Envelope
			expects []expect
			after   *domain.AfterWrite
		)
		// The first attempt takes New changes' aggregates as empty; blind
		// says it did for at least one.
		guess, blind := attempt == 1, false
		for _, c := range changes {
			var (
				last    *eventsv1.Envelope
				lastSeq uint64
				err     error
			)
			if c.New && guess {
				blind = true
			} else if last, lastSeq, err = l.load(ctx, c.Agg); err != nil {
				return Result{}, err
			}
			events, err := c.Decide(last, lastSeq)
			if err != nil && (!errors.As(err, &after) || len(events) == 0) {
				return Result{}, err
			}
			if len(events) == 0 {
				continue
			}
			events, exp, err := l.claims(ctx, events)
			if err != nil {
				return Result{}, err
			}
			exp[0] = expect{filter: c.Agg.Filter, seq: lastSeq}
			all, expects = append(all, events...), append(expects, exp...)
		}
		if len(all) == 0 {
			return Result{}, nil
		}
		if len(all) > streams.MaxBatch {
			return Result{}, domain.Errorf(domain.KindInvalid, "the write needs %d events; at most %d fit in one atomic batch", len(all), streams.MaxBatch)
		}
		if meta.Prepare != nil {
			if err := meta.Prepare(ctx, all); err != nil {
				return Result{}, err
			}
		}
		msgs, err := l.seal(all, meta, msgID)
		if err != nil {
			return Result{}, err
		}
		for i, e := range expects[1:] {
			msgs[i+1].ExpectFilter, msgs[i+1].ExpectSeq = e.filter, e.seq
		}
		ack, err := l.append(ctx, streams.Append{Stream: stream, ExpectFilter: expects[0].filter, ExpectSeq: expects[0].seq, Msgs: msgs})
		switch {
		case errors.Is(err, streams.ErrConflict) && blind:
			continue // an aggregate taken as new was not: decide on what it holds
		case errors.Is(err, streams.ErrConflict):
			if attempt >= l.maxAttempts {
				return Result{}, domain.Errorf(domain.KindConflict, "too many concurrent writes to these resources; retry")
			}
			if err := sleep(ctx, time.Duration(rand.IntN(attempt*2)+1)*time.Millisecond); err != nil {
				return Result{}, fmt.Errorf("write batch: %w", err)
			}
			continue
		case errors.Is(err, streams.ErrStreamFull):
			return Result{}, domain.Errorf(domain.KindResourceExhausted, "the project's storage limit (max stream bytes) is reached")
		case errors.Is(err, streams.ErrTooLarge):
			return Result{}, domain.Errorf(domain.KindInvalid, "the change is too large to store: %v", err)
		case errors.Is(err, streams.ErrUnavailable):
			return Result{}, domain.Errorf(domain.KindUnavailable, "the event store did not answer in time; retry with the same Idempotency-Key")
		case errors.Is(err, streams.ErrNoStream):
			return Result{}, domain.Errorf(domain.KindNotFound, "project not found")
		case err != nil:
			return Result{}, fmt.Errorf("append batch to %s: %w", stream, err)
		}
		if ack.Duplicate {
			first := ack.Seq - uint64(len(msgs)-1)
			return l.stored(ctx, stream, first, msgID, !own)
		}
		if err := l.waitApplied(ctx, stream, ack.Seq); err != nil {
			return Result{}, fmt.Errorf("wait for projection of %s seq %d: %w", stream, ack.Seq, err)
		}
		if after != nil {
			return Result{}, after.Err
		}
		return Result{Seq: ack.Seq, Events: all}, nil
	}
}
