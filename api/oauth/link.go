package oauth

import (
	"errors"
	"fmt"
)

// Action is what the callback does with a completed sign-in.
type Action int

const (
	// ActionSignIn: the identity is already linked; sign in its user.
	ActionSignIn Action = iota + 1
	// ActionCreateUser: no user has the identity or its email; create one
	// (its email verified only if Link.EmailVerified says so).
	ActionCreateUser
	// ActionLink: link the identity to the existing user with that email
	// and sign in.
	ActionLink
)

func (a Action) String() string {
	switch a {
	case ActionSignIn:
		return "sign_in"
	case ActionCreateUser:
		return "create_user"
	case ActionLink:
		return "link"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Account is what the read model knows about the identity and its email.
type Account struct {
	// LinkedUserID is the user already linked to (provider, subject), or "".
	LinkedUserID string
	// EmailUserID is the user whose email equals the identity's, or "".
	EmailUserID string
	// EmailUserVerified is whether that user's email is verified.
	EmailUserVerified bool
}

// Link is the decision.
type Link struct {
	Action Action
	// UserID is the user to sign in or link to (empty for ActionCreateUser).
	UserID string
	// EmailVerified is whether a created user's email counts as verified:
	// the provider's assertion.
	EmailVerified bool
}

var (
	// ErrEmailRequired: the provider shared no email and the identity is not
	// linked yet.
	ErrEmailRequired = errors.New("the provider shared no email address; allow email access or sign in another way")
	// ErrLinkUnverified: a user with this email exists, but the provider
	// does not assert the email verified, or the existing account's email is
	// not verified. Linking then would let whoever registered the email
	// first (or whoever controls the provider account) take over the other
	// side (PocketBase CVE-2024-38351). The user should sign in the existing
	// way, verify the email, and link the provider from the account.
	ErrLinkUnverified = errors.New("an account with this email already exists; sign in to it and link this provider from your account")
)

// Decide applies Cairn's linking policy to a completed sign-in. It is pure:
//
//   - an identity already linked signs in its user, whatever the email;
//   - otherwise an email is required;
//   - no user with the email: create one;
//   - a user with the email: link only if BOTH the provider asserts the
//     email verified AND the existing account's email is verified;
//     otherwise refuse with ErrLinkUnverified.
func Decide(id Identity, acc Account) (Link, error) {
	if acc.LinkedUserID != "" {
		return Link{Action: ActionSignIn, UserID: acc.LinkedUserID}, nil
	}
	if id.Email == "" {
		return Link{}, ErrEmailRequired
	}
	if acc.EmailUserID == "" {
		return Link{Action: ActionCreateUser, EmailVerified: id.EmailVerified}, nil
	}
	if id.EmailVerified && acc.EmailUserVerified {
		return Link{Action: ActionLink, UserID: acc.EmailUserID, EmailVerified: true}, nil
	}
	return Link{}, ErrLinkUnverified
}
