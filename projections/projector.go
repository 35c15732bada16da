package projections

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// fatalError marks an error a projector cannot get past by retrying: the
// stream holds something this build cannot apply. The projector stops.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

func fatal(format string, args ...any) error { return fatalError{fmt.Errorf(format, args...)} }

func isFatal(err error) bool {
	var f fatalError
	return errors.As(err, &f) || errors.Is(err, streams.ErrGap)
}

// errCaughtUp ends a bounded consume (a rebuild) at its target.
var errCaughtUp = errors.New("caught up")

// run is one consume of a stream: where it stands and what it has done.
type run struct {
	sp      keyspace
	st      *state
	ck      checkpoint
	created time.Time // the stream's creation time, recorded in checkpoints
	applied int       // events applied by this run
	// inflight is a bulk run's last commit, until settled.
	inflight *inflight
}

// event is a stream message with its decoded envelope.
type event struct {
	msg streams.StoredMsg
	env *eventsv1.Envelope
	// doc, in a bulk run, is a document event's document, undecoded; env
	// then has no payload (decodeBulk).
	doc *rawDoc
}

// effect is what applying an event does beyond its Badger writes (project
// lifecycle). An event with an effect is committed in a transaction of its
// own: pre runs just before that commit, post just after it.
type effect struct {
	pre  func(ctx context.Context) error
	post func()
}

func (e effect) none() bool { return e.pre == nil && e.post == nil }

// follow runs an active projector until ctx ends, it meets a fatal error,
// or, for a project, it parks: it caught up and stayed idle (see
// Options.IdleAfter), or its stream does not exist (a notification or the
// sweep wakes it when it does). It reports whether it parked. Transient
// errors (NATS unavailable, Badger write errors) are retried with backoff,
// each retry resuming from the checkpoint.
func (p *Projections) follow(ctx context.Context, pr *projector) (parked bool) {
	sp, st := pr.sp, pr.st
	log := p.log.With("stream", sp.stream)
	backoff := 100 * time.Millisecond
	for {
		_, err := p.consume(ctx, sp, st, false, pr)
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, streams.ErrIdle) {
			return true
		}
		if isFatal(err) {
			// Loud on purpose: this stream's read models stay frozen at their
			// last consistent checkpoint until someone fixes the cause.
			log.Error("PROJECTOR STOPPED: cannot apply stream; read models are stale until fixed",
				"applied", p.AppliedSeq(sp.stream), "err", err)
			p.markStopped(pr)
			st.stop(fmt.Errorf("%w: %s: %w", ErrProjectorStopped, sp.stream, err))
			return false
		}
		if errors.Is(err, streams.ErrNoStream) {
			if sp.project != "" {
				log.Debug("stream does not exist; parked until it does")
				return true
			}
			log.Info("stream does not exist (yet); retrying", "retry_in", backoff)
		} else {
			log.Warn("projector error; retrying from checkpoint", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// consume checks the read model against the stream, then applies the stream
// from the checkpoint on: until ctx ends, or, when bounded, until the
// stream's last sequence at the start, or, for a live project projector
// (pr set), until it is idle and may park (streams.ErrIdle). It returns the
// number of events applied.
func (p *Projections) consume(ctx context.Context, sp keyspace, st *state, bounded bool, pr *projector) (int, error) {
	info, err := p.store.StreamInfo(ctx, sp.stream)
	if err != nil {
		if errors.Is(err, streams.ErrNoStream) {
			// Nothing to catch up with: do not hold readiness hostage.
			ck, _ := p.loadCheckpoint(sp)
			st.started(ck.Seq, 0)
		}
		return 0, err
	}
	ck, err := p.loadCheckpoint(sp)
	if err != nil {
		return 0, err
	}
	// A live projector that finds a bulk catch-up interrupted (stopped or
	// crashed before its indexes were built) resumes it from the checkpoint.
	resume := false
	if pr != nil && sp.project != "" && ck.Seq > 0 {
		if resume, err = p.indexesPending(sp); err != nil {
			return 0, err
		}
	}
	vsp := sp
	if resume {
		vsp.bulk = newBulkState() // verify the checkpoint only: the marker is expected
	}
	if why, err := p.verify(ctx, vsp, ck, info); err != nil {
		return 0, err
	} else if why != "" {
		p.log.WarnContext(ctx, "read model is ahead of or inconsistent with its stream; rebuilding it from the start",
			"stream", sp.stream, "reason", why, "checkpoint_seq", ck.Seq, "stream_last_seq", info.LastSeq)
		st.rewind()
		if err := p.drop(sp); err != nil {
			return 0, err
		}
		ck, resume = checkpoint{}, false
	}
	// A bulk run's read model, resumed or not, lacks its index entries
	// until buildIndexesInBulk: nobody waiting for a sequence reads it
	// before (the state advances after the build), even one its checkpoint
	// has.
	from := ck.Seq
	if resume || sp.bulk != nil {
		from = 0
	}
	st.started(from, info.LastSeq)
	applied := 0
	if pr != nil && sp.project != "" && (resume || ck.Seq == 0 && info.LastSeq >= p.bulkCatchUp) {
		// A read model that starts from nothing (a new node, or one just
		// dropped) catches up the way a rebuild does, then follows live.
		bulk := sp
		bulk.bulk = newBulkState()
		// Resumed, the documents written before are not in the bulkState:
		// it reads what it lacks.
		bulk.bulk.full = resume
		if resume {
			if err := p.redoWindow(ctx, bulk, ck.Seq); err != nil {
				return 0, err
			}
		}
		if applied, err = p.consume(ctx, bulk, st, true, nil); err != nil {
			return applied, err
		}
		if _, err := p.buildIndexesInBulk(ctx, bulk); err != nil {
			return applied, err
		}
		if ck, err = p.loadCheckpoint(sp); err != nil {
			return applied, err
		}
		st.advance(ck.Seq)
	}
	r := &run{sp: sp, st: st, ck: ck, created: info.Created, applied: applied}
	if sp.project != "" && sp.bulk == nil {
		r.sp.counts = &docCounts{}
	}
	if bounded && ck.Seq >= info.LastSeq {
		return 0, nil
	}
	opts := streams.SubscribeOptions{StartSeq: ck.Seq + 1, MaxBatch: p.batch}
	if sp.bulk != nil {
		// Without index upkeep an event is a write or two: fewer, larger
		// transactions (Badger splits one that is too big).
		opts.MaxBatch = max(p.batch, bulkBatch)
	}
	if pr != nil {
		p.mu.Lock()
		pr.created = info.Created
		p.mu.Unlock()
		pr.noteLast(info.LastSeq)
		if sp.project != "" && p.idle > 0 {
			opts.Idle, opts.OnIdle = p.idle, func() bool { return p.mayPark(pr) }
		}
	}
	err = p.store.SubscribeWith(ctx, sp.stream, opts, func(batch []streams.StoredMsg) error {
		if err := p.applyBatch(ctx, r, batch); err != nil {
			return err
		}
		if pr != nil {
			last := batch[len(batch)-1]
			pr.noteLast(last.Seq + last.Pending)
		}
		if bounded && r.ck.Seq >= info.LastSeq {
			return errCaughtUp
		}
		return nil
	})
	serr := p.settle(r)
	if serr == nil && sp.bulk != nil {
		// What the run applied is in Badger before it ends, stopped by a
		// bad event or not.
		serr = p.flushWindow(sp, r.ck.Seq)
	}
	if errors.Is(err, errCaughtUp) {
		err = nil
	} else if err == nil && bounded {
		err = ctx.Err()
	}
	if err == nil {
		err = serr
	}
	return r.applied, err
}

// verify returns why the checkpoint does not belong to the stream, or "".
// Outside a bulk run (sp.bulk), an interrupted bulk run's marker makes the
// read model inconsistent too.
func (p *Projections) verify(ctx context.Context, sp keyspace, ck checkpoint, info streams.Info) (string, error) {
	if sp.project != "" && sp.bulk == nil {
		pending, err := p.indexesPending(sp)
		if err != nil {
			return "", err
		}
		if pending {
			return "a rebuild was interrupted before it built the document indexes", nil
		}
	}
	if ck.Seq == 0 {
		return "", nil
	}
	switch {
	case ck.Seq > info.LastSeq:
		return fmt.Sprintf("checkpoint at %d but the stream ends at %d", ck.Seq, info.LastSeq), nil
	case !ck.Created.Equal(info.Created):
		return fmt.Sprintf("stream was recreated (created %s, checkpoint says %s)",
			info.Created.UTC().Format(time.RFC3339Nano), ck.Created.Format(time.RFC3339Nano)), nil
	}
	msg, err := p.store.Get(ctx, sp.stream, ck.Seq)
	if errors.Is(err, streams.ErrNotFound) {
		return fmt.Sprintf("no message at checkpoint sequence %d", ck.Seq), nil
	}
	if err != nil {
		return "", fmt.Errorf("projections: verify checkpoint of %s: %w", sp.stream, err)
	}
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(msg.Data, env); err != nil || env.GetId() != ck.EventID {
		return fmt.Sprintf("event at %d is %q, checkpoint recorded %q", ck.Seq, env.GetId(), ck.EventID), nil
	}
	return "", nil
}

// indexesPending reports whether the keyspace holds a bulk run's marker.
func (p *Projections) indexesPending(sp keyspace) (bool, error) {
	err := p.get(sp.ixPendingKey(), func([]byte) error { return nil })
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("projections: read %s: %w", sp.ixPendingKey(), err)
	}
	return true, nil
}

func (p *Projections) loadCheckpoint(sp keyspace) (checkpoint, error) {
	var ck checkpoint
	err := p.get(sp.checkpointKey(), func(v []byte) error {
		var err error
		ck, err = unmarshalCheckpoint(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return checkpoint{}, nil
	}
	if err != nil {
		// An unreadable checkpoint is just an inconsistent read model.
		p.log.Warn("unreadable checkpoint; rebuilding", "stream", sp.stream, "err", err)
		return checkpoint{Seq: ^uint64(0)}, nil
	}
	return ck, nil
}

// applyBatch decodes and applies a batch, committing as few transactions as
// Badger's transaction size and the events' effects allow.
func (p *Projections) applyBatch(ctx context.Context, r *run, batch []streams.StoredMsg) error {
	evs := make([]event, 0, len(batch))
	next := r.ck.Seq + 1
	var bad error // applied after what precedes it, so the read model gets as far as it can
	for _, m := range batch {
		if m.Seq != next {
			bad = fatal("%s: expected sequence %d, got %d: %w", r.sp.stream, next, m.Seq, streams.ErrGap)
			break
		}
		next++
		var (
			env *eventsv1.Envelope
			doc *rawDoc
			err error
		)
		// A document event's document comes undecoded where its encoding
		// allows (rawDoc): stored from the event's bytes, not decoded and
		// marshalled again.
		env, doc, err = decodeBulk(m.Data)
		if err != nil {
			bad = fatal("%s seq %d: decode envelope: %w", r.sp.stream, m.Seq, err)
			break
		}
		evs = append(evs, event{msg: m, env: env, doc: doc})
	}
	for len(evs) > 0 {
		n, err := p.commitSome(ctx, r, evs)
		if err != nil {
			return err
		}
		evs = evs[n:]
	}
	return bad
}

// commitSome applies a prefix of evs in one transaction with the checkpoint
// and returns its length. It shrinks the prefix when Badger says the
// transaction is too big, and ends it at the first event with an effect.
func (p *Projections) commitSome(ctx context.Context, r *run, evs []event) (int, error) {
	limit := len(evs)
	for {
		n, retry, err := p.tryCommit(ctx, r, evs[:limit])
		if retry == 0 {
			return n, err
		}
		limit = retry
	}
}

// docRunMin is the run of document events a bulk run's transaction of
// other events ends before, so that they go through the window: a stream
// begins with its database and collections, and one such event ahead of
// a batch of documents kept all of them out of it.
const docRunMin = 64

// docRun reports whether evs begins with docRunMin document events (or
// is shorter and holds only those).
func docRun(evs []event) bool {
	for i := range min(len(evs), docRunMin) {
		if !isDocEvent(evs[i]) {
			return false
		}
	}
	return true
}

// tryCommit returns (applied, 0, err), or (0, k, nil) to be called again with
// the first k events.
func (p *Projections) tryCommit(ctx context.Context, r *run, evs []event) (int, int, error) {
	if err := p.settle(r); err != nil {
		return 0, 0, err
	}
	windowed := false
	if b := r.sp.bulk; b != nil {
		// Document events go through the window; anything else is applied
		// with the window flushed (before the transaction begins, so it
		// reads the documents), in a transaction of its own kind.
		windowed = isDocEvent(evs[0])
		if !windowed || b.windowBytes >= b.windowMax {
			if err := p.flushWindow(r.sp, r.ck.Seq); err != nil {
				return 0, 0, err
			}
		}
		b.begin(windowed)
	}
	txn := p.db.NewTransaction(true)
	defer txn.Discard()
	p.colls.changed() // entries checked in another transaction are checked again
	counts := r.sp.counts
	if counts != nil {
		counts.reset() // an abandoned transaction's
	}
	var eff effect
	n := 0
	for i, ev := range evs {
		if windowed && i > 0 && !isDocEvent(ev) {
			return 0, i, nil // commit the documents first
		}
		if r.sp.bulk != nil && !windowed && i > 0 && docRun(evs[i:]) {
			return 0, i, nil // the documents that follow go through the window
		}
		sp := r.sp
		if counts != nil && !isDocEvent(ev) {
			// Other events may read the counters as they stand: they see
			// them written, and change them themselves.
			if counts.pending() {
				if err := counts.write(txn, sp.project); err != nil {
					if errors.Is(err, badger.ErrTxnTooBig) {
						return 0, i, nil
					}
					return 0, 0, err
				}
			}
			sp.counts = nil
		}
		e, err := p.applyTraced(ctx, txn, sp, ev)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if i == 0 {
				return 0, 0, fatal("%s seq %d: one event exceeds a Badger transaction: %w", r.sp.stream, ev.msg.Seq, err)
			}
			return 0, i, nil
		}
		if err != nil {
			if isFatal(err) && i > 0 {
				return 0, i, nil // keep what precedes the bad event
			}
			return 0, 0, err
		}
		if !e.none() {
			if i > 0 {
				return 0, i, nil // commit what precedes it first
			}
			eff, n = e, 1
			break
		}
		n = i + 1
	}
	if b := r.sp.bulk; b != nil && windowed {
		if err := b.writeCounts(txn, r.sp.project); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				return 0, n - 1, nil
			}
			return 0, 0, err
		}
	}
	// Events per day are counted once per transaction, not per event: one
	// write of the day's counters instead of one per event (live, with its
	// documents').
	if counts != nil {
		counts.addEvents(evs[:n])
		if err := counts.write(txn, r.sp.project); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				return 0, n - 1, nil
			}
			return 0, 0, err
		}
	} else if r.sp.project != "" {
		if err := countEvents(txn, r.sp.project, evs[:n]); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				return 0, n - 1, nil
			}
			return 0, 0, err
		}
	}
	last := evs[n-1]
	ck := checkpoint{Seq: last.msg.Seq, Created: r.created, EventID: last.env.GetId()}
	if err := txn.Set(r.sp.checkpointKey(), ck.marshal()); err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
			return 0, n - 1, nil
		}
		return 0, 0, fmt.Errorf("projections: write checkpoint of %s: %w", r.sp.stream, err)
	}
	if b := r.sp.bulk; b != nil {
		// With the checkpoint, so no crash can leave one without the other.
		// A transaction outside the window has every document written.
		if !windowed {
			b.txnFlushed = ck.Seq
		}
		if err := txn.Set(r.sp.ixPendingKey(), flushedMark(b.txnFlushed)); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				return 0, n - 1, nil
			}
			return 0, 0, fmt.Errorf("projections: write checkpoint of %s: %w", r.sp.stream, err)
		}
	}
	if eff.pre != nil {
		if err := eff.pre(ctx); err != nil {
			return 0, 0, err
		}
	}
	if r.sp.bulk != nil && eff.none() {
		// Not waited for: the next batch is decoded while Badger writes
		// this one. settle waits before anything reads or writes again.
		done := make(chan error, 1)
		p.gate.RLock()
		txn.CommitWith(func(err error) {
			p.gate.RUnlock()
			done <- err
		})
		r.inflight = &inflight{done: done, seq: ck.Seq, evs: evs[:n]}
		r.ck = ck
		r.applied += n
		return n, 0, nil
	}
	p.gate.RLock()
	err := txn.Commit()
	p.gate.RUnlock()
	if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
		return 0, n / 2, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("projections: commit %s up to %d: %w", r.sp.stream, ck.Seq, err)
	}
	// Before advance: whoever learns the events were applied finds caches
	// of what they changed invalid.
	p.noteCommitted(evs[:n])
	r.ck = ck
	r.applied += n
	if r.sp.bulk == nil {
		if colls, ok := docCollections(evs[:n]); ok {
			r.st.advanceDocs(ck.Seq, colls)
			p.docs.changed(r.sp.stream, colls, false)
		} else {
			r.st.advance(ck.Seq)
			p.docs.changed(r.sp.stream, nil, true)
		}
	} else { // see bulk.go: the state advances once the indexes are built
		r.sp.bulk.committed()
	}
	if p.onCommit != nil {
		for _, ev := range evs[:n] {
			p.onCommit(r.sp.stream, ev.msg.Seq)
		}
	}
	if eff.post != nil {
		eff.post()
	}
	return n, 0, nil
}

// inflight is a bulk run's commit that was not waited for.
type inflight struct {
	done chan error
	seq  uint64  // its checkpoint
	evs  []event // its events
}

// settle waits for the run's commit in flight, if any, and does what
// follows a commit. A run ends with it, and begins each transaction with it.
func (p *Projections) settle(r *run) error {
	f := r.inflight
	if f == nil {
		return nil
	}
	r.inflight = nil
	if err := <-f.done; err != nil {
		return fmt.Errorf("projections: commit %s up to %d: %w", r.sp.stream, f.seq, err)
	}
	r.sp.bulk.committed()
	if p.onCommit != nil {
		for _, ev := range f.evs {
			p.onCommit(r.sp.stream, ev.msg.Seq)
		}
	}
	return nil
}

// drop deletes every read model of the keyspace, its checkpoint included.
func (p *Projections) drop(sp keyspace) error {
	p.gate.Lock()
	defer p.gate.Unlock()
	defer p.metaVersion.Add(1) // once the records are gone
	// A small read model is deleted key by key: DropPrefix flushes the
	// memtable and blocks every write while it runs, which costs more than
	// the deletes up to many thousands of keys (a third of a rebuild's time).
	// A rebuild (sp.bulk) draws the line lower: it writes the read model
	// again at once, and the tombstones cost it as much memtable work as
	// its own writes (measured: 15% of its CPU at 40,000 keys).
	deleteMax := dropByDeleteMax
	if sp.bulk != nil {
		deleteMax = bulkDropByDeleteMax
	}
	if done, err := p.deleteSmall(sp.prefix, deleteMax); done || err != nil {
		return err
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		// Blocked only if someone else shares the DB and is dropping too.
		if err = p.db.DropPrefix([]byte(sp.prefix)); !errors.Is(err, badger.ErrBlockedWrites) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("projections: drop read models of %s: %w", sp.stream, err)
	}
	return nil
}

// dropByDeleteMax is the largest read model drop deletes key by key;
// bulkDropByDeleteMax the largest a rebuild's drop does.
const (
	dropByDeleteMax     = 100_000
	bulkDropByDeleteMax = 10_000
)

// deleteSmall deletes every key under prefix when there are at most max of
// them, and reports whether it did.
func (p *Projections) deleteSmall(prefix string, max int) (bool, error) {
	var keys [][]byte
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(keys) == max {
				keys = nil
				return errTooMany
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if errors.Is(err, errTooMany) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("projections: list %s: %w", prefix, err)
	}
	wb := p.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return false, fmt.Errorf("projections: delete %s: %w", prefix, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return false, fmt.Errorf("projections: delete %s: %w", prefix, err)
	}
	return true, nil
}

var errTooMany = errors.New("too many keys")

// Rebuild drops the read models of project ("" = the system read model) and
// applies its whole stream again, up to the stream's last sequence at the
// call; then the projector, if it should run, resumes live. It returns the
// number of events applied. This is `cairn replay`.
func (p *Projections) Rebuild(ctx context.Context, project string) (int, error) {
	sp := systemSpace()
	if project != "" {
		if err := streams.ValidateProject(project); err != nil {
			return 0, err
		}
		sp = projectSpace(project)
	}
	l := p.lifecycleLock(sp.stream)
	l.Lock()
	defer l.Unlock()

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, ErrClosed
	}
	p.rebuilding[sp.stream] = true
	p.mu.Unlock()
	p.stopProjector(sp.stream)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(p.baseCtx, cancel)
	defer stopOnClose()

	start := time.Now()
	st := p.state(sp.stream)
	st.begin()
	st.rewind()
	// A project's documents are applied without index upkeep, their
	// entries written once at the end (bulk.go).
	if sp.project != "" {
		sp.bulk = newBulkState()
	}
	n, err := 0, p.drop(sp)
	if err == nil {
		if sp.bulk != nil {
			sp.bulk.dropped = true
		}
		n, err = p.consume(ctx, sp, st, true, nil)
	}
	if err == nil && sp.bulk != nil {
		_, err = p.buildIndexesInBulk(ctx, sp)
		if err == nil {
			var ck checkpoint
			if ck, err = p.loadCheckpoint(sp); err == nil {
				st.advance(ck.Seq)
			}
		}
	}
	if err == nil {
		// What the replayed drops left for the background sweep goes now:
		// a rebuild answers with the finished read model.
		err = p.CollectGarbage()
	}

	p.mu.Lock()
	delete(p.rebuilding, sp.stream)
	p.mu.Unlock()
	restart := project == ""
	if !restart {
		_, perr := p.Project(project)
		restart = perr == nil
	}
	if restart {
		p.startProjector(sp.stream)
	} else {
		st.deleted()
	}
	if err != nil {
		return n, fmt.Errorf("projections: rebuild %s: %w", sp.stream, err)
	}
	p.log.InfoContext(ctx, "read model rebuilt", "stream", sp.stream, "events", n, "took", time.Since(start))
	return n, nil
}

// RebuildAll rebuilds the system read model, then every project's, and
// returns the events applied; progress, when set, hears of each rebuild
// ("" is the system read model), one at a time. Projects are rebuilt
// GOMAXPROCS at a time: one rebuild is a pipeline of mostly sequential
// steps, so several keep the cores busy. The first error cancels the rest.
func (p *Projections) RebuildAll(ctx context.Context, progress func(project string, events int, took time.Duration)) (int, error) {
	if progress == nil {
		progress = func(string, int, time.Duration) {}
	}
	start := time.Now()
	total, err := p.Rebuild(ctx, "")
	if err != nil {
		return total, err
	}
	progress("", total, time.Since(start))
	ids, err := p.projectIDs()
	if err != nil {
		return total, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan string)
	for range min(len(ids), runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				start := time.Now()
				n, err := p.Rebuild(ctx, id)
				mu.Lock()
				total += n
				switch {
				case err != nil && firstErr == nil:
					firstErr = fmt.Errorf("project %s: %w", id, err)
					cancel()
				case err == nil:
					progress(id, n, time.Since(start))
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return total, firstErr
}

// applyTraced is apply in a span whose parent is the append of the event.
func (p *Projections) applyTraced(ctx context.Context, txn *badger.Txn, sp keyspace, ev event) (effect, error) {
	if p.tracer == nil {
		return p.apply(ctx, txn, sp, ev)
	}
	ctx, span := p.tracer.Start(streams.TraceParent(ctx, ev.msg), "projections.apply", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("cairn.stream", sp.stream), attribute.Int64("cairn.seq", int64(ev.msg.Seq)),
			attribute.String("cairn.subject", ev.msg.Subject)))
	e, err := p.apply(ctx, txn, sp, ev)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return e, err
}
