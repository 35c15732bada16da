package query

import "testing"

func TestLiteralPrefix(t *testing.T) {
	tests := []struct {
		f    Filter
		want string
		ok   bool
	}{
		{f(OpStartsWith, "name", "Al"), "Al", true},
		{f(OpStartsWith, "name", "Al", "Bo"), "", false}, // any of two prefixes
		{f(OpStartsWith, "name", ""), "", false},
		{f(OpRegex, "name", "^Ali.*e$"), "Ali", true},
		{f(OpRegex, "name", "^ab|^ac"), "", false}, // an alternation: not a literal
		{f(OpRegex, "name", "^é[0-9]"), "é", true},
		{f(OpRegex, "name", "Ali"), "", false},      // unanchored
		{f(OpRegex, "name", "(?i)^ali"), "", false}, // case-folded
		{f(OpRegex, "name", "(?m)^ali"), "", false}, // any line
		{f(OpRegex, "name", "^[ab]c"), "", false},
		{f(OpRegex, "name", "^("), "", false},
		{f(OpContains, "name", "x"), "", false},
	}
	for _, tt := range tests {
		got, ok := LiteralPrefix(tt.f)
		if got != tt.want || ok != tt.ok {
			t.Errorf("LiteralPrefix(%s %v) = %q, %v; want %q, %v", tt.f.Op, tt.f.Values, got, ok, tt.want, tt.ok)
		}
	}
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{{"ab", "ac", true}, {"a\xff", "b", true}, {"\xff\xff", "", false}} {
		if got, ok := PrefixEnd(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("PrefixEnd(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
