package api

import (
	"fmt"
	"testing"
)

func TestContentRange(t *testing.T) {
	cases := []struct {
		in                    string
		offset, length, total int64
		ok                    bool
	}{
		{"bytes 0-0/1", 0, 1, 1, true},
		{"bytes 0-5242879/12000000", 0, 5242880, 12000000, true},
		{"bytes 10485760-11999999/12000000", 10485760, 1514240, 12000000, true},
		{"bytes 5-4/10", 0, 0, 0, false},                   // last before first
		{"bytes 0-10/10", 0, 0, 0, false},                  // last past the end
		{"bytes 0-1/*", 0, 0, 0, false},                    // unknown total
		{"bytes */10", 0, 0, 0, false},                     // unsatisfied-range form
		{"items 0-1/2", 0, 0, 0, false},                    // another unit
		{"bytes -1-2/3", 0, 0, 0, false},                   // negative
		{"bytes 0-1/99999999999999999999", 0, 0, 0, false}, // overflow
	}
	for _, c := range cases {
		off, n, total, err := contentRange(c.in)
		if (err == nil) != c.ok || (c.ok && (off != c.offset || n != c.length || total != c.total)) {
			t.Errorf("%q: %d %d %d %v", c.in, off, n, total, err)
		}
	}
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1", "bytes 1-2/3", "bytes 0-9223372036854775806/9223372036854775807", "bytes 9-9/9", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		off, n, total, err := contentRange(s)
		if err != nil {
			return
		}
		if off < 0 || n < 1 || total < 1 || off > total-n {
			t.Fatalf("%q: offset %d, length %d, total %d", s, off, n, total)
		}
		if back := fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, total); back != s {
			if off2, n2, t2, err := contentRange(back); err != nil || off2 != off || n2 != n || t2 != total {
				t.Fatalf("%q → %q does not parse back", s, back)
			}
		}
	})
}
