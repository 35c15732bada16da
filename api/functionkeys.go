package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
)

// Function keys are the short-lived API keys an execution's code receives:
// cfk~<project>~<function>~<expiry unix>~<scopes,>~<mac>. They are
// stateless (no event per execution): the MAC, from a key derived from the
// master key, proves the server made them; they expire with the
// execution's timeout.
const functionKeyPrefix = "cfk~"

func functionKeySecret(masterKey []byte) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("cairn function key v1"))
	return m.Sum(nil)
}

func functionKeyMAC(secret []byte, body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// newFunctionKey returns a key for function fn of project, with scopes,
// valid until expires.
func newFunctionKey(secret []byte, project, fn string, scopes []string, expires time.Time) string {
	body := functionKeyPrefix + project + "~" + fn + "~" + strconv.FormatInt(expires.Unix(), 10) + "~" + strings.Join(scopes, ",")
	return body + "~" + functionKeyMAC(secret, body)
}

// functionKeyPrincipal checks a function key; ok is false when token is
// not one.
func functionKeyPrincipal(secret []byte, token string, now time.Time) (p access.Principal, ok bool, err error) {
	if !strings.HasPrefix(token, functionKeyPrefix) {
		return p, false, nil
	}
	i := strings.LastIndexByte(token, '~')
	body, mac := token[:i], token[i+1:]
	if !hmac.Equal([]byte(mac), []byte(functionKeyMAC(secret, body))) {
		return p, true, errBadCredential
	}
	parts := strings.Split(strings.TrimPrefix(body, functionKeyPrefix), "~")
	if len(parts) != 4 || !domain.ValidProjectID(parts[0]) {
		return p, true, errBadCredential
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return p, true, errBadCredential
	}
	if !now.Before(time.Unix(exp, 0)) {
		return p, true, domain.Errorf(domain.KindUnauthenticated, "function key expired")
	}
	var scopes []string
	if parts[3] != "" {
		scopes = strings.Split(parts[3], ",")
	}
	scopes = slices.DeleteFunc(scopes, func(s string) bool { return !access.ValidScope(s) })
	return access.Principal{Kind: access.APIKey, Project: parts[0], ID: "function:" + parts[1], Scopes: scopes,
		ExpiresAt: time.Unix(exp, 0)}, true, nil
}
