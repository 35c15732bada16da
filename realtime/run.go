package realtime

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/streams"
)

// Status is a subscription's state, explicit in the protocol.
type Status int

// Statuses.
const (
	// StatusConnected: subscribed, nothing to catch up on.
	StatusConnected Status = iota + 1
	// StatusResuming: delivering what was missed since the resume sequence.
	StatusResuming
	// StatusLive: caught up; live events from here on.
	StatusLive
)

// Delivery is one message for the subscriber: an event, a state change or
// a resync notice.
type Delivery struct {
	Event *Event
	// Channels are the subscriber's channels Event matched.
	Channels []string
	State    Status
	// Seq is the last sequence delivered or skipped (with State).
	Seq uint64
	// ResyncFrom is set when the events after the resume sequence are no
	// longer in the log, or the resume sequence is beyond its end (a log
	// recreated with its project): the first sequence there. Events from
	// it follow.
	ResyncFrom uint64
	// Reason says which.
	Reason string
}

// Run sends everything the subscriber must receive, in stream order and
// without duplicates, until ctx ends or the subscription is closed (then it
// returns why). accept is asked about every event whose channels match
// (permissions, kinds, attribute filters); send writes to the client.
func (s *Subscriber) Run(ctx context.Context, accept func(*Event) bool, send func(Delivery) error) error {
	defer s.Close(nil)
	if err := s.start(ctx, accept, send); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return s.closeErr
		case e := <-s.live:
			if e.Seq <= s.last {
				continue // delivered by the catch-up already
			}
			s.last = e.Seq
			if ch := s.Matched(e); len(ch) > 0 && accept(e) {
				if err := send(Delivery{Event: e, Channels: ch}); err != nil {
					return err
				}
			}
		}
	}
}

// start sends the subscription's state, catches up when it resumes, and
// says it is live.
func (s *Subscriber) start(ctx context.Context, accept func(*Event) bool, send func(Delivery) error) error {
	if s.after == 0 {
		if err := send(Delivery{State: StatusConnected, Seq: s.last}); err != nil {
			return err
		}
	} else if err := s.catchUp(ctx, accept, send); err != nil {
		return err
	}
	return send(Delivery{State: StatusLive, Seq: s.last})
}

// RunDirect is Run for a subscriber whose live events need no goroutine of
// its own: once live, the feed's fan-out hands each event whose channels
// match to sink (Sink.Deliver), with the matched channels (MatchedSet), in
// stream order, one at a time; a full queue cuts the subscriber off as a
// slow consumer. What Run's send would do before (state, catch-up) it
// still does on the caller's goroutine.
func (s *Subscriber) RunDirect(ctx context.Context, accept func(*Event) bool, send func(Delivery) error, sink Sink) error {
	defer s.Close(nil)
	if err := s.start(ctx, accept, send); err != nil {
		return err
	}
	// Under the feed's lock no event is being fanned out: what is queued
	// goes first, then the feed calls sink.
	f := s.feed
	f.mu.Lock()
	for drained := false; !drained; {
		select {
		case e := <-s.live:
			if set := s.MatchedSet(e); e.Seq > s.last && set != 0 {
				s.last = e.Seq
				if !sink.Deliver(e, set, false) {
					s.cutOff()
				}
			}
		default:
			drained = true
		}
	}
	sink.Kick()
	s.sink = sink
	// The queue is done with (push takes the sink from now on, under the
	// same lock): its buffer of pointers, a thousand per subscriber,
	// would otherwise be scanned by every garbage collection.
	s.live = nil
	f.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return s.closeErr
	}
}

// catchUp delivers the stored events after s.after, then switches to the
// live queue. Live events queue meanwhile; if the queue overflowed, the
// catch-up simply runs again from where it stopped, so nothing is lost.
func (s *Subscriber) catchUp(ctx context.Context, accept func(*Event) bool, send func(Delivery) error) error {
	stream := streams.ProjectStream(s.project)
	if err := send(Delivery{State: StatusResuming, Seq: s.after}); err != nil {
		return err
	}
	info, err := s.hub.src.StreamInfo(ctx, stream)
	if err != nil {
		return fmt.Errorf("realtime: resume: %w", err)
	}
	s.last = s.after
	first := max(info.FirstSeq, 1)
	var reason string
	switch {
	case s.after+1 < first:
		reason = "the events after the resume sequence are no longer in the log"
	case s.after > info.LastSeq:
		// Live events up to s.after would be skipped as delivered.
		reason = fmt.Sprintf("the resume sequence is beyond the end of the log (%d)", info.LastSeq)
	}
	if reason != "" {
		// Never a silent hole: the client must reload its state.
		if err := send(Delivery{ResyncFrom: first, Reason: reason}); err != nil {
			return err
		}
		s.last = first - 1
	}
	for {
		for m, err := range s.hub.src.Read(ctx, stream, streams.ReadOptions{StartSeq: s.last + 1}) {
			if err != nil {
				return fmt.Errorf("realtime: resume from %d: %w", s.last+1, err)
			}
			e, err := decode(s.project, m)
			if err != nil {
				s.last = m.Seq
				continue
			}
			if err := s.hub.applied(ctx, stream, e.Seq); err != nil {
				return err
			}
			s.last = e.Seq
			if ch := s.Matched(e); len(ch) > 0 && accept(e) {
				if err := send(Delivery{Event: e, Channels: ch}); err != nil {
					return err
				}
			}
			select {
			case <-s.closed:
				return s.closeErr
			default:
			}
		}
		s.mu.Lock()
		if !s.overflow {
			s.resuming = false
			s.mu.Unlock()
			return nil
		}
		// Dropped live events are all stored: read on from s.last.
		s.overflow = false
		for len(s.live) > 0 {
			<-s.live
		}
		s.mu.Unlock()
	}
}
