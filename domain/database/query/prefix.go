package query

import "regexp/syntax"

// LiteralPrefix returns the prefix every string matching f starts with,
// for a validated startsWith with one value or a regex anchored at the
// start of the text ("^abc…", case-sensitive): an index on the attribute
// can then answer f with the range [prefix, PrefixEnd(prefix)). ok is
// false when f has no such prefix (or it is empty).
func LiteralPrefix(f Filter) (prefix string, ok bool) {
	switch f.Op {
	case OpStartsWith:
		if len(f.Values) != 1 {
			return "", false
		}
		s, _ := f.Values[0].(string)
		return s, s != ""
	case OpRegex:
		if len(f.Values) != 1 {
			return "", false
		}
		p, _ := f.Values[0].(string)
		if len(p) > MaxRegexBytes {
			return "", false
		}
		re, err := syntax.Parse(p, syntax.Perl)
		if err != nil {
			return "", false
		}
		re = re.Simplify()
		if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
			return "", false
		}
		lit := re.Sub[1]
		if lit.Op != syntax.OpLiteral || lit.Flags&syntax.FoldCase != 0 {
			return "", false
		}
		return string(lit.Rune), len(lit.Rune) > 0
	}
	return "", false
}

// PrefixEnd returns the smallest string above every string that starts
// with prefix (bytewise), and false when there is none (prefix is all
// 0xFF bytes).
func PrefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
