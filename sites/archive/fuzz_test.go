package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// fuzzLimits are small, so that the fuzzer can reach every limit.
var fuzzLimits = Limits{MaxFiles: 8, MaxFileSize: 4 << 10, MaxTotalSize: 16 << 10, MaxRatio: 100}

// fuzzPut checks what the package promises about every call of put, and
// about the bytes it yields.
func fuzzPut(t *testing.T) (PutFunc, *result) {
	var res result
	seen := map[string]bool{}
	put := func(p string, r io.Reader) error {
		if c, err := CleanPath(p); err != nil || c != p {
			t.Fatalf("put called with invalid path %q (%v)", p, err)
		}
		if seen[p] {
			t.Fatalf("put called twice with %q", p)
		}
		seen[p] = true
		res.order = append(res.order, p)
		if len(res.order) > fuzzLimits.MaxFiles {
			t.Fatalf("%d files", len(res.order))
		}
		n, err := io.Copy(io.Discard, r)
		if n > fuzzLimits.MaxFileSize {
			t.Fatalf("%q: %d bytes", p, n)
		}
		if res.bytes += n; res.bytes > fuzzLimits.MaxTotalSize {
			t.Fatalf("%d bytes in all", res.bytes)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("read %q: not an *Error: %v", p, err)
			}
		}
		return err
	}
	return put, &res
}

func checkFuzzErr(t *testing.T, err error) {
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %v", err)
	}
	if e.Reason == "" || reasonText[e.Reason] == "" || !strings.HasPrefix(e.Error(), "archive: ") {
		t.Fatalf("bad error %#v", e)
	}
}

// seeds are archives of the table tests.
func tarSeeds(t testing.TB) [][]byte {
	big := strings.Repeat("x", 5000)
	sets := [][]tent{
		{tdir("./"), treg("index.html", "<p>hi"), tdir("assets/"), treg("assets/app.js", "x()")},
		{ttype("evil", tar.TypeSymlink, "../../etc/passwd")},
		{treg("../../etc/passwd", "root")},
		{treg("/abs", "x"), treg(`..\..\x`, "y")},
		{treg("a", "1"), treg("./a", "2")},
		{treg("a", big)},
		{treg("1", ""), treg("2", ""), treg("3", ""), treg("4", ""), treg("5", ""), treg("6", ""), treg("7", ""), treg("8", ""), treg("9", "")},
		{{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 10}, data: strings.Repeat("x", 600)}, treg("b", "y")},
	}
	var out [][]byte
	for _, s := range sets {
		tb := tarBytes(t, s...)
		out = append(out, append([]byte{0}, tb...)) // gzipped by the harness
		out = append(out, append([]byte{1}, gz(t, tb)...))
	}
	out = append(out, append([]byte{1}, tarGzBomb(t, 3)...))
	return out
}

func zipSeeds(t testing.TB) [][]byte {
	big := strings.Repeat("x", 5000)
	sets := [][]zent{
		{zreg("index.html", "<p>hi"), zreg("assets/", ""), zreg("assets/app.js", "x()")},
		{zreg("../../etc/passwd", "root")},
		{zreg("/abs", "x"), zreg(`..\..\x`, "y")},
		{zreg("a", "1"), zreg("a", "2")},
		{zreg("a", big)},
		{zraw(t, "a", "hello hello hello", 5)},
		{zmode("link", fs.ModeSymlink|0o777)},
	}
	var out [][]byte
	for _, s := range sets {
		out = append(out, zipBytes(t, s...))
	}
	return append(out, zipBomb(t, 2, 1))
}

// FuzzExtractTarGz feeds arbitrary bytes: gzipped by the harness (stored,
// uncompressed) when the first byte is even, so that the fuzzer can work on
// the tar structure; as is otherwise.
func FuzzExtractTarGz(f *testing.F) {
	for _, s := range tarSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		in := data[1:]
		if data[0]&1 == 0 {
			in = gzStored(t, in) // cheap: the fuzzer works on the tar
		}
		put, _ := fuzzPut(t)
		checkFuzzErr(t, ExtractTarGz(context.Background(), bytes.NewReader(in), fuzzLimits, put))
	})
}

func FuzzExtractZip(f *testing.F) {
	for _, s := range zipSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		put, _ := fuzzPut(t)
		checkFuzzErr(t, ExtractZip(context.Background(), bytes.NewReader(data), int64(len(data)), fuzzLimits, put))
	})
}
