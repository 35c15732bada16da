package transfer

import (
	"context"
	"time"
)

// holdFor is how long an export's hold on its objects lasts without being
// renewed: long enough to ride out a slow renewal, short enough that a
// crashed export does not keep deleted files' bytes for long.
const holdFor = 2 * time.Minute

// holdObjects keeps every node from deleting project's objects until the
// returned release is called (renewed meanwhile): the object store keeps
// no history, so an object deleted after the export's cut-off would be
// missing from the package. Taken before the cut-off is read: a deletion
// that did not see the hold comes from an event before the cut-off, whose
// object the package does not need.
func (in *Instance) holdObjects(ctx context.Context, project string) (release func(), err error) {
	holder := in.NewID()
	if err := in.Store.HoldObjects(ctx, project, holder, in.Now().Add(holdFor)); err != nil {
		return nil, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(holdFor / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := in.Store.HoldObjects(ctx, project, holder, in.Now().Add(holdFor)); err != nil && ctx.Err() == nil {
					in.Logger.Warn("transfer: renewing the hold on objects", "project", project, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := in.Store.ReleaseObjects(rctx, project, holder); err != nil {
			in.Logger.Warn("transfer: releasing the hold on objects (it lapses by itself)", "project", project, "err", err)
		}
	}, nil
}
