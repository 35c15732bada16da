package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/apikey"
	"github.com/cairn-dev/cairn/domain/operator"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// keyTokenPrefix starts every project API key, so the project and key can be
// read from the credential itself: ck_<project>_<key id>_<secret>.
const keyTokenPrefix = "ck_"

// keyToken builds a key's bearer credential.
func keyToken(project, keyID string, secret []byte) string {
	return keyTokenPrefix + project + "_" + keyID + "_" + hex.EncodeToString(secret)
}

// parseKeyToken splits a key credential; ok is false when it is not one.
func parseKeyToken(token string) (project, keyID string, ok bool) {
	rest, ok := strings.CutPrefix(token, keyTokenPrefix)
	if !ok {
		return "", "", false
	}
	// Key ids are generated ULIDs (no '_'); project ids never contain '_'.
	// Cut, not Split: no slice to allocate on every call.
	project, rest, ok1 := strings.Cut(rest, "_")
	keyID, secret, ok2 := strings.Cut(rest, "_")
	if !ok1 || !ok2 || strings.Contains(secret, "_") || !domain.ValidProjectID(project) || !domain.ValidResourceID(keyID) || len(secret) != 64 {
		return "", "", false
	}
	return project, keyID, true
}

// sessionTokenPrefix starts every end-user session credential:
// cs_<project>_<secret>, so the project is known before any lookup.
const sessionTokenPrefix = "cs_"

// sessionToken builds a session's bearer credential.
func sessionToken(project string, secret []byte) string {
	return sessionTokenPrefix + project + "_" + hex.EncodeToString(secret)
}

// parseSessionToken returns the project of a session credential; ok is
// false when it is not one.
func parseSessionToken(token string) (project string, ok bool) {
	rest, ok := strings.CutPrefix(token, sessionTokenPrefix)
	if !ok {
		return "", false
	}
	project, secret, ok := strings.Cut(rest, "_")
	if !ok || !domain.ValidProjectID(project) || len(secret) != 64 {
		return "", false
	}
	return project, true
}

// operatorTokenPrefix starts every console session of an operator
// account: co_<secret>. It names no project: the account's roles do.
const operatorTokenPrefix = "co_"

func operatorToken(secret []byte) string { return operatorTokenPrefix + hex.EncodeToString(secret) }

// isOperatorToken reports whether token has the shape of a console session.
func isOperatorToken(token string) bool {
	rest, ok := strings.CutPrefix(token, operatorTokenPrefix)
	return ok && len(rest) == 64
}

// sessionCookie is the name of a project's session cookie.
func sessionCookie(project string) string { return "cairn_session_" + project }

// hashToken is what the log stores instead of a secret.
func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// deriveSecret makes a key secret reproducible for one idempotent request,
// so a retried CreateKey can return the secret it first showed. Only the
// instance's master key and the request's idempotency id produce it.
func deriveSecret(masterKey []byte, project, keyID, msgID string) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("cairn key secret\x00" + project + "\x00" + keyID + "\x00" + msgID))
	return m.Sum(nil)
}

// authenticator resolves bearer credentials into principals.
type authenticator struct {
	adminHash []byte
	// fnKeys verifies the keys executions receive (functionkeys.go).
	fnKeys []byte
	reads  ReadModels
	metas  *metaCache
	now    func() time.Time
}

var errBadCredential = domain.Errorf(domain.KindUnauthenticated, "invalid credential")

// authenticate returns the principal of an Authorization header value.
// Every failure is the same Unauthenticated error: no oracle for guessing.
func (a *authenticator) authenticate(header string) (access.Principal, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return access.Principal{}, domain.Errorf(domain.KindUnauthenticated, "missing credential: send Authorization: Bearer <key>")
	}
	return a.authenticateToken(token)
}

// authenticateToken is authenticate for the credential itself (the
// Authorization header's value without "Bearer ").
func (a *authenticator) authenticateToken(token string) (access.Principal, error) {
	if token == "" {
		return access.Principal{}, domain.Errorf(domain.KindUnauthenticated, "missing credential: send Authorization: Bearer <key>")
	}
	hash := hashToken(token)
	if subtle.ConstantTimeCompare(hash, a.adminHash) == 1 {
		return access.Principal{Kind: access.Operator}, nil
	}
	if project, ok := parseSessionToken(token); ok {
		return a.session(project, hash)
	}
	if isOperatorToken(token) {
		return a.operatorSession(hash)
	}
	if p, ok, err := a.functionKey(token); ok {
		return p, err
	}
	project, keyID, ok := parseKeyToken(token)
	if !ok {
		return access.Principal{}, errBadCredential
	}
	k, err := cached(a.metas, metaKey{kind: 'k', project: project, id1: keyID}, func() (*eventsv1.Key, error) { return a.reads.Key(project, keyID) })
	if err != nil {
		if errors.Is(err, errNotFound) {
			return access.Principal{}, errBadCredential
		}
		return access.Principal{}, err
	}
	if subtle.ConstantTimeCompare(hash, k.GetSecretHash()) != 1 {
		return access.Principal{}, errBadCredential
	}
	if !apikey.Usable(k, a.now()) {
		return access.Principal{}, domain.Errorf(domain.KindUnauthenticated, "API key expired")
	}
	p := access.Principal{Kind: access.APIKey, Project: project, ID: keyID, Scopes: slices.Clip(k.GetScopes())}
	if k.GetExpiresAt() != nil {
		p.ExpiresAt = k.GetExpiresAt().AsTime()
	}
	return p, nil
}

// session resolves a session credential: one read of the session index,
// which holds only live sessions of users who are not blocked.
func (a *authenticator) session(project string, hash []byte) (access.Principal, error) {
	ref, err := a.reads.SessionByHash(project, hash)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return access.Principal{}, errBadCredential
		}
		return access.Principal{}, err
	}
	if !a.now().Before(ref.ExpiresAt) {
		return access.Principal{}, errBadCredential
	}
	return access.Principal{Kind: access.User, Project: project, ID: ref.UserID, SessionID: ref.SessionID,
		MfaPending: ref.MfaPending, ExpiresAt: ref.ExpiresAt}, nil
}

// operatorSession resolves a console session: the session index, then
// the account, whose roles are read on every request so that a change or
// a revocation applies to the very next one.
func (a *authenticator) operatorSession(hash []byte) (access.Principal, error) {
	ref, err := a.reads.OperatorSessionByHash(hash)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return access.Principal{}, errBadCredential
		}
		return access.Principal{}, err
	}
	if !a.now().Before(ref.ExpiresAt) {
		return access.Principal{}, errBadCredential
	}
	o, err := a.reads.Operator(ref.UserID)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return access.Principal{}, errBadCredential
		}
		return access.Principal{}, err
	}
	p := access.Principal{Kind: access.Member, ID: o.GetId(), Name: o.GetEmail(), SessionID: ref.SessionID,
		ExpiresAt: ref.ExpiresAt, Roles: operator.RoleMap(o)}
	if o.GetAdmin() {
		p.Kind, p.Roles = access.Operator, nil
	}
	return p, nil
}

type principalKey struct{}

// principalBox holds the caller: a cookie-borne session is known only once
// the request's message names its project (guardedStream.Receive), after
// the context was handed on.
type principalBox struct{ p access.Principal }

func withPrincipal(ctx context.Context, p access.Principal) context.Context {
	noteCaller(ctx, p)
	return context.WithValue(ctx, principalKey{}, &principalBox{p: p})
}

// principal returns the caller authenticated by the access interceptor.
func principal(ctx context.Context) access.Principal {
	if b, ok := ctx.Value(principalKey{}).(*principalBox); ok {
		return b.p
	}
	return access.Principal{}
}

// setPrincipal replaces the caller withPrincipal stored in ctx.
func setPrincipal(ctx context.Context, p access.Principal) {
	if b, ok := ctx.Value(principalKey{}).(*principalBox); ok {
		b.p = p
	}
	noteCaller(ctx, p)
}
