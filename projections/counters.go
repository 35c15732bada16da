package projections

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// A counter value is n big-endian int64s under one key (a project's
// stored bytes and files; a function's queued executions). A missing key
// counts zero.

// readCounters returns the n counters under key.
func readCounters(txn *badger.Txn, key []byte, n int) ([]int64, error) {
	out := make([]int64, n)
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) != 8*n {
			return fmt.Errorf("counters %s: %d bytes, want %d", key, len(v), 8*n)
		}
		for i := range out {
			out[i] = int64(binary.BigEndian.Uint64(v[8*i:]))
		}
		return nil
	})
	return out, err
}

// addCounters adds deltas to the counters under key.
func addCounters(txn *badger.Txn, key []byte, deltas ...int64) error {
	zero := true
	for _, d := range deltas {
		zero = zero && d == 0
	}
	if zero {
		return nil
	}
	return setCounters(txn, key, deltas...)
}

// setCounters is addCounters writing the key even when deltas are all 0.
func setCounters(txn *badger.Txn, key []byte, deltas ...int64) error {
	cur, err := readCounters(txn, key, len(deltas))
	if err != nil {
		return err
	}
	out := make([]byte, 8*len(deltas))
	for i, d := range deltas {
		binary.BigEndian.PutUint64(out[8*i:], uint64(cur[i]+d))
	}
	return txn.Set(key, out)
}

// counters reads the n counters under key outside a write.
func (p *Projections) counters(key []byte, n int) ([]int64, error) {
	var out []int64
	err := p.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = readCounters(txn, key, n)
		return err
	})
	return out, err
}
