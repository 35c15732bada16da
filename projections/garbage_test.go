package projections

import (
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// A dropped collection larger than one sweep's batch is deleted over
// several sweeps, then its marker; other projects' keys and the live
// collection's are untouched.
func TestCollectGarbageInBatches(t *testing.T) {
	e := newEnv(t)
	p := New(e.db, e.store, Options{Logger: e.log})
	err := e.db.Update(func(txn *badger.Txn) error {
		for _, id := range []string{"x", "y"} {
			if err := txn.Set(projectKey(id), nil); err != nil {
				return err
			}
		}
		for i := range 25 {
			for _, uid := range []string{"DEAD", "LIVE"} {
				if err := txn.Set(documentKey("x", uid, fmt.Sprintf("d%02d", i)), []byte("doc")); err != nil {
					return err
				}
			}
			if err := txn.Set(documentKey("y", "DEAD", fmt.Sprintf("d%02d", i)), []byte("doc")); err != nil {
				return err
			}
		}
		return p.dropPrefix(txn, "x", "DEAD-docs", []byte(documentsPrefix("x", "DEAD")))
	})
	if err != nil {
		t.Fatal(err)
	}
	sweeps := 0
	for {
		more, err := p.collectGarbage(10)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		if sweeps++; sweeps > 10 {
			t.Fatal("the sweep does not finish")
		}
	}
	if sweeps != 3 {
		t.Errorf("%d sweeps for 25 keys in batches of 10, want 3", sweeps)
	}
	count := func(prefix string) int {
		kv, err := p.Dump([]byte(prefix))
		if err != nil {
			t.Fatal(err)
		}
		return len(kv)
	}
	if n := count(documentsPrefix("x", "DEAD")); n != 0 {
		t.Errorf("%d dropped documents left", n)
	}
	if n := count(garbagePrefix("x")); n != 0 {
		t.Errorf("%d markers left", n)
	}
	if count(documentsPrefix("x", "LIVE")) != 25 || count(documentsPrefix("y", "DEAD")) != 25 {
		t.Error("the sweep deleted keys it was not given")
	}
}
