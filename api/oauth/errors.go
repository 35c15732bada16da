package oauth

import "errors"

var (
	// ErrInvalidState: the state is missing, malformed, tampered with,
	// sealed with another key, or minted for another project or provider.
	// No failure URL can be trusted: show a plain error page.
	ErrInvalidState = errors.New("invalid oauth state")
	// ErrStateExpired: the state is authentic but older than its lifetime.
	ErrStateExpired = errors.New("oauth state expired")
	// ErrStateReplayed: Config.Seen reported the state's ID as used.
	ErrStateReplayed = errors.New("oauth state already used")
	// ErrProviderDenied: the provider returned an error to the callback
	// (?error=access_denied and friends).
	ErrProviderDenied = errors.New("oauth provider returned an error")
	// ErrExchange: the code could not be exchanged for tokens.
	ErrExchange = errors.New("oauth code exchange failed")
	// ErrIDToken: the ID token is missing or failed verification (signature,
	// issuer, audience, expiry or nonce).
	ErrIDToken = errors.New("invalid id token")
	// ErrUserInfo: the provider's user API failed or answered nonsense.
	ErrUserInfo = errors.New("oauth user info failed")
	// ErrDiscovery: the issuer's discovery document could not be fetched.
	ErrDiscovery = errors.New("oidc discovery failed")
)

// CallbackError is returned by Flow.Complete once the state has been
// authenticated, so FailureURL is the one Begin checked and sealed: the
// callback redirects there with Code (and Description, if any).
type CallbackError struct {
	// FailureURL is where to send the browser (see FailureRedirect).
	FailureURL string
	// Code is an OAuth-style error code for the failure URL: the provider's
	// own ("access_denied", …) or Cairn's ("state_expired",
	// "state_replayed", "server_error").
	Code string
	// Description is the provider's error_description, if it sent one.
	Description string
	// Err is the cause, wrapping one of the Err* sentinels above.
	Err error
}

func (e *CallbackError) Error() string {
	msg := "oauth callback: " + e.Code
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *CallbackError) Unwrap() error { return e.Err }
