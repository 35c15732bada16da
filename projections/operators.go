package projections

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Operator accounts, in the system read model:
//
//	s/operators/<id>            eventsv1.Operator
//	s/opsessions/<sha256 hex>   SessionRef (UserID: the account id): the console session index

func operatorKey(id string) []byte { return []byte(sysOperators + id) }

func operatorSessionKey(hash []byte) []byte {
	return []byte(sysOperatorSessions + hex.EncodeToString(hash))
}

// applyOperator stores an account's state after an event (nil after a
// deletion) and keeps the session index in step with its sessions.
func (p *Projections) applyOperator(txn *badger.Txn, sp keyspace, ev event, o *eventsv1.Operator, deleted bool) error {
	if sp.project != "" {
		return fatal("%s seq %d: operator event in a project stream", sp.stream, ev.msg.Seq)
	}
	if o.GetId() == "" || strings.Contains(o.GetId(), "/") {
		return fatal("%s seq %d (event %s): bad operator id %q", sp.stream, ev.msg.Seq, ev.env.GetId(), o.GetId())
	}
	key := operatorKey(o.GetId())
	// Only its sessions are read: absent, it has none.
	old := &eventsv1.Operator{}
	if _, err := getIn(txn, key, old); err != nil {
		return err
	}
	keep := map[string]bool{}
	if !deleted {
		for _, s := range o.GetSessions() {
			keep[string(s.GetSecretHash())] = true
			ref := SessionRef{UserID: o.GetId(), SessionID: s.GetId(), ExpiresAt: s.GetExpiresAt().AsTime()}
			if err := txn.Set(operatorSessionKey(s.GetSecretHash()), ref.marshal()); err != nil {
				return err
			}
		}
	}
	for _, s := range old.GetSessions() {
		if !keep[string(s.GetSecretHash())] {
			if err := txn.Delete(operatorSessionKey(s.GetSecretHash())); err != nil {
				return err
			}
		}
	}
	if deleted {
		return txn.Delete(key)
	}
	b, err := marshal(o)
	if err != nil {
		return fatal("encode operator %s: %w", o.GetId(), err)
	}
	return txn.Set(key, b)
}

// Operator returns an operator account; ErrNotFound if there is none.
func (p *Projections) Operator(id string) (*eventsv1.Operator, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, ErrNotFound
	}
	o := &eventsv1.Operator{}
	if err := p.get(operatorKey(id), func(v []byte) error { return proto.Unmarshal(v, o) }); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("operator %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("projections: operator %s: %w", id, err)
	}
	return o, nil
}

// ListOperators returns up to limit accounts with ids after `after`.
func (p *Projections) ListOperators(after string, limit int) ([]*eventsv1.Operator, error) {
	return listProto(p, sysOperators, after, limit, func() *eventsv1.Operator { return &eventsv1.Operator{} })
}

// OperatorSessionByHash returns the console session whose token hashes to
// hash; ErrNotFound if there is none (never was, signed out, revoked, or
// its account deleted).
func (p *Projections) OperatorSessionByHash(hash []byte) (SessionRef, error) {
	var ref SessionRef
	err := p.get(operatorSessionKey(hash), func(v []byte) (err error) {
		ref, err = unmarshalSessionRef(v)
		return err
	})
	if err != nil {
		return SessionRef{}, fmt.Errorf("operator session: %w", err)
	}
	return ref, nil
}
