package mfa

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"strings"
)

const (
	// RecoveryCodeCount is how many recovery codes a user gets at a time.
	RecoveryCodeCount = 10
	// recoveryCodeLen is the number of symbols in a recovery code: 10 from
	// a 31-symbol alphabet is about 49.5 bits, ample for a code that is
	// single-use, rate-limited and only tried after the password.
	recoveryCodeLen = 10
	// recoveryAlphabet leaves out 0, 1, i, l and o, which read alike.
	recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"
)

// NewRecoveryCodes draws n recovery codes from rand (n ≤ 0 means
// RecoveryCodeCount). It returns the codes, formatted xxxxx-xxxxx to show
// the user once, and their SHA-256 hashes, in the same order, to store.
func NewRecoveryCodes(rand io.Reader, n int) (codes []string, hashes [][]byte, err error) {
	if n <= 0 {
		n = RecoveryCodeCount
	}
	codes = make([]string, 0, n)
	hashes = make([][]byte, 0, n)
	seen := make(map[string]bool, n)
	for tries := 0; len(codes) < n; tries++ {
		if tries == 4*n { // only a broken source repeats itself this much
			return nil, nil, fmt.Errorf("mfa: draw recovery codes: random source keeps repeating")
		}
		raw, err := drawCode(rand)
		if err != nil {
			return nil, nil, err
		}
		if seen[raw] { // a repeat would let one code be used twice
			continue
		}
		seen[raw] = true
		codes = append(codes, raw[:recoveryCodeLen/2]+"-"+raw[recoveryCodeLen/2:])
		hashes = append(hashes, hashCode(raw))
	}
	return codes, hashes, nil
}

// drawCode draws recoveryCodeLen symbols uniformly, rejecting the bytes
// that would bias the modulo.
func drawCode(rand io.Reader) (string, error) {
	const limit = 256 - 256%len(recoveryAlphabet)
	out := make([]byte, 0, recoveryCodeLen)
	var buf [2 * recoveryCodeLen]byte
	for len(out) < recoveryCodeLen {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return "", fmt.Errorf("mfa: draw recovery code: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < recoveryCodeLen {
				out = append(out, recoveryAlphabet[int(b)%len(recoveryAlphabet)])
			}
		}
	}
	return string(out), nil
}

// HashRecoveryCode returns the stored form of a recovery code as the user
// may type it, or nil when it cannot be a recovery code.
func HashRecoveryCode(code string) []byte {
	raw, ok := normalizeRecoveryCode(code)
	if !ok {
		return nil
	}
	return hashCode(raw)
}

// UseRecoveryCode checks code against the stored hashes. On a match it
// returns the hashes without the one used (a new slice; hashes is not
// changed) and true; otherwise hashes itself and false. Case, dashes and
// spaces in code do not matter. Every hash is compared in constant time,
// whether or not an earlier one matched.
func UseRecoveryCode(hashes [][]byte, code string) (remaining [][]byte, ok bool) {
	h := HashRecoveryCode(code)
	if h == nil {
		return hashes, false
	}
	match := -1
	for i, stored := range hashes {
		if subtle.ConstantTimeCompare(stored, h) == 1 {
			match = i
		}
	}
	if match < 0 {
		return hashes, false
	}
	remaining = make([][]byte, 0, len(hashes)-1)
	remaining = append(remaining, hashes[:match]...)
	remaining = append(remaining, hashes[match+1:]...)
	return remaining, true
}

// normalizeRecoveryCode lower-cases code, drops dashes and white space, and
// reports whether what is left is recoveryCodeLen symbols of the alphabet.
func normalizeRecoveryCode(code string) (string, bool) {
	if len(code) > 4*recoveryCodeLen {
		return "", false
	}
	var b strings.Builder
	b.Grow(recoveryCodeLen)
	for _, r := range code {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		}
		if r > 0x7f || !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryCodeLen {
		return "", false
	}
	return b.String(), true
}

func hashCode(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}
