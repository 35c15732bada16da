package user

import (
	"slices"
	"testing"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

func TestDecideAll(t *testing.T) {
	sess := &eventsv1.Session{Id: "S1", SecretHash: hash("s")}
	// Create and sign in, in one write: the session decides on the user
	// the creation left; the claim stays where Create put it (not first).
	evs, err := DecideAll(nil,
		Create{ID: "U1", ProjectID: "p", Email: "a@example.com", PasswordHash: "$argon2id$x", Now: t0},
		CreateSession{Session: sess, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"UserCreated U1", "ClaimTaken p/email/a@example.com/U1", "SessionCreated S1 evicted=[]"}
	if got := summary(evs); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	u := UserOf(evs[2])
	if FindSession(u, "S1", t0) == nil || u.GetEmail() != "a@example.com" {
		t.Fatalf("session not decided on the created user: %v", u)
	}
	// The first refusal stops it, with no events.
	evs, err = DecideAll(nil, CreateSession{Session: sess, Now: t0}, Create{ID: "U1", ProjectID: "p", Now: t0})
	if domain.KindOf(err) != domain.KindNotFound || evs != nil {
		t.Fatalf("want not found and no events, got %v %v", evs, err)
	}
	// Deciding on a deleted user sees it gone.
	base, _ := DecideAll(nil, Create{ID: "U2", ProjectID: "p", Now: t0})
	_, err = DecideAll(UserOf(base[0]), Delete{Now: t1}, Update{Name: ptr("x"), Now: t1})
	if domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("update after delete in one decision: %v", err)
	}
}
