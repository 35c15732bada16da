package user

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var (
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func ptr[T any](v T) *T { return &v }

func hash(secret string) []byte { s := sha256.Sum256([]byte(secret)); return s[:] }

// summary renders events as one line each: type, and what identifies it.
func summary(evs []*eventsv1.Envelope) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		switch p := e.GetPayload().(type) {
		case *eventsv1.Envelope_UserCreated:
			out = append(out, "UserCreated "+p.UserCreated.GetUser().GetId())
		case *eventsv1.Envelope_UserUpdated:
			out = append(out, "UserUpdated "+p.UserUpdated.GetChange())
		case *eventsv1.Envelope_UserDeleted:
			out = append(out, "UserDeleted "+p.UserDeleted.GetUser().GetId())
		case *eventsv1.Envelope_SessionCreated:
			out = append(out, fmt.Sprintf("SessionCreated %s evicted=%v", p.SessionCreated.GetSessionId(), p.SessionCreated.GetEvictedSessionIds()))
		case *eventsv1.Envelope_SessionsDeleted:
			out = append(out, fmt.Sprintf("SessionsDeleted %v", p.SessionsDeleted.GetSessionIds()))
		case *eventsv1.Envelope_TokenCreated:
			out = append(out, "TokenCreated "+p.TokenCreated.GetTokenId())
		case *eventsv1.Envelope_TokenConsumed:
			s := "TokenConsumed " + p.TokenConsumed.GetTokenId()
			if p.TokenConsumed.GetFailed() {
				s += " failed"
			}
			out = append(out, s)
		case *eventsv1.Envelope_ClaimTaken:
			c := p.ClaimTaken
			out = append(out, fmt.Sprintf("ClaimTaken %s/%s/%s/%s", c.GetProjectId(), c.GetNamespace(), c.GetValue(), c.GetHolder()))
		case *eventsv1.Envelope_ClaimReleased:
			c := p.ClaimReleased
			out = append(out, fmt.Sprintf("ClaimReleased %s/%s/%s/%s", c.GetProjectId(), c.GetNamespace(), c.GetValue(), c.GetHolder()))
		default:
			out = append(out, fmt.Sprintf("%T", p))
		}
	}
	return out
}

// fold evolves state through evs.
func fold(s State, evs []*eventsv1.Envelope) State {
	for _, e := range evs {
		s = Evolve(s, e)
	}
	return s
}

// newUser is a user with an email and password, created at t0.
func newUser(t *testing.T) State {
	t.Helper()
	evs, err := Decide(nil, Create{ID: "u1", ProjectID: "p1", Email: "Ann@Example.com", Name: "Ann", PasswordHash: "$argon2id$x", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return fold(nil, evs)
}

func session(id string, created time.Time, d time.Duration) *eventsv1.Session {
	return &eventsv1.Session{Id: id, SecretHash: hash("s-" + id), CreatedAt: timestamppb.New(created), ExpiresAt: timestamppb.New(created.Add(d)), Provider: "email", Factors: []string{"password"}}
}

func token(id string, kind eventsv1.Token_Kind, expires time.Time) *eventsv1.Token {
	return &eventsv1.Token{Id: id, Kind: kind, SecretHash: hash("t-" + id), ExpiresAt: timestamppb.New(expires)}
}

// with returns a copy of u changed by fn.
func with(u State, fn func(State)) State {
	c := proto.CloneOf(u)
	fn(c)
	return c
}

// wantErr checks err's kind, and its field when field is not empty.
func wantErr(t *testing.T, err error, kind domain.Kind, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %v error, got none", kind)
	}
	if domain.KindOf(err) != kind {
		t.Fatalf("want a %v error, got %v: %v", kind, domain.KindOf(err), err)
	}
	if field != "" {
		var de *domain.Error
		if !errors.As(err, &de) || de.Field != field {
			t.Fatalf("want an error on field %q, got %v", field, err)
		}
	}
}

func TestCreate(t *testing.T) {
	long := strings.Repeat("a", MaxEmailLen-len("@x.io")+1) + "@x.io"
	cases := []struct {
		name    string
		state   State
		cmd     Create
		want    []string
		errKind domain.Kind
		field   string
		check   func(*testing.T, *eventsv1.User)
	}{
		{name: "email and password", cmd: Create{ID: "u1", ProjectID: "p1", Email: "Ann@Example.COM", Name: "Ann", PasswordHash: "h", Labels: []string{"vip", "admin", "vip"}, Now: t0},
			want: []string{"UserCreated u1", "ClaimTaken p1/email/ann@example.com/u1"},
			check: func(t *testing.T, u *eventsv1.User) {
				want := &eventsv1.User{Id: "u1", ProjectId: "p1", Email: "Ann@Example.COM", Name: "Ann", PasswordHash: "h",
					Labels: []string{"admin", "vip"}, PrefsJson: "{}", CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0), PasswordUpdatedAt: timestamppb.New(t0)}
				if !proto.Equal(u, want) {
					t.Fatalf("user:\n got %v\nwant %v", u, want)
				}
			}},
		{name: "email without password", cmd: Create{ID: "u1", ProjectID: "p1", Email: "a@x.io", EmailVerified: true, Now: t0},
			want: []string{"UserCreated u1", "ClaimTaken p1/email/a@x.io/u1"},
			check: func(t *testing.T, u *eventsv1.User) {
				if !u.GetEmailVerified() || u.GetPasswordUpdatedAt() != nil || u.GetPasswordHash() != "" {
					t.Fatalf("want verified, no password: %v", u)
				}
			}},
		{name: "anonymous", cmd: Create{ID: "anon-1", ProjectID: "p1", Anonymous: true, EmailVerified: true, Now: t0},
			want: []string{"UserCreated anon-1"},
			check: func(t *testing.T, u *eventsv1.User) {
				if !u.GetAnonymous() || u.GetEmailVerified() || u.GetEmail() != "" || u.GetPrefsJson() != "{}" {
					t.Fatalf("anonymous user: %v", u)
				}
			}},
		{name: "no email no password (server-made)", cmd: Create{ID: "u2", ProjectID: "p1", Name: "Bob", Now: t0}, want: []string{"UserCreated u2"}},
		{name: "exists", state: &eventsv1.User{Id: "u1"}, cmd: Create{ID: "u1", ProjectID: "p1", Email: "a@x.io", Now: t0}, errKind: domain.KindAlreadyExists},
		{name: "bad id dot", cmd: Create{ID: "u.1", ProjectID: "p1", Now: t0}, errKind: domain.KindInvalid, field: "user_id"},
		{name: "bad id empty", cmd: Create{ID: "", ProjectID: "p1", Now: t0}, errKind: domain.KindInvalid, field: "user_id"},
		{name: "bad id too long", cmd: Create{ID: strings.Repeat("a", 37), ProjectID: "p1", Now: t0}, errKind: domain.KindInvalid, field: "user_id"},
		{name: "anonymous with email", cmd: Create{ID: "u1", ProjectID: "p1", Anonymous: true, Email: "a@x.io", Now: t0}, errKind: domain.KindInternal},
		{name: "anonymous with password", cmd: Create{ID: "u1", ProjectID: "p1", Anonymous: true, PasswordHash: "h", Now: t0}, errKind: domain.KindInternal},
		{name: "password without email", cmd: Create{ID: "u1", ProjectID: "p1", PasswordHash: "h", Now: t0}, errKind: domain.KindInvalid, field: "email"},
		{name: "email not an address", cmd: Create{ID: "u1", ProjectID: "p1", Email: "nope", Now: t0}, errKind: domain.KindInvalid, field: "email"},
		{name: "email with display name", cmd: Create{ID: "u1", ProjectID: "p1", Email: "Ann <a@x.io>", Now: t0}, errKind: domain.KindInvalid, field: "email"},
		{name: "email in angle brackets", cmd: Create{ID: "u1", ProjectID: "p1", Email: "<a@x.io>", Now: t0}, errKind: domain.KindInvalid, field: "email"},
		{name: "email with spaces", cmd: Create{ID: "u1", ProjectID: "p1", Email: " a@x.io", Now: t0}, errKind: domain.KindInvalid, field: "email"},
		{name: "email too long", cmd: Create{ID: "u1", ProjectID: "p1", Email: long, Now: t0}, errKind: domain.KindInvalid, field: "email"},
		{name: "name too long", cmd: Create{ID: "u1", ProjectID: "p1", Name: strings.Repeat("n", MaxNameLen+1), Now: t0}, errKind: domain.KindInvalid, field: "name"},
		{name: "name two lines", cmd: Create{ID: "u1", ProjectID: "p1", Name: "a\nb", Now: t0}, errKind: domain.KindInvalid, field: "name"},
		{name: "name NUL", cmd: Create{ID: "u1", ProjectID: "p1", Name: "a\x00", Now: t0}, errKind: domain.KindInvalid, field: "name"},
		{name: "name invalid UTF-8", cmd: Create{ID: "u1", ProjectID: "p1", Name: "\xff", Now: t0}, errKind: domain.KindInvalid, field: "name"},
		{name: "name max length", cmd: Create{ID: "u1", ProjectID: "p1", Name: strings.Repeat("n", MaxNameLen), Now: t0}, want: []string{"UserCreated u1"}},
		{name: "label with dash", cmd: Create{ID: "u1", ProjectID: "p1", Labels: []string{"a-b"}, Now: t0}, errKind: domain.KindInvalid, field: "labels"},
		{name: "empty label", cmd: Create{ID: "u1", ProjectID: "p1", Labels: []string{""}, Now: t0}, errKind: domain.KindInvalid, field: "labels"},
		{name: "label too long", cmd: Create{ID: "u1", ProjectID: "p1", Labels: []string{strings.Repeat("l", 37)}, Now: t0}, errKind: domain.KindInvalid, field: "labels"},
		{name: "too many labels", cmd: Create{ID: "u1", ProjectID: "p1", Labels: make([]string, 101), Now: t0}, errKind: domain.KindInvalid, field: "labels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := Decide(c.state, c.cmd)
			if c.errKind != domain.KindInternal || (c.want == nil && err != nil) {
				wantErr(t, err, c.errKind, c.field)
				if evs != nil {
					t.Fatalf("events with an error: %v", summary(evs))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := summary(evs); !slices.Equal(got, c.want) {
				t.Fatalf("events:\n got %q\nwant %q", got, c.want)
			}
			if c.check != nil {
				c.check(t, fold(nil, evs))
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	base := newUser(t) // u1, Ann@Example.com, password, unverified
	verified := with(base, func(u State) { u.EmailVerified = true })
	withSessions := with(base, func(u State) {
		u.Sessions = []*eventsv1.Session{session("s1", t0, time.Hour), session("s2", t0, 30*time.Second)} // s2 expired at t1
	})
	anon := fold(nil, must(Decide(nil, Create{ID: "anon", ProjectID: "p1", Anonymous: true, Now: t0})))
	noEmail := fold(nil, must(Decide(nil, Create{ID: "u9", ProjectID: "p1", Now: t0})))
	bigPrefs := `{"k":"` + strings.Repeat("x", MaxPrefsBytes-8) + `"}`
	tooBig := `{"k":"` + strings.Repeat("x", MaxPrefsBytes-7) + `"}`

	cases := []struct {
		name    string
		state   State
		cmd     Update
		want    []string
		errKind domain.Kind
		field   string
		check   func(*testing.T, State)
	}{
		{name: "missing user", cmd: Update{Name: ptr("x"), Now: t1}, errKind: domain.KindNotFound},
		{name: "nothing set", state: base, cmd: Update{Now: t1}},
		{name: "same values are no events", state: verified, cmd: Update{Email: ptr("Ann@Example.com"), Name: ptr("Ann"), PasswordHash: ptr("$argon2id$x"),
			Blocked: ptr(false), EmailVerified: ptr(true), Labels: &[]string{}, PrefsJSON: ptr("{}"), Now: t1}},
		{name: "only expired sessions pruned is no event", state: withSessions, cmd: Update{Name: ptr("Ann"), Now: t1}},
		{name: "email change releases old claim and takes new", state: verified, cmd: Update{Email: ptr("New@Example.com"), Now: t1},
			want: []string{"UserUpdated email", "ClaimReleased p1/email/ann@example.com/u1", "ClaimTaken p1/email/new@example.com/u1"},
			check: func(t *testing.T, u State) {
				if u.GetEmail() != "New@Example.com" || u.GetEmailVerified() || !u.GetUpdatedAt().AsTime().Equal(t1) {
					t.Fatalf("after email change: %v", u)
				}
			}},
		// Same mailbox in another case: the claim (lower-cased) is the same,
		// so no release/take churn and the verification stands.
		{name: "email change of case only", state: verified, cmd: Update{Email: ptr("ann@example.com"), Now: t1},
			want: []string{"UserUpdated email"},
			check: func(t *testing.T, u State) {
				if u.GetEmail() != "ann@example.com" || !u.GetEmailVerified() {
					t.Fatalf("after case change: %v", u)
				}
			}},
		{name: "first email takes a claim, releases none", state: noEmail, cmd: Update{Email: ptr("b@x.io"), Now: t1},
			want: []string{"UserUpdated email", "ClaimTaken p1/email/b@x.io/u9"}},
		{name: "bad email", state: base, cmd: Update{Email: ptr("not an email"), Now: t1}, errKind: domain.KindInvalid, field: "email"},
		{name: "clearing email refused", state: base, cmd: Update{Email: ptr(""), Now: t1}, errKind: domain.KindInvalid, field: "email"},
		{name: "password", state: base, cmd: Update{PasswordHash: ptr("h2"), Now: t1}, want: []string{"UserUpdated password"},
			check: func(t *testing.T, u State) {
				if u.GetPasswordHash() != "h2" || !u.GetPasswordUpdatedAt().AsTime().Equal(t1) {
					t.Fatalf("after password: %v", u)
				}
			}},
		{name: "name", state: base, cmd: Update{Name: ptr("Annie"), Now: t1}, want: []string{"UserUpdated name"}},
		{name: "bad name", state: base, cmd: Update{Name: ptr("a\rb"), Now: t1}, errKind: domain.KindInvalid, field: "name"},
		{name: "block clears sessions", state: withSessions, cmd: Update{Blocked: ptr(true), Now: t1}, want: []string{"UserUpdated status"},
			check: func(t *testing.T, u State) {
				if !u.GetBlocked() || len(u.GetSessions()) != 0 {
					t.Fatalf("blocked user keeps sessions: %v", u)
				}
			}},
		{name: "unblock", state: with(base, func(u State) { u.Blocked = true }), cmd: Update{Blocked: ptr(false), Now: t1}, want: []string{"UserUpdated status"}},
		{name: "verify", state: base, cmd: Update{EmailVerified: ptr(true), Now: t1}, want: []string{"UserUpdated verification"}},
		{name: "unverify", state: verified, cmd: Update{EmailVerified: ptr(false), Now: t1}, want: []string{"UserUpdated verification"}},
		{name: "verify without email", state: noEmail, cmd: Update{EmailVerified: ptr(true), Now: t1}, errKind: domain.KindInvalid, field: "email_verified"},
		{name: "labels normalised", state: base, cmd: Update{Labels: &[]string{"b", "a", "b", "C"}, Now: t1}, want: []string{"UserUpdated labels"},
			check: func(t *testing.T, u State) {
				if !slices.Equal(u.GetLabels(), []string{"C", "a", "b"}) {
					t.Fatalf("labels %q, want sorted and unique", u.GetLabels())
				}
			}},
		{name: "labels same set in another order", state: with(base, func(u State) { u.Labels = []string{"a", "b"} }), cmd: Update{Labels: &[]string{"b", "a", "a"}, Now: t1}},
		{name: "labels cleared", state: with(base, func(u State) { u.Labels = []string{"a"} }), cmd: Update{Labels: &[]string{}, Now: t1}, want: []string{"UserUpdated labels"}},
		{name: "bad label", state: base, cmd: Update{Labels: &[]string{"a b"}, Now: t1}, errKind: domain.KindInvalid, field: "labels"},
		{name: "prefs", state: base, cmd: Update{PrefsJSON: ptr(`{"theme":"dark"}`), Now: t1}, want: []string{"UserUpdated prefs"},
			check: func(t *testing.T, u State) {
				if u.GetPrefsJson() != `{"theme":"dark"}` {
					t.Fatalf("prefs %q", u.GetPrefsJson())
				}
			}},
		{name: "prefs at the limit", state: base, cmd: Update{PrefsJSON: &bigPrefs, Now: t1}, want: []string{"UserUpdated prefs"}},
		{name: "prefs over the limit", state: base, cmd: Update{PrefsJSON: &tooBig, Now: t1}, errKind: domain.KindInvalid, field: "prefs"},
		{name: "prefs array", state: base, cmd: Update{PrefsJSON: ptr(`[]`), Now: t1}, errKind: domain.KindInvalid, field: "prefs"},
		{name: "prefs null", state: base, cmd: Update{PrefsJSON: ptr(`null`), Now: t1}, errKind: domain.KindInvalid, field: "prefs"},
		{name: "prefs string", state: base, cmd: Update{PrefsJSON: ptr(`"x"`), Now: t1}, errKind: domain.KindInvalid, field: "prefs"},
		{name: "prefs trailing garbage", state: base, cmd: Update{PrefsJSON: ptr(`{} {}`), Now: t1}, errKind: domain.KindInvalid, field: "prefs"},
		{name: "prefs empty", state: base, cmd: Update{PrefsJSON: ptr(``), Now: t1}, errKind: domain.KindInvalid, field: "prefs"},
		{name: "every field, one event each, claims last", state: withSessions,
			cmd: Update{Email: ptr("z@x.io"), Name: ptr("Z"), PasswordHash: ptr("h3"), EmailVerified: ptr(true), Labels: &[]string{"x"}, PrefsJSON: ptr(`{"a":1}`), Now: t1},
			want: []string{"UserUpdated email", "UserUpdated password", "UserUpdated name", "UserUpdated verification", "UserUpdated labels", "UserUpdated prefs",
				"ClaimReleased p1/email/ann@example.com/u1", "ClaimTaken p1/email/z@x.io/u1"},
			check: func(t *testing.T, u State) {
				if u.GetEmail() != "z@x.io" || !u.GetEmailVerified() || u.GetName() != "Z" || u.GetPrefsJson() != `{"a":1}` {
					t.Fatalf("after update: %v", u)
				}
				if ids := sessionIDs(u.GetSessions()); !slices.Equal(ids, []string{"s1"}) {
					t.Fatalf("sessions %v, want the expired one pruned", ids)
				}
			}},
		{name: "a bad field refuses the whole update", state: base, cmd: Update{Name: ptr("ok"), PrefsJSON: ptr("[]"), Now: t1}, errKind: domain.KindInvalid, field: "prefs"},
		{name: "sign out", state: withSessions, cmd: Update{PasswordHash: ptr("h2"), SignOut: true, Now: t1},
			want: []string{"UserUpdated password", "SessionsDeleted [s1]"},
			check: func(t *testing.T, u State) {
				if len(u.GetSessions()) != 0 {
					t.Fatalf("sessions left: %v", u.GetSessions())
				}
			}},
		{name: "sign out without sessions", state: base, cmd: Update{SignOut: true, Now: t1}},
		{name: "convert anonymous", state: anon, cmd: Update{Convert: true, Email: ptr("A@x.io"), PasswordHash: ptr("h"), Now: t1},
			want: []string{"UserUpdated account", "ClaimTaken p1/email/a@x.io/anon"},
			check: func(t *testing.T, u State) {
				if u.GetAnonymous() || u.GetEmail() != "A@x.io" || u.GetPasswordHash() != "h" || !u.GetPasswordUpdatedAt().AsTime().Equal(t1) {
					t.Fatalf("after convert: %v", u)
				}
			}},
		{name: "convert keeping an email set earlier: no claim churn", state: with(anon, func(u State) { u.Email = "a@x.io" }),
			cmd: Update{Convert: true, Email: ptr("a@x.io"), PasswordHash: ptr("h"), Now: t1}, want: []string{"UserUpdated account"}},
		{name: "convert a full account", state: base, cmd: Update{Convert: true, Email: ptr("a@x.io"), PasswordHash: ptr("h"), Now: t1}, errKind: domain.KindFailedPrecondition},
		{name: "convert without password", state: anon, cmd: Update{Convert: true, Email: ptr("a@x.io"), Now: t1}, errKind: domain.KindInternal},
		{name: "convert without email", state: anon, cmd: Update{Convert: true, PasswordHash: ptr("h"), Now: t1}, errKind: domain.KindInternal},
		{name: "convert with empty email", state: anon, cmd: Update{Convert: true, Email: ptr(""), PasswordHash: ptr("h"), Now: t1}, errKind: domain.KindInvalid, field: "email"},
		{name: "convert with bad email", state: anon, cmd: Update{Convert: true, Email: ptr("x"), PasswordHash: ptr("h"), Now: t1}, errKind: domain.KindInvalid, field: "email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := proto.CloneOf(c.state)
			evs, err := Decide(c.state, c.cmd)
			if !proto.Equal(before, c.state) {
				t.Fatalf("Decide changed its state argument")
			}
			if c.errKind != domain.KindInternal || (c.want == nil && err != nil) {
				wantErr(t, err, c.errKind, c.field)
				if evs != nil {
					t.Fatalf("events with an error: %v", summary(evs))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := summary(evs); !slices.Equal(got, c.want) {
				t.Fatalf("events:\n got %q\nwant %q", got, c.want)
			}
			// Every user event carries the state after it, stamped now.
			for i, e := range evs {
				if u := UserOf(e); u != nil && !u.GetUpdatedAt().AsTime().Equal(t1) {
					t.Fatalf("event %d updated_at %v, want %v", i, u.GetUpdatedAt().AsTime(), t1)
				}
			}
			if c.check != nil {
				c.check(t, fold(c.state, evs))
			}
		})
	}
}

// Each UserUpdated carries the state after that change alone, in order.
func TestUpdateEventsCarryIntermediateStates(t *testing.T) {
	u := newUser(t)
	evs := must(Decide(u, Update{Name: ptr("B"), Labels: &[]string{"x"}, Now: t1}))
	if len(evs) != 2 {
		t.Fatalf("events %q", summary(evs))
	}
	first, second := UserOf(evs[0]), UserOf(evs[1])
	if first.GetName() != "B" || len(first.GetLabels()) != 0 {
		t.Fatalf("first event state: %v", first)
	}
	if second.GetName() != "B" || !slices.Equal(second.GetLabels(), []string{"x"}) {
		t.Fatalf("second event state: %v", second)
	}
}

func TestDelete(t *testing.T) {
	u := with(newUser(t), func(u State) { u.Sessions = []*eventsv1.Session{session("s1", t0, time.Hour)} })
	evs, err := Decide(u, Delete{Now: t1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(evs), []string{"UserDeleted u1", "ClaimReleased p1/email/ann@example.com/u1"}; !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	last := UserOf(evs[0])
	if last.GetId() != "u1" || !last.GetUpdatedAt().AsTime().Equal(t1) || len(last.GetSessions()) != 1 {
		t.Fatalf("a delete carries the last state: %v", last)
	}
	if s := fold(u, evs); s != nil {
		t.Fatalf("state after delete: %v", s)
	}

	anon := fold(nil, must(Decide(nil, Create{ID: "anon", ProjectID: "p1", Anonymous: true, Now: t0})))
	evs, err = Decide(anon, Delete{Now: t1})
	if err != nil || !slices.Equal(summary(evs), []string{"UserDeleted anon"}) {
		t.Fatalf("delete without email: %q %v", summary(evs), err)
	}
	_, err = Decide(nil, Delete{Now: t1})
	wantErr(t, err, domain.KindNotFound, "")
}

func TestCreateSession(t *testing.T) {
	base := newUser(t)
	mfa := with(base, func(u State) { u.Mfa = &eventsv1.Mfa{Enabled: true} })
	full := with(base, func(u State) {
		for i := range 3 {
			u.Sessions = append(u.Sessions, session(fmt.Sprintf("old%d", i), t0.Add(time.Duration(i)*time.Second), time.Hour))
		}
	})
	withExpired := with(base, func(u State) {
		u.Sessions = []*eventsv1.Session{session("gone", t0, time.Second), session("live", t0, time.Hour)}
	})
	newSess := func(id, provider string, factors ...string) *eventsv1.Session {
		return &eventsv1.Session{Id: id, SecretHash: hash(id), Provider: provider, Factors: factors, Ip: "10.0.0.1", UserAgent: "ua"}
	}
	cases := []struct {
		name     string
		state    State
		cmd      CreateSession
		want     []string
		errKind  domain.Kind
		sessions []string
		expires  time.Time
		pending  bool
	}{
		{name: "default duration", state: base, cmd: CreateSession{Session: newSess("n1", "email", "password"), Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "duration from settings", state: base, cmd: CreateSession{Session: newSess("n1", "email", "password"), Settings: Settings{SessionDuration: time.Hour}, Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"n1"}, expires: t1.Add(time.Hour)},
		{name: "max sessions evicts oldest", state: full, cmd: CreateSession{Session: newSess("n1", "email", "password"), Settings: Settings{MaxSessions: 2}, Now: t1},
			want: []string{"SessionCreated n1 evicted=[old0 old1]"}, sessions: []string{"old2", "n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "max sessions not reached", state: full, cmd: CreateSession{Session: newSess("n1", "email", "password"), Settings: Settings{MaxSessions: 4}, Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"old0", "old1", "old2", "n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "default max sessions", state: with(base, func(u State) {
			for i := range DefaultMaxSessions {
				u.Sessions = append(u.Sessions, session(fmt.Sprintf("o%d", i), t0, time.Hour))
			}
		}), cmd: CreateSession{Session: newSess("n1", "email", "password"), Now: t1},
			want: []string{"SessionCreated n1 evicted=[o0]"}, sessions: []string{"o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9", "n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "expired sessions pruned, not evicted", state: withExpired, cmd: CreateSession{Session: newSess("n1", "email", "password"), Settings: Settings{MaxSessions: 2}, Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"live", "n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "mfa pending with one factor", state: mfa, cmd: CreateSession{Session: newSess("n1", "email", "password"), Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"n1"}, expires: t1.Add(DefaultSessionDuration), pending: true},
		{name: "mfa satisfied with two factors", state: mfa, cmd: CreateSession{Session: newSess("n1", "email", "password", "totp"), Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "mfa not asked of server sessions", state: mfa, cmd: CreateSession{Session: newSess("n1", "server"), Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "mfa off: no pending", state: with(base, func(u State) { u.Mfa = &eventsv1.Mfa{TotpVerified: true} }), cmd: CreateSession{Session: newSess("n1", "email", "password"), Now: t1},
			want: []string{"SessionCreated n1 evicted=[]"}, sessions: []string{"n1"}, expires: t1.Add(DefaultSessionDuration)},
		{name: "blocked", state: with(base, func(u State) { u.Blocked = true }), cmd: CreateSession{Session: newSess("n1", "email"), Now: t1}, errKind: domain.KindPermissionDenied},
		{name: "missing user", cmd: CreateSession{Session: newSess("n1", "email"), Now: t1}, errKind: domain.KindNotFound},
		{name: "bad session id", state: base, cmd: CreateSession{Session: newSess("n.1", "email"), Now: t1}, errKind: domain.KindInternal},
		{name: "secret hash not SHA-256", state: base, cmd: CreateSession{Session: &eventsv1.Session{Id: "n1", SecretHash: []byte("short")}, Now: t1}, errKind: domain.KindInternal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := proto.CloneOf(c.state)
			in := proto.CloneOf(c.cmd.Session)
			evs, err := Decide(c.state, c.cmd)
			if !proto.Equal(before, c.state) || !proto.Equal(in, c.cmd.Session) {
				t.Fatalf("Decide changed its arguments")
			}
			if c.want == nil {
				if err == nil || domain.KindOf(err) != c.errKind {
					t.Fatalf("want a %v error, got %v (events %q)", c.errKind, err, summary(evs))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := summary(evs); !slices.Equal(got, c.want) {
				t.Fatalf("events:\n got %q\nwant %q", got, c.want)
			}
			u := fold(c.state, evs)
			if ids := sessionIDs(u.GetSessions()); !slices.Equal(ids, c.sessions) {
				t.Fatalf("sessions %v, want %v", ids, c.sessions)
			}
			s := FindSession(u, c.cmd.Session.GetId(), t1)
			if s == nil {
				t.Fatal("new session not found")
			}
			if !s.GetCreatedAt().AsTime().Equal(t1) || !s.GetExpiresAt().AsTime().Equal(c.expires) {
				t.Fatalf("session times %v..%v, want %v..%v", s.GetCreatedAt().AsTime(), s.GetExpiresAt().AsTime(), t1, c.expires)
			}
			if s.GetMfaPending() != c.pending {
				t.Fatalf("mfa_pending %v, want %v", s.GetMfaPending(), c.pending)
			}
			if s.GetIp() != "10.0.0.1" || s.GetUserAgent() != "ua" {
				t.Fatalf("session lost its client details: %v", s)
			}
		})
	}
}

func TestDeleteSessions(t *testing.T) {
	u := with(newUser(t), func(u State) {
		u.Sessions = []*eventsv1.Session{session("s1", t0, time.Hour), session("s2", t0, time.Hour), session("s3", t0, time.Hour)}
	})
	cases := []struct {
		name    string
		state   State
		cmd     DeleteSessions
		want    []string
		errKind domain.Kind
		left    []string
	}{
		{name: "one", state: u, cmd: DeleteSessions{IDs: []string{"s2"}, Now: t1}, want: []string{"SessionsDeleted [s2]"}, left: []string{"s1", "s3"}},
		{name: "several", state: u, cmd: DeleteSessions{IDs: []string{"s3", "s1"}, Now: t1}, want: []string{"SessionsDeleted [s1 s3]"}, left: []string{"s2"}},
		{name: "one present one absent", state: u, cmd: DeleteSessions{IDs: []string{"s1", "nope"}, Now: t1}, want: []string{"SessionsDeleted [s1]"}, left: []string{"s2", "s3"}},
		{name: "absent", state: u, cmd: DeleteSessions{IDs: []string{"nope"}, Now: t1}, errKind: domain.KindNotFound},
		{name: "all", state: u, cmd: DeleteSessions{All: true, Now: t1}, want: []string{"SessionsDeleted [s1 s2 s3]"}, left: []string{}},
		{name: "all but current", state: u, cmd: DeleteSessions{All: true, Keep: "s2", Now: t1}, want: []string{"SessionsDeleted [s1 s3]"}, left: []string{"s2"}},
		{name: "all when only the kept one", state: with(u, func(u State) { u.Sessions = u.Sessions[:1] }), cmd: DeleteSessions{All: true, Keep: "s1", Now: t1}, left: []string{"s1"}},
		{name: "all of none", state: newUser(t), cmd: DeleteSessions{All: true, Now: t1}, left: []string{}},
		{name: "missing user", cmd: DeleteSessions{All: true, Now: t1}, errKind: domain.KindNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := proto.CloneOf(c.state)
			evs, err := Decide(c.state, c.cmd)
			if !proto.Equal(before, c.state) {
				t.Fatal("Decide changed its state argument")
			}
			if c.errKind != domain.KindInternal {
				wantErr(t, err, c.errKind, "")
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := summary(evs); !slices.Equal(got, c.want) {
				t.Fatalf("events:\n got %q\nwant %q", got, c.want)
			}
			after := fold(c.state, evs)
			if ids := sessionIDs(after.GetSessions()); !slices.Equal(ids, c.left) {
				t.Fatalf("sessions left %v, want %v", ids, c.left)
			}
			if len(evs) > 0 && !after.GetUpdatedAt().AsTime().Equal(t1) {
				t.Fatalf("updated_at %v", after.GetUpdatedAt().AsTime())
			}
		})
	}
}

func TestCreateToken(t *testing.T) {
	base := newUser(t)
	exp := t1.Add(time.Hour)
	cases := []struct {
		name    string
		state   State
		tok     *eventsv1.Token
		want    []string
		errKind domain.Kind
		tokens  []string
	}{
		{name: "first", state: base, tok: token("t1", eventsv1.Token_KIND_RECOVERY, exp), want: []string{"TokenCreated t1"}, tokens: []string{"t1"}},
		{name: "cap keeps newest of the kind", state: with(base, func(u State) {
			for i := range MaxTokensPerKind {
				u.Tokens = append(u.Tokens, token(fmt.Sprintf("r%d", i), eventsv1.Token_KIND_RECOVERY, exp))
			}
			u.Tokens = append(u.Tokens, token("m0", eventsv1.Token_KIND_MAGIC_URL, exp))
		}), tok: token("r5", eventsv1.Token_KIND_RECOVERY, exp), want: []string{"TokenCreated r5"}, tokens: []string{"r1", "r2", "r3", "r4", "m0", "r5"}},
		{name: "cap is per kind", state: with(base, func(u State) {
			for i := range MaxTokensPerKind {
				u.Tokens = append(u.Tokens, token(fmt.Sprintf("r%d", i), eventsv1.Token_KIND_RECOVERY, exp))
			}
		}), tok: token("m0", eventsv1.Token_KIND_MAGIC_URL, exp), want: []string{"TokenCreated m0"}, tokens: []string{"r0", "r1", "r2", "r3", "r4", "m0"}},
		{name: "expired pruned", state: with(base, func(u State) {
			u.Tokens = []*eventsv1.Token{token("old", eventsv1.Token_KIND_RECOVERY, t1), token("live", eventsv1.Token_KIND_VERIFICATION, exp)}
			u.Sessions = []*eventsv1.Session{session("sx", t0, time.Second)}
		}), tok: token("t1", eventsv1.Token_KIND_RECOVERY, exp), want: []string{"TokenCreated t1"}, tokens: []string{"live", "t1"}},
		{name: "blocked", state: with(base, func(u State) { u.Blocked = true }), tok: token("t1", eventsv1.Token_KIND_RECOVERY, exp), errKind: domain.KindPermissionDenied},
		{name: "missing user", tok: token("t1", eventsv1.Token_KIND_RECOVERY, exp), errKind: domain.KindNotFound},
		{name: "bad id", state: base, tok: token("t.1", eventsv1.Token_KIND_RECOVERY, exp), errKind: domain.KindInternal},
		{name: "no kind", state: base, tok: token("t1", eventsv1.Token_KIND_UNSPECIFIED, exp), errKind: domain.KindInternal},
		{name: "bad hash", state: base, tok: &eventsv1.Token{Id: "t1", Kind: eventsv1.Token_KIND_RECOVERY, SecretHash: []byte("x"), ExpiresAt: timestamppb.New(exp)}, errKind: domain.KindInternal},
		{name: "expires now", state: base, tok: token("t1", eventsv1.Token_KIND_RECOVERY, t1), errKind: domain.KindInternal},
		{name: "no expiry", state: base, tok: &eventsv1.Token{Id: "t1", Kind: eventsv1.Token_KIND_RECOVERY, SecretHash: hash("x")}, errKind: domain.KindInternal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := proto.CloneOf(c.state)
			evs, err := Decide(c.state, CreateToken{Token: c.tok, Now: t1})
			if !proto.Equal(before, c.state) {
				t.Fatal("Decide changed its state argument")
			}
			if c.want == nil {
				if err == nil || domain.KindOf(err) != c.errKind {
					t.Fatalf("want a %v error, got %v", c.errKind, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := summary(evs); !slices.Equal(got, c.want) {
				t.Fatalf("events:\n got %q\nwant %q", got, c.want)
			}
			u := fold(c.state, evs)
			var ids []string
			for _, tk := range u.GetTokens() {
				ids = append(ids, tk.GetId())
			}
			if !slices.Equal(ids, c.tokens) {
				t.Fatalf("tokens %v, want %v", ids, c.tokens)
			}
			if tk := u.GetTokens()[len(u.GetTokens())-1]; !tk.GetCreatedAt().AsTime().Equal(t1) {
				t.Fatalf("new token created_at %v", tk.GetCreatedAt().AsTime())
			}
		})
	}
}

func tokenIDs(u State) []string {
	var ids []string
	for _, tk := range u.GetTokens() {
		ids = append(ids, tk.GetId())
	}
	return ids
}

func TestUseToken(t *testing.T) {
	exp := t1.Add(time.Hour)
	base := with(newUser(t), func(u State) {
		u.Tokens = []*eventsv1.Token{
			token("r1", eventsv1.Token_KIND_RECOVERY, exp),
			token("m1", eventsv1.Token_KIND_MAGIC_URL, exp),
			token("o1", eventsv1.Token_KIND_EMAIL_OTP, exp),
			{Id: "g1", Kind: eventsv1.Token_KIND_OAUTH2, SecretHash: hash("t-g1"), ExpiresAt: timestamppb.New(exp), ProviderId: "github"},
		}
	})
	signIn := []eventsv1.Token_Kind{eventsv1.Token_KIND_MAGIC_URL, eventsv1.Token_KIND_EMAIL_OTP, eventsv1.Token_KIND_OAUTH2}
	verifies := []eventsv1.Token_Kind{eventsv1.Token_KIND_MAGIC_URL, eventsv1.Token_KIND_EMAIL_OTP}
	sess := func() *CreateSession {
		return &CreateSession{Session: &eventsv1.Session{Id: "ns", SecretHash: hash("ns")}, Settings: Settings{SessionDuration: time.Hour}}
	}

	t.Run("magic url signs in and verifies", func(t *testing.T) {
		evs, err := Decide(base, UseToken{Kinds: signIn, SecretHash: hash("t-m1"), VerifiesEmail: verifies, Session: sess(), Now: t1})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := summary(evs), []string{"TokenConsumed m1", "UserUpdated verification", "SessionCreated ns evicted=[]"}; !slices.Equal(got, want) {
			t.Fatalf("events:\n got %q\nwant %q", got, want)
		}
		u := fold(base, evs)
		if !u.GetEmailVerified() || slices.Contains(tokenIDs(u), "m1") {
			t.Fatalf("after use: verified=%v tokens=%v", u.GetEmailVerified(), tokenIDs(u))
		}
		s := FindSession(u, "ns", t1)
		if s == nil || s.GetProvider() != "magic-url" || !slices.Equal(s.GetFactors(), []string{"email"}) || !s.GetExpiresAt().AsTime().Equal(t1.Add(time.Hour)) {
			t.Fatalf("session %v", s)
		}
		// The session event carries the verified user too.
		if !UserOf(evs[2]).GetEmailVerified() {
			t.Fatal("SessionCreated carries the state before verification")
		}
		// Single use: the same secret again is refused, and counts as a
		// failed attempt on the remaining sign-in tokens.
		again, err := Decide(u, UseToken{Kinds: signIn, SecretHash: hash("t-m1"), VerifiesEmail: verifies, Session: sess(), Now: t1})
		var aw *domain.AfterWrite
		if !errors.As(err, &aw) || !errors.Is(err, ErrBadToken) {
			t.Fatalf("second use: want AfterWrite(ErrBadToken), got %v", err)
		}
		if got, want := summary(again), []string{"TokenConsumed o1 failed", "TokenConsumed g1 failed"}; !slices.Equal(got, want) {
			t.Fatalf("second use events:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("already verified: no verification event", func(t *testing.T) {
		v := with(base, func(u State) { u.EmailVerified = true })
		evs := must(Decide(v, UseToken{Kinds: signIn, SecretHash: hash("t-o1"), VerifiesEmail: verifies, Session: sess(), Now: t1}))
		if got, want := summary(evs), []string{"TokenConsumed o1", "SessionCreated ns evicted=[]"}; !slices.Equal(got, want) {
			t.Fatalf("events:\n got %q\nwant %q", got, want)
		}
		if s := FindSession(fold(v, evs), "ns", t1); s.GetProvider() != "email-otp" || !slices.Equal(s.GetFactors(), []string{"email"}) {
			t.Fatalf("session %v", s)
		}
	})
	t.Run("oauth2 token: provider and factor", func(t *testing.T) {
		evs := must(Decide(base, UseToken{Kinds: signIn, SecretHash: hash("t-g1"), VerifiesEmail: verifies, Session: sess(), Now: t1}))
		if got, want := summary(evs), []string{"TokenConsumed g1", "SessionCreated ns evicted=[]"}; !slices.Equal(got, want) {
			t.Fatalf("events:\n got %q\nwant %q", got, want)
		}
		s := FindSession(fold(base, evs), "ns", t1)
		if s.GetProvider() != "oauth2" || s.GetProviderId() != "github" || !slices.Equal(s.GetFactors(), []string{"oauth2"}) {
			t.Fatalf("session %v", s)
		}
	})
	t.Run("session fields given are kept", func(t *testing.T) {
		cs := sess()
		cs.Session.Provider, cs.Session.ProviderId, cs.Session.Factors = "email", "x", []string{"password", "email"}
		evs := must(Decide(base, UseToken{Kinds: signIn, SecretHash: hash("t-g1"), Session: cs, Now: t1}))
		s := FindSession(fold(base, evs), "ns", t1)
		if s.GetProvider() != "email" || s.GetProviderId() != "x" || !slices.Equal(s.GetFactors(), []string{"password", "email"}) {
			t.Fatalf("session %v", s)
		}
		if cs.Session.GetCreatedAt() != nil {
			t.Fatal("Decide changed the command's session")
		}
	})
	t.Run("mfa user gets a pending session", func(t *testing.T) {
		m := with(base, func(u State) { u.Mfa = &eventsv1.Mfa{Enabled: true} })
		evs := must(Decide(m, UseToken{Kinds: signIn, SecretHash: hash("t-m1"), Session: sess(), Now: t1}))
		if s := FindSession(fold(m, evs), "ns", t1); !s.GetMfaPending() {
			t.Fatalf("session %v, want mfa pending", s)
		}
	})
	t.Run("recovery with Then and sign out", func(t *testing.T) {
		withSess := with(base, func(u State) { u.Sessions = []*eventsv1.Session{session("s1", t0, time.Hour)} })
		then := &Update{PasswordHash: ptr("new"), SignOut: true}
		evs := must(Decide(withSess, UseToken{Kinds: []eventsv1.Token_Kind{eventsv1.Token_KIND_RECOVERY}, SecretHash: hash("t-r1"), Then: then, Now: t1}))
		if got, want := summary(evs), []string{"TokenConsumed r1", "UserUpdated password", "SessionsDeleted [s1]"}; !slices.Equal(got, want) {
			t.Fatalf("events:\n got %q\nwant %q", got, want)
		}
		u := fold(withSess, evs)
		if u.GetPasswordHash() != "new" || !u.GetPasswordUpdatedAt().AsTime().Equal(t1) || len(u.GetSessions()) != 0 || u.GetEmailVerified() {
			t.Fatalf("after recovery: %v", u)
		}
	})
	t.Run("other kinds sign in as token with the email factor", func(t *testing.T) {
		evs := must(Decide(base, UseToken{Kinds: []eventsv1.Token_Kind{eventsv1.Token_KIND_RECOVERY}, SecretHash: hash("t-r1"), Session: sess(), Now: t1}))
		if s := FindSession(fold(base, evs), "ns", t1); s.GetProvider() != "token" || !slices.Equal(s.GetFactors(), []string{"email"}) {
			t.Fatalf("session %v", s)
		}
	})
	t.Run("session refused: token not consumed", func(t *testing.T) {
		cs := sess()
		cs.Session.Id = "bad.id"
		evs, err := Decide(base, UseToken{Kinds: signIn, SecretHash: hash("t-m1"), Session: cs, Now: t1})
		if err == nil || domain.KindOf(err) != domain.KindInternal || evs != nil {
			t.Fatalf("want an internal error and no events, got %q %v", summary(evs), err)
		}
	})
	t.Run("Then refused: token not consumed", func(t *testing.T) {
		evs, err := Decide(base, UseToken{Kinds: []eventsv1.Token_Kind{eventsv1.Token_KIND_RECOVERY}, SecretHash: hash("t-r1"), Then: &Update{PrefsJSON: ptr("[]")}, Now: t1})
		wantErr(t, err, domain.KindInvalid, "prefs")
		if evs != nil {
			t.Fatalf("events %q", summary(evs))
		}
	})
	t.Run("verification does not mutate the command's Then", func(t *testing.T) {
		then := &Update{Name: ptr("New")}
		cmd := UseToken{Kinds: signIn, SecretHash: hash("t-m1"), VerifiesEmail: verifies, Then: then, Now: t1}
		evs := must(Decide(base, cmd))
		if got, want := summary(evs), []string{"TokenConsumed m1", "UserUpdated name", "UserUpdated verification"}; !slices.Equal(got, want) {
			t.Fatalf("events:\n got %q\nwant %q", got, want)
		}
		if then.EmailVerified != nil || !then.Now.IsZero() {
			t.Fatalf("Decide changed the caller's Update: %+v", then)
		}
	})
	t.Run("kind not asked for", func(t *testing.T) {
		// A recovery secret presented as a sign-in token does not match.
		evs, err := Decide(base, UseToken{Kinds: []eventsv1.Token_Kind{eventsv1.Token_KIND_VERIFICATION}, SecretHash: hash("t-r1"), Now: t1})
		if !errors.Is(err, ErrBadToken) || evs != nil {
			t.Fatalf("want ErrBadToken and no events (no token of the kind), got %q %v", summary(evs), err)
		}
		var aw *domain.AfterWrite
		if errors.As(err, &aw) {
			t.Fatal("nothing to record, yet an AfterWrite")
		}
	})
	t.Run("expired token refused", func(t *testing.T) {
		late := exp
		evs, err := Decide(base, UseToken{Kinds: []eventsv1.Token_Kind{eventsv1.Token_KIND_RECOVERY}, SecretHash: hash("t-r1"), Now: late})
		if !errors.Is(err, ErrBadToken) || evs != nil {
			t.Fatalf("want ErrBadToken, got %q %v", summary(evs), err)
		}
	})
	t.Run("blocked user", func(t *testing.T) {
		b := with(base, func(u State) { u.Blocked = true })
		evs, err := Decide(b, UseToken{Kinds: signIn, SecretHash: hash("t-m1"), Session: sess(), Now: t1})
		if !errors.Is(err, ErrBadToken) || evs != nil {
			t.Fatalf("want ErrBadToken, got %q %v", summary(evs), err)
		}
	})
	t.Run("missing user", func(t *testing.T) {
		if _, err := Decide(nil, UseToken{Kinds: signIn, SecretHash: hash("x"), Now: t1}); !errors.Is(err, ErrBadToken) || domain.KindOf(err) != domain.KindUnauthenticated {
			t.Fatalf("want ErrBadToken, got %v", err)
		}
	})
	t.Run("wrong secret counts, then drops", func(t *testing.T) {
		otp := []eventsv1.Token_Kind{eventsv1.Token_KIND_EMAIL_OTP}
		u := base
		for attempt := 1; attempt <= MaxFailedAttempts; attempt++ {
			evs, err := Decide(u, UseToken{Kinds: otp, SecretHash: hash("guess"), Now: t1})
			var aw *domain.AfterWrite
			if !errors.As(err, &aw) || !errors.Is(err, ErrBadToken) || domain.KindOf(err) != domain.KindUnauthenticated {
				t.Fatalf("attempt %d: want AfterWrite(ErrBadToken), got %v", attempt, err)
			}
			if got, want := summary(evs), []string{"TokenConsumed o1 failed"}; !slices.Equal(got, want) {
				t.Fatalf("attempt %d events:\n got %q\nwant %q", attempt, got, want)
			}
			u = fold(u, evs)
			o := slices.IndexFunc(u.GetTokens(), func(tk *eventsv1.Token) bool { return tk.GetId() == "o1" })
			switch {
			case attempt < MaxFailedAttempts && (o < 0 || u.GetTokens()[o].GetFailedAttempts() != int32(attempt)):
				t.Fatalf("attempt %d: tokens %v", attempt, u.GetTokens())
			case attempt == MaxFailedAttempts && o >= 0:
				t.Fatalf("token kept after %d failed attempts", attempt)
			}
			// Other kinds are untouched.
			for _, tk := range u.GetTokens() {
				if tk.GetId() != "o1" && tk.GetFailedAttempts() != 0 {
					t.Fatalf("attempt %d: token %s of another kind counted a failure", attempt, tk.GetId())
				}
			}
		}
		if !slices.Equal(tokenIDs(u), []string{"r1", "m1", "g1"}) {
			t.Fatalf("tokens after drop %v", tokenIDs(u))
		}
		// The right secret, once dropped, no longer works.
		if _, err := Decide(u, UseToken{Kinds: otp, SecretHash: hash("t-o1"), Now: t1}); !errors.Is(err, ErrBadToken) {
			t.Fatalf("dropped token accepted: %v", err)
		}
	})
}

func TestUnknownCommand(t *testing.T) {
	type other struct{ Command }
	if _, err := Decide(nil, other{}); domain.KindOf(err) != domain.KindInternal || err == nil {
		t.Fatalf("want an internal error, got %v", err)
	}
}

func TestEvolveAndUserOf(t *testing.T) {
	u := newUser(t)
	wrap := []struct {
		name    string
		e       *eventsv1.Envelope
		evolves bool // Evolve returns the carried user
		deleted bool
	}{
		{"created", &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserCreated{UserCreated: &eventsv1.UserCreated{User: u}}}, true, false},
		{"updated", &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: u, Change: "name"}}}, true, false},
		{"session created", &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionCreated{SessionCreated: &eventsv1.SessionCreated{User: u}}}, true, false},
		{"session updated", &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionUpdated{SessionUpdated: &eventsv1.SessionUpdated{User: u}}}, true, false},
		{"sessions deleted", &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionsDeleted{SessionsDeleted: &eventsv1.SessionsDeleted{User: u}}}, true, false},
		{"token created", &eventsv1.Envelope{Payload: &eventsv1.Envelope_TokenCreated{TokenCreated: &eventsv1.TokenCreated{User: u}}}, true, false},
		{"token consumed", &eventsv1.Envelope{Payload: &eventsv1.Envelope_TokenConsumed{TokenConsumed: &eventsv1.TokenConsumed{User: u}}}, true, false},
		{"deleted", &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserDeleted{UserDeleted: &eventsv1.UserDeleted{User: u}}}, false, true},
		{"claim taken", take("p1", ClaimEmail, "a@x.io", "u1"), false, false},
		{"claim released", release("p1", ClaimEmail, "a@x.io", "u1"), false, false},
		{"other aggregate", &eventsv1.Envelope{Payload: &eventsv1.Envelope_ProjectCreated{ProjectCreated: &eventsv1.ProjectCreated{}}}, false, false},
	}
	prev := &eventsv1.User{Id: "prev"}
	for _, w := range wrap {
		t.Run(w.name, func(t *testing.T) {
			got := Evolve(prev, w.e)
			switch {
			case w.evolves && got != u:
				t.Fatalf("Evolve = %v, want the carried user", got)
			case w.deleted && got != nil:
				t.Fatalf("Evolve after delete = %v, want nil", got)
			case !w.evolves && !w.deleted && got != prev:
				t.Fatalf("Evolve changed state on a non-user event: %v", got)
			}
			of := UserOf(w.e)
			if (w.evolves || w.deleted) != (of == u) {
				t.Fatalf("UserOf = %v", of)
			}
			if !w.evolves && !w.deleted && of != nil {
				t.Fatalf("UserOf of a non-user event = %v", of)
			}
		})
	}
}

func TestFindSessionAndSessionByHash(t *testing.T) {
	u := with(newUser(t), func(u State) {
		u.Sessions = []*eventsv1.Session{session("s1", t0, time.Hour), session("s2", t0, time.Minute)}
	})
	cases := []struct {
		id   string
		now  time.Time
		want string
	}{
		{"s1", t1, "s1"},
		{"s2", t0, "s2"},
		{"s2", t1, ""}, // expires exactly at t1
		{"s3", t0, ""},
		{"s1", t0.Add(time.Hour), ""},
	}
	for _, c := range cases {
		got := FindSession(u, c.id, c.now).GetId()
		if got != c.want {
			t.Errorf("FindSession(%s, %v) = %q, want %q", c.id, c.now, got, c.want)
		}
		got = SessionByHash(u, hash("s-"+c.id), c.now).GetId()
		if got != c.want {
			t.Errorf("SessionByHash(%s, %v) = %q, want %q", c.id, c.now, got, c.want)
		}
	}
	if FindSession(nil, "s1", t0) != nil || SessionByHash(nil, hash("s-s1"), t0) != nil {
		t.Error("a session of no user")
	}
	if SessionByHash(u, nil, t0) != nil {
		t.Error("nil hash matched a session")
	}
}

func TestCheckEmailAndNormalize(t *testing.T) {
	for _, c := range []struct {
		email string
		ok    bool
	}{
		{"a@x.io", true}, {"A.B+tag@Sub.Example.COM", true}, {"", false}, {"@x.io", false}, {"a@", false},
		{"a b@x.io", false}, {"Ann <a@x.io>", false}, {"a@x.io\n", false}, {strings.Repeat("a", 250) + "@x.io", false},
	} {
		if err := CheckEmail("email", c.email); (err == nil) != c.ok {
			t.Errorf("CheckEmail(%q) = %v, want ok=%v", c.email, err, c.ok)
		}
	}
	if got := NormalizeEmail("  Ann@Example.COM "); got != "ann@example.com" {
		t.Errorf("NormalizeEmail = %q", got)
	}
}

func must(evs []*eventsv1.Envelope, err error) []*eventsv1.Envelope {
	if err != nil {
		panic(err)
	}
	return evs
}

func FuzzCheckPrefs(f *testing.F) {
	for _, s := range []string{"{}", `{"a":[1,2,{"b":null}]}`, "null", "[]", `{"a":1}x`, "", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckPrefs(s)
		if err != nil && domain.KindOf(err) != domain.KindInvalid {
			t.Fatalf("CheckPrefs(%q): %v is not an invalid-argument error", s, err)
		}
	})
}
