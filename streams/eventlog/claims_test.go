package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/project"
	"github.com/cairn-dev/cairn/domain/user"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// newProject creates a project through the write path, its stream first,
// the way the API does.
func (n *node) newProject(t testing.TB, id string) {
	t.Helper()
	meta := eventlog.Meta{Prepare: func(ctx context.Context, _ []*eventsv1.Envelope) error {
		return n.store.EnsureProjectStream(ctx, id, streams.Limits{})
	}}
	_, err := n.log.Write(context.Background(), eventlog.ProjectAggregate(id), meta, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		return project.Decide(s, project.Create{ID: id, Name: id, Now: n.log.Now()})
	}))
	if err != nil {
		t.Fatal(err)
	}
}

// userWrite runs cmd on user uid of project p through the write path.
func (n *node) userWrite(meta eventlog.Meta, p, uid string, cmd func(now user.State) user.Command) (eventlog.Result, error) {
	return n.log.Write(context.Background(), eventlog.UserAggregate(p, uid), meta, eventlog.Decide(user.Evolve, func(s user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(s, cmd(s))
	}))
}

func (n *node) createUser(meta eventlog.Meta, p, uid, email string) (eventlog.Result, error) {
	return n.userWrite(meta, p, uid, func(user.State) user.Command {
		return user.Create{ID: uid, ProjectID: p, Email: email, Now: n.log.Now()}
	})
}

// projectMsgs returns every message of the project's stream.
func (n *node) projectMsgs(t *testing.T, p string) []streams.StoredMsg {
	t.Helper()
	var out []streams.StoredMsg
	for m, err := range n.store.Read(context.Background(), streams.ProjectStream(p), streams.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// describe renders messages as "subject-suffix" lines for failure output
// and comparisons: the project prefix is dropped and claim tokens are
// replaced by the namespace/value they stand for, when known.
func describe(p string, msgs []streams.StoredMsg, values ...string) []string {
	names := map[string]string{}
	for _, v := range values {
		names[eventlog.ClaimToken(user.ClaimEmail, v)] = v
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		s := strings.TrimPrefix(m.Subject, streams.ProjectSubject(p)+".")
		for tok, v := range names {
			s = strings.Replace(s, tok, v, 1)
		}
		out[i] = s
	}
	return out
}

// checkBatches asserts the stream holds whole writes only: a write's
// messages carry ids <id>, <id>.1, <id>.2 … and must be contiguous.
func checkBatches(t *testing.T, msgs []streams.StoredMsg) {
	t.Helper()
	for i, m := range msgs {
		id := m.MsgID()
		base, idx, ok := strings.Cut(id, ".")
		if !ok {
			continue
		}
		if i == 0 {
			t.Fatalf("message %d (%s) is part %s of a write whose first message is missing", m.Seq, id, idx)
		}
		prev := msgs[i-1].MsgID()
		want := base
		if idx != "1" {
			var k int
			fmt.Sscanf(idx, "%d", &k)
			want = fmt.Sprintf("%s.%d", base, k-1)
		}
		if prev != want {
			t.Fatalf("message %d (%s) follows %q, want %q: a write was split", m.Seq, id, prev, want)
		}
	}
}

func holder(t *testing.T, n *node, p, email string) string {
	t.Helper()
	h, err := n.reads.ClaimHolder(p, user.ClaimEmail, email)
	if err != nil {
		return ""
	}
	return h
}

// Many users race for one email: exactly one gets it; every other write
// fails with AlreadyExists on "email" and leaves nothing in the stream. Each
// round races on a new address; some losers pass the claim check before
// the winner's batch lands and are refused by the server (the claim's
// expected sequence), the others see the claim held.
func TestClaimRace(t *testing.T) {
	n := newNode(t)
	var conflicts atomic.Int64
	n.log = eventlog.New(n.store, n.reads, eventlog.Options{Logger: quietLogger(), OnAppend: func(_ time.Duration, result string) {
		if result == "conflict" {
			conflicts.Add(1)
		}
	}})
	n.newProject(t, "race")
	const racers, rounds = 16, 3
	for round := range rounds {
		email := fmt.Sprintf("Shared-%d@Example.com", round)
		var wg sync.WaitGroup
		errs := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Different spellings of one mailbox are one claim.
				addr := email
				if i%2 == 1 {
					addr = strings.ToLower(email)
				}
				_, errs[i] = n.createUser(eventlog.Meta{}, "race", fmt.Sprintf("r%d-u%d", round, i), addr)
			}()
		}
		close(start)
		wg.Wait()
		winner := ""
		for i, err := range errs {
			uid := fmt.Sprintf("r%d-u%d", round, i)
			if err == nil {
				if winner != "" {
					t.Fatalf("round %d: both %s and %s took %s", round, winner, uid, email)
				}
				winner = uid
				continue
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != domain.KindAlreadyExists || de.Field != user.ClaimEmail {
				t.Fatalf("round %d: loser %s: want AlreadyExists on %q, got %v", round, uid, user.ClaimEmail, err)
			}
			if c := n.countProject(t, "race", streams.ProjectSubject("race", "users", uid, ">")); c != 0 {
				t.Fatalf("round %d: loser %s has %d events in the stream", round, uid, c)
			}
		}
		if winner == "" {
			t.Fatalf("round %d: nobody took %s", round, email)
		}
		norm := user.NormalizeEmail(email)
		if h := holder(t, n, "race", norm); h != winner {
			t.Fatalf("round %d: read model says %q holds %s, want %q", round, h, norm, winner)
		}
		if c := n.countProject(t, "race", eventlog.ClaimAggregate("race", user.ClaimEmail, norm).Filter); c != 1 {
			t.Fatalf("round %d: %d claim messages, want 1", round, c)
		}
	}
	msgs := n.projectMsgs(t, "race")
	if len(msgs) != 2*rounds {
		t.Fatalf("stream holds %d messages, want %d (one user and one claim per round):\n%s", len(msgs), 2*rounds, strings.Join(describe("race", msgs), "\n"))
	}
	checkBatches(t, msgs)
	t.Logf("%d appends refused by the server on a stale claim expectation", conflicts.Load())
}

// countProject counts a project's messages on filter.
func (n *node) countProject(t *testing.T, p, filter string) int {
	t.Helper()
	c := 0
	for _, err := range n.store.Read(context.Background(), streams.ProjectStream(p), streams.ReadOptions{Filters: []string{filter}}) {
		if err != nil {
			t.Fatal(err)
		}
		c++
	}
	return c
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// An email change releases the old claim and takes the new one in the same
// batch as the user event; the released address is free for another user;
// deleting a user frees theirs.
func TestClaimReleaseAndRetake(t *testing.T) {
	n := newNode(t)
	n.newProject(t, "p1")
	if _, err := n.createUser(eventlog.Meta{}, "p1", "u1", "a@x.io"); err != nil {
		t.Fatal(err)
	}
	_, err := n.createUser(eventlog.Meta{}, "p1", "u2", "A@X.io")
	if domain.KindOf(err) != domain.KindAlreadyExists {
		t.Fatalf("u2 took u1's email: %v", err)
	}
	res, err := n.userWrite(eventlog.Meta{}, "p1", "u1", func(user.State) user.Command {
		return user.Update{Email: ptr("b@x.io"), Now: n.log.Now()}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(res.Events); !slices.Equal(got, []string{"user_updated", "claim_released", "claim_taken"}) {
		t.Fatalf("email change wrote %v", got)
	}
	if h := holder(t, n, "p1", "a@x.io"); h != "" {
		t.Fatalf("a@x.io still held by %q", h)
	}
	if h := holder(t, n, "p1", "b@x.io"); h != "u1" {
		t.Fatalf("b@x.io held by %q, want u1", h)
	}
	if _, err := n.createUser(eventlog.Meta{}, "p1", "u2", "a@x.io"); err != nil {
		t.Fatalf("u2 cannot take the released email: %v", err)
	}
	if h := holder(t, n, "p1", "a@x.io"); h != "u2" {
		t.Fatalf("a@x.io held by %q, want u2", h)
	}
	// u1 cannot move back onto u2's address.
	_, err = n.userWrite(eventlog.Meta{}, "p1", "u1", func(user.State) user.Command {
		return user.Update{Email: ptr("a@x.io"), Now: n.log.Now()}
	})
	if domain.KindOf(err) != domain.KindAlreadyExists {
		t.Fatalf("u1 took u2's email back: %v", err)
	}
	// Deleting u1 frees b@x.io.
	if _, err := n.userWrite(eventlog.Meta{}, "p1", "u1", func(user.State) user.Command { return user.Delete{Now: n.log.Now()} }); err != nil {
		t.Fatal(err)
	}
	if _, err := n.createUser(eventlog.Meta{}, "p1", "u3", "B@x.io"); err != nil {
		t.Fatalf("u3 cannot take a deleted user's email: %v", err)
	}
	msgs := n.projectMsgs(t, "p1")
	want := []string{
		"users.u1.create", "claims.email.a@x.io.take",
		"users.u1.update.email", "claims.email.a@x.io.release", "claims.email.b@x.io.take",
		"users.u2.create", "claims.email.a@x.io.take",
		"users.u1.delete", "claims.email.b@x.io.release",
		"users.u3.create", "claims.email.b@x.io.take",
	}
	if got := describe("p1", msgs, "a@x.io", "b@x.io"); !slices.Equal(got, want) {
		t.Fatalf("stream:\n got %q\nwant %q", got, want)
	}
	checkBatches(t, msgs)
	// Each claim message carried its own expectation: the claim's last
	// sequence when it was decided (0: free).
	for _, m := range msgs {
		if !strings.Contains(m.Subject, ".claims.") {
			continue
		}
		filter := m.Header.Get("Nats-Expected-Last-Subject-Sequence-Subject")
		if !strings.HasPrefix(m.Subject, strings.TrimSuffix(filter, ">")) || m.Header.Get("Nats-Expected-Last-Subject-Sequence") == "" {
			t.Fatalf("claim message %d (%s) has expectation %q on %q", m.Seq, m.Subject, m.Header.Get("Nats-Expected-Last-Subject-Sequence"), filter)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func eventNames(evs []*eventsv1.Envelope) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.ProtoReflect().WhichOneof(e.ProtoReflect().Descriptor().Oneofs().ByName("payload")).Name())
	}
	return out
}

// rawWrite appends whatever events decide returns, as user uid's write.
func (n *node) rawWrite(p, uid string, events func(last user.State) []*eventsv1.Envelope) (eventlog.Result, error) {
	return n.log.Write(context.Background(), eventlog.UserAggregate(p, uid), eventlog.Meta{}, eventlog.Decide(user.Evolve, func(s user.State) ([]*eventsv1.Envelope, error) {
		return events(s), nil
	}))
}

func renamed(u user.State, name string) *eventsv1.Envelope {
	u.Name = name
	return &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: u, Change: "name"}}}
}

func claimEvent(take bool, p, value, holder string) *eventsv1.Envelope {
	if take {
		return &eventsv1.Envelope{Payload: &eventsv1.Envelope_ClaimTaken{ClaimTaken: &eventsv1.ClaimTaken{ProjectId: p, Namespace: user.ClaimEmail, Value: value, Holder: holder}}}
	}
	return &eventsv1.Envelope{Payload: &eventsv1.Envelope_ClaimReleased{ClaimReleased: &eventsv1.ClaimReleased{ProjectId: p, Namespace: user.ClaimEmail, Value: value, Holder: holder}}}
}

// Claims that would change nothing are dropped from the write: a release
// by a non-holder (or of a free value), and a take by the holder.
func TestClaimNoOpsDropped(t *testing.T) {
	n := newNode(t)
	n.newProject(t, "p1")
	for _, u := range []string{"u1", "u2"} {
		if _, err := n.createUser(eventlog.Meta{}, "p1", u, u+"@x.io"); err != nil {
			t.Fatal(err)
		}
	}
	before := len(n.projectMsgs(t, "p1"))
	cases := []struct {
		name   string
		uid    string
		claims []*eventsv1.Envelope
		want   []string
	}{
		{name: "release by a non-holder", uid: "u2", claims: []*eventsv1.Envelope{claimEvent(false, "p1", "u1@x.io", "u2")}, want: []string{"user_updated"}},
		{name: "release of a free value", uid: "u2", claims: []*eventsv1.Envelope{claimEvent(false, "p1", "free@x.io", "u2")}, want: []string{"user_updated"}},
		{name: "take by the holder", uid: "u1", claims: []*eventsv1.Envelope{claimEvent(true, "p1", "u1@x.io", "u1")}, want: []string{"user_updated"}},
		{name: "dropped release before a real take", uid: "u2", claims: []*eventsv1.Envelope{claimEvent(false, "p1", "u1@x.io", "u2"), claimEvent(true, "p1", "new@x.io", "u2")},
			want: []string{"user_updated", "claim_taken"}},
	}
	written := 0
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := n.rawWrite("p1", c.uid, func(s user.State) []*eventsv1.Envelope {
				return append([]*eventsv1.Envelope{renamed(s, fmt.Sprint("name", i))}, c.claims...)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := eventNames(res.Events); !slices.Equal(got, c.want) {
				t.Fatalf("stored %v, want %v", got, c.want)
			}
			written += len(c.want)
		})
	}
	if got := len(n.projectMsgs(t, "p1")); got != before+written {
		t.Fatalf("stream grew by %d messages, want %d", got-before, written)
	}
	for email, want := range map[string]string{"u1@x.io": "u1", "u2@x.io": "u2", "new@x.io": "u2", "free@x.io": ""} {
		if h := holder(t, n, "p1", email); h != want {
			t.Errorf("%s held by %q, want %q", email, h, want)
		}
	}
}

// A claim is never a write's first event (the first message carries the
// aggregate's expectation): such a write is refused and stores nothing.
func TestClaimFirstRefused(t *testing.T) {
	n := newNode(t)
	n.newProject(t, "p1")
	if _, err := n.createUser(eventlog.Meta{}, "p1", "u1", "u1@x.io"); err != nil {
		t.Fatal(err)
	}
	before := len(n.projectMsgs(t, "p1"))
	for _, take := range []bool{true, false} {
		_, err := n.rawWrite("p1", "u1", func(s user.State) []*eventsv1.Envelope {
			return []*eventsv1.Envelope{claimEvent(take, "p1", "u1@x.io", "u1"), renamed(s, "x")}
		})
		if err == nil || !strings.Contains(err.Error(), "first event") {
			t.Fatalf("take=%v: want the claim-first refusal, got %v", take, err)
		}
	}
	if got := len(n.projectMsgs(t, "p1")); got != before {
		t.Fatalf("a refused write stored %d messages", got-before)
	}
}

// A write whose claim is taken stores none of its events; the decision's
// other events are not half-applied.
func TestClaimRefusalStoresNothing(t *testing.T) {
	n := newNode(t)
	n.newProject(t, "p1")
	for _, u := range []string{"u1", "u2"} {
		if _, err := n.createUser(eventlog.Meta{}, "p1", u, u+"@x.io"); err != nil {
			t.Fatal(err)
		}
	}
	before := n.projectMsgs(t, "p1")
	// u2 renames, releases its address and takes u1's: refused as a whole.
	_, err := n.rawWrite("p1", "u2", func(s user.State) []*eventsv1.Envelope {
		return []*eventsv1.Envelope{renamed(s, "x"), claimEvent(false, "p1", "u2@x.io", "u2"), claimEvent(true, "p1", "u1@x.io", "u2")}
	})
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindAlreadyExists || de.Field != user.ClaimEmail {
		t.Fatalf("want AlreadyExists on email, got %v", err)
	}
	after := n.projectMsgs(t, "p1")
	if len(after) != len(before) {
		t.Fatalf("refused write stored %d messages: %q", len(after)-len(before), describe("p1", after[len(before):]))
	}
	if h := holder(t, n, "p1", "u2@x.io"); h != "u2" {
		t.Fatalf("u2@x.io released by a refused write (held by %q)", h)
	}
	if u, err := n.reads.User("p1", "u2"); err != nil || u.GetName() == "x" {
		t.Fatalf("refused rename applied: %v %v", u, err)
	}
}

// A retried request (same Idempotency-Key) answers the stored result and
// writes nothing: no second claim, and no "email taken" by its own claim.
func TestClaimIdempotentRetry(t *testing.T) {
	n := newNode(t)
	n.newProject(t, "p1")
	meta := eventlog.Meta{IdempotencyKey: "create-u1", Scope: "CreateUser\x00p1"}
	first, err := n.createUser(meta, "p1", "u1", "a@x.io")
	if err != nil || first.Duplicate {
		t.Fatalf("first: %+v %v", first, err)
	}
	if got := eventNames(first.Events); !slices.Equal(got, []string{"user_created", "claim_taken"}) {
		t.Fatalf("first wrote %v", got)
	}
	for range 2 {
		again, err := n.createUser(meta, "p1", "u1", "a@x.io")
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if !again.Duplicate || again.Seq != first.Seq || len(again.Events) != len(first.Events) {
			t.Fatalf("retry: %+v, first %+v", again, first)
		}
		for i := range again.Events {
			if again.Events[i].GetId() != first.Events[i].GetId() {
				t.Fatalf("retry event %d is %s, first wrote %s", i, again.Events[i].GetId(), first.Events[i].GetId())
			}
		}
	}
	msgs := n.projectMsgs(t, "p1")
	if got, want := describe("p1", msgs, "a@x.io"), []string{"users.u1.create", "claims.email.a@x.io.take"}; !slices.Equal(got, want) {
		t.Fatalf("stream:\n got %q\nwant %q", got, want)
	}
	checkBatches(t, msgs)
	// Another user with the same key in another scope is another request,
	// and the claim still holds.
	_, err = n.createUser(eventlog.Meta{IdempotencyKey: "create-u1", Scope: "CreateUser\x00other"}, "p1", "u2", "a@x.io")
	if domain.KindOf(err) != domain.KindAlreadyExists {
		t.Fatalf("want AlreadyExists, got %v", err)
	}
}
