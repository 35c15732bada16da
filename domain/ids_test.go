package domain

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidIDsMatchPatterns compares ValidProjectID and ValidResourceID
// with their patterns on edge cases and random strings.
func TestValidIDsMatchPatterns(t *testing.T) {
	project, resource := regexp.MustCompile(ProjectIDPattern), regexp.MustCompile(ResourceIDPattern)
	ids := []string{"", "a", "A", "-", "_", "a-", "a_", "-a", "_a", "0", "a.b", "a b", "a\n", "\na", "é", "ab\x00",
		strings.Repeat("a", 36), strings.Repeat("a", 37), "x" + strings.Repeat("-", 35), "unique()", "Zz9_-"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "azAZ09-_.:/ \n\x00é"
	for range 20_000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		ids = append(ids, string(b))
	}
	for _, id := range ids {
		if got, want := ValidProjectID(id), project.MatchString(id); got != want {
			t.Fatalf("ValidProjectID(%q) = %v, pattern says %v", id, got, want)
		}
		if got, want := ValidResourceID(id), resource.MatchString(id); got != want {
			t.Fatalf("ValidResourceID(%q) = %v, pattern says %v", id, got, want)
		}
	}
}
