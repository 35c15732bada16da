package eventlog

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// expect is one message's own concurrency expectation.
type expect struct {
	filter string
	seq    uint64
}

// claims resolves the uniqueness claims among events (DESIGN §3): each
// ClaimTaken must find its claim subject free, and is appended expecting it
// to still be free; a ClaimReleased expects the claim it releases. A
// release of a claim the holder does not hold is dropped. The returned
// expectations are indexed like the returned events (zero for the
// aggregate's own events). Claims never come first: the first message
// carries the aggregate's expectation.
func (l *Log) claims(ctx context.Context, events []*eventsv1.Envelope) ([]*eventsv1.Envelope, []expect, error) {
	out := events[:0:0]
	var expects []expect
	for i, e := range events {
		var (
			project, ns, value, holder string
			taking                     bool
		)
		switch p := e.GetPayload().(type) {
		case *eventsv1.Envelope_ClaimTaken:
			project, ns, value, holder, taking = p.ClaimTaken.GetProjectId(), p.ClaimTaken.GetNamespace(), p.ClaimTaken.GetValue(), p.ClaimTaken.GetHolder(), true
		case *eventsv1.Envelope_ClaimReleased:
			project, ns, value, holder = p.ClaimReleased.GetProjectId(), p.ClaimReleased.GetNamespace(), p.ClaimReleased.GetValue(), p.ClaimReleased.GetHolder()
		default:
			out = append(out, e)
			expects = append(expects, expect{})
			continue
		}
		if i == 0 {
			return nil, nil, fmt.Errorf("a claim cannot be the first event of a write")
		}
		agg := ClaimAggregate(project, ns, value)
		last, seq, err := l.load(ctx, agg)
		if err != nil {
			return nil, nil, err
		}
		held := ""
		if t, ok := last.GetPayload().(*eventsv1.Envelope_ClaimTaken); ok {
			held = t.ClaimTaken.GetHolder()
		}
		switch {
		case taking && held != "" && held != holder:
			return nil, nil, &domain.Error{Kind: domain.KindAlreadyExists, Field: ns, Message: "already in use"}
		case taking && held == holder:
			continue // already this holder's
		case !taking && held != holder:
			continue // nothing to release
		}
		out = append(out, e)
		expects = append(expects, expect{filter: agg.Filter, seq: seq})
	}
	return out, expects, nil
}
