// Package indexkey encodes document values (the typed value model of
// domain/database) as order-preserving bytes for secondary index keys in
// Badger: bytes.Compare of two encodings has the sign of the comparison of
// the values, and encodings are prefix-free, so several of them
// concatenated form a composite key that sorts in tuple order, column by
// column, each column ascending or descending.
//
// It only encodes; it never decodes, reads or writes storage, nor compares
// values of different attribute types meaningfully.
//
// Layout of one value: a tag byte (nullTag for nil, valueTag otherwise)
// followed by the payload of the value:
//
//	string   bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x01
//	int64    big-endian with the sign bit flipped
//	float64  big-endian IEEE-754, negatives all bits flipped, others the sign bit
//	bool     0x00 false, 0x01 true
//	time     its Unix milliseconds as int64
//
// A descending column inverts every byte of the value's encoding, tag
// included. Inverting reverses bytes.Compare between two byte strings as
// long as neither is a prefix of the other, which prefix-freeness
// guarantees, so descending columns keep both properties.
package indexkey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Tags: nil sorts before every value (after them when descending).
const (
	nullTag  = 0x01
	valueTag = 0x02
)

// The string escape: 0x00 inside a string becomes 0x00 0xFF, and the string
// ends with 0x00 0x01. Escaped content never holds 0x00 followed by
// anything but 0xFF, so the terminator is unambiguous (prefix-free), and it
// sorts below any continuation (0x00 0xFF, or a byte > 0x00), so a string
// sorts before the strings it is a prefix of.
const (
	escByte  = 0x00
	escZero  = 0xFF
	termByte = 0x01
)

// ErrNotFinite is returned for NaN and ±Inf, which no attribute stores and
// which have no place in the order.
var ErrNotFinite = errors.New("indexkey: float is not finite")

// Append appends the encoding of v (nil, string, int64, float64, bool or
// time.Time) to dst, inverted when desc. Any other type, including arrays
// ([]any) and untyped Go numbers (int, float32), is an error naming the
// type: index keys are made of one scalar per column.
func Append(dst []byte, v any, desc bool) ([]byte, error) {
	start := len(dst)
	switch x := v.(type) {
	case nil:
		dst = append(dst, nullTag)
	case string:
		dst = appendString(append(dst, valueTag), x)
	case int64:
		dst = appendInt(append(dst, valueTag), x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, fmt.Errorf("%w: %v", ErrNotFinite, x)
		}
		dst = appendFloat(append(dst, valueTag), x)
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		dst = append(dst, valueTag, b)
	case time.Time:
		dst = appendInt(append(dst, valueTag), x.UnixMilli())
	default:
		return dst, fmt.Errorf("indexkey: unsupported value type %T", v)
	}
	if desc {
		for i := start; i < len(dst); i++ {
			dst[i] = ^dst[i]
		}
	}
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == escByte {
			dst = append(dst, escByte, escZero)
		} else {
			dst = append(dst, s[i])
		}
	}
	return append(dst, escByte, termByte)
}

// appendInt flips the sign bit so that two's complement order becomes
// unsigned order: MinInt64 → 0x00…, -1 → 0x7F FF…, 0 → 0x80 00….
func appendInt(dst []byte, n int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(n)^(1<<63))
}

// appendFloat maps IEEE-754 bits to unsigned order: positives get the sign
// bit set (above every negative, in magnitude order); negatives have all
// bits flipped (larger magnitude → smaller). -0 is encoded as +0 since the
// two are equal.
func appendFloat(dst []byte, f float64) []byte {
	if f == 0 {
		f = 0 // -0 == 0: normalise to +0
	}
	u := math.Float64bits(f)
	if u>>63 == 1 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, u)
}

// AppendSeq appends seq as 8 bytes big-endian: the tie-breaker suffix that
// makes index keys of equal values unique and orders them by sequence.
func AppendSeq(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, seq)
}

// PrefixEnd returns the smallest key greater than every key starting with
// prefix: the exclusive upper bound of a range scan over the prefix. It
// drops trailing 0xFF bytes and increments the last remaining one; nil when
// there is none (an empty or all-0xFF prefix has no upper bound: scan to
// the end).
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}
