package projections

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Database transactions, applied from the project's stream:
//
//	p/<project>/tx/<id>             eventsv1.Transaction
//	p/<project>/txops/<id>/<n:08x>  eventsv1.TransactionOperation, in staging order
//	p/<project>/txopen/<id>         eventsv1.Transaction, while open
//
// A finished transaction keeps its state and loses its staged operations
// (the log has them) and its txopen entry, which bounds what
// OpenTransactions scans to the open (and abandoned, expired) ones.
const (
	partTransactions = "tx/"
	partTxOps        = "txops/"
	partTxOpen       = "txopen/"
)

func txOpenPrefix(project string) string { return pp(project) + partTxOpen }

func transactionKey(project, id string) []byte {
	return []byte(pp(project) + partTransactions + id)
}
func txOpsPrefix(project, id string) string { return pp(project) + partTxOps + id + "/" }

func (p *Projections) applyTransaction(txn *badger.Txn, sp keyspace, ev event, t *eventsv1.Transaction, ops []*eventsv1.TransactionOperation) error {
	if err := checkIn(sp, ev, "transaction", t.GetProjectId(), t.GetId()); err != nil {
		return err
	}
	old := &eventsv1.Transaction{}
	if _, err := getIn(txn, transactionKey(sp.project, t.GetId()), old); err != nil {
		return err
	}
	first := old.GetOperations()
	for i, op := range ops {
		b, err := marshal(op)
		if err != nil {
			return fatal("encode transaction operation: %w", err)
		}
		if err := txn.Set(fmt.Appendf([]byte(txOpsPrefix(sp.project, t.GetId())), "%08x", first+uint32(i)), b); err != nil {
			return err
		}
	}
	if t.GetStatus() != "open" {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(txOpsPrefix(sp.project, t.GetId()))})
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
	}
	b, err := marshal(t)
	if err != nil {
		return fatal("encode transaction %s: %w", t.GetId(), err)
	}
	openKey := []byte(txOpenPrefix(sp.project) + t.GetId())
	if t.GetStatus() == "open" {
		err = txn.Set(openKey, b)
	} else {
		err = txn.Delete(openKey)
	}
	if err != nil {
		return err
	}
	return txn.Set(transactionKey(sp.project, t.GetId()), b)
}

// OpenTransactions returns the project's transactions not committed or
// rolled back, expired ones included (the caller knows the time).
func (p *Projections) OpenTransactions(project string) ([]*eventsv1.Transaction, error) {
	var out []*eventsv1.Transaction
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(txOpenPrefix(project)), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			t := &eventsv1.Transaction{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, t) }); err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open transactions of project %s: %w", project, err)
	}
	return out, nil
}

// Transaction returns a database transaction; ErrNotFound if none.
func (p *Projections) Transaction(project, id string) (*eventsv1.Transaction, error) {
	t := &eventsv1.Transaction{}
	if err := p.getProto(project, id, transactionKey(project, id), t); err != nil {
		return nil, fmt.Errorf("transaction %s of project %s: %w", id, project, err)
	}
	return t, nil
}

// TransactionOperations returns an open transaction's staged operations in
// order.
func (p *Projections) TransactionOperations(project, id string) ([]*eventsv1.TransactionOperation, error) {
	var out []*eventsv1.TransactionOperation
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(txOpsPrefix(project, id)), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			op := &eventsv1.TransactionOperation{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, op) }); err != nil {
				return err
			}
			out = append(out, op)
		}
		return nil
	})
	return out, err
}
