package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// The project registry: s/projects/<id>, applied from the system stream.

func checkProject(sp keyspace, ev event, pr *eventsv1.Project) error {
	if sp.project != "" {
		return fatal("%s seq %d: project event in a project stream", sp.stream, ev.msg.Seq)
	}
	if err := streams.ValidateProject(pr.GetId()); err != nil {
		return fatal("%s seq %d (event %s): %w", sp.stream, ev.msg.Seq, ev.env.GetId(), err)
	}
	return nil
}

func putProject(txn *badger.Txn, pr *eventsv1.Project) error {
	b, err := marshal(pr)
	if err != nil {
		return fatal("encode project %s: %w", pr.GetId(), err)
	}
	return txn.Set(projectKey(pr.GetId()), b)
}

// applyProjectCreated registers the project; once committed, its projector
// is registered (and activated if its stream holds events).
func (p *Projections) applyProjectCreated(txn *badger.Txn, sp keyspace, ev event, pr *eventsv1.Project) (effect, error) {
	if err := checkProject(sp, ev, pr); err != nil {
		return effect{}, err
	}
	stream := streams.ProjectStream(pr.GetId())
	return effect{post: func() { p.addProject(stream) }}, putProject(txn, pr)
}

func (p *Projections) applyProjectUpdated(txn *badger.Txn, sp keyspace, ev event, pr *eventsv1.Project) error {
	if err := checkProject(sp, ev, pr); err != nil {
		return err
	}
	return putProject(txn, pr)
}

// applyProjectDeleted unregisters the project. Before that commits, the
// project's projector is stopped, its read models dropped and its stream
// and object store deleted; all of it is idempotent, so a crash in between
// just does it again when the event is re-applied.
func (p *Projections) applyProjectDeleted(txn *badger.Txn, sp keyspace, ev event, pr *eventsv1.Project) (effect, error) {
	if err := checkProject(sp, ev, pr); err != nil {
		return effect{}, err
	}
	id, seq := pr.GetId(), ev.msg.Seq
	if err := txn.Delete(projectKey(id)); err != nil {
		return effect{}, err
	}
	return effect{pre: func(ctx context.Context) error { return p.teardownProject(ctx, id, seq) }}, nil
}

// teardownProject removes what a deleted project left, unless the project
// was created again after the delete at seq (then the stream and read
// models belong to the new project; this happens when a node replays the
// system stream from the start).
func (p *Projections) teardownProject(ctx context.Context, id string, seq uint64) error {
	last, found, err := p.store.Last(ctx, streams.SystemStream, streams.SystemSubject("projects", id, "*"))
	if err != nil {
		return fmt.Errorf("projections: look for a later incarnation of project %s: %w", id, err)
	}
	if found && last.Seq > seq {
		p.log.InfoContext(ctx, "project was re-created after this delete; keeping its current stream",
			"project", id, "delete_seq", seq, "later_seq", last.Seq)
		return nil
	}
	stream := streams.ProjectStream(id)
	l := p.lifecycleLock(stream)
	l.Lock()
	defer l.Unlock()
	p.stopProjector(stream)
	st := p.state(stream)
	st.rewind()
	if err := p.drop(projectSpace(id)); err != nil {
		return err
	}
	st.deleted()
	if err := p.store.DeleteProject(ctx, id); err != nil {
		return fmt.Errorf("projections: delete streams of project %s: %w", id, err)
	}
	p.log.InfoContext(ctx, "project deleted", "project", id, "seq", seq)
	return nil
}

// Project returns a project; ErrNotFound if there is none.
func (p *Projections) Project(id string) (*eventsv1.Project, error) {
	pr := &eventsv1.Project{}
	if err := p.get(projectKey(id), func(v []byte) error { return proto.Unmarshal(v, pr) }); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("project %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("projections: project %s: %w", id, err)
	}
	return pr, nil
}

// ListProjects returns up to limit projects with ids after `after`, ordered
// by id (keyset pagination: pass the last id of a page to get the next).
func (p *Projections) ListProjects(after string, limit int) ([]*eventsv1.Project, error) {
	return listProto(p, sysProjects, after, limit, func() *eventsv1.Project { return &eventsv1.Project{} })
}

// projectIDs lists every registered project id.
func (p *Projections) projectIDs() ([]string, error) {
	var ids []string
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(sysProjects)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ids = append(ids, strings.TrimPrefix(string(it.Item().Key()), sysProjects))
		}
		return nil
	})
	return ids, err
}

// StreamKnown reports whether the system read model has the stream: the
// system stream always, a project stream while its project exists.
func (p *Projections) StreamKnown(stream string) bool {
	if stream == streams.SystemStream {
		return true
	}
	id, ok := streams.ProjectFromStream(stream)
	if !ok {
		return false
	}
	_, err := p.Project(id)
	return err == nil
}
