package password

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
)

func TestPolicyCheck(t *testing.T) {
	strong := "vermilion-otter-cascade"
	for _, tc := range []struct {
		name   string
		policy Policy
		pw     string
		want   string // substring of the error; "" means accepted
	}{
		{"default ok", Policy{}, strong, ""},
		{"default exactly 8", Policy{}, "abcdefgh", ""},
		{"default 7", Policy{}, "abcdefg", "at least 8 characters"},
		{"empty", Policy{}, "", "at least 8 characters"},
		{"runes not bytes: 8 runes", Policy{}, "ééééééé✓", ""},
		{"runes not bytes: 7 runes 14 bytes", Policy{}, "ééééééé", "at least 8 characters"},
		{"custom min", Policy{MinLen: 12}, "abcdefghijk", "at least 12 characters"},
		{"custom min ok", Policy{MinLen: 12}, "abcdefghijkl", ""},
		{"min 1", Policy{MinLen: 1}, "x", ""},
		{"default max 256 ok", Policy{}, strings.Repeat("a", 256), ""},
		{"default max 257", Policy{}, strings.Repeat("a", 257), "at most 256 bytes"},
		{"max counts bytes", Policy{MaxLen: 64}, strings.Repeat("é", 33), "at most 64 bytes"},
		{"max 64 ok", Policy{MaxLen: 64}, strings.Repeat("a", 64), ""},
		{"max below floor raised to 64", Policy{MaxLen: 10}, strings.Repeat("a", 64), ""},
		{"max below floor still caps at 64", Policy{MaxLen: 10}, strings.Repeat("a", 65), "at most 64 bytes"},
		{"max 1024", Policy{MaxLen: 1024}, strings.Repeat("a", 1000), ""},
		{"invalid utf8", Policy{}, "abcdefgh\xff", "valid UTF-8"},
		{"truncated utf8", Policy{}, "abcdefgh\xc3", "valid UTF-8"},
		{"common allowed by default", Policy{}, "password", ""},
		{"common rejected", Policy{RejectCommon: true}, "password", "too common"},
		{"common case-insensitive", Policy{RejectCommon: true}, "PassWord", "too common"},
		{"common 12345678", Policy{RejectCommon: true}, "12345678", "too common"},
		{"common qwertyuiop", Policy{RejectCommon: true}, "QWERTYUIOP", "too common"},
		{"common iloveyou", Policy{RejectCommon: true}, "iloveyou", "too common"},
		{"uncommon accepted", Policy{RejectCommon: true}, strong, ""},
		{"length checked before commonness", Policy{RejectCommon: true}, "123456", "at least 8 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.pw)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			de, ok := errors.AsType[*domain.Error](err)
			if !ok || de.Kind != domain.KindInvalid || de.Field != "password" || !strings.Contains(de.Message, tc.want) {
				t.Fatalf("Check = %#v, want KindInvalid on password mentioning %q", err, tc.want)
			}
			if strings.Contains(de.Message, tc.pw) && tc.pw != "" {
				t.Fatalf("error %q echoes the password", err)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		field  string // "" means valid
	}{
		{"zero", Policy{}, ""},
		{"typical", Policy{MinLen: 10, MaxLen: 128, RejectCommon: true}, ""},
		{"negative min", Policy{MinLen: -1}, "min_length"},
		{"max below 64", Policy{MaxLen: 63}, "max_length"},
		{"min above max", Policy{MinLen: 100, MaxLen: 64}, "min_length"},
		{"min above default max", Policy{MinLen: 300}, "min_length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if de, ok := errors.AsType[*domain.Error](err); !ok || de.Kind != domain.KindInvalid || de.Field != tc.field {
				t.Fatalf("Validate = %#v, want KindInvalid on %s", err, tc.field)
			}
		})
	}
}

func TestCommonList(t *testing.T) {
	set := commonSet()
	if n := len(set); n != 10000 {
		t.Fatalf("common list has %d entries, want 10000", n)
	}
	for pw := range set {
		if pw != strings.ToLower(pw) || strings.TrimSpace(pw) != pw || pw == "" || strings.HasPrefix(pw, "#") {
			t.Fatalf("bad entry %q", pw)
		}
	}
	for _, pw := range []string{"123456", "password", "qwerty", "letmein", "trustno1", "Dragon", "MONKEY"} {
		if !IsCommon(pw) {
			t.Errorf("IsCommon(%q) = false", pw)
		}
	}
	for _, pw := range []string{"vermilion-otter-cascade", "", "# The 10,000 most frequent"} {
		if IsCommon(pw) {
			t.Errorf("IsCommon(%q) = true", pw)
		}
	}
}
