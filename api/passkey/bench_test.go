package passkey

import (
	"testing"

	"github.com/cairn-dev/cairn/api/passkey/passkeytest"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// BenchmarkCeremony is the CPU a sign-in's ceremony costs a node, in one
// run: Begin (a random challenge, the options JSON) and Finish (parse,
// check challenge, origin and relying party, verify the ES256 signature).
// The software authenticator's signing is outside the timed part.
func BenchmarkCeremony(b *testing.B) {
	rp, _ := RelyingPartyFor("https://web.p1.sites.test", "p1", "sites.test")
	u := &eventsv1.User{Id: "u1", ProjectId: "p1"}
	a := passkeytest.New()
	opts, st, err := BeginRegistration(rp, "p1", u)
	if err != nil {
		b.Fatal(err)
	}
	_, resp, err := a.Create(opts, rp.Origin)
	if err != nil {
		b.Fatal(err)
	}
	pk, err := FinishRegistration(st, u, resp)
	if err != nil {
		b.Fatal(err)
	}
	u.Passkeys = []*eventsv1.Passkey{pk}
	b.Run("begin", func(b *testing.B) {
		for range b.N {
			if _, _, err := BeginLogin(rp, "p1", SignIn, "", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("finish", func(b *testing.B) {
		b.StopTimer()
		for range b.N {
			opts, st, err := BeginLogin(rp, "p1", SignIn, "", nil)
			if err != nil {
				b.Fatal(err)
			}
			cred, err := a.Get(opts, rp.Origin)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := FinishLogin(st, u, cred); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		}
	})
}
