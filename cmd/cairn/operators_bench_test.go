package main

import (
	"context"
	"testing"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkOperatorAuth measures what acting through an operator account
// costs over the credentials it sits beside: GetDocument of a readable
// document by the admin key (the baseline: one hash compare), by a project
// key with documents.read (one key read), and by a developer account's
// console session (the session index and the account with its roles read
// on every request, so that a role change applies at once). A real server
// on loopback h2c; the variants take turns (runInTurns), so their ratios
// hold on a shared machine.
func BenchmarkOperatorAuth(b *testing.B) {
	ctx := context.Background()
	srv := benchServer(b)
	const p = "opauth"
	readableDocFixture(b, srv.url, p)
	cl := clients{client: benchConnect(srv.url)}
	op := authed(ctx, testAdminKey)
	key, err := cl.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: p, Name: "reader", Scopes: &cairnv1.Scopes{Scopes: []string{"documents.read"}}})
	if err != nil {
		b.Fatal(err)
	}
	roles := []*cairnv1.OperatorRole{{ProjectId: p, Role: "developer"}}
	if _, err := cl.operators().CreateOperator(op, &cairnv1.CreateOperatorRequest{Email: "dev@example.com", Password: "bench operator password", Roles: roles}); err != nil {
		b.Fatal(err)
	}
	s, err := cl.operators().CreateOperatorSession(ctx, &cairnv1.CreateOperatorSessionRequest{Email: "dev@example.com", Password: "bench operator password"})
	if err != nil {
		b.Fatal(err)
	}
	get := func(token string) func() error {
		return func() error {
			// A call context per request: connect's holds its headers.
			_, err := cl.databases().GetDocument(authed(ctx, token), &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", DocumentId: "d1"})
			return err
		}
	}
	runInTurns(b, 16, 400, []turn{
		{"admin-key", get(testAdminKey)},
		{"project-key", get(key.GetSecret())},
		{"operator-session", get(s.GetSecret())},
	})
}
