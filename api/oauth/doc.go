// Package oauth provides the OAuth2 / OpenID Connect sign-in flow for
// Cairn's end users: provider presets (GitHub, Google, any OIDC issuer by
// discovery), the authorization-code flow with PKCE (S256), state and OIDC
// nonce, redirect-URL checking, and the identity-linking policy.
//
// It is independent of storage. Cairn nodes are stateless and several may
// serve one project, so the whole flow state travels in the OAuth "state"
// parameter, sealed with AES-256-GCM under a key derived (HKDF-SHA256) from
// the instance's master key and bound to the project and the provider: any
// node can complete a callback, nobody can read or alter the state, and a
// state minted for project A (or provider X) is refused on B's (or Y's)
// callback. See [Flow.Begin] for the format.
//
// Replay: the authorization code is single-use at the provider (RFC 6749
// §4.1.2) and bound to the PKCE verifier sealed in the state, so a replayed
// callback URL fails at the token exchange. Deployments that want a
// belt-and-braces check may set [Config.Seen], called with the state's random
// ID once the state has been authenticated.
//
// What it must never do: read the environment, keep secrets in the clear
// beyond a call, follow a success/failure URL that [CheckRedirect] did not
// accept, or link an identity to an existing account unless both the
// provider and the account vouch for the email ([Decide]).
//
// The lead wires it: AccountService.CreateOAuth2Token calls [Flow.Begin] and
// returns [Start.URL]; the HTTP callback route calls [Flow.Complete], then
// [Decide] with what the read model knows, then redirects with
// [SuccessRedirect] or [FailureRedirect].
package oauth
