package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// ForkOptions say where a fork branches off.
type ForkOptions struct {
	// At is the last sequence the fork copies; with AtTime zero, 0 means
	// the stream's last sequence now.
	At uint64
	// AtTime, when set, copies the events stored at or before it.
	AtTime time.Time
	// As is the new project's id.
	As string
	Policy
	Progress Progress
}

// Fork creates project opts.As whose history is src's up to a point: the
// events copied (ids rewritten, secrets re-sealed for the new id: seals are
// bound to their project), the objects those events reference copied
// (content-addressed site blobs included: the new project must survive the
// deletion of the old one, and object stores do not share across buckets
// safely), and the read models rebuilt by the new project's projector.
func (in *Instance) Fork(ctx context.Context, src *eventsv1.Project, opts ForkOptions) (Result, error) {
	if opts.As == "" {
		return Result{}, fmt.Errorf("%w: fork needs the new project's id", streams.ErrInvalid)
	}
	if opts.At != 0 && !opts.AtTime.IsZero() {
		return Result{}, fmt.Errorf("%w: fork at a sequence or at a time, not both", streams.ErrInvalid)
	}
	stream := streams.ProjectStream(src.GetId())
	// Objects deleted while the fork copies them stay until it is done;
	// those deleted before it began are gone (a fork at a past point
	// lacks the files deleted since).
	release, err := in.holdObjects(ctx, src.GetId())
	if err != nil {
		return Result{}, err
	}
	defer release()
	info, err := in.Store.StreamInfo(ctx, stream)
	if err != nil {
		return Result{}, err
	}
	at := opts.At
	switch {
	case at == 0:
		at = info.LastSeq
	case at > info.LastSeq:
		return Result{}, fmt.Errorf("%w: project %s has events up to sequence %d; cannot fork at %d", streams.ErrInvalid, src.GetId(), info.LastSeq, at)
	}
	p := proto.CloneOf(src)
	p.Id = opts.As
	s, err := in.newSink(ctx, src.GetId(), p, opts.Policy)
	if err != nil {
		if s != nil {
			s.abort()
		}
		return Result{}, err
	}
	res, err := in.fork(ctx, s, stream, at, opts)
	if err != nil {
		s.abort()
		return Result{}, err
	}
	return res, nil
}

func (in *Instance) fork(ctx context.Context, s *sink, stream string, at uint64, opts ForkOptions) (Result, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	refs := newReferences()
	prefix := streams.ProjectPrefix(s.from)
	if at > 0 {
		for msg, err := range in.Store.Read(ctx, stream, streams.ReadOptions{StartSeq: 1}) {
			if err != nil {
				return s.res, err
			}
			if msg.Seq > at || (!opts.AtTime.IsZero() && msg.Time.After(opts.AtTime)) {
				break
			}
			rel, ok := strings.CutPrefix(msg.Subject, prefix)
			if !ok {
				return s.res, fmt.Errorf("transfer: message %d has subject %q outside project %s", msg.Seq, msg.Subject, s.from)
			}
			rec := record{Seq: msg.Seq, Subject: rel, Header: msg.Header, Data: msg.Data}
			if err := s.event(ctx, rec, in.Unseal); err != nil {
				return s.res, err
			}
			// The sink decoded the event already; decoding again keeps the
			// sink's API to records. Forks are not the hot path.
			if env, err := decodeForRefs(msg.Data); err == nil {
				refs.add(env.ProtoReflect())
			}
			if s.res.Events%10000 == 0 {
				progress("events", int64(s.res.Events), int64(at))
			}
			if msg.Seq == at {
				break
			}
		}
	}
	if err := s.flush(ctx); err != nil {
		return s.res, err
	}
	if err := in.copyObjects(ctx, s, refs, progress); err != nil {
		return s.res, err
	}
	return s.finish(ctx)
}

// copyObjects copies the source's objects that refs names into the sink.
func (in *Instance) copyObjects(ctx context.Context, s *sink, refs *references, progress Progress) error {
	has, err := in.Store.HasObjectStore(ctx, s.from)
	if err != nil || !has {
		return err
	}
	obs, err := in.Store.ObjectStore(ctx, s.from)
	if err != nil {
		return err
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("transfer: list objects of %s: %w", s.from, err)
	}
	for _, o := range list {
		if o.Deleted || !refs.has(o.Name) {
			continue
		}
		r, err := obs.Get(ctx, o.Name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("transfer: get object %s: %w", o.Name, err)
		}
		oi, _ := r.Info()
		err = s.putObject(ctx, o.Name, objectMeta{Description: oi.Description, Headers: oi.Headers, Metadata: oi.Metadata}, r)
		r.Close()
		if err != nil {
			return err
		}
		progress("objects", s.res.ObjectBytes, 0)
	}
	return nil
}
