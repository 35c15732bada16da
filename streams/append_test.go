package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestAppendThenRead(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("p1", 0)
	filter := ProjectSubject("p1", "keys", "K1", ">")

	ack := env.mustAppend(stream, filter, 0, ProjectSubject("p1", "keys", "K1", "create"), "req-1", "v1")
	if ack.Seq != 1 || ack.Duplicate {
		t.Fatalf("ack = %+v, want seq 1", ack)
	}
	ack = env.mustAppend(stream, filter, 1, ProjectSubject("p1", "keys", "K1", "update"), "req-2", "v2")
	if ack.Seq != 2 {
		t.Fatalf("ack = %+v, want seq 2", ack)
	}
	got, err := env.store.Get(ctx, stream, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != "v2" || got.Subject != "cairn.p1.keys.K1.update" || got.MsgID() != "req-2" || got.Time.IsZero() {
		t.Fatalf("got %+v", got)
	}
	if got.Header.Get("Nats-Sequence") != "" {
		t.Fatalf("server metadata leaked into header: %v", got.Header)
	}
	if _, err := env.store.Get(ctx, stream, 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(3) err = %v, want ErrNotFound", err)
	}
}

func TestAppendConflict(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p1", 0)
	filter := ProjectSubject("p1", "keys", "K1", ">")
	env.mustAppend(stream, filter, 0, ProjectSubject("p1", "keys", "K1", "create"), "a", "1")
	env.mustAppend(stream, filter, 1, ProjectSubject("p1", "keys", "K1", "update"), "b", "2")

	cases := []struct {
		name   string
		expect uint64
	}{
		{"stale sequence", 1},
		{"zero on an existing aggregate", 0},
		{"future sequence", 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.store.Append(context.Background(), Append{
				Stream: stream, ExpectFilter: filter, ExpectSeq: tc.expect,
				Msgs: []Msg{{Subject: ProjectSubject("p1", "keys", "K1", "update"), MsgID: "new-" + tc.name}},
			})
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
		})
	}
	info, err := env.store.StreamInfo(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if info.LastSeq != 2 || info.Msgs != 2 {
		t.Fatalf("info = %+v, want 2 messages", info)
	}
}

// ExpectSeq 0 must mean "nothing on the filter yet", not "no check": the
// server (stream.go, getExpectedLastSeqPerSubject) tests the header's
// presence, not its value.
func TestExpectZeroMeansAbsent(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p1", 0)
	// Another aggregate's messages do not count.
	env.mustAppend(stream, "", 0, ProjectSubject("p1", "keys", "K2", "create"), "other", "x")
	filter := ProjectSubject("p1", "keys", "K1", ">")
	ack := env.mustAppend(stream, filter, 0, ProjectSubject("p1", "keys", "K1", "create"), "first", "1")
	if ack.Seq != 2 {
		t.Fatalf("seq = %d", ack.Seq)
	}
	_, err := env.store.Append(context.Background(), Append{
		Stream: stream, ExpectFilter: filter, ExpectSeq: 0,
		Msgs: []Msg{{Subject: ProjectSubject("p1", "keys", "K1", "create"), MsgID: "second"}},
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second create err = %v, want ErrConflict", err)
	}
}

func TestConcurrentWritersOneWinsPerSequence(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p1", 0)
	filter := ProjectSubject("p1", "keys", "K1", ">")
	const writers, rounds = 8, 20
	ctx := context.Background()

	var mu sync.Mutex
	wins := map[uint64]int{} // expected seq -> winners
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				// Load, decide, append; a conflict means someone else won this round.
				last, _, err := env.store.Last(ctx, stream, filter)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = env.store.Append(ctx, Append{
					Stream: stream, ExpectFilter: filter, ExpectSeq: last.Seq,
					Msgs: []Msg{{Subject: ProjectSubject("p1", "keys", "K1", "update"), MsgID: fmt.Sprintf("w%d-r%d", w, r)}},
				})
				switch {
				case err == nil:
					mu.Lock()
					wins[last.Seq]++
					mu.Unlock()
				case !errors.Is(err, ErrConflict):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	info, err := env.store.StreamInfo(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for seq, n := range wins {
		if n != 1 {
			t.Errorf("expected seq %d had %d winners", seq, n)
		}
		total += n
	}
	if uint64(total) != info.Msgs {
		t.Fatalf("%d wins but %d messages", total, info.Msgs)
	}
	t.Logf("%d writers x %d rounds: %d appends won", writers, rounds, total)
}

func TestDuplicate(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p1", 0)
	filter := ProjectSubject("p1", "keys", "K1", ">")
	subj := ProjectSubject("p1", "keys", "K1", "create")
	first := env.mustAppend(stream, filter, 0, subj, "idem-1", "v")

	// A retry of the same request: same id and the same (now stale) expectation.
	again, err := env.store.Append(context.Background(), Append{
		Stream: stream, ExpectFilter: filter, ExpectSeq: 0,
		Msgs: []Msg{{Subject: subj, Data: []byte("v"), MsgID: "idem-1"}},
	})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !again.Duplicate || again.Seq != first.Seq {
		t.Fatalf("retry ack = %+v, want duplicate of %d", again, first.Seq)
	}
	// Without an expectation the server's own dedup answers.
	plain, err := env.store.Append(context.Background(), Append{Stream: stream, Msgs: []Msg{{Subject: subj, MsgID: "idem-1"}}})
	if err != nil || !plain.Duplicate || plain.Seq != first.Seq {
		t.Fatalf("plain retry = %+v, %v", plain, err)
	}
	info, _ := env.store.StreamInfo(context.Background(), stream)
	if info.Msgs != 1 {
		t.Fatalf("%d messages, want 1", info.Msgs)
	}
	// A genuine conflict is still a conflict (the probe stored nothing).
	_, err = env.store.Append(context.Background(), Append{
		Stream: stream, ExpectFilter: filter, ExpectSeq: 0,
		Msgs: []Msg{{Subject: subj, MsgID: "idem-2"}},
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if info, _ := env.store.StreamInfo(context.Background(), stream); info.Msgs != 1 {
		t.Fatalf("probe stored a message: %d messages", info.Msgs)
	}
}

func TestAtomicBatch(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("p1", 0)
	user := ProjectSubject("p1", "users", "U1", ">")
	batch := func(id string, expect uint64, email string) Append {
		return Append{
			Stream: stream, ExpectFilter: user, ExpectSeq: expect,
			Msgs: []Msg{
				{Subject: ProjectSubject("p1", "users", "U1", "update"), Data: []byte(email), MsgID: id},
				{Subject: ProjectSubject("p1", "claims", "email", email, "create"), Data: []byte("U1")},
				{Subject: ProjectSubject("p1", "claims", "email", "old", "delete"), Data: []byte("U1")},
			},
		}
	}
	env.mustAppend(stream, user, 0, ProjectSubject("p1", "users", "U1", "create"), "u-create", "")

	ack, err := env.store.Append(ctx, batch("b1", 1, "a@x"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Seq != 4 || ack.Duplicate {
		t.Fatalf("ack = %+v, want seq 4", ack)
	}
	for i, want := range []string{"b1", "b1:1", "b1:2"} {
		m, err := env.store.Get(ctx, stream, uint64(2+i))
		if err != nil {
			t.Fatal(err)
		}
		if m.MsgID() != want {
			t.Fatalf("seq %d msg id %q, want %q", 2+i, m.MsgID(), want)
		}
	}

	t.Run("stale expectation appends nothing", func(t *testing.T) {
		_, err := env.store.Append(ctx, batch("b2", 1, "b@x"))
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		if info, _ := env.store.StreamInfo(ctx, stream); info.LastSeq != 4 {
			t.Fatalf("last seq %d, want 4", info.LastSeq)
		}
	})
	t.Run("retry is a duplicate with the original sequence", func(t *testing.T) {
		again, err := env.store.Append(ctx, batch("b1", 1, "a@x"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Seq != 4 {
			t.Fatalf("ack = %+v, want duplicate of 4", again)
		}
		if info, _ := env.store.StreamInfo(ctx, stream); info.LastSeq != 4 {
			t.Fatalf("last seq %d, want 4", info.LastSeq)
		}
	})
	t.Run("fresh expectation succeeds", func(t *testing.T) {
		ack, err := env.store.Append(ctx, batch("b3", 2, "c@x"))
		if err != nil || ack.Seq != 7 {
			t.Fatalf("ack = %+v, err = %v", ack, err)
		}
	})
}

// A uniqueness claim rides in the same batch with its own expectation:
// the second user to claim an email fails whole, its user event included.
func TestAtomicBatchClaim(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("p1", 0)
	claim := ProjectSubject("p1", "claims", "email", "a@x")
	create := func(user string) Append {
		return Append{
			Stream: stream, ExpectFilter: ProjectSubject("p1", "users", user, ">"), ExpectSeq: 0,
			Msgs: []Msg{
				{Subject: ProjectSubject("p1", "users", user, "create"), Data: []byte("a@x"), MsgID: "create-" + user},
				{Subject: claim, Data: []byte(user), ExpectFilter: claim, ExpectSeq: 0},
			},
		}
	}
	if _, err := env.store.Append(ctx, create("U1")); err != nil {
		t.Fatal(err)
	}
	_, err := env.store.Append(ctx, create("U2"))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second claim err = %v, want ErrConflict", err)
	}
	if _, found, _ := env.store.Last(ctx, stream, ProjectSubject("p1", "users", "U2", ">")); found {
		t.Fatal("U2's event was stored although its claim failed")
	}
	if info, _ := env.store.StreamInfo(ctx, stream); info.Msgs != 2 {
		t.Fatalf("%d messages, want 2", info.Msgs)
	}
}

// Documents nats-server 2.15 behaviour Append works around: a single
// message's expected subject sequence is checked before its Nats-Msg-Id, so
// a plain retry of a stored append is answered with a conflict (10071),
// not a duplicate ack. Append probes the id before reporting a conflict.
func TestServerChecksExpectationBeforeDedup(t *testing.T) {
	env := newEnv(t)
	stream := env.project("p1", 0)
	filter := ProjectSubject("p1", "keys", "K1", ">")
	subj := ProjectSubject("p1", "keys", "K1", "create")
	env.mustAppend(stream, filter, 0, subj, "idem", "")
	msgs, err := env.store.buildMsgs(Append{Stream: stream, ExpectFilter: filter, Msgs: []Msg{{Subject: subj, MsgID: "idem"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.store.publish(context.Background(), msgs[0])
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("raw retry err = %v; if the server now dedups first, the probe in Append is redundant", err)
	}
}

func TestStreamFull(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	stream := env.project("small", 4096)
	payload := strings.Repeat("x", 1000)
	var err error
	n := 0
	for ; n < 100; n++ {
		_, err = env.store.Append(ctx, Append{Stream: stream, Msgs: []Msg{{Subject: ProjectSubject("small", "k", "v"), Data: []byte(payload), MsgID: fmt.Sprint(n)}}})
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("after %d appends err = %v, want ErrStreamFull", n, err)
	}
	info, _ := env.store.StreamInfo(ctx, stream)
	if info.FirstSeq != 1 || info.Msgs != uint64(n) {
		t.Fatalf("history dropped: %+v after %d appends", info, n)
	}
	// A batch that would cross the limit is refused whole.
	_, err = env.store.Append(ctx, Append{Stream: stream, Msgs: []Msg{
		{Subject: ProjectSubject("small", "k", "a"), MsgID: "tiny"},
		{Subject: ProjectSubject("small", "k", "b"), Data: []byte(payload)},
	}})
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("batch err = %v, want ErrStreamFull", err)
	}
	if after, _ := env.store.StreamInfo(ctx, stream); after.Msgs != info.Msgs {
		t.Fatalf("partial batch stored: %d -> %d", info.Msgs, after.Msgs)
	}
	// Raising the limit lets writes through again, keeping history.
	if err := env.store.EnsureProjectStream(ctx, "small", Limits{MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.Append(ctx, Append{Stream: stream, Msgs: []Msg{{Subject: ProjectSubject("small", "k", "v"), MsgID: "after"}}}); err != nil {
		t.Fatal(err)
	}
}

func TestAppendErrors(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	_, err := env.store.Append(ctx, Append{Stream: ProjectStream("nope"), Msgs: []Msg{{Subject: ProjectSubject("nope", "a"), MsgID: "x"}}})
	if !errors.Is(err, ErrNoStream) {
		t.Fatalf("missing stream err = %v", err)
	}
	stream := env.project("p1", 0)
	_, err = env.store.Append(ctx, Append{Stream: stream, Msgs: []Msg{{Subject: ProjectSubject("p1", "a")}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("missing msg id err = %v", err)
	}
	// A subject of another stream is refused by Nats-Expected-Stream.
	env.project("p2", 0)
	_, err = env.store.Append(ctx, Append{Stream: stream, Msgs: []Msg{{Subject: ProjectSubject("p2", "a"), MsgID: "y"}}})
	if err == nil {
		t.Fatal("append into another project's stream succeeded")
	}
}
