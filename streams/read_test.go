package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLastWildcardAndIsolation(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("p", 0)
	k1 := ProjectSubject("p", "keys", "K", ">")
	env.mustAppend(stream, k1, 0, ProjectSubject("p", "keys", "K", "create"), "1", "k-created")
	env.mustAppend(stream, "", 0, ProjectSubject("p", "keys", "K2", "create"), "2", "k2") // K2 is not K
	env.mustAppend(stream, "", 0, ProjectSubject("p", "keys", "KK", "create"), "3", "kk") // nor is KK
	env.mustAppend(stream, k1, 1, ProjectSubject("p", "keys", "K", "sessions", "S1", "create"), "4", "deep")
	env.mustAppend(stream, "", 0, ProjectSubject("p", "keys", "K2", "update"), "5", "k2b")

	m, found, err := env.store.Last(ctx, stream, k1)
	if err != nil || !found {
		t.Fatalf("Last = %v, %v", found, err)
	}
	if m.Seq != 4 || string(m.Data) != "deep" || m.Subject != "cairn.p.keys.K.sessions.S1.create" {
		t.Fatalf("Last(%s) = %d %q %s", k1, m.Seq, m.Data, m.Subject)
	}
	// '*' only matches one token.
	m, found, _ = env.store.Last(ctx, stream, ProjectSubject("p", "keys", "K", "*"))
	if !found || m.Seq != 1 {
		t.Fatalf("Last(K.*) = %d, %v", m.Seq, found)
	}
	// Appending with K's expectation is not disturbed by K2's later writes.
	env.mustAppend(stream, k1, 4, ProjectSubject("p", "keys", "K", "update"), "6", "x")
	if _, found, err := env.store.Last(ctx, stream, ProjectSubject("p", "keys", "none", ">")); found || err != nil {
		t.Fatalf("Last(none) = %v, %v", found, err)
	}
	if _, _, err := env.store.Last(ctx, ProjectStream("missing"), "cairn.missing.>"); !errors.Is(err, ErrNoStream) {
		t.Fatalf("Last on missing stream err = %v", err)
	}
}

func collect(t *testing.T, s *Store, ctx context.Context, stream string, opts ReadOptions) []StoredMsg {
	t.Helper()
	var out []StoredMsg
	for m, err := range s.Read(ctx, stream, opts) {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func seqs(ms []StoredMsg) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func TestReadBounded(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("p", 0)
	env.fill("p", 10, 2) // K0 at odd sequences, K1 at even ones
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	env.fill("p", 0, 1)
	for i := range 3 {
		env.mustAppend(stream, "", 0, ProjectSubject("p", "late", fmt.Sprint(i)), fmt.Sprint("late", i), "")
	}

	if got := collect(t, env.store, ctx, stream, ReadOptions{}); len(got) != 13 || got[0].Seq != 1 || got[12].Seq != 13 {
		t.Fatalf("all: %v", seqs(got))
	}
	if got := collect(t, env.store, ctx, stream, ReadOptions{StartSeq: 9}); fmt.Sprint(seqs(got)) != "[9 10 11 12 13]" {
		t.Fatalf("from 9: %v", seqs(got))
	}
	if got := collect(t, env.store, ctx, stream, ReadOptions{StartTime: mid}); fmt.Sprint(seqs(got)) != "[11 12 13]" {
		t.Fatalf("from time: %v", seqs(got))
	}
	got := collect(t, env.store, ctx, stream, ReadOptions{Filters: []string{ProjectSubject("p", "keys", "K1", ">")}})
	if fmt.Sprint(seqs(got)) != "[2 4 6 8 10]" {
		t.Fatalf("K1: %v", seqs(got))
	}
	got = collect(t, env.store, ctx, stream, ReadOptions{Filters: []string{ProjectSubject("p", "keys", "K1", ">"), ProjectSubject("p", "late", "2")}, StartSeq: 7})
	if fmt.Sprint(seqs(got)) != "[8 10 13]" {
		t.Fatalf("two filters from 7: %v", seqs(got))
	}
	// Nothing matches: returns at once instead of waiting.
	if got := collect(t, env.store, ctx, stream, ReadOptions{Filters: []string{ProjectSubject("p", "nothing", ">")}}); len(got) != 0 {
		t.Fatalf("nothing: %v", seqs(got))
	}
	if got := collect(t, env.store, ctx, stream, ReadOptions{StartSeq: 14}); len(got) != 0 {
		t.Fatalf("past the end: %v", seqs(got))
	}
	// Breaking out early stops the consumer.
	n := 0
	for _, err := range env.store.Read(ctx, stream, ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	for _, err := range env.store.Read(ctx, ProjectStream("missing"), ReadOptions{}) {
		if !errors.Is(err, ErrNoStream) {
			t.Fatalf("missing stream err = %v", err)
		}
	}
}

func TestReadFollow(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p", 0)
	env.fill("p", 3, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got := make(chan StoredMsg, 10)
	done := make(chan error, 1)
	go func() {
		for m, err := range env.store.Read(ctx, stream, ReadOptions{StartSeq: 2, Follow: true, Filters: []string{ProjectFilter("p")}}) {
			if err != nil {
				done <- err
				return
			}
			got <- m
		}
		done <- nil
	}()
	want := uint64(2)
	recv := func() {
		t.Helper()
		select {
		case m := <-got:
			if m.Seq != want {
				t.Fatalf("got seq %d, want %d", m.Seq, want)
			}
			want++
		case <-ctx.Done():
			t.Fatalf("timed out waiting for seq %d", want)
		}
	}
	recv()
	recv()
	for i := range 3 { // live messages arrive without polling delays
		env.mustAppend(stream, "", 0, ProjectSubject("p", "live"), fmt.Sprint("live", i), "")
		recv()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
}

func TestSubscribeExactlyOnceInOrder(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p", 0)
	const total = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// Half written before subscribing, half while it runs, a few in atomic
	// batches (each costs ~2 ms: the server stages it in its own file store).
	writeRange := func(from, to int) {
		for i := from; i < to; {
			n := 1
			if i%100 == 0 {
				n = min(3, to-i)
			}
			msgs := make([]Msg, n)
			for j := range msgs {
				msgs[j] = Msg{Subject: ProjectSubject("p", "k", fmt.Sprint((i+j)%7), "update"), Data: []byte(fmt.Sprint(i + j))}
			}
			msgs[0].MsgID = fmt.Sprint("m", i)
			if _, err := env.store.Append(ctx, Append{Stream: stream, Msgs: msgs}); err != nil {
				t.Error(err)
				return
			}
			i += n
		}
	}
	writeRange(0, total/2)

	var (
		mu       sync.Mutex
		next     = uint64(1)
		batches  int
		maxBatch int
	)
	var wg sync.WaitGroup
	wg.Go(func() { writeRange(total/2, total) })
	err := env.store.Subscribe(ctx, stream, 1, 100, func(batch []StoredMsg) error {
		mu.Lock()
		defer mu.Unlock()
		batches++
		maxBatch = max(maxBatch, len(batch))
		if len(batch) > 100 {
			return fmt.Errorf("batch of %d", len(batch))
		}
		for _, m := range batch {
			if m.Seq != next {
				return fmt.Errorf("seq %d, want %d", m.Seq, next)
			}
			if string(m.Data) != fmt.Sprint(next-1) {
				return fmt.Errorf("seq %d data %q", m.Seq, m.Data)
			}
			next++
		}
		if next > total {
			cancel()
		}
		// A slow projector now and then must not lose or repeat anything.
		if batches%20 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		// Nor must the ordered consumer being reset under it: delete the
		// server-side consumer, the client recreates it after the last
		// delivered sequence.
		if batches == 30 || batches == 200 {
			t.Logf("deleting consumers at seq %d", next-1)
			deleteConsumers(t, env.store, stream)
		}
		return nil
	})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if next != total+1 {
		t.Fatalf("delivered up to %d of %d", next-1, total)
	}
	t.Logf("%d messages in %d batches (largest %d)", total, batches, maxBatch)

	// Resuming from a checkpoint delivers exactly the rest.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	next = 4001
	err = env.store.Subscribe(ctx2, stream, 4001, 0, func(batch []StoredMsg) error {
		for _, m := range batch {
			if m.Seq != next {
				return fmt.Errorf("resume: seq %d, want %d", m.Seq, next)
			}
			next++
		}
		if next > total {
			cancel2()
		}
		return nil
	})
	if err != nil || next != total+1 {
		t.Fatalf("resume: next %d, err %v", next, err)
	}
}

func TestSubscribeStopsOnHandlerError(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p", 0)
	env.fill("p", 5, 1)
	boom := errors.New("boom")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.store.Subscribe(ctx, stream, 0, 2, func([]StoredMsg) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func deleteConsumers(t *testing.T, s *Store, stream string) {
	t.Helper()
	ctx := context.Background()
	str, err := s.js.Stream(ctx, stream)
	if err != nil {
		t.Error(err)
		return
	}
	names := str.ConsumerNames(ctx)
	for name := range names.Name() {
		if err := str.DeleteConsumer(ctx, name); err != nil {
			t.Error(err)
		}
	}
}

func consumerCount(t *testing.T, s *Store, stream string) int {
	t.Helper()
	str, err := s.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return str.CachedInfo().State.Consumers
}

func TestSubscribeIdle(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p", 0)
	env.fill("p", 3, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []uint64
	var pendings []uint64
	asked := 0
	err := env.store.SubscribeWith(ctx, stream, SubscribeOptions{MaxBatch: 1, Idle: 30 * time.Millisecond,
		OnIdle: func() bool {
			asked++
			if len(got) != 3 {
				t.Errorf("idle before catching up: delivered %v", got)
			}
			return asked == 2 // the first time, keep going
		}}, func(b []StoredMsg) error {
		for _, m := range b {
			got = append(got, m.Seq)
			pendings = append(pendings, m.Pending)
		}
		return nil
	})
	if !errors.Is(err, ErrIdle) {
		t.Fatalf("err = %v, want ErrIdle", err)
	}
	if asked != 2 || len(got) != 3 || fmt.Sprint(pendings) != "[2 1 0]" {
		t.Fatalf("asked %d, delivered %v with pending %v", asked, got, pendings)
	}
	if n := consumerCount(t, env.store, stream); n != 0 {
		t.Fatalf("%d consumers left after an idle stop", n)
	}

	// Nothing to deliver at all: idle from the start.
	err = env.store.SubscribeWith(ctx, stream, SubscribeOptions{StartSeq: 4, Idle: 10 * time.Millisecond,
		OnIdle: func() bool { return true }}, func([]StoredMsg) error {
		t.Error("delivered past the end")
		return nil
	})
	if !errors.Is(err, ErrIdle) {
		t.Fatalf("err = %v, want ErrIdle", err)
	}
}

func TestStreamStatesAndNotify(t *testing.T) {
	env := newEnv(t)
	var mu sync.Mutex
	var seen []string
	stop, err := env.store.NotifyProjects(func(id string) {
		mu.Lock()
		seen = append(seen, id)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 260 { // more than a page (256) of the server's list
		env.project(fmt.Sprintf("p%03d", i), 0)
	}
	env.fill("p007", 4, 2)
	env.mustAppend(SystemStream, "", 0, SystemSubject("projects", "x", "create"), "s1", "x")
	states, err := env.store.StreamStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 261 || states[ProjectStream("p007")].LastSeq != 4 || states[ProjectStream("p008")].LastSeq != 0 ||
		states[SystemStream].LastSeq != 1 || states[ProjectStream("p007")].Created.IsZero() {
		t.Fatalf("%d states; p007 %+v, system %+v", len(states), states[ProjectStream("p007")], states[SystemStream])
	}
	waitFor := func(n int) []string {
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			s := append([]string(nil), seen...)
			mu.Unlock()
			if len(s) >= n || time.Now().After(deadline) {
				return s
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if s := waitFor(4); fmt.Sprint(s) != "[p007 p007 p007 p007]" {
		t.Fatalf("notified %v, want p007 four times (never the system stream)", s)
	}
	stop()
	env.fill("p008", 1, 1)
	time.Sleep(50 * time.Millisecond)
	if s := waitFor(5); len(s) != 4 {
		t.Fatalf("notified after stop: %v", s)
	}
	for subj, want := range map[string]string{"cairn.p1.keys.k.create": "p1", "cairn._sys.projects.p.create": "", "cairn.p1": "", "other.p1.x": ""} {
		if id, _ := projectOfSubject(subj); id != want {
			t.Errorf("projectOfSubject(%q) = %q, want %q", subj, id, want)
		}
	}
}
