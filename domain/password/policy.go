package password

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/domain"
)

// Policy limits which passwords a project accepts. The zero value is the
// default policy: 8 to 256, no common-password check.
type Policy struct {
	// MinLen is the minimum length in characters (runes); 0 means 8.
	MinLen int
	// MaxLen is the maximum length in bytes; 0 means 256. Values below 64
	// are raised to 64, the floor Cairn guarantees to users.
	MaxLen int
	// RejectCommon rejects passwords on the bundled common-password list,
	// ignoring case.
	RejectCommon bool
}

// Length defaults and floors.
const (
	DefaultMinLen = 8
	DefaultMaxLen = 256
	MinMaxLen     = 64
)

func (p Policy) limits() (minLen, maxLen int) {
	minLen, maxLen = p.MinLen, p.MaxLen
	if minLen <= 0 {
		minLen = DefaultMinLen
	}
	if maxLen == 0 {
		maxLen = DefaultMaxLen
	}
	if maxLen < MinMaxLen {
		maxLen = MinMaxLen
	}
	return minLen, maxLen
}

// Validate reports whether the policy is a sensible project setting:
// MinLen is 0 (default) or positive, MaxLen is 0 (default) or at least 64,
// and MinLen characters can fit in MaxLen bytes.
func (p Policy) Validate() error {
	switch {
	case p.MinLen < 0:
		return domain.FieldError("min_length", "must not be negative")
	case p.MaxLen != 0 && p.MaxLen < MinMaxLen:
		return domain.FieldError("max_length", "must be at least %d bytes", MinMaxLen)
	}
	if minLen, maxLen := p.limits(); minLen > maxLen {
		return domain.FieldError("min_length", "%d is more than the maximum length of %d", minLen, maxLen)
	}
	return nil
}

// Check returns a KindInvalid *domain.Error on field "password" when the
// password breaks the policy: not valid UTF-8, fewer than MinLen characters,
// more than MaxLen bytes, or (with RejectCommon) a common password.
func (p Policy) Check(password string) error {
	minLen, maxLen := p.limits()
	switch {
	case !utf8.ValidString(password):
		return domain.FieldError("password", "must be valid UTF-8 text")
	case len(password) > maxLen:
		return domain.FieldError("password", "must be at most %d bytes long", maxLen)
	case utf8.RuneCountInString(password) < minLen:
		return domain.FieldError("password", "must be at least %d characters long", minLen)
	case p.RejectCommon && IsCommon(password):
		return domain.FieldError("password", "is too common; choose one that is harder to guess")
	}
	return nil
}

// commonPasswords is the bundled list: see the header of the file for its
// source and licence.
//
//go:embed common_passwords.txt
var commonPasswords string

var commonSet = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for line := range strings.Lines(commonPasswords) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[strings.ToLower(line)] = struct{}{}
	}
	return set
})

// IsCommon reports whether password, ignoring case, is on the bundled list
// of the 10,000 most common passwords.
func IsCommon(password string) bool {
	_, ok := commonSet()[strings.ToLower(password)]
	return ok
}
