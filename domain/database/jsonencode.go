package database

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendDataJSON appends data as EncodeData writes it (encoding/json of
// ToJSON(data), HTML left unescaped) without reflection: encoding/json
// walks a map by reflection, copying every key and value, which was most
// of EncodeData's cost on a create. It knows the values Normalize makes —
// null, booleans, strings, int/int64, finite float64, times, and arrays
// and objects of them — and strings that need no escape; for anything
// else it returns false and EncodeData takes encoding/json's path
// (TestEncodeDataByHandAgrees: whatever is written here, encoding/json
// writes the same bytes).
func appendDataJSON(b []byte, data map[string]any) ([]byte, bool) {
	return appendObjectJSON(b, data, 0)
}

func appendObjectJSON(b []byte, data map[string]any, depth int) ([]byte, bool) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys) // encoding/json's order: bytewise
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendPlainString(b, k); !ok {
			return nil, false
		}
		b = append(b, ':')
		if b, ok = appendValueJSON(b, data[k], depth+1); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}

// maxEncodeDepth bounds the nesting written by hand.
const maxEncodeDepth = 32

func appendValueJSON(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxEncodeDepth {
		return nil, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, x), true
	case string:
		return appendPlainString(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case float64:
		return AppendJSONFloat(b, x)
	case time.Time:
		return appendPlainString(b, x.UTC().Format(DatetimeLayout))
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValueJSON(b, e, depth+1); !ok {
				return nil, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		return appendObjectJSON(b, x, depth+1)
	}
	return nil, false
}

// AppendJSONFloat is encoding/json's float64 encoding (protojson's too:
// an exponent below 1e-6 and from 1e21); false, b unchanged, for NaN and
// the infinities, which both refuse.
func AppendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendPlainString quotes s if encoding/json would write it unescaped:
// valid UTF-8 without control characters, quotes, backslashes, U+2028 or
// U+2029.
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' {
				return nil, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return nil, false
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
