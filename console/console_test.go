package console

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/cairn-dev/cairn/domain/access"
)

// TestScopesMatchAccess: the key screen's scopes picker offers exactly the
// scopes a key may hold.
func TestScopesMatchAccess(t *testing.T) {
	src, err := os.ReadFile("src/screens/keys.tsx")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)export const knownScopes = \[(.*?)\];`).FindSubmatch(src)
	if block == nil {
		t.Fatal("knownScopes not found in src/screens/keys.tsx")
	}
	var got, want []string
	for _, m := range regexp.MustCompile(`"([a-z.]+)"`).FindAllSubmatch(block[1], -1) {
		got = append(got, string(m[1]))
	}
	for _, s := range access.Scopes {
		want = append(want, string(s))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the console's scopes picker: %v\ndomain/access.Scopes: %v", got, want)
	}
}
