package database

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of single values.
const (
	// MaxArrayElements is the most elements an array attribute's value holds.
	MaxArrayElements = 1000
	// MaxEmailLength is the longest email address (RFC 5321's path limit).
	MaxEmailLength = 254
	// MaxURLLength is the longest URL.
	MaxURLLength = 2048
)

// Coerce checks v against attribute a and returns its typed representation
// (see the package comment). v is a value as it comes from JSON or a
// protobuf Struct (float64, string, bool, nil, []any, map[string]any) or an
// already typed value (int64, int, time.Time, …). nil returns nil: whether
// a value may be absent is the caller's decision (Schema.Normalize).
//
// An array attribute takes a []any whose elements are each coerced; null
// elements are rejected. Errors are plain words naming the constraint, such
// as "must be an integer between 0 and 150; got 151"; the caller adds the
// field.
//
// Coerce trusts a as ValidateAttribute leaves it, with one tolerance for
// attributes built by hand: zero integer or float bounds (both zero) mean
// the default range, and a string Size of 0 means MaxStringSize.
func Coerce(a Attribute, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if !a.Array {
		return coerceScalar(a, v)
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be an array; got %s", describe(v))
	}
	if len(arr) > MaxArrayElements {
		return nil, fmt.Errorf("must be an array of at most %d elements; got %d", MaxArrayElements, len(arr))
	}
	out := make([]any, len(arr))
	for i, e := range arr {
		if e == nil {
			return nil, fmt.Errorf("element %d: must not be null", i)
		}
		c, err := coerceScalar(a, e)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = c
	}
	if a.Type == TypeRelationship {
		return out, uniqueIDs(out)
	}
	return out, nil
}

func coerceScalar(a Attribute, v any) (any, error) {
	switch a.Type {
	case TypeString:
		return coerceString(a, v)
	case TypeInteger:
		return coerceInteger(a, v)
	case TypeFloat:
		return coerceFloat(a, v)
	case TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("must be a boolean; got %s", describe(v))
	case TypeDatetime:
		return coerceDatetime(v)
	case TypeEmail:
		return coerceEmail(v)
	case TypeURL:
		return coerceURL(v)
	case TypeIP:
		return coerceIP(v)
	case TypeEnum:
		return coerceEnum(a, v)
	case TypeRelationship:
		return coerceRelated(v)
	case TypePoint:
		p, err := CoercePoint(v)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("has unknown type %q", a.Type)
}

func coerceString(a Attribute, v any) (any, error) {
	size := a.Size
	if size <= 0 {
		size = MaxStringSize
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("must be a string of at most %d characters; got %s", size, describe(v))
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > size {
		return nil, fmt.Errorf("must be a string of at most %d characters; got %d", size, n)
	}
	return s, nil
}

// intBounds returns a's integer range, the default one for zero bounds.
func intBounds(a Attribute) (lo, hi int64) {
	if a.IntMin == 0 && a.IntMax == 0 {
		return MinSafeInteger, MaxSafeInteger
	}
	return a.IntMin, a.IntMax
}

func coerceInteger(a Attribute, v any) (any, error) {
	lo, hi := intBounds(a)
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x != math.Trunc(x) {
			return nil, fmt.Errorf("must be an integer; got %s", formatFloat(x))
		}
		// 2^63 is the first float64 above MaxInt64; converting it (or
		// anything larger) would overflow.
		if x >= 1<<63 || x < -(1<<63) {
			return nil, fmt.Errorf("must be an integer between %d and %d; got %s", lo, hi, formatFloat(x))
		}
		n = int64(x)
	case json.Number:
		i, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("must be an integer between %d and %d; got %s", lo, hi, x)
		}
		n = i
	default:
		return nil, fmt.Errorf("must be an integer; got %s", describe(v))
	}
	if n < lo || n > hi {
		return nil, fmt.Errorf("must be an integer between %d and %d; got %d", lo, hi, n)
	}
	return n, nil
}

// floatBounds returns a's float range, the default one for zero bounds.
func floatBounds(a Attribute) (lo, hi float64) {
	if a.FloatMin == 0 && a.FloatMax == 0 {
		return -math.MaxFloat64, math.MaxFloat64
	}
	return a.FloatMin, a.FloatMax
}

// floatOf reads a JSON or Go number as a float64; ok is false for
// anything else (a json.Number that does not parse included).
func floatOf(v any) (f float64, ok bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case json.Number:
		p, err := strconv.ParseFloat(string(x), 64)
		return p, err == nil
	}
	return 0, false
}

func coerceFloat(a Attribute, v any) (any, error) {
	f, ok := floatOf(v)
	switch n, isNumber := v.(json.Number); {
	case !ok && isNumber:
		return nil, fmt.Errorf("must be a finite number; got %s", n)
	case !ok:
		return nil, fmt.Errorf("must be a number; got %s", describe(v))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("must be a finite number; got %s", formatFloat(f))
	}
	lo, hi := floatBounds(a)
	if f < lo || f > hi {
		return nil, fmt.Errorf("must be a number between %s and %s; got %s", formatFloat(lo), formatFloat(hi), formatFloat(f))
	}
	return f, nil
}

func coerceDatetime(v any) (any, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		// time.RFC3339 also accepts fractional seconds when parsing.
		p, err := time.Parse(time.RFC3339, x)
		if err != nil {
			return nil, fmt.Errorf("must be an RFC 3339 datetime such as 2024-01-31T12:00:00.000Z; got %q", truncate(x))
		}
		t = p
	default:
		return nil, fmt.Errorf("must be an RFC 3339 datetime string; got %s", describe(v))
	}
	t = t.UTC().Truncate(DatetimePrecision)
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("must be a datetime between years 0001 and 9999 in UTC; got year %d", y)
	}
	return t, nil
}

func coerceEmail(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("must be an email address; got %s", describe(v))
	}
	if len(s) > MaxEmailLength {
		return nil, fmt.Errorf("must be an email address of at most %d characters; got %d", MaxEmailLength, len(s))
	}
	// A bare address only: no display name, angle brackets, comments or
	// surrounding space, all of which make Address differ from s.
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return nil, fmt.Errorf("must be an email address such as name@example.com; got %q", truncate(s))
	}
	return s, nil
}

func coerceURL(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("must be a URL; got %s", describe(v))
	}
	if len(s) > MaxURLLength {
		return nil, fmt.Errorf("must be a URL of at most %d characters; got %d", MaxURLLength, len(s))
	}
	bad := fmt.Errorf("must be an absolute http or https URL; got %q", truncate(s))
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, bad
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "" {
		return nil, bad
	}
	return s, nil
}

func coerceIP(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("must be an IPv4 or IPv6 address; got %s", describe(v))
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return nil, fmt.Errorf("must be an IPv4 or IPv6 address without zone; got %q", truncate(s))
	}
	return s, nil
}

func coerceEnum(a Attribute, v any) (any, error) {
	s, ok := v.(string)
	if ok {
		for _, e := range a.Elements {
			if e == s {
				return s, nil
			}
		}
	}
	var list strings.Builder
	for i, e := range a.Elements {
		if i == 10 {
			fmt.Fprintf(&list, ", … (%d more)", len(a.Elements)-i)
			break
		}
		if i > 0 {
			list.WriteString(", ")
		}
		list.WriteString(strconv.Quote(e))
	}
	if !ok {
		return nil, fmt.Errorf("must be one of %s; got %s", list.String(), describe(v))
	}
	return nil, fmt.Errorf("must be one of %s; got %q", list.String(), truncate(s))
}

// describe names a value's JSON kind for messages; it never echoes
// values of the wrong kind in full.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, float32, int, int32, int64, json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case time.Time:
		return "a datetime"
	default:
		return fmt.Sprintf("a value of type %T", x)
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// truncate shortens s for echoing it in a message.
func truncate(s string) string {
	const maxLen = 64
	if len(s) <= maxLen {
		return s
	}
	cut := maxLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ToJSON returns v, a typed value, in the form output encoders want:
// datetimes as strings in DatetimeLayout (UTC), arrays and objects
// converted element by element, everything else (int64 included) as is.
func ToJSON(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(DatetimeLayout)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ToJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ToJSON(e)
		}
		return out
	}
	return v
}
