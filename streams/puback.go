package streams

import (
	"encoding/json"
	"strconv"
)

// decodePubResponse decodes a publish reply. The usual one, a plain ack
// such as {"stream":"PROJECT_p", "seq":42} (perhaps with "domain" or
// "duplicate"), is read by parseAck; anything else (an error, a batch
// commit, escapes) by encoding/json, which costs a create about as much CPU
// as its envelope's encoding (measured under 64 concurrent writers).
func decodePubResponse(data []byte) (pubResponse, error) {
	if r, ok := parseAck(data); ok {
		return r, nil
	}
	var r pubResponse
	err := json.Unmarshal(data, &r)
	return r, err
}

// parseAck reads a flat JSON object whose members are only "stream" and
// "domain" (strings without escapes), "seq" (an unsigned integer) and
// "duplicate" (a boolean), each at most once. It reports false for
// anything else, leaving it to encoding/json.
func parseAck(b []byte) (pubResponse, bool) {
	var r pubResponse
	var seen [4]bool
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return r, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return r, skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return r, false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return r, false
		}
		i = skipSpace(b, i+1)
		switch key {
		case "stream", "domain":
			v, j, ok := plainString(b, i)
			if !ok {
				return r, false
			}
			if key == "stream" {
				if seen[0] {
					return r, false
				}
				seen[0], r.Stream = true, v
			} else {
				if seen[1] {
					return r, false
				}
				seen[1] = true
			}
			i = j
		case "seq":
			j := i
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if seen[2] || j == i || (b[i] == '0' && j > i+1) {
				return r, false
			}
			n, err := strconv.ParseUint(string(b[i:j]), 10, 64)
			if err != nil {
				return r, false
			}
			seen[2], r.Seq, i = true, n, j
		case "duplicate":
			switch {
			case seen[3]:
				return r, false
			case hasAt(b, i, "true"):
				r.Duplicate, i = true, i+4
			case hasAt(b, i, "false"):
				i += 5
			default:
				return r, false
			}
			seen[3] = true
		default:
			return r, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return r, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return r, skipSpace(b, i+1) == len(b)
		default:
			return r, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] made of printable ASCII without
// escapes, and returns it and the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", 0, false
		}
	}
	return "", 0, false
}

func hasAt(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}
