package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrDestructive is returned by Apply for a plan with destructive changes
// it was not allowed to make.
var ErrDestructive = errors.New("the plan has destructive changes")

// ApplyOptions say what Apply may do and where it reports.
type ApplyOptions struct {
	AllowDestructive bool
	// Log receives a line per change made (and webhooks' secrets).
	Log io.Writer
}

// Apply makes the plan's changes in order, each one API call, waiting for
// attributes and indexes to become available. It changes nothing when the
// plan has problems, or destructive changes not allowed. A failed change
// stops it; the changes before it stay made, and planning again shows
// what is left.
func Apply(ctx context.Context, p *Plan, opt ApplyOptions) error {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if len(p.Problems) > 0 {
		return fmt.Errorf("apply to %s: nothing changed: %s", p.Project, p.Problems[0])
	}
	if d := p.Destructive(); len(d) > 0 && !opt.AllowDestructive {
		return fmt.Errorf("apply to %s: nothing changed: %w (%d, first: %s); pass --allow-destructive to make them", p.Project, ErrDestructive, len(d), d[0].String())
	}
	var phases []int
	for _, c := range p.Changes {
		phases = append(phases, c.phase)
	}
	slices.Sort(phases)
	for _, ph := range slices.Compact(phases) {
		for _, ch := range p.Changes {
			if ch.phase != ph {
				continue
			}
			if err := ch.do(ctx, opt.Log); err != nil {
				return fmt.Errorf("apply to %s: %s %s %s: %w", p.Project, ch.Op, ch.Kind, ch.ID, err)
			}
			fmt.Fprintln(opt.Log, ch.String())
		}
		for _, w := range p.waits[ph] {
			if err := w(ctx); err != nil {
				return fmt.Errorf("apply to %s: %w", p.Project, err)
			}
		}
	}
	return nil
}
