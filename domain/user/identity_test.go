package user

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var idNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ident(provider, subject, email string) *eventsv1.Identity {
	return &eventsv1.Identity{ProviderId: provider, Subject: subject, Email: email}
}

// idUser is an existing user; with pw it has a password.
func idUser(pw bool, ids ...*eventsv1.Identity) State {
	u := &eventsv1.User{Id: "u1", ProjectId: "p1", Email: "Ann@Example.com", EmailVerified: true, PrefsJson: "{}",
		CreatedAt: timestamppb.New(idNow.Add(-time.Hour)), UpdatedAt: timestamppb.New(idNow.Add(-time.Hour))}
	if pw {
		u.PasswordHash = "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA"
	}
	for _, i := range ids {
		i = proto.CloneOf(i)
		i.CreatedAt = timestamppb.New(idNow.Add(-time.Hour))
		u.Identities = append(u.Identities, i)
	}
	return u
}

// claim describes a ClaimTaken (+) or ClaimReleased (-) event.
type claim struct {
	taken     bool
	ns, value string
}

func claimsOf(evs []*eventsv1.Envelope) []claim {
	var out []claim
	for _, e := range evs {
		switch p := e.GetPayload().(type) {
		case *eventsv1.Envelope_ClaimTaken:
			out = append(out, claim{true, p.ClaimTaken.GetNamespace(), p.ClaimTaken.GetValue()})
		case *eventsv1.Envelope_ClaimReleased:
			out = append(out, claim{false, p.ClaimReleased.GetNamespace(), p.ClaimReleased.GetValue()})
		}
	}
	return out
}

func isClaim(e *eventsv1.Envelope) bool {
	switch e.GetPayload().(type) {
	case *eventsv1.Envelope_ClaimTaken, *eventsv1.Envelope_ClaimReleased:
		return true
	}
	return false
}

func TestIdentityCommands(t *testing.T) {
	gh := ident("github", "42", "ann@example.com")
	google := ident("google", "g-7", "ann@example.com")
	blocked := idUser(true)
	blocked.Blocked = true

	tests := []struct {
		name  string
		state State
		cmd   Command
		// wantErr: an error of kind is wanted.
		wantErr bool
		kind    domain.Kind
		claims  []claim
		// check inspects the user after the events (nil when deleted).
		check func(t *testing.T, u State, evs []*eventsv1.Envelope)
	}{
		{
			name: "create from identity: no password, email verified as the provider said, both claims",
			cmd: Create{ID: "u9", ProjectID: "p1", Email: "Bo@Example.com", Name: "Bo", EmailVerified: true,
				Identity: ident("github", "99", "Bo@Example.com"), Now: idNow},
			claims: []claim{{true, ClaimEmail, "bo@example.com"}, {true, ClaimIdentity, "github:99"}},
			check: func(t *testing.T, u State, _ []*eventsv1.Envelope) {
				if u.GetPasswordHash() != "" || !u.GetEmailVerified() || len(u.GetIdentities()) != 1 {
					t.Fatalf("user %v", u)
				}
				if i := u.GetIdentities()[0]; i.GetSubject() != "99" || !i.GetCreatedAt().AsTime().Equal(idNow) {
					t.Fatalf("identity %v", i)
				}
			},
		},
		{
			name:   "create from identity whose email the provider did not verify",
			cmd:    Create{ID: "u9", ProjectID: "p1", Email: "bo@example.com", Identity: ident("idp", "s", "bo@example.com"), Now: idNow},
			claims: []claim{{true, ClaimEmail, "bo@example.com"}, {true, ClaimIdentity, "idp:s"}},
			check: func(t *testing.T, u State, _ []*eventsv1.Envelope) {
				if u.GetEmailVerified() {
					t.Fatal("email verified without the provider saying so")
				}
			},
		},
		{
			name: "create from identity with a malformed provider id",
			cmd:  Create{ID: "u9", ProjectID: "p1", Email: "bo@example.com", Identity: ident("Git.Hub", "1", ""), Now: idNow},
			kind: domain.KindInvalid, wantErr: true,
		},
		{
			name: "create from identity with an empty subject",
			cmd:  Create{ID: "u9", ProjectID: "p1", Email: "bo@example.com", Identity: ident("github", "", ""), Now: idNow},
			kind: domain.KindInvalid, wantErr: true,
		},
		{
			name: "an anonymous user has no identity",
			cmd:  Create{ID: "u9", ProjectID: "p1", Anonymous: true, Identity: gh, Now: idNow},
			kind: domain.KindInternal, wantErr: true,
		},
		{
			name:   "link adds the identity and claims it",
			state:  idUser(true),
			cmd:    LinkIdentity{Identity: gh, Now: idNow},
			claims: []claim{{true, ClaimIdentity, "github:42"}},
			check: func(t *testing.T, u State, evs []*eventsv1.Envelope) {
				if evs[0].GetUserUpdated().GetChange() != "identities" {
					t.Fatalf("first event %v", evs[0])
				}
				if i := FindIdentity(u, "github"); i == nil || i.GetSubject() != "42" || i.GetEmail() != "ann@example.com" || !i.GetCreatedAt().AsTime().Equal(idNow) {
					t.Fatalf("identity %v", i)
				}
			},
		},
		{
			name:   "link a second provider",
			state:  idUser(false, gh),
			cmd:    LinkIdentity{Identity: google, Now: idNow},
			claims: []claim{{true, ClaimIdentity, "google:g-7"}},
			check: func(t *testing.T, u State, _ []*eventsv1.Envelope) {
				if len(u.GetIdentities()) != 2 {
					t.Fatalf("identities %v", u.GetIdentities())
				}
			},
		},
		{
			name:  "linking the identity the user holds changes nothing",
			state: idUser(true, gh),
			cmd:   LinkIdentity{Identity: gh, Now: idNow},
		},
		{
			name:  "one identity per provider",
			state: idUser(true, gh),
			cmd:   LinkIdentity{Identity: ident("github", "43", ""), Now: idNow},
			kind:  domain.KindFailedPrecondition, wantErr: true,
		},
		{
			name:  "a blocked user links nothing",
			state: blocked,
			cmd:   LinkIdentity{Identity: gh, Now: idNow},
			kind:  domain.KindPermissionDenied, wantErr: true,
		},
		{
			name: "link to a missing user",
			cmd:  LinkIdentity{Identity: gh, Now: idNow},
			kind: domain.KindNotFound, wantErr: true,
		},
		{
			name:  "link an over-long subject",
			state: idUser(true),
			cmd:   LinkIdentity{Identity: ident("github", strings.Repeat("x", MaxSubjectLen+1), ""), Now: idNow},
			kind:  domain.KindInvalid, wantErr: true,
		},
		{
			name:   "unlink with a password left",
			state:  idUser(true, gh),
			cmd:    UnlinkIdentity{ProviderID: "github", Now: idNow},
			claims: []claim{{false, ClaimIdentity, "github:42"}},
			check: func(t *testing.T, u State, evs []*eventsv1.Envelope) {
				if len(u.GetIdentities()) != 0 || evs[0].GetUserUpdated().GetChange() != "identities" {
					t.Fatalf("user %v", u)
				}
			},
		},
		{
			name:   "unlink one of two identities without a password",
			state:  idUser(false, gh, google),
			cmd:    UnlinkIdentity{ProviderID: "google", Now: idNow},
			claims: []claim{{false, ClaimIdentity, "google:g-7"}},
			check: func(t *testing.T, u State, _ []*eventsv1.Envelope) {
				if len(u.GetIdentities()) != 1 || u.GetIdentities()[0].GetProviderId() != "github" {
					t.Fatalf("identities %v", u.GetIdentities())
				}
			},
		},
		{
			name:  "the last way to sign in stays",
			state: idUser(false, gh),
			cmd:   UnlinkIdentity{ProviderID: "github", Now: idNow},
			kind:  domain.KindFailedPrecondition, wantErr: true,
		},
		{
			name:  "unlink a provider the user is not linked to",
			state: idUser(true, gh),
			cmd:   UnlinkIdentity{ProviderID: "google", Now: idNow},
			kind:  domain.KindNotFound, wantErr: true,
		},
		{
			name: "unlink on a missing user",
			cmd:  UnlinkIdentity{ProviderID: "github", Now: idNow},
			kind: domain.KindNotFound, wantErr: true,
		},
		{
			name:   "delete releases the email and every identity",
			state:  idUser(false, gh, google),
			cmd:    Delete{Now: idNow},
			claims: []claim{{false, ClaimEmail, "ann@example.com"}, {false, ClaimIdentity, "github:42"}, {false, ClaimIdentity, "google:g-7"}},
			check: func(t *testing.T, u State, _ []*eventsv1.Envelope) {
				if u != nil {
					t.Fatalf("user still there: %v", u)
				}
			},
		},
		{
			name:  "an oauth2 sign-in token on a linked user",
			state: idUser(false, gh),
			cmd: CreateToken{Token: &eventsv1.Token{Id: "t1", Kind: eventsv1.Token_KIND_OAUTH2, SecretHash: make([]byte, 32),
				ExpiresAt: timestamppb.New(idNow.Add(5 * time.Minute)), ProviderId: "github"}, Now: idNow},
			check: func(t *testing.T, u State, _ []*eventsv1.Envelope) {
				if len(u.GetTokens()) != 1 || u.GetTokens()[0].GetProviderId() != "github" || len(u.GetIdentities()) != 1 {
					t.Fatalf("user %v", u)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := proto.CloneOf(tc.state)
			evs, err := Decide(tc.state, tc.cmd)
			if !proto.Equal(before, tc.state) {
				t.Fatal("Decide changed its input state")
			}
			if !tc.wantErr && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want a %v error, got events %v", tc.kind, evs)
				}
				if got := domain.KindOf(err); got != tc.kind {
					t.Fatalf("want a %v error, got %v: %v", tc.kind, got, err)
				}
				if evs != nil {
					t.Fatalf("an error with events: %v", evs)
				}
				return
			}
			if tc.check == nil && tc.claims == nil {
				if len(evs) != 0 {
					t.Fatalf("want no events, got %v", evs)
				}
				return
			}
			if len(evs) == 0 || isClaim(evs[0]) {
				t.Fatalf("a write must start with the user's own event: %v", evs)
			}
			got := claimsOf(evs)
			if len(got) != len(tc.claims) {
				t.Fatalf("claims %v, want %v", got, tc.claims)
			}
			for i := range got {
				if got[i] != tc.claims[i] {
					t.Fatalf("claim %d is %v, want %v", i, got[i], tc.claims[i])
				}
			}
			for _, e := range evs {
				switch p := e.GetPayload().(type) {
				case *eventsv1.Envelope_ClaimTaken:
					if p.ClaimTaken.GetProjectId() != "p1" || (p.ClaimTaken.GetHolder() != "u1" && p.ClaimTaken.GetHolder() != "u9") {
						t.Fatalf("claim %v", p.ClaimTaken)
					}
				case *eventsv1.Envelope_ClaimReleased:
					if p.ClaimReleased.GetProjectId() != "p1" || p.ClaimReleased.GetHolder() != "u1" {
						t.Fatalf("release %v", p.ClaimReleased)
					}
				}
			}
			u := tc.state
			for _, e := range evs {
				u = Evolve(u, e)
			}
			if tc.check != nil {
				tc.check(t, u, evs)
			}
		})
	}
}

func TestIdentityClaimValue(t *testing.T) {
	if got := IdentityClaim("github", "12345"); got != "github:12345" {
		t.Fatalf("IdentityClaim = %q", got)
	}
}
