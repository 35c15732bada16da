package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairn-dev/cairn/api/passkey/passkeytest"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkPasskeySignIn compares, in one run against one in-process
// instance (embedded JetStream, Badger, h2c on loopback, rate limits off),
// one client signing in over and over with a password (argon2id,
// CreateEmailPasswordSession) and with a passkey (BeginPasskeySignIn: a
// challenge put in the shared KV bucket; the software authenticator signs;
// FinishPasskeySignIn: the challenge taken, an ES256 signature verified, a
// PasskeyUsed and a SessionCreated appended and applied), through a site's
// own API. Sequential: the figure is one sign-in's latency.
func BenchmarkPasskeySignIn(b *testing.B) {
	in := startInstance(b, b.TempDir(), "--no-auth-rate-limits")
	newProjectWithKey(b, in, "bench", "users.read")
	const accounts, pw = 16, "correct horse battery staple"
	email := func(i int) string { return fmt.Sprintf("user%02d@example.com", i) }
	page := sitePage(in, "bench")
	auths := make([]*passkeytest.Authenticator, accounts)
	for i := range accounts {
		g, _ := guest(context.Background(), "bench", "")
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: email(i), Password: pw}); err != nil {
			b.Fatal(err)
		}
		s, err := in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: email(i), Password: pw})
		if err != nil {
			b.Fatal(err)
		}
		auths[i] = passkeytest.New()
		begin, err := page.svc.BeginPasskeyRegistration(page.call(s.GetSecret()), &cairnv1.BeginPasskeyRegistrationRequest{})
		if err != nil {
			b.Fatal(err)
		}
		_, cred, err := auths[i].Create([]byte(begin.GetOptionsJson()), page.origin)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := page.svc.FinishPasskeyRegistration(page.call(s.GetSecret()), &cairnv1.FinishPasskeyRegistrationRequest{CredentialJson: string(cred)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("password", func(b *testing.B) {
		for i := range b.N {
			if _, err := page.acct.CreateEmailPasswordSession(page.call(""), &cairnv1.CreateEmailPasswordSessionRequest{Email: email(i % accounts), Password: pw}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sign-ins/s")
	})
	b.Run("passkey", func(b *testing.B) {
		for i := range b.N {
			begin, err := page.svc.BeginPasskeySignIn(page.call(""), &cairnv1.BeginPasskeySignInRequest{})
			if err != nil {
				b.Fatal(err)
			}
			cred, err := auths[i%accounts].Get([]byte(begin.GetOptionsJson()), page.origin)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := page.finish(cred); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sign-ins/s")
	})
}
