package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/domain/storage"
	"github.com/cairn-dev/cairn/filestore"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// SweepReads is what the storage sweeper reads and clears.
type SweepReads interface {
	ExpiredUploads(nowUnixNano int64, limit int) ([]projections.ExpiredUpload, error)
	PendingStorageGarbage(limit int) ([]projections.StorageGarbage, error)
	StorageGarbageDone(g projections.StorageGarbage) error
}

// StorageSweeper abandons uploads that waited too long for their next chunk
// and deletes the bytes of deleted files, abandoned uploads and deleted
// buckets from the object stores. Every node runs one; all of its work is
// idempotent (an upload is abandoned once, by whichever node's append
// wins; deleting what is gone is no error).
type StorageSweeper struct {
	Log    *eventlog.Log
	Reads  SweepReads
	Store  *streams.Store
	Logger *slog.Logger
	// Every is the pause between sweeps (default 30 s).
	Every time.Duration
	// Sites, when set, also collects unused site files, every quarter of
	// its grace (at most every sweep): it lists every project's files.
	Sites     *SiteSweeper
	lastSites time.Time
}

// Run sweeps until ctx ends.
func (sw *StorageSweeper) Run(ctx context.Context) {
	every := sw.Every
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := sw.Sweep(ctx); err != nil && ctx.Err() == nil {
			sw.Logger.Warn("storage sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep does one round of both jobs, a bounded batch of each.
func (sw *StorageSweeper) Sweep(ctx context.Context) error {
	expired, err := sw.Reads.ExpiredUploads(sw.Log.Now().UnixNano(), 100)
	if err != nil {
		return fmt.Errorf("list expired uploads: %w", err)
	}
	meta := eventlog.Meta{Actor: &eventsv1.Actor{Kind: eventsv1.Actor_KIND_SYSTEM}}
	for _, e := range expired {
		f := e.Upload.GetFile()
		_, err := sw.Log.Write(ctx, eventlog.FileAggregate(e.Project, f.GetBucketId(), f.GetId()), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
			return storage.DecideFile(storage.StateOf(last), storage.AbandonUpload{Now: sw.Log.Now()})
		})
		if err != nil {
			return fmt.Errorf("abandon upload %s of project %s: %w", f.GetId(), e.Project, err)
		}
	}
	if sw.Sites != nil && time.Since(sw.lastSites) >= sw.Sites.grace()/4 {
		sw.lastSites = time.Now()
		if err := sw.Sites.Sweep(ctx); err != nil {
			return fmt.Errorf("site files: %w", err)
		}
	}
	garbage, err := sw.Reads.PendingStorageGarbage(100)
	if err != nil {
		return fmt.Errorf("list storage garbage: %w", err)
	}
	held := map[string]bool{}
	for _, g := range garbage {
		h, ok := held[g.Project]
		if !ok {
			if h, err = sw.Store.ObjectsHeld(ctx, g.Project, sw.Log.Now()); err != nil {
				return err
			}
			held[g.Project] = h
		}
		if h {
			continue // an export reads the project's objects: a later sweep
		}
		if err := sw.delete(ctx, g); err != nil {
			return err
		}
		if err := sw.Reads.StorageGarbageDone(g); err != nil {
			return err
		}
	}
	return nil
}

func (sw *StorageSweeper) delete(ctx context.Context, g projections.StorageGarbage) error {
	has, err := sw.Store.HasObjectStore(ctx, g.Project)
	if err != nil || !has {
		return err
	}
	obs, err := sw.Store.ObjectStore(ctx, g.Project)
	if err != nil {
		return err
	}
	if g.File != nil {
		f := g.File
		if err := filestore.Delete(ctx, obs, plainLayout(f), fileChunks(f)); err != nil {
			return fmt.Errorf("delete bytes of file %s of project %s: %w", f.GetId(), g.Project, err)
		}
		return nil
	}
	// A deleted bucket: every object under its uid, whichever file (or
	// refused chunk) wrote it.
	prefix := "files/" + layoutUID(g.BucketUID, "")
	lister, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list objects of project %s: %w", g.Project, err)
	}
	for _, info := range lister {
		if !strings.HasPrefix(info.Name, prefix) {
			continue
		}
		if err := obs.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("delete %s of project %s: %w", info.Name, g.Project, err)
		}
	}
	return nil
}
