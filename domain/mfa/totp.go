// Package mfa provides the second factor: TOTP (RFC 6238 over RFC 4226
// HOTP: HMAC-SHA-1, 6 digits, 30-second steps, one step of skew either way)
// and single-use recovery codes stored as SHA-256 hashes.
//
// It is pure: the current time and the source of randomness come in as
// arguments, nothing is stored, and it never sees the sealed form of a
// secret (sealing with the instance master key is the caller's business).
// It must never log or return a secret or code in an error.
package mfa

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

const (
	// SecretSize is the length of a TOTP secret in bytes (160 bits, the
	// HMAC-SHA-1 block-free size RFC 4226 recommends).
	SecretSize = 20
	// Digits is the length of a TOTP code.
	Digits = 6
	// Period is the length of one TOTP time step.
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one are accepted,
	// for clock drift and the time it takes to type a code.
	Skew = 1
)

// b32 is the unpadded upper-case RFC 4648 alphabet authenticators expect.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret draws a TOTP secret from rand. It returns the raw secret (to be
// sealed and stored) and its base32 form (to show the user once, for manual
// entry).
func NewSecret(rand io.Reader) (secret []byte, encoded string, err error) {
	secret = make([]byte, SecretSize)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, "", fmt.Errorf("mfa: draw totp secret: %w", err)
	}
	return secret, b32.EncodeToString(secret), nil
}

// URI returns the otpauth:// key URI an authenticator app reads from a QR
// code: otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
func URI(issuer, account string, secret []byte) string {
	label := escapeLabel(account)
	if issuer != "" {
		label = escapeLabel(issuer) + ":" + label
	}
	q := url.Values{}
	q.Set("secret", b32.EncodeToString(secret))
	if issuer != "" {
		q.Set("issuer", issuer)
	}
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(Digits))
	q.Set("period", fmt.Sprint(int(Period/time.Second)))
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// escapeLabel percent-encodes one half of the label; a colon inside it is
// encoded too, since the colon separates issuer from account.
func escapeLabel(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}

// Step returns the TOTP time step that contains t.
func Step(t time.Time) int64 {
	u := t.Unix()
	p := int64(Period / time.Second)
	if u < 0 { // floor division; only matters for times before 1970
		return (u - p + 1) / p
	}
	return u / p
}

// Code returns the TOTP code for one time step.
func Code(secret []byte, step int64) string {
	return hotp(secret, uint64(step), Digits)
}

// Verify reports whether code is the TOTP code of secret at now, give or
// take Skew steps, and returns the step it matched. A step at or before
// lastStep is refused, so an accepted code can never be accepted again: the
// caller stores the returned step as the new lastStep. The comparison is
// constant-time and every candidate step is compared, matched or not.
func Verify(secret []byte, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	if len(secret) == 0 || !IsTOTPCode(code) {
		return 0, false
	}
	current := Step(now)
	var matched int64
	found := 0
	for s := current - Skew; s <= current+Skew; s++ {
		eq := subtle.ConstantTimeCompare([]byte(hotp(secret, uint64(s), Digits)), []byte(code))
		fresh := 0
		if s > lastStep {
			fresh = 1
		}
		if eq&fresh == 1 {
			matched, found = s, 1 // the latest matching step wins
		}
	}
	return matched, found == 1
}

// IsTOTPCode reports whether code has the shape of a TOTP code (Digits
// ASCII digits), as opposed to a recovery code.
func IsTOTPCode(code string) bool {
	if len(code) != Digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// hotp is RFC 4226 §5.3: HMAC-SHA-1 of the big-endian counter, dynamic
// truncation, then the low digits in decimal, zero-padded.
func hotp(secret []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}
