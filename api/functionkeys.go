package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Function keys are the short-lived API keys an execution's code receives:
// cfk~<project>~<incarnation>~<function>~<function uid>~<deployment>~<expiry unix>~<scopes,>~<mac>.
// They are stateless (no event per execution): the MAC, from a key derived
// from the master key, proves the server made them; they expire with the
// execution's timeout. Being stateless, they are also checked against the
// read model on every use, so that a key never outlives what it was made
// for: the project incarnation (its creation time: a project deleted and
// created again under the same id is another project), the function (its
// uid: the same for a function's whole life), the deployment, the
// function being enabled, and the function's current scopes (the key acts
// with the intersection, so down-scoping a function takes effect at once).
const functionKeyPrefix = "cfk~"

func functionKeySecret(masterKey []byte) []byte {
	m := hmac.New(sha256.New, masterKey)
	// v2: the bound format above; v1 keys (no binding) no longer verify.
	m.Write([]byte("cairn function key v2"))
	return m.Sum(nil)
}

func functionKeyMAC(secret []byte, body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// projectIncarnation tells a project from an earlier one of the same id.
func projectIncarnation(p *eventsv1.Project) string {
	return strconv.FormatInt(p.GetCreatedAt().AsTime().UnixNano(), 36)
}

// newFunctionKey returns a key for deployment d of function f of project p,
// with f's scopes, valid until expires.
func newFunctionKey(secret []byte, p *eventsv1.Project, f *eventsv1.Function, deployment string, expires time.Time) string {
	body := functionKeyPrefix + strings.Join([]string{p.GetId(), projectIncarnation(p), f.GetId(), f.GetUid(), deployment,
		strconv.FormatInt(expires.Unix(), 10), strings.Join(f.GetScopes(), ",")}, "~")
	return body + "~" + functionKeyMAC(secret, body)
}

// errFunctionKeyRevoked: a genuine function key whose function (or
// project) is no longer what it was made for.
var errFunctionKeyRevoked = domain.Errorf(domain.KindUnauthenticated,
	"function key revoked: its project, function or deployment was deleted, or the function disabled")

// functionCaller starts the principal id of a function's own calls.
const functionCaller = "function:"

// functionKey checks a function key; ok is false when token is not one.
func (a *authenticator) functionKey(token string) (p access.Principal, ok bool, err error) {
	if !strings.HasPrefix(token, functionKeyPrefix) {
		return p, false, nil
	}
	i := strings.LastIndexByte(token, '~')
	body, mac := token[:i], token[i+1:]
	if !hmac.Equal([]byte(mac), []byte(functionKeyMAC(a.fnKeys, body))) {
		return p, true, errBadCredential
	}
	parts := strings.Split(strings.TrimPrefix(body, functionKeyPrefix), "~")
	if len(parts) != 7 || !domain.ValidProjectID(parts[0]) {
		return p, true, errBadCredential
	}
	project, incarnation, fnID, fnUID, deployment := parts[0], parts[1], parts[2], parts[3], parts[4]
	exp, err := strconv.ParseInt(parts[5], 10, 64)
	if err != nil {
		return p, true, errBadCredential
	}
	if !a.now().Before(time.Unix(exp, 0)) {
		return p, true, domain.Errorf(domain.KindUnauthenticated, "function key expired")
	}
	f, err := a.boundFunction(project, incarnation, fnID, fnUID, deployment)
	if err != nil {
		return p, true, err
	}
	var scopes []string
	if parts[6] != "" {
		scopes = strings.Split(parts[6], ",")
	}
	scopes = slices.DeleteFunc(scopes, func(s string) bool { return !access.ValidScope(s) })
	return access.Principal{Kind: access.APIKey, Project: project, ID: functionCaller + fnID,
		Scopes: access.Intersect(scopes, f.GetScopes()), ExpiresAt: time.Unix(exp, 0)}, true, nil
}

// boundFunction returns the function a key was made for, if the project,
// function and deployment are still the ones it names and the function is
// enabled.
func (a *authenticator) boundFunction(project, incarnation, fnID, fnUID, deployment string) (*eventsv1.Function, error) {
	p, err := a.reads.Project(project)
	if err != nil {
		return nil, revokedIfMissing(err)
	}
	if projectIncarnation(p) != incarnation {
		return nil, errFunctionKeyRevoked
	}
	f, err := a.reads.Function(project, fnID)
	if err != nil {
		return nil, revokedIfMissing(err)
	}
	if f.GetUid() != fnUID || !f.GetEnabled() {
		return nil, errFunctionKeyRevoked
	}
	if _, err := a.reads.FunctionDeployment(project, f, deployment); err != nil {
		return nil, revokedIfMissing(err)
	}
	return f, nil
}

func revokedIfMissing(err error) error {
	if errors.Is(err, errNotFound) {
		return errFunctionKeyRevoked
	}
	return fmt.Errorf("check function key: %w", err)
}
