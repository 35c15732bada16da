package main

import (
	"context"
	"strconv"
	"testing"

	"connectrpc.com/connect/v2"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// clusterSessions: a session made on one node works on the other once it
// has applied the write (Cairn-Min-Seq), and a signed-out session or a
// blocked user's session is refused there as soon as that write is applied.
func clusterSessions(t *testing.T, h *clusterHarness) {
	n1, n2 := h.node(0), h.node(1)
	clusterProject(t, h, "auth", 0)
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	key, err := n1.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "auth", Name: "users", Scopes: &cairnv1.Scopes{Scopes: []string{"users.write"}}})
	if err != nil {
		t.Fatal(err)
	}
	// after is a call of the session (or a guest) that the serving node
	// answers only once it has applied seq.
	after := func(seq uint64, session string) (context.Context, *connect.CallInfo) {
		c, info := guest(ctx, "auth", session)
		info.RequestHeader().Set("Cairn-Min-Seq", strconv.FormatUint(seq, 10))
		return c, info
	}
	g, info := guest(ctx, "auth", "")
	if _, err := n1.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "c@example.com", Password: "cluster password"}); err != nil {
		t.Fatal(err)
	}
	c, info := after(seqOf(t, info), "")
	s, err := n2.account().CreateEmailPasswordSession(c, &cairnv1.CreateEmailPasswordSessionRequest{Email: "c@example.com", Password: "cluster password"})
	if err != nil {
		t.Fatalf("node 2 sign-in after the sign-up on node 1: %v", err)
	}
	c, _ = after(seqOf(t, info), s.GetSecret())
	acc, err := n1.account().GetAccount(c, &cairnv1.GetAccountRequest{})
	if err != nil || acc.GetUser().GetEmail() != "c@example.com" {
		t.Fatalf("node 1 with node 2's session: %v %v", acc, err)
	}
	// Signed out on node 1: refused on node 2 once applied.
	out, info := guest(ctx, "auth", s.GetSecret())
	if _, err := n1.account().DeleteSession(out, &cairnv1.DeleteSessionRequest{SessionId: "current"}); err != nil {
		t.Fatal(err)
	}
	c, _ = after(seqOf(t, info), s.GetSecret())
	_, err = n2.account().GetAccount(c, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	// Blocked through node 1: node 2 refuses the user's other session.
	s2, err := n2.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: "c@example.com", Password: "cluster password"})
	if err != nil {
		t.Fatal(err)
	}
	blocked := true
	k, info := as(ctx, key.GetSecret())
	if _, err := n1.users().UpdateUser(k, &cairnv1.UpdateUserRequest{ProjectId: "auth", UserId: acc.GetUser().GetId(), Blocked: &blocked}); err != nil {
		t.Fatalf("block on node 1 (the session was made on node 2): %v", err)
	}
	c, _ = after(seqOf(t, info), s2.GetSecret())
	_, err = n2.account().GetAccount(c, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
}
