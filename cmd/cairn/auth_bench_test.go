package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// signInAccounts is how many accounts BenchmarkSignIn spreads its sign-ins
// over: enough that concurrent sign-ins rarely write the same user.
const signInAccounts = 64

// BenchmarkSignIn measures CreateEmailPasswordSession against a real
// in-process instance (embedded JetStream, Badger, h2c on loopback) with the
// rate limits off, from 4×GOMAXPROCS concurrent clients over one project's
// pre-created accounts. Each sign-in verifies one argon2id hash at
// password.Default, appends a SessionCreated event and waits until this
// node's projection has applied it; compare sign-ins/s with the hash
// ceiling of domain/password's BenchmarkPasswordHash.
func BenchmarkSignIn(b *testing.B) {
	in := startInstance(b, b.TempDir(), "--no-auth-rate-limits")
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "bench", Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	const pw = "correct horse battery staple"
	email := func(i int) string { return fmt.Sprintf("user%03d@example.com", i) }
	var wg sync.WaitGroup
	errs := make(chan error, signInAccounts)
	for i := range signInAccounts {
		wg.Go(func() {
			g, _ := guest(ctx, "bench", "")
			if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: email(i), Password: pw}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g, _ := guest(ctx, "bench", "")
			res, err := in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{
				Email: email(int(next.Add(1) % signInAccounts)), Password: pw})
			if err != nil || res.GetSecret() == "" {
				b.Errorf("sign-in: %v", err)
				return
			}
		}
	})
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "sign-ins/s")
	}
}
