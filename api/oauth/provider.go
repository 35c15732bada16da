package oauth

import (
	"fmt"
	"slices"
)

// Kind is the sort of a sign-in provider, as stored in the OAuthProvider
// event ("oidc", "github", "google").
type Kind string

const (
	KindOIDC   Kind = "oidc"
	KindGitHub Kind = "github"
	KindGoogle Kind = "google"
)

// GoogleIssuer is the issuer of Google's OpenID Connect provider.
const GoogleIssuer = "https://accounts.google.com"

// Provider is one project's sign-in provider, with its client secret
// already unsealed by the caller.
type Provider struct {
	// ID is the provider's ID within the project ("github", "my-idp").
	ID           string
	Kind         Kind
	ClientID     string
	ClientSecret string
	// IssuerURL is the OIDC issuer for KindOIDC; fixed for KindGoogle and
	// unused for KindGitHub.
	IssuerURL string
	// Scopes replaces the preset's default scopes when not empty. For OIDC
	// kinds "openid" is always added.
	Scopes []string
}

// GitHub returns a GitHub preset.
func GitHub(id, clientID, clientSecret string) Provider {
	return Provider{ID: id, Kind: KindGitHub, ClientID: clientID, ClientSecret: clientSecret}
}

// Google returns a Google preset (OIDC with issuer https://accounts.google.com).
func Google(id, clientID, clientSecret string) Provider {
	return Provider{ID: id, Kind: KindGoogle, ClientID: clientID, ClientSecret: clientSecret, IssuerURL: GoogleIssuer}
}

// OIDC returns a generic OpenID Connect provider configured by discovery
// from issuerURL.
func OIDC(id, issuerURL, clientID, clientSecret string) Provider {
	return Provider{ID: id, Kind: KindOIDC, ClientID: clientID, ClientSecret: clientSecret, IssuerURL: issuerURL}
}

// isOIDC reports whether the provider's identity comes from an ID token.
func (p Provider) isOIDC() bool { return p.Kind == KindOIDC || p.Kind == KindGoogle }

// issuer is the issuer whose discovery document configures the provider.
func (p Provider) issuer() string {
	if p.Kind == KindGoogle {
		return GoogleIssuer
	}
	return p.IssuerURL
}

// scopes is the scope list sent to the provider.
func (p Provider) scopes() []string {
	s := slices.Clone(p.Scopes)
	switch p.Kind {
	case KindGitHub:
		if len(s) == 0 {
			s = []string{"read:user", "user:email"}
		}
	default:
		if len(s) == 0 {
			s = []string{"openid", "email", "profile"}
		}
		if !slices.Contains(s, "openid") {
			s = append([]string{"openid"}, s...)
		}
	}
	return s
}

// validate checks the provider configuration.
func (p Provider) validate() error {
	if p.ID == "" {
		return fmt.Errorf("oauth provider: empty id")
	}
	if p.ClientID == "" {
		return fmt.Errorf("oauth provider %q: empty client id", p.ID)
	}
	switch p.Kind {
	case KindGitHub, KindGoogle:
	case KindOIDC:
		if p.IssuerURL == "" {
			return fmt.Errorf("oauth provider %q: kind oidc needs an issuer url", p.ID)
		}
	default:
		return fmt.Errorf("oauth provider %q: unknown kind %q", p.ID, p.Kind)
	}
	return nil
}
