package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
)

var siteFiles = map[string]string{
	"index.html":       "<!doctype html><script src=/assets/app.js></script>",
	"assets/app.js":    "console.log('hi')",
	"assets/style.css": "body{}",
	"about/index.html": "<p>about</p>",
	"empty.txt":        "",
	"ünïcode/ファイル.txt": "ok",
}

var siteOrder = []string{"index.html", "assets/app.js", "assets/style.css", "about/index.html", "empty.txt", "ünïcode/ファイル.txt"}

func TestTarGz(t *testing.T) {
	big := strings.Repeat("x", 100)
	long := strings.Repeat("a/", MaxPathLen/2) + "b"
	tests := []struct {
		name   string
		ents   []tent
		raw    []byte // instead of ents
		lim    Limits
		reason string
		files  []string // when reason is ""
	}{
		{name: "site", ents: []tent{
			{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "abc"}}},
			tdir("./"), treg("index.html", siteFiles["index.html"]), tdir("assets/"),
			treg("./assets/app.js", siteFiles["assets/app.js"]), treg("assets//style.css", siteFiles["assets/style.css"]),
			treg("about/./index.html", siteFiles["about/index.html"]), treg("empty.txt", ""),
			treg("ünïcode/ファイル.txt", "ok"),
		}, files: siteOrder},
		{name: "wrapped in dist", ents: []tent{tdir("dist/"), treg("dist/index.html", "x"), treg("dist/a/b.js", "y")},
			files: []string{"dist/index.html", "dist/a/b.js"}},
		{name: "symlink outside", ents: []tent{treg("index.html", "x"), ttype("evil", tar.TypeSymlink, "../../../etc/passwd")}, reason: ReasonLink},
		{name: "symlink inside", ents: []tent{ttype("a", tar.TypeSymlink, "index.html")}, reason: ReasonLink},
		{name: "hard link", ents: []tent{treg("a", "x"), ttype("b", tar.TypeLink, "a")}, reason: ReasonLink},
		{name: "fifo", ents: []tent{ttype("p", tar.TypeFifo, "")}, reason: ReasonSpecialFile},
		{name: "char device", ents: []tent{ttype("null", tar.TypeChar, "")}, reason: ReasonSpecialFile},
		{name: "block device", ents: []tent{ttype("sda", tar.TypeBlock, "")}, reason: ReasonSpecialFile},
		{name: "contiguous file", ents: []tent{ttype("c", tar.TypeCont, "")}, reason: ReasonUnsupportedEntry},
		{name: "dotdot", ents: []tent{treg("../../etc/passwd", "root")}, reason: ReasonPathTraversal},
		{name: "dotdot inside", ents: []tent{treg("a/../b", "x")}, reason: ReasonPathTraversal},
		{name: "dotdot dir", ents: []tent{tdir("../")}, reason: ReasonPathTraversal},
		{name: "backslash dotdot", ents: []tent{treg(`..\..\x`, "x")}, reason: ReasonPathTraversal},
		{name: "absolute", ents: []tent{treg("/etc/passwd", "x")}, reason: ReasonAbsolutePath},
		{name: "absolute dir", ents: []tent{tdir("/")}, reason: ReasonAbsolutePath},
		{name: "backslash absolute", ents: []tent{treg(`\x`, "x")}, reason: ReasonAbsolutePath},
		{name: "drive letter", ents: []tent{treg(`C:\x`, "x")}, reason: ReasonAbsolutePath},
		{name: "drive relative", ents: []tent{treg(`./c:x`, "x")}, reason: ReasonAbsolutePath},
		{name: "control char", ents: []tent{treg("a\x01b", "x")}, reason: ReasonInvalidName},
		{name: "not utf8", ents: []tent{treg("a\xffb.html", "x")}, reason: ReasonNotUTF8},
		{name: "dot", ents: []tent{treg(".", "x")}, reason: ReasonInvalidName},
		{name: "trailing slash file", ents: []tent{treg(`a\`, "x")}, reason: ReasonInvalidName},
		{name: "too long", ents: []tent{treg(long, "x")}, reason: ReasonPathTooLong},
		{name: "longest", ents: []tent{treg(long[:MaxPathLen-1]+"c", "x")}, files: []string{long[:MaxPathLen-1] + "c"}},
		{name: "duplicate", ents: []tent{treg("a.txt", "1"), treg("./a.txt", "2")}, reason: ReasonDuplicatePath},
		{name: "duplicate backslash", ents: []tent{treg("a/b", "1"), treg(`a\b`, "2")}, reason: ReasonDuplicatePath},
		{name: "file then dir", ents: []tent{treg("a", "1"), treg("a/b", "2")}, reason: ReasonPathConflict},
		{name: "dir then file", ents: []tent{tdir("a/"), treg("a", "2")}, reason: ReasonPathConflict},
		{name: "implied dir then file", ents: []tent{treg("a/b", "1"), treg("a", "2")}, reason: ReasonPathConflict},
		{name: "dir twice", ents: []tent{tdir("a/"), tdir("./a"), treg("a/b", "1")}, files: []string{"a/b"}},
		{name: "too many files", ents: []tent{treg("1", ""), treg("2", ""), treg("3", ""), treg("4", "")},
			lim: Limits{MaxFiles: 3}, reason: ReasonTooManyFiles},
		{name: "many dirs", ents: []tent{tdir("a"), tdir("b"), tdir("c"), tdir("d"), tdir("e"), tdir("f"), tdir("g")},
			lim: Limits{MaxFiles: 3}, reason: ReasonTooManyFiles},
		{name: "max files", ents: []tent{treg("1", ""), treg("2", ""), treg("3", "")}, lim: Limits{MaxFiles: 3},
			files: []string{"1", "2", "3"}},
		{name: "file too large", ents: []tent{treg("a", big)}, lim: Limits{MaxFileSize: 99}, reason: ReasonFileTooLarge},
		{name: "file at limit", ents: []tent{treg("a", big)}, lim: Limits{MaxFileSize: 100}, files: []string{"a"}},
		{name: "total too large", ents: []tent{treg("a", big), treg("b", big)}, lim: Limits{MaxTotalSize: 199}, reason: ReasonTotalTooLarge},
		{name: "size lies short", ents: []tent{{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 10}, data: strings.Repeat("x", 600)}},
			reason: ReasonMalformed},
		{name: "size lies long", ents: []tent{{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 1000}, data: "x"}, treg("b", "y")},
			reason: ReasonMalformed},
		{name: "truncated", raw: gzipTruncated(t), reason: ReasonMalformed},
		{name: "bad checksum", raw: gzipBadCRC(t), reason: ReasonMalformed},
		{name: "not gzip", raw: []byte("hello, world"), reason: ReasonMalformed},
		{name: "gzip not tar", raw: gzipOf(t, strings.Repeat("hello ", 200)), reason: ReasonMalformed},
		{name: "trailing garbage in tar", raw: gzStored(t, string(tarBytes(t, treg("a", "x")))+strings.Repeat("z", 1<<20+1)),
			reason: ReasonMalformed},
		{name: "dir with data", ents: []tent{{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Size: 3}, data: "abc", lie: true}},
			reason: ReasonMalformed},
		{name: "sparse", raw: sparseTar(t), reason: ReasonUnsupportedEntry},
		{name: "empty archive", ents: nil, files: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.raw
			if b == nil {
				b = tgz(t, tt.ents...)
			}
			res, err := extractTarGz(t, b, tt.lim)
			checkResult(t, res, err, tt.reason, tt.files)
		})
	}
}

func gzipOf(t *testing.T, s string) []byte { return gz(t, []byte(s)) }

// gzStored gzips s without compressing it.
func gzStored[S string | []byte](t testing.TB, s S) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sparseTar is a PAX (GNU 1.0) sparse file of 1 MiB, all hole but one
// byte, which archive/tar cannot write.
func sparseTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	recs := map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
		"GNU.sparse.name": "holes.bin", "GNU.sparse.realsize": "1048576"}
	var pax bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		rec := " " + k + "=" + recs[k] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		fmt.Fprintf(&pax, "%d%s", n, rec)
	}
	// Written as a regular file, then retyped: tar.Writer writes no raw
	// PAX headers.
	tw.WriteHeader(&tar.Header{Name: "PaxHeaders/x", Typeflag: tar.TypeReg, Size: int64(pax.Len()), Format: tar.FormatUSTAR})
	tw.Write(pax.Bytes())
	tw.Flush()
	hdr := buf.Bytes()[:512]
	hdr[156] = tar.TypeXHeader
	copy(hdr[148:156], "        ")
	var sum int
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	// Data: the sparse map (one region: offset 1048575, 1 byte), padded to
	// a block, then the byte.
	body := "1\n1048575\n1\n"
	body += strings.Repeat("\x00", 512-len(body)) + "x"
	tw.WriteHeader(&tar.Header{Name: "GNUSparseFile.0/holes.bin", Typeflag: tar.TypeReg, Size: int64(len(body)), Format: tar.FormatUSTAR})
	tw.Write([]byte(body))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz(t, buf.Bytes())
}

func gzipTruncated(t *testing.T) []byte {
	tb := tarBytes(t, treg("a", strings.Repeat("y", 2000)))
	return gz(t, tb[:1200])
}

func gzipBadCRC(t *testing.T) []byte {
	b := tgz(t, treg("a", "x"))
	b[len(b)-6] ^= 0xff
	return b
}

func checkResult(t *testing.T, res result, err error, reason string, files []string) {
	t.Helper()
	if got := reasonOf(err); got != reason {
		t.Fatalf("reason %q, want %q (err: %v)", got, reason, err)
	}
	if err != nil {
		t.Log(err)
		if err.Error() == "" || !strings.HasPrefix(err.Error(), "archive") {
			t.Errorf("message %q", err.Error())
		}
		return
	}
	if !slices.Equal(res.order, files) {
		t.Errorf("files %q, want %q", res.order, files)
	}
	for p, data := range res.files {
		if want, ok := siteFiles[p]; ok && data != want {
			t.Errorf("%s: %q, want %q", p, data, want)
		}
	}
}

func TestZip(t *testing.T) {
	big := strings.Repeat("x", 100)
	var siteEnts []zent
	for _, p := range siteOrder {
		siteEnts = append(siteEnts, zreg(p, siteFiles[p]))
	}
	stored := zreg("stored.txt", "plain")
	stored.hdr.Method = zip.Store
	withDirs := append([]zent{zreg("assets/", "")}, siteEnts...)
	withDirs[1].hdr.Name = "./" + withDirs[1].hdr.Name
	encrypted := zraw(t, "secret.txt", "x", 1)
	encrypted.hdr.Flags |= 1
	bzip := zraw(t, "b.txt", "x", 1)
	bzip.hdr.Method = 12
	storedLie := zent{hdr: zip.FileHeader{Name: "s", Method: zip.Store, CompressedSize64: 5, UncompressedSize64: 3}, data: "hello", raw: true}
	tests := []struct {
		name   string
		ents   []zent
		raw    []byte
		lim    Limits
		reason string
		files  []string
	}{
		{name: "site", ents: siteEnts, files: siteOrder},
		{name: "site with dirs", ents: withDirs, files: siteOrder},
		{name: "stored", ents: []zent{stored}, files: []string{"stored.txt"}},
		{name: "wrapped in dist", ents: []zent{zreg("dist/", ""), zreg("dist/index.html", "x")}, files: []string{"dist/index.html"}},
		{name: "zip slip", ents: []zent{zreg("index.html", "x"), zreg("../../etc/passwd", "root")}, reason: ReasonPathTraversal},
		{name: "backslash zip slip", ents: []zent{zreg(`..\..\x`, "x")}, reason: ReasonPathTraversal},
		{name: "dotdot dir", ents: []zent{zreg("a/../", "")}, reason: ReasonPathTraversal},
		{name: "absolute", ents: []zent{zreg("/etc/passwd", "x")}, reason: ReasonAbsolutePath},
		{name: "unc", ents: []zent{zreg(`\\server\share\x`, "x")}, reason: ReasonAbsolutePath},
		{name: "drive letter", ents: []zent{zreg("C:/Windows/x", "x")}, reason: ReasonAbsolutePath},
		{name: "nul", ents: []zent{zreg("a\x00b", "x")}, reason: ReasonInvalidName},
		{name: "not utf8", ents: []zent{zreg("caf\xe9.html", "x")}, reason: ReasonNotUTF8},
		{name: "empty name", ents: []zent{zreg("", "x")}, reason: ReasonInvalidName},
		{name: "duplicate", ents: []zent{zreg("a", "1"), zreg("a", "2")}, reason: ReasonDuplicatePath},
		{name: "duplicate after cleaning", ents: []zent{zreg("a/b", "1"), zreg("./a//b", "2")}, reason: ReasonDuplicatePath},
		{name: "conflict", ents: []zent{zreg("a", "1"), zreg("a/", "")}, reason: ReasonPathConflict},
		{name: "symlink", ents: []zent{zmode("link", fs.ModeSymlink|0o777)}, reason: ReasonLink},
		{name: "fifo", ents: []zent{zmode("p", fs.ModeNamedPipe|0o644)}, reason: ReasonSpecialFile},
		{name: "device", ents: []zent{zmode("d", fs.ModeDevice|0o644)}, reason: ReasonSpecialFile},
		{name: "encrypted", ents: []zent{encrypted}, reason: ReasonEncrypted},
		{name: "bzip2 method", ents: []zent{bzip}, reason: ReasonUnsupportedCompression},
		{name: "too many files", ents: []zent{zreg("1", ""), zreg("2", ""), zreg("3", "")}, lim: Limits{MaxFiles: 2}, reason: ReasonTooManyFiles},
		{name: "too many entries", ents: []zent{zreg("1/", ""), zreg("2/", ""), zreg("3/", ""), zreg("4/", ""), zreg("5/", "")},
			lim: Limits{MaxFiles: 2}, reason: ReasonTooManyFiles},
		{name: "file too large", ents: []zent{zreg("a", big)}, lim: Limits{MaxFileSize: 99}, reason: ReasonFileTooLarge},
		{name: "size lies small, over the limit", ents: []zent{zraw(t, "a", big, 10)}, lim: Limits{MaxFileSize: 50}, reason: ReasonMalformed},
		{name: "total too large", ents: []zent{zreg("a", big), zreg("b", big)}, lim: Limits{MaxTotalSize: 150}, reason: ReasonTotalTooLarge},
		{name: "size lies small", ents: []zent{zraw(t, "a", big, 10)}, reason: ReasonMalformed},
		{name: "size lies large", ents: []zent{zraw(t, "a", big, 1000)}, reason: ReasonMalformed},
		{name: "stored size lies", ents: []zent{storedLie}, reason: ReasonMalformed},
		{name: "bad crc", ents: []zent{func() zent { e := zraw(t, "a", big, 100); e.hdr.CRC32++; return e }()}, reason: ReasonMalformed},
		{name: "corrupt deflate", ents: []zent{{hdr: zip.FileHeader{Name: "a", Method: zip.Deflate, CompressedSize64: 4, UncompressedSize64: 4},
			data: "\xff\xff\xff\xff", raw: true}}, reason: ReasonMalformed},
		{name: "overlapping entries", raw: overlapping(t), reason: ReasonMalformed},
		{name: "not zip", raw: []byte("PK\x03\x04 nope"), reason: ReasonMalformed},
		{name: "empty archive", ents: nil, files: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.raw
			if b == nil {
				b = zipBytes(t, tt.ents...)
			}
			res, err := extractZip(t, b, tt.lim)
			checkResult(t, res, err, tt.reason, tt.files)
		})
	}
}

// overlapping points the second central directory record at the first
// entry's local header: two names, one body.
func overlapping(t *testing.T) []byte {
	b := zipBytes(t, zreg("a.txt", strings.Repeat("a", 1000)), zreg("b.txt", strings.Repeat("b", 1000)))
	cd := bytes.Index(b, []byte("PK\x01\x02"))
	second := cd + 4 + bytes.Index(b[cd+4:], []byte("PK\x01\x02"))
	copy(b[second+42:second+46], []byte{0, 0, 0, 0})
	return b
}

func TestBombs(t *testing.T) {
	// 100 MiB of zeros compress to ~100 KiB; allow the size so that only the
	// ratio can stop it.
	lim := Limits{MaxFileSize: 1 << 30, MaxTotalSize: 1 << 30}
	t.Run("tar.gz", func(t *testing.T) {
		b := tarGzBomb(t, 101)
		if len(b) > 200<<10 {
			t.Fatalf("bomb is %d bytes", len(b))
		}
		res, err := extractTarGz(t, b, lim)
		if reasonOf(err) != ReasonRatioExceeded {
			t.Fatalf("err %v, want ratio_exceeded", err)
		}
		if res.bytes > 4<<20 {
			t.Errorf("read %d bytes of the bomb", res.bytes)
		}
		_, err = extractTarGz(t, b, Limits{}) // defaults: the header alone says too large
		if reasonOf(err) != ReasonFileTooLarge {
			t.Fatalf("err %v, want file_too_large", err)
		}
	})
	t.Run("zip", func(t *testing.T) {
		b := zipBomb(t, 1, 100)
		res, err := extractZip(t, b, lim)
		if reasonOf(err) != ReasonRatioExceeded {
			t.Fatalf("err %v, want ratio_exceeded", err)
		}
		if res.bytes > 4<<20 {
			t.Errorf("read %d bytes of the bomb", res.bytes)
		}
	})
	t.Run("zip within default sizes", func(t *testing.T) {
		// 10 × 20 MiB: every declared size within the defaults.
		res, err := extractZip(t, zipBomb(t, 10, 20), Limits{})
		if reasonOf(err) != ReasonRatioExceeded {
			t.Fatalf("err %v, want ratio_exceeded", err)
		}
		if res.bytes > 4<<20 {
			t.Errorf("read %d bytes of the bomb", res.bytes)
		}
	})
	t.Run("constructions are valid", func(t *testing.T) {
		// Small versions pass with a generous ratio: the bombs above are
		// stopped by the ratio, not by being malformed.
		res, err := extractTarGz(t, tarGzBomb(t, 3), Limits{MaxRatio: 1 << 20})
		if err != nil || res.bytes != 2<<20 {
			t.Fatalf("tar.gz: %v, %d bytes", err, res.bytes)
		}
		res, err = extractZip(t, zipBomb(t, 2, 2), Limits{MaxRatio: 1 << 20})
		if err != nil || res.bytes != 4<<20 {
			t.Fatalf("zip: %v, %d bytes", err, res.bytes)
		}
	})
	t.Run("compressible site passes", func(t *testing.T) {
		// Small, very compressible files (under the 1 MiB grace) are fine.
		ents := []tent{treg("a.txt", strings.Repeat(" ", 500<<10))}
		if _, err := extractTarGz(t, tgz(t, ents...), Limits{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDetect(t *testing.T) {
	ustar := make([]byte, 512)
	copy(ustar[257:], "ustar")
	tests := []struct {
		head []byte
		want Format
	}{
		{gzipOf(t, "x"), TarGz},
		{zipBytes(t, zreg("a", "b")), Zip},
		{zipBytes(t), Zip},
		{[]byte("PK"), Unknown},
		{nil, Unknown},
		{[]byte("<html>"), Unknown},
		{[]byte("BZh91AY&SY"), Unknown},
		{[]byte("\xfd7zXZ\x00\x00"), Unknown},
		{ustar, Unknown},
	}
	for _, tt := range tests {
		got, err := Detect(tt.head)
		if got != tt.want || (err != nil) != (tt.want == Unknown) {
			t.Errorf("Detect(%q) = %v, %v; want %v", tt.head[:min(len(tt.head), 8)], got, err, tt.want)
		}
		if err != nil && reasonOf(err) != ReasonUnknownFormat {
			t.Errorf("Detect(%q): %v", tt.head, err)
		}
	}
	_, err := Detect(ustar)
	if !strings.Contains(err.Error(), "gzip it") {
		t.Errorf("ustar: %v", err)
	}
}

func TestCleanPath(t *testing.T) {
	ok := map[string]string{
		"a":               "a",
		"./a":             "a",
		"a/b/c.js":        "a/b/c.js",
		`a\b`:             "a/b",
		"a//b/./c":        "a/b/c",
		"a/":              "a",
		"...":             "...",
		"..a/b..":         "..a/b..",
		"ab:c":            "ab:c",
		"1:/x":            "1:/x",
		"日本/語.html":       "日本/語.html",
		"with space.html": "with space.html",
	}
	for in, want := range ok {
		if got, err := CleanPath(in); got != want || err != nil {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                                ReasonInvalidName,
		".":                               ReasonInvalidName,
		"./":                              ReasonInvalidName,
		"..":                              ReasonPathTraversal,
		"a/..":                            ReasonPathTraversal,
		`a\..\..\b`:                       ReasonPathTraversal,
		"/a":                              ReasonAbsolutePath,
		"//a":                             ReasonAbsolutePath,
		`\a`:                              ReasonAbsolutePath,
		"c:":                              ReasonAbsolutePath,
		"Z:/a":                            ReasonAbsolutePath,
		"a\tb":                            ReasonInvalidName,
		"a\x7f":                           ReasonInvalidName,
		"a\u0085":                         ReasonInvalidName,
		"\xc0\xaf":                        ReasonNotUTF8,
		strings.Repeat("a", MaxPathLen+1): ReasonPathTooLong,
		strings.Repeat("a", 5*MaxPathLen): ReasonPathTooLong,
	}
	for in, want := range bad {
		got, err := CleanPath(in)
		if reasonOf(err) != want || got != "" {
			t.Errorf("CleanPath(%.20q) = %q, %v; want %s", in, got, err, want)
		}
	}
}

func TestCommonPrefix(t *testing.T) {
	tests := []struct {
		paths []string
		want  string
	}{
		{nil, ""},
		{[]string{"index.html"}, ""},
		{[]string{"dist/index.html"}, "dist/"},
		{[]string{"dist/index.html", "dist/assets/a.js"}, "dist/"},
		{[]string{"build/web/index.html", "build/web/a.js"}, "build/web/"},
		{[]string{"dist/index.html", "index.html"}, ""},
		{[]string{"dist/index.html", "distx/a"}, ""},
		{[]string{"a/b/c", "a/bc"}, "a/"},
	}
	for _, tt := range tests {
		if got := CommonPrefix(tt.paths); got != tt.want {
			t.Errorf("CommonPrefix(%q) = %q, want %q", tt.paths, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := extractZip(t, zipBytes(t, zreg("../../etc/passwd", "x")), Limits{})
	const want = `archive: entry "../../etc/passwd": path escapes the site root ("..")`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestPut covers the contract with put: its errors, partial reads, and
// ignored read errors.
func TestPut(t *testing.T) {
	tb := tgz(t, treg("a", "aaa"), treg("b", strings.Repeat("b", 100)))
	zb := zipBytes(t, zreg("a", "aaa"), zreg("b", strings.Repeat("b", 100)))
	run := func(t *testing.T, lim Limits, put PutFunc) (tarErr, zipErr error) {
		tarErr = ExtractTarGz(context.Background(), bytes.NewReader(tb), lim, put)
		zipErr = ExtractZip(context.Background(), bytes.NewReader(zb), int64(len(zb)), lim, put)
		return
	}
	t.Run("put error returned as is", func(t *testing.T) {
		boom := errors.New("boom")
		e1, e2 := run(t, Limits{}, func(string, io.Reader) error { return boom })
		if e1 != boom || e2 != boom {
			t.Errorf("%v, %v", e1, e2)
		}
	})
	t.Run("unread data is checked", func(t *testing.T) {
		var got []string
		e1, e2 := run(t, Limits{}, func(p string, r io.Reader) error { got = append(got, p); return nil })
		if e1 != nil || e2 != nil || !slices.Equal(got, []string{"a", "b", "a", "b"}) {
			t.Errorf("%v, %v, %q", e1, e2, got)
		}
		// put reads nothing, yet the limit is enforced (both formats, even
		// when the header lies about the size).
		lie := zipBytes(t, zraw(t, "a", strings.Repeat("x", 100), 10))
		err := ExtractZip(context.Background(), bytes.NewReader(lie), int64(len(lie)), Limits{}, func(string, io.Reader) error { return nil })
		if reasonOf(err) != ReasonMalformed {
			t.Errorf("zip lie: %v", err)
		}
	})
	// Errors found mid-read: a ratio above the limit (tar.gz), more data
	// than declared (zip).
	bomb := tarGzBomb(t, 3)
	lie := zipBytes(t, zraw(t, "a", strings.Repeat("x", 100), 10))
	midRead := func(t *testing.T, put PutFunc) (tarErr, zipErr error) {
		tarErr = ExtractTarGz(context.Background(), bytes.NewReader(bomb), Limits{MaxRatio: 2}, put)
		zipErr = ExtractZip(context.Background(), bytes.NewReader(lie), int64(len(lie)), Limits{}, put)
		return
	}
	t.Run("swallowed read error still fails", func(t *testing.T) {
		e1, e2 := midRead(t, func(p string, r io.Reader) error {
			io.Copy(io.Discard, r) // error ignored on purpose
			return nil
		})
		if reasonOf(e1) != ReasonRatioExceeded || reasonOf(e2) != ReasonMalformed {
			t.Errorf("%v, %v", e1, e2)
		}
	})
	t.Run("read error wins over put's error", func(t *testing.T) {
		e1, e2 := midRead(t, func(p string, r io.Reader) error {
			if _, err := io.ReadAll(r); err != nil {
				return errors.New("upload failed")
			}
			return nil
		})
		if reasonOf(e1) != ReasonRatioExceeded || reasonOf(e2) != ReasonMalformed {
			t.Errorf("%v, %v", e1, e2)
		}
	})
	t.Run("limits on bytes read", func(t *testing.T) {
		var n int64
		err := ExtractTarGz(context.Background(), bytes.NewReader(bomb), Limits{MaxRatio: 2}, func(p string, r io.Reader) error {
			n, _ = io.Copy(io.Discard, r)
			return nil
		})
		if reasonOf(err) != ReasonRatioExceeded || n > 1<<20+64<<10 {
			t.Errorf("%v after %d bytes", err, n)
		}
	})
}

func TestCancel(t *testing.T) {
	tb := tgz(t, treg("a", "aaa"), treg("b", "bbb"))
	zb := zipBytes(t, zreg("a", "aaa"), zreg("b", "bbb"))
	ctx, cancel := context.WithCancel(context.Background())
	var calls int
	put := func(p string, r io.Reader) error {
		calls++
		cancel()
		_, err := io.ReadAll(r)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v", err)
		}
		return nil
	}
	if err := ExtractTarGz(ctx, bytes.NewReader(tb), Limits{}, put); !errors.Is(err, context.Canceled) {
		t.Errorf("tar: %v", err)
	}
	if err := ExtractZip(ctx, bytes.NewReader(zb), int64(len(zb)), Limits{}, put); !errors.Is(err, context.Canceled) {
		t.Errorf("zip: %v", err)
	}
	if calls != 1 {
		t.Errorf("put called %d times", calls)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error)          { return 0, f.err }
func (f failingReader) ReadAt([]byte, int64) (int, error) { return 0, f.err }

func TestReaderError(t *testing.T) {
	ioErr := errors.New("connection reset")
	tb := tgz(t, treg("a", strings.Repeat("a", 10000)))
	r := io.MultiReader(bytes.NewReader(tb[:len(tb)/2]), failingReader{ioErr})
	err := ExtractTarGz(context.Background(), r, Limits{}, func(_ string, r io.Reader) error { _, err := io.ReadAll(r); return err })
	if err != ioErr {
		t.Errorf("tar: %v", err)
	}
	err = ExtractZip(context.Background(), failingReader{ioErr}, 1000, Limits{}, func(string, io.Reader) error { return nil })
	if err != ioErr {
		t.Errorf("zip: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	l := Limits{MaxFiles: -1}.WithDefaults()
	want := Limits{MaxFiles: 10_000, MaxFileSize: 25 << 20, MaxTotalSize: 250 << 20, MaxRatio: 100}
	if l != want {
		t.Errorf("%+v", l)
	}
	if got := (Limits{MaxRatio: 7}).WithDefaults().MaxRatio; got != 7 {
		t.Errorf("MaxRatio %d", got)
	}
}
