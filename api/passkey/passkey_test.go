package passkey

import (
	"errors"
	"testing"

	"github.com/cairn-dev/cairn/api/passkey/passkeytest"
	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func TestRelyingPartyFor(t *testing.T) {
	for _, c := range []struct {
		origin, project, id string
		bad                 bool
	}{
		{origin: "https://web.p1.sites.test", project: "p1", id: "p1.sites.test"},
		{origin: "https://d1.web.p1.sites.test", project: "p1", id: "p1.sites.test"},
		{origin: "https://web.p2.sites.test", project: "p2", id: "p2.sites.test"},
		// A site host of another project is its own host, never p1's id.
		{origin: "https://web.p2.sites.test", project: "p1", id: "web.p2.sites.test"},
		{origin: "http://localhost:5173", project: "p1", id: "localhost"},
		{origin: "https://app.example.com", project: "p1", id: "app.example.com"},
		{origin: "http://127.0.0.1:8080", project: "p1", bad: true},
		{origin: "", project: "p1", bad: true},
	} {
		rp, err := RelyingPartyFor(c.origin, c.project, "sites.test")
		if c.bad {
			if domain.KindOf(err) != domain.KindInvalid {
				t.Errorf("%s: want an invalid Origin, got %v %v", c.origin, rp, err)
			}
			continue
		}
		if err != nil || rp.ID != c.id || rp.Origin != c.origin {
			t.Errorf("%s in %s: got %+v %v, want id %s", c.origin, c.project, rp, err, c.id)
		}
	}
}

func register(t *testing.T, a *passkeytest.Authenticator, rp RelyingParty, u *eventsv1.User) *eventsv1.Passkey {
	t.Helper()
	opts, st, err := BeginRegistration(rp, "p1", u)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := a.Create(opts, rp.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := ChallengeOfRegistration(resp); err != nil || ch != st.Challenge() {
		t.Fatalf("challenge %q %v, want %q", ch, err, st.Challenge())
	}
	pk, err := FinishRegistration(st, u, resp)
	if err != nil {
		t.Fatal(err)
	}
	pk.Id = "k1"
	u.Passkeys = append(u.Passkeys, pk)
	return pk
}

func TestCeremonies(t *testing.T) {
	rp, _ := RelyingPartyFor("https://web.p1.sites.test", "p1", "sites.test")
	u := &eventsv1.User{Id: "u1", ProjectId: "p1", Email: "ann@example.com"}
	a := passkeytest.New()
	pk := register(t, a, rp, u)
	if pk.GetRpId() != "p1.sites.test" || len(pk.GetPublicKey()) == 0 || pk.GetAttestationFormat() != "none" {
		t.Fatalf("registered passkey: %v", pk)
	}

	t.Run("sign in, usernameless", func(t *testing.T) {
		opts, st, err := BeginLogin(rp, "p1", SignIn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Get(opts, rp.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if UserHandle(resp) != "u1" {
			t.Fatalf("user handle %q", UserHandle(resp))
		}
		got, err := FinishLogin(st, u, resp)
		if err != nil || got.UserID != "u1" || got.SignCount != 1 {
			t.Fatalf("assertion %+v %v", got, err)
		}
	})
	refused := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, ErrCeremony) {
			t.Fatalf("want the ceremony refused, got %v", err)
		}
	}
	t.Run("wrong origin", func(t *testing.T) {
		opts, st, _ := BeginLogin(rp, "p1", SignIn, "", nil)
		resp, _ := a.Get(opts, "https://evil.example")
		_, err := FinishLogin(st, u, resp)
		refused(t, err)
	})
	t.Run("another site of the same project shares the passkey", func(t *testing.T) {
		other, _ := RelyingPartyFor("https://shop.p1.sites.test", "p1", "sites.test")
		opts, st, _ := BeginLogin(other, "p1", SignIn, "", nil)
		resp, err := a.Get(opts, other.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FinishLogin(st, u, resp); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another relying party", func(t *testing.T) {
		// The authenticator is tricked into signing for p1's id while the
		// ceremony is p2's.
		p2, _ := RelyingPartyFor("https://web.p2.sites.test", "p2", "sites.test")
		_, st, _ := BeginLogin(p2, "p2", SignIn, "", nil)
		resp, _ := a.Assert(a.Creds[0], "p1.sites.test", st.Challenge(), p2.Origin)
		_, err := FinishLogin(st, u, resp)
		refused(t, err)
	})
	t.Run("another challenge", func(t *testing.T) {
		_, st, _ := BeginLogin(rp, "p1", SignIn, "", nil)
		resp, _ := a.Assert(a.Creds[0], rp.ID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", rp.Origin)
		_, err := FinishLogin(st, u, resp)
		refused(t, err)
	})
	t.Run("another user's handle", func(t *testing.T) {
		opts, st, _ := BeginLogin(rp, "p1", SignIn, "", nil)
		resp, _ := a.Get(opts, rp.Origin)
		_, err := FinishLogin(st, &eventsv1.User{Id: "u2", Passkeys: u.Passkeys}, resp)
		refused(t, err)
	})
	t.Run("first factor needs user verification", func(t *testing.T) {
		a.NoUserVerification = true
		defer func() { a.NoUserVerification = false }()
		opts, st, _ := BeginLogin(rp, "p1", SignIn, "", nil)
		resp, _ := a.Get(opts, rp.Origin)
		_, err := FinishLogin(st, u, resp)
		refused(t, err)
		// As a second factor, presence is enough.
		opts, st, _ = BeginLogin(rp, "p1", MFA, "u1", nil)
		resp, _ = a.Get(opts, rp.Origin)
		if _, err := FinishLogin(st, u, resp); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MFA state of another user", func(t *testing.T) {
		opts, st, _ := BeginLogin(rp, "p1", MFA, "u9", nil)
		resp, _ := a.Get(opts, rp.Origin)
		_, err := FinishLogin(st, u, resp)
		refused(t, err)
	})
	t.Run("registration excludes the user's passkeys", func(t *testing.T) {
		opts, _, err := BeginRegistration(rp, "p1", u)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Create(opts, rp.Origin); err == nil {
			t.Fatal("the authenticator registered twice")
		}
	})
	t.Run("registration at a wrong origin", func(t *testing.T) {
		opts, st, _ := BeginRegistration(rp, "p1", u)
		_, resp, err := passkeytest.New().Create(opts, "https://evil.example")
		if err != nil {
			t.Fatal(err)
		}
		_, err = FinishRegistration(st, u, resp)
		refused(t, err)
	})
	t.Run("garbage", func(t *testing.T) {
		if _, err := ChallengeOfAssertion([]byte(`{"id":1}`)); domain.KindOf(err) != domain.KindInvalid {
			t.Fatalf("want invalid credential_json, got %v", err)
		}
	})
}
