package projections

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// API keys: p/<project>/keys/<keyid>, applied from the project's stream.

func checkKey(sp keyspace, ev event, k *eventsv1.Key) error {
	switch {
	case sp.project == "":
		return fatal("%s seq %d: key event in the system stream", sp.stream, ev.msg.Seq)
	case k.GetId() == "" || strings.Contains(k.GetId(), "/"):
		return fatal("%s seq %d (event %s): bad key id %q", sp.stream, ev.msg.Seq, ev.env.GetId(), k.GetId())
	case k.GetProjectId() != "" && k.GetProjectId() != sp.project:
		return fatal("%s seq %d (event %s): key of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), k.GetProjectId())
	}
	return nil
}

func (p *Projections) applyKeyPut(txn *badger.Txn, sp keyspace, ev event, k *eventsv1.Key) error {
	if err := checkKey(sp, ev, k); err != nil {
		return err
	}
	b, err := marshal(k)
	if err != nil {
		return fatal("encode key %s: %w", k.GetId(), err)
	}
	return txn.Set(keyKey(sp.project, k.GetId()), b)
}

func (p *Projections) applyKeyDeleted(txn *badger.Txn, sp keyspace, ev event, k *eventsv1.Key) error {
	if err := checkKey(sp, ev, k); err != nil {
		return err
	}
	return txn.Delete(keyKey(sp.project, k.GetId()))
}

// Key returns a project's API key; ErrNotFound if there is none.
func (p *Projections) Key(project, keyID string) (*eventsv1.Key, error) {
	k := &eventsv1.Key{}
	if err := p.getProto(project, keyID, keyKey(project, keyID), k); err != nil {
		return nil, fmt.Errorf("key %s of project %s: %w", keyID, project, err)
	}
	return k, nil
}

// ListKeys returns up to limit keys of a project with ids after `after`,
// ordered by id.
func (p *Projections) ListKeys(project, after string, limit int) ([]*eventsv1.Key, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	return listProto(p, keysPrefix(project), after, limit, func() *eventsv1.Key { return &eventsv1.Key{} })
}
