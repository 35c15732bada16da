package user

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func passkey(id string, cid string) *eventsv1.Passkey {
	return &eventsv1.Passkey{Id: id, CredentialId: []byte(cid), PublicKey: []byte("cose-" + cid), RpId: "p1.sites.test"}
}

func passkeySummary(evs []*eventsv1.Envelope) []string {
	out := summary(evs)
	for i, e := range evs {
		switch p := e.GetPayload().(type) {
		case *eventsv1.Envelope_PasskeyRegistered:
			out[i] = "PasskeyRegistered " + p.PasskeyRegistered.GetPasskeyId()
		case *eventsv1.Envelope_PasskeyRemoved:
			out[i] = "PasskeyRemoved " + p.PasskeyRemoved.GetPasskey().GetId()
		case *eventsv1.Envelope_PasskeyUsed:
			out[i] = fmt.Sprintf("PasskeyUsed %s clone=%v", p.PasskeyUsed.GetPasskeyId(), p.PasskeyUsed.GetCloneSuspected())
		case *eventsv1.Envelope_SessionCreated:
			out[i] = "SessionCreated " + p.SessionCreated.GetSessionId()
		case *eventsv1.Envelope_SessionUpdated:
			out[i] = "SessionUpdated " + p.SessionUpdated.GetSessionId()
		}
	}
	return out
}

// withPasskey is newUser holding passkey k1 (credential "c1") with counter n.
func withPasskey(t *testing.T, n uint32) State {
	t.Helper()
	pk := passkey("k1", "c1")
	pk.SignCount = n
	evs, err := Decide(newUser(t), RegisterPasskey{Passkey: pk, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return fold(newUser(t), evs)
}

func TestPasskeyDecisions(t *testing.T) {
	claim := "p1/passkey/" + PasskeyClaim([]byte("c1")) + "/u1"
	signIn := &CreateSession{Session: &eventsv1.Session{Id: "s9", SecretHash: hash("s9")}}
	cases := []struct {
		name  string
		given State
		when  Command
		then  []string
		kind  domain.Kind // when an error is wanted
		field string
		after func(t *testing.T, u State)
	}{
		{name: "register: the passkey and its credential claim", given: newUser(t), when: RegisterPasskey{Passkey: passkey("k1", "c1"), Now: t1},
			then: []string{"PasskeyRegistered k1", "ClaimTaken " + claim},
			after: func(t *testing.T, u State) {
				if p := FindPasskey(u, []byte("c1")); p == nil || p.GetName() != DefaultPasskeyName || !p.GetCreatedAt().AsTime().Equal(t1) {
					t.Fatalf("passkey not stored as registered: %v", p)
				}
			}},
		{name: "register: the same credential twice", given: withPasskey(t, 0), when: RegisterPasskey{Passkey: passkey("k2", "c1"), Now: t1},
			kind: domain.KindInvalid, field: "credential_json"},
		{name: "register: a name on two lines", given: newUser(t), when: RegisterPasskey{Passkey: func() *eventsv1.Passkey {
			p := passkey("k1", "c1")
			p.Name = "a\nb"
			return p
		}(), Now: t1}, kind: domain.KindInvalid, field: "name"},
		{name: "register: blocked user", given: with(newUser(t), func(u State) { u.Blocked = true }), when: RegisterPasskey{Passkey: passkey("k1", "c1"), Now: t1},
			kind: domain.KindPermissionDenied},
		{name: "register: one too many", given: with(newUser(t), func(u State) {
			for i := range MaxPasskeys {
				u.Passkeys = append(u.Passkeys, passkey(fmt.Sprint("k", i), fmt.Sprint("c", i)))
			}
		}), when: RegisterPasskey{Passkey: passkey("kx", "cx"), Now: t1}, kind: domain.KindResourceExhausted},
		{name: "remove: releases the claim", given: withPasskey(t, 0), when: RemovePasskey{ID: "k1", Now: t1},
			then: []string{"PasskeyRemoved k1", "ClaimReleased " + claim},
			after: func(t *testing.T, u State) {
				if len(u.GetPasskeys()) != 0 {
					t.Fatal("passkey still there")
				}
			}},
		{name: "remove: unknown", given: withPasskey(t, 0), when: RemovePasskey{ID: "nope", Now: t1}, kind: domain.KindNotFound},
		{name: "remove: the only way to sign in", given: with(withPasskey(t, 0), func(u State) { u.Email, u.PasswordHash = "", "" }),
			when: RemovePasskey{ID: "k1", Now: t1}, kind: domain.KindFailedPrecondition},
		{name: "use: counter advances, signs in with the passkey factor", given: withPasskey(t, 5), when: UsePasskey{CredentialID: []byte("c1"), SignCount: 6, Session: signIn, Now: t1},
			then: []string{"PasskeyUsed k1 clone=false", "SessionCreated s9"},
			after: func(t *testing.T, u State) {
				p := FindPasskey(u, []byte("c1"))
				if p.GetSignCount() != 6 || !p.GetLastUsedAt().AsTime().Equal(t1) {
					t.Fatalf("counter or last use not recorded: %v", p)
				}
				s := FindSession(u, "s9", t1)
				if s.GetProvider() != "passkey" || !slices.Equal(s.GetFactors(), []string{FactorPasskey}) || s.GetMfaPending() {
					t.Fatalf("session: %v", s)
				}
			}},
		{name: "use: no counter at all (synced passkeys) is fine", given: withPasskey(t, 0), when: UsePasskey{CredentialID: []byte("c1"), SignCount: 0, Now: t1},
			then: []string{"PasskeyUsed k1 clone=false"}},
		{name: "use: a passkey is both factors even with MFA on", given: with(withPasskey(t, 0), func(u State) { u.Mfa = &eventsv1.Mfa{Enabled: true} }),
			when: UsePasskey{CredentialID: []byte("c1"), Session: signIn, Now: t1}, then: []string{"PasskeyUsed k1 clone=false", "SessionCreated s9"},
			after: func(t *testing.T, u State) {
				if FindSession(u, "s9", t1).GetMfaPending() {
					t.Fatal("a passkey session waits for MFA")
				}
			}},
		{name: "use: counter went back: marked, refused", given: withPasskey(t, 5), when: UsePasskey{CredentialID: []byte("c1"), SignCount: 5, Session: signIn, Now: t1},
			then: []string{"PasskeyUsed k1 clone=true"}, kind: domain.KindUnauthenticated,
			after: func(t *testing.T, u State) {
				if !FindPasskey(u, []byte("c1")).GetCloneSuspected() || len(u.GetSessions()) != 0 {
					t.Fatal("clone not marked, or signed in")
				}
			}},
		{name: "use: a clone-suspected passkey stays refused", given: with(withPasskey(t, 5), func(u State) { u.Passkeys[0].CloneSuspected = true }),
			when: UsePasskey{CredentialID: []byte("c1"), SignCount: 9, Session: signIn, Now: t1}, kind: domain.KindUnauthenticated},
		{name: "use: a credential the user does not hold", given: withPasskey(t, 0), when: UsePasskey{CredentialID: []byte("other"), Session: signIn, Now: t1},
			kind: domain.KindUnauthenticated},
		{name: "use: no such user", given: nil, when: UsePasskey{CredentialID: []byte("c1"), Session: signIn, Now: t1}, kind: domain.KindUnauthenticated},
		{name: "use: proves the second factor of a pending session", given: with(withPasskey(t, 0), func(u State) {
			s := session("s1", t0, DefaultSessionDuration)
			s.MfaPending = true
			u.Sessions = append(u.Sessions, s)
			u.Mfa = &eventsv1.Mfa{Enabled: true}
		}), when: UsePasskey{CredentialID: []byte("c1"), ProveSession: "s1", Now: t1}, then: []string{"PasskeyUsed k1 clone=false", "SessionUpdated s1"},
			after: func(t *testing.T, u State) {
				s := FindSession(u, "s1", t1)
				if s.GetMfaPending() || !slices.Contains(s.GetFactors(), FactorPasskey) {
					t.Fatalf("session: %v", s)
				}
			}},
		{name: "use: no pending factor to prove", given: with(withPasskey(t, 0), func(u State) { u.Sessions = append(u.Sessions, session("s1", t0, DefaultSessionDuration)) }),
			when: UsePasskey{CredentialID: []byte("c1"), ProveSession: "s1", Now: t1}, kind: domain.KindFailedPrecondition},
		{name: "delete user: passkey claims released", given: withPasskey(t, 0), when: Delete{Now: t1},
			then: []string{"UserDeleted u1", "ClaimReleased p1/email/ann@example.com/u1", "ClaimReleased " + claim}},
		{name: "unlink the only identity of a passkey user", given: with(withPasskey(t, 0), func(u State) {
			u.PasswordHash = ""
			u.Identities = []*eventsv1.Identity{{ProviderId: "github", Subject: "1"}}
		}), when: UnlinkIdentity{ProviderID: "github", Now: t1}, then: []string{"UserUpdated identities", "ClaimReleased p1/identity/github:1/u1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := Decide(c.given, c.when)
			var aw *domain.AfterWrite
			if errors.As(err, &aw) {
				err = aw.Err
			} else if err != nil {
				evs = nil
			}
			if c.kind != 0 || c.field != "" {
				wantErr(t, err, c.kind, c.field)
			} else if err != nil {
				t.Fatal(err)
			}
			if got := passkeySummary(evs); strings.Join(got, "|") != strings.Join(c.then, "|") {
				t.Fatalf("events:\n got %q\nwant %q", got, c.then)
			}
			if c.after != nil {
				c.after(t, fold(c.given, evs))
			}
		})
	}
}

func TestCounterAdvanced(t *testing.T) {
	for _, c := range []struct {
		stored, got uint32
		ok          bool
	}{{0, 0, true}, {0, 1, true}, {5, 6, true}, {5, 5, false}, {5, 4, false}, {5, 0, false}, {0, 0xffffffff, true}} {
		if counterAdvanced(c.stored, c.got) != c.ok {
			t.Errorf("stored %d, got %d: want %v", c.stored, c.got, c.ok)
		}
	}
}
