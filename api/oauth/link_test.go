package oauth

import (
	"errors"
	"testing"
)

func TestDecide(t *testing.T) {
	verified := Identity{ProviderID: "google", Subject: "s1", Email: "a@example.com", EmailVerified: true}
	unverified := verified
	unverified.EmailVerified = false
	noEmail := Identity{ProviderID: "github", Subject: "s2"}

	cases := []struct {
		name string
		id   Identity
		acc  Account
		want Link
		err  error
	}{
		{"linked identity signs in", unverified, Account{LinkedUserID: "u1", EmailUserID: "u2"}, Link{Action: ActionSignIn, UserID: "u1"}, nil},
		{"linked identity without email signs in", noEmail, Account{LinkedUserID: "u1"}, Link{Action: ActionSignIn, UserID: "u1"}, nil},
		{"new email, verified: create verified", verified, Account{}, Link{Action: ActionCreateUser, EmailVerified: true}, nil},
		{"new email, unverified: create unverified", unverified, Account{}, Link{Action: ActionCreateUser}, nil},
		{"no email, not linked: refuse", noEmail, Account{}, Link{}, ErrEmailRequired},
		{"both verified: link", verified, Account{EmailUserID: "u2", EmailUserVerified: true}, Link{Action: ActionLink, UserID: "u2", EmailVerified: true}, nil},
		{"account unverified: refuse (CVE-2024-38351)", verified, Account{EmailUserID: "u2"}, Link{}, ErrLinkUnverified},
		{"provider unverified: refuse", unverified, Account{EmailUserID: "u2", EmailUserVerified: true}, Link{}, ErrLinkUnverified},
		{"neither verified: refuse", unverified, Account{EmailUserID: "u2"}, Link{}, ErrLinkUnverified},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(tc.id, tc.acc)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
	if ActionLink.String() != "link" || Action(0).String() != "action(0)" {
		t.Error("Action.String")
	}
}
