package streams

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// TestSnapshotRestore: a snapshot taken while a writer keeps appending
// holds every message up to the sequence it reports, and restores into an
// empty server as the same stream (messages, sequences, headers).
func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	src := newEnv(t)
	stream := src.project("p1", 0)
	js := src.store.JetStream()
	for i := range 500 {
		if _, err := js.Publish(ctx, ProjectSubject("p1", "docs", fmt.Sprint(i), "create"), bytes.Repeat([]byte{byte(i)}, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := js.Publish(ctx, ProjectSubject("p1", "live", fmt.Sprint(i), "create"), []byte("x")); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
	}()
	var snap bytes.Buffer
	info, err := src.store.Snapshot(ctx, stream, &snap)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := info.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq < 500 || st.Msgs != st.LastSeq {
		t.Fatalf("snapshot state %+v", st)
	}
	if _, err := src.store.Snapshot(ctx, "NOPE", &bytes.Buffer{}); err == nil {
		t.Fatal("snapshot of a missing stream succeeded")
	}

	dst := newEnv(t)
	if err := dst.store.Restore(ctx, stream, info, bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	got, err := dst.store.StreamInfo(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastSeq != st.LastSeq || got.Msgs != st.Msgs {
		t.Fatalf("restored %+v, snapshot said %+v", got, st)
	}
	for _, seq := range []uint64{1, 250, st.LastSeq} {
		a, err := src.store.Get(ctx, stream, seq)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dst.store.Get(ctx, stream, seq)
		if err != nil {
			t.Fatal(err)
		}
		if a.Subject != b.Subject || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("seq %d: %s %q, restored %s %q", seq, a.Subject, a.Data, b.Subject, b.Data)
		}
	}
	// A stream that exists is not overwritten.
	if err := dst.store.Restore(ctx, stream, info, bytes.NewReader(snap.Bytes())); err == nil {
		t.Fatal("restore over an existing stream succeeded")
	}
	t.Logf("snapshot of %d messages (%d written during it): %d bytes", st.Msgs, written.Load(), snap.Len())
}
