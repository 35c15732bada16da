package filestore

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	cases := []struct {
		header string
		size   int64
		want   Range
		ok     bool
		err    error
	}{
		{"", size, Range{}, false, nil},
		{"bytes=0-0", size, Range{0, 1}, true, nil},                                    // first byte
		{"bytes=0-499", size, Range{0, 500}, true, nil},                                // first half
		{"bytes=200-299", size, Range{200, 300}, true, nil},                            // middle
		{"bytes=999-999", size, Range{999, 1000}, true, nil},                           // last byte
		{"bytes=500-", size, Range{500, 1000}, true, nil},                              // open-ended
		{"bytes=-1", size, Range{999, 1000}, true, nil},                                // suffix
		{"bytes=-300", size, Range{700, 1000}, true, nil},                              // suffix
		{"bytes=-5000", size, Range{0, 1000}, true, nil},                               // suffix longer than the file
		{"bytes=900-5000", size, Range{900, 1000}, true, nil},                          // end clamped
		{"Bytes=1-2", size, Range{1, 3}, true, nil},                                    // unit is case-insensitive
		{"bytes=1-2, ", size, Range{1, 3}, true, nil},                                  // empty list element
		{"bytes= 1-2", size, Range{1, 3}, true, nil},                                   // OWS
		{"bytes=1000-", size, Range{}, false, ErrUnsatisfiable},                        // start at size
		{"bytes=5000-6000", size, Range{}, false, ErrUnsatisfiable},                    // start beyond size
		{"bytes=-0", size, Range{}, false, ErrUnsatisfiable},                           // empty suffix
		{"bytes=0-", 0, Range{}, false, ErrUnsatisfiable},                              // empty representation
		{"bytes=-5", 0, Range{}, false, ErrUnsatisfiable},                              // empty representation
		{"bytes=0-1,3-4", size, Range{}, false, nil},                                   // multi-range: not served
		{"bytes=0-1, 5000-6000", size, Range{}, false, nil},                            // multi-range
		{"bytes=5-2", size, Range{}, false, nil},                                       // invalid: a > b
		{"items=0-1", size, Range{}, false, nil},                                       // other unit
		{"bytes", size, Range{}, false, nil},                                           // no "="
		{"bytes=", size, Range{}, false, nil},                                          // no range
		{"bytes=,", size, Range{}, false, nil},                                         // no range
		{"bytes=-", size, Range{}, false, nil},                                         // neither position
		{"bytes=a-b", size, Range{}, false, nil},                                       // garbage
		{"bytes=1-2-3", size, Range{}, false, nil},                                     // garbage
		{"bytes=--5", size, Range{}, false, nil},                                       // negative
		{"bytes=-5-", size, Range{}, false, nil},                                       // negative
		{"bytes=+5-6", size, Range{}, false, nil},                                      // sign
		{"bytes=0x10-20", size, Range{}, false, nil},                                   // hex
		{"bytes=1 -2", size, Range{}, false, nil},                                      // space inside
		{"bytes=0-99999999999999999999999999", size, Range{0, 1000}, true, nil},        // huge last: clamped
		{"bytes=-99999999999999999999999999", size, Range{0, 1000}, true, nil},         // huge suffix: all
		{"bytes=99999999999999999999999999-", size, Range{}, false, ErrUnsatisfiable},  // huge first: past the end
		{"bytes=9223372036854775807-", size, Range{}, false, ErrUnsatisfiable},         // MaxInt64
		{"bytes=0-9223372036854775807", size, Range{0, 1000}, true, nil},               // MaxInt64
		{"bytes=99999999999999999999-99999999999999999998", size, Range{}, false, nil}, // a > b, both huge
		{"bytes=0000000000000000000000001-2", size, Range{1, 3}, true, nil},            // leading zeros
		{"bytes=9223372036854775806-9223372036854775807", 1 << 62, Range{}, false, ErrUnsatisfiable},
	}
	for _, c := range cases {
		got, ok, err := ParseRange(c.header, c.size)
		if got != c.want || ok != c.ok || !errors.Is(err, c.err) {
			t.Errorf("ParseRange(%q, %d) = %v, %v, %v; want %v, %v, %v", c.header, c.size, got, ok, err, c.want, c.ok, c.err)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"", "bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-2", "bytes=0-1,2-3", "items=0-1",
		"bytes=99999999999999999999-", "bytes=-99999999999999999999", "bytes=0-9223372036854775807",
		"bytes= 1-2 ,", "BYTES=1-1", "bytes=1-2-3", "bytes=--1", "bytes=\t7-",
	} {
		for _, size := range []int64{0, 1, 1000, 1 << 40} {
			f.Add(s, size)
		}
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		r, ok, err := ParseRange(header, size)
		if ok && err != nil {
			t.Fatalf("ok with error %v", err)
		}
		if !ok {
			return
		}
		if r.Start < 0 || r.Start >= r.End || r.End > size {
			t.Fatalf("ParseRange(%q, %d) = %v, outside [0, %d)", header, size, r, size)
		}
		// The range written back in its canonical forms parses to itself.
		for _, h := range []string{fmt.Sprintf("bytes=%d-%d", r.Start, r.End-1), fmt.Sprintf("bytes=%d-", r.Start)} {
			again, ok, err := ParseRange(h, size)
			want := r
			if h[len(h)-1] == '-' {
				want.End = size
			}
			if again != want || !ok || err != nil {
				t.Fatalf("%q (from %q) parses to %v, %v, %v; want %v", h, header, again, ok, err, want)
			}
		}
	})
}
