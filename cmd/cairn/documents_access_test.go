package main

import (
	"context"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// End users under collection permissions and document security: each sees
// only what it may read, paging stays full, a revoked team membership
// takes effect at once, guests read what "any" may.
func TestDocumentPermissions(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "notes"
	k, _ := as(ctx, newProjectWithKey(t, in, p, append(docScopes, "teams.write", "users.read")...))
	dbs := in.databases()
	docsFixture(t, k, dbs, p, "notes", []string{`create("users")`}, true)
	docsFixture(t, k, dbs, p, "public", []string{`read("any")`}, false)
	g, _ := guest(ctx, p, "")
	for _, e := range []string{"ann@example.com", "bob@example.com"} {
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
	}
	ann := signIn(t, in, p, "ann@example.com", "password of ann@example.com")
	bob := signIn(t, in, p, "bob@example.com", "password of bob@example.com")
	ac, _ := guest(ctx, p, ann.GetSecret())
	bc, _ := guest(ctx, p, bob.GetSecret())

	// Ann writes 30 notes (hers by default), Bob 5; Ann shares one with team "club".
	for i := range 30 {
		if _, err := dbs.CreateDocument(ac, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes",
			Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "ann", "views": i})}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := dbs.CreateDocument(bc, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes",
			Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "bob", "views": i})}}); err != nil {
			t.Fatal(err)
		}
	}
	// (A user may only grant roles it holds: a server shares it.)
	_, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes",
		Document: &cairnv1.DocumentInput{DocumentId: "shared", Data: data(t, map[string]any{"title": "club"}),
			Permissions: &cairnv1.Permissions{Values: []string{`read("user:` + ann.GetSession().GetUserId() + `")`, `read("team:club")`}}}})
	if err != nil {
		t.Fatal(err)
	}
	// A user cannot grant a role it does not hold.
	_, err = dbs.CreateDocument(bc, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes",
		Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "x"}), Permissions: &cairnv1.Permissions{Values: []string{`read("team:club")`}}}})
	wantCode(t, err, connect.CodePermissionDenied)

	// Bob pages through what he may read: his 5, in pages of 2, total 5.
	var seen []string
	cursor := ""
	for {
		l, err := dbs.ListDocuments(bc, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", Limit: 2, CursorAfter: cursor, Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		if l.GetTotal() != 5 {
			t.Fatalf("bob's total %d, want 5", l.GetTotal())
		}
		for _, d := range l.GetDocuments() {
			if d.GetData().GetFields()["title"].GetStringValue() != "bob" {
				t.Fatalf("bob sees %v", d)
			}
			seen = append(seen, d.GetId())
		}
		if len(l.GetDocuments()) < 2 {
			break
		}
		cursor = seen[len(seen)-1]
	}
	if len(seen) != 5 {
		t.Fatalf("bob paged through %d documents, want 5", len(seen))
	}
	// Bob can neither read nor change Ann's shared note: it does not exist for him.
	_, err = dbs.GetDocument(bc, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", DocumentId: "shared"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = dbs.UpdateDocument(bc, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", DocumentId: "shared",
		Data: data(t, map[string]any{"title": "mine"})})
	wantCode(t, err, connect.CodeNotFound)
	// Joining team club lets him read it; leaving takes it away again, with no new session.
	team, err := in.teams().CreateTeam(k, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "club", Name: "Club"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := in.teams().CreateMembership(k, &cairnv1.CreateMembershipRequest{ProjectId: p, TeamId: team.GetTeam().GetId(), UserId: bob.GetSession().GetUserId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.GetDocument(bc, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", DocumentId: "shared"}); err != nil {
		t.Fatalf("a club member reads the club's note: %v", err)
	}
	if _, err := in.teams().DeleteMembership(k, &cairnv1.DeleteMembershipRequest{ProjectId: p, TeamId: "club", MembershipId: m.GetMembership().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = dbs.GetDocument(bc, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes", DocumentId: "shared"})
	wantCode(t, err, connect.CodeNotFound)

	// Guests: none of the notes; read access to public, no write.
	gl, err := dbs.ListDocuments(g, &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: "main", CollectionId: "notes"})
	if err != nil || len(gl.GetDocuments()) != 0 || gl.GetTotal() != 0 {
		t.Fatalf("a guest lists notes: %v %v", gl, err)
	}
	if _, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "public",
		Document: &cairnv1.DocumentInput{DocumentId: "hello", Data: data(t, map[string]any{"title": "hi"})}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.GetDocument(g, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "public", DocumentId: "hello"}); err != nil {
		t.Fatalf("guest read of a public document: %v", err)
	}
	_, err = dbs.CreateDocument(g, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "public",
		Document: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "spam"})}})
	wantCode(t, err, connect.CodePermissionDenied)
	// End users cannot touch the schema.
	_, err = dbs.CreateCollection(ac, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", Name: "x"})
	wantCode(t, err, connect.CodePermissionDenied)
}

// Transactions commit atomically, roll back, and a commit whose documents
// changed meanwhile fails as a whole.
func TestTransactions(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "bank"
	secret := newProjectWithKey(t, in, p, docScopes...)
	k, _ := as(ctx, secret)
	dbs := in.databases()
	docsFixture(t, k, dbs, p, "accounts", nil, false)
	for _, id := range []string{"alice", "bob"} {
		if _, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "accounts",
			Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id, "views": 100})}}); err != nil {
			t.Fatal(err)
		}
	}
	transfer := func(amount float64) (string, error) {
		tx, err := dbs.CreateTransaction(k, &cairnv1.CreateTransactionRequest{ProjectId: p})
		if err != nil {
			return "", err
		}
		id := tx.GetTransaction().GetId()
		if _, err := dbs.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "accounts", DocumentId: "alice", TransactionId: id}); err != nil {
			return id, err
		}
		_, err = dbs.StageOperations(k, &cairnv1.StageOperationsRequest{ProjectId: p, TransactionId: id, Operations: []*cairnv1.Operation{
			{DatabaseId: "main", CollectionId: "accounts", Action: &cairnv1.Operation_Increment{Increment: &cairnv1.OperationIncrement{DocumentId: "alice", Attribute: "views", Delta: -amount, Min: f64(0)}}},
			{DatabaseId: "main", CollectionId: "accounts", Action: &cairnv1.Operation_Increment{Increment: &cairnv1.OperationIncrement{DocumentId: "bob", Attribute: "views", Delta: amount}}},
			{DatabaseId: "main", CollectionId: "accounts", Action: &cairnv1.Operation_Create{Create: &cairnv1.DocumentInput{Data: data(t, map[string]any{"title": "receipt", "views": amount})}}},
		}})
		return id, err
	}
	id, err := transfer(30)
	if err != nil {
		t.Fatal(err)
	}
	// Not visible before the commit.
	got, _ := dbs.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "accounts", DocumentId: "bob"})
	if got.GetDocument().GetData().GetFields()["views"].GetNumberValue() != 100 {
		t.Fatal("a staged write is visible before the commit")
	}
	c, err := dbs.CommitTransaction(k, &cairnv1.CommitTransactionRequest{ProjectId: p, TransactionId: id})
	if err != nil || c.GetTransaction().GetStatus() != "committed" || len(c.GetDocuments()) != 3 {
		t.Fatalf("commit %v %v", c, err)
	}
	_, err = dbs.CommitTransaction(k, &cairnv1.CommitTransactionRequest{ProjectId: p, TransactionId: id})
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Rolled back: nothing happens.
	id, err = transfer(10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.RollbackTransaction(k, &cairnv1.RollbackTransactionRequest{ProjectId: p, TransactionId: id}); err != nil {
		t.Fatal(err)
	}
	// A commit that would break a bound fails whole.
	id, err = transfer(500)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dbs.CommitTransaction(k, &cairnv1.CommitTransactionRequest{ProjectId: p, TransactionId: id})
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Concurrent conflicting transfers: each read alice; at most one of those
	// committing after a change to alice wins, and money is conserved.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		if ids[i], err = transfer(1); err != nil {
			t.Fatal(err)
		}
	}
	okN, abortN := 0, 0
	var mu sync.Mutex
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kc, _ := as(ctx, secret) // a call context per goroutine
			_, err := dbs.CommitTransaction(kc, &cairnv1.CommitTransactionRequest{ProjectId: p, TransactionId: id})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				okN++
			case connect.CodeOf(err) == connect.CodeAborted:
				abortN++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if okN != 1 || abortN != 7 {
		t.Fatalf("%d commits won and %d aborted; want exactly one winner among transactions that read the same version", okN, abortN)
	}
	sum := 0.0
	for _, id := range []string{"alice", "bob"} {
		d, err := dbs.GetDocument(k, &cairnv1.GetDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "accounts", DocumentId: id})
		if err != nil {
			t.Fatal(err)
		}
		sum += d.GetDocument().GetData().GetFields()["views"].GetNumberValue()
	}
	if sum != 200 {
		t.Fatalf("money not conserved: %v", sum)
	}
}
