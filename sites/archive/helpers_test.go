package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"slices"
	"testing"

	"github.com/cairn-dev/cairn/domain/site"
)

// tent is a tar entry: a header and its data (written as is, even if it
// does not match hdr.Size: see tarBytes).
type tent struct {
	hdr  tar.Header
	data string
	lie  bool // write data raw even if its length matches hdr.Size
}

func treg(name, data string) tent {
	return tent{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}, data: data}
}

func tdir(name string) tent {
	return tent{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func ttype(name string, typ byte, link string) tent {
	return tent{hdr: tar.Header{Name: name, Typeflag: typ, Linkname: link, Mode: 0o777}}
}

// tarBytes writes an uncompressed tar. An entry whose data is shorter or
// longer than its declared size is written byte for byte, the stream
// realigned to 512 bytes afterwards: a lying header.
func tarBytes(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if h.Format == tar.FormatUnknown && !isASCII(h.Name) {
			h.Format = tar.FormatGNU // allows names PAX would refuse (not UTF-8)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if int64(len(e.data)) == h.Size && !e.lie {
			if _, err := io.WriteString(tw, e.data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Lie: flush the header alone, then write the data raw.
		tw.Flush() // reports the missing bytes; ignored
		buf.WriteString(e.data)
		if pad := buf.Len() % 512; pad != 0 {
			buf.Write(make([]byte, 512-pad))
		}
		tw = tar.NewWriter(&buf)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tgz(t testing.TB, ents ...tent) []byte { return gz(t, tarBytes(t, ents...)) }

// zent is a zip entry. With raw set, data is written with CreateRaw as the
// already compressed bytes, and hdr's sizes and CRC are kept as given.
type zent struct {
	hdr  zip.FileHeader
	data string
	raw  bool
}

func zreg(name, data string) zent {
	return zent{hdr: zip.FileHeader{Name: name, Method: zip.Deflate}, data: data}
}

func zipBytes(t testing.TB, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		var w io.Writer
		var err error
		if e.raw {
			w, err = zw.CreateRaw(&h)
		} else {
			w, err = zw.CreateHeader(&h)
		}
		if err != nil {
			t.Fatalf("zip header %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zmode(name string, mode fs.FileMode) zent {
	e := zreg(name, "target")
	e.hdr.SetMode(mode)
	return e
}

func deflate(t testing.TB, data string) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	fw.Write([]byte(data))
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zraw is an entry written raw with the given declared uncompressed size,
// deflating data (CRC of the real data).
func zraw(t testing.TB, name, data string, declared uint64) zent {
	d := deflate(t, data)
	return zent{hdr: zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE([]byte(data)),
		CompressedSize64: uint64(len(d)), UncompressedSize64: declared}, data: string(d), raw: true}
}

// zerosDeflate returns a raw deflate stream of prefix followed by
// mib MiB (at least 1) of zeros, built by repeating one compressed 1 MiB
// block of zeros: fast, however large.
func zerosDeflate(prefix []byte, mib int) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	chunk := make([]byte, 1<<20)
	fw.Write(prefix)
	fw.Write(chunk)
	fw.Flush()
	first := buf.Len()
	fw.Write(chunk)
	fw.Flush() // byte aligned; the window is all zeros on both sides
	rep := slices.Clone(buf.Bytes()[first:])
	out := slices.Clone(buf.Bytes()[:first])
	for range mib - 1 {
		out = append(out, rep...)
	}
	return append(out, 0x01, 0x00, 0x00, 0xff, 0xff) // empty final stored block
}

func zerosCRC(prefix []byte, mib int) uint32 {
	c := crc32.ChecksumIEEE(prefix)
	chunk := make([]byte, 1<<20)
	for range mib {
		c = crc32.Update(c, crc32.IEEETable, chunk)
	}
	return c
}

// tarGzBomb is a valid .tar.gz of one file of mib-1 MiB of zeros.
func tarGzBomb(t testing.TB, mib int) []byte {
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(mib-1) << 20}); err != nil {
		t.Fatal(err)
	}
	hdr := hb.Bytes() // the header block; the data, end marker and padding are zeros
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	out = append(out, zerosDeflate(hdr, mib)...)
	out = binary.LittleEndian.AppendUint32(out, zerosCRC(hdr, mib))
	return binary.LittleEndian.AppendUint32(out, uint32(len(hdr)+mib<<20))
}

// zipBomb is a valid zip of n files of mib MiB of zeros each.
func zipBomb(t testing.TB, n, mib int) []byte {
	d := string(zerosDeflate(nil, mib))
	var ents []zent
	for i := range n {
		ents = append(ents, zent{hdr: zip.FileHeader{Name: fmt.Sprintf("zeros%d.bin", i), Method: zip.Deflate,
			CRC32: zerosCRC(nil, mib), CompressedSize64: uint64(len(d)), UncompressedSize64: uint64(mib) << 20},
			data: d, raw: true})
	}
	return zipBytes(t, ents...)
}

// result is what an extraction produced.
type result struct {
	files map[string]string
	order []string
	bytes int64
}

// collector returns a put that reads everything and checks the
// package's promises about paths.
func collector(t testing.TB, res *result) PutFunc {
	res.files = map[string]string{}
	return func(p string, r io.Reader) error {
		if c, err := CleanPath(p); err != nil || c != p || !site.CleanPath(p) {
			t.Errorf("put called with invalid path %q (CleanPath: %q, %v)", p, c, err)
		}
		if _, dup := res.files[p]; dup {
			t.Errorf("put called twice with %q", p)
		}
		b, err := io.ReadAll(r)
		res.files[p] = string(b)
		res.order = append(res.order, p)
		res.bytes += int64(len(b))
		return err
	}
}

func extractTarGz(t testing.TB, b []byte, lim Limits) (result, error) {
	var res result
	err := ExtractTarGz(context.Background(), bytes.NewReader(b), lim, collector(t, &res))
	return res, err
}

func extractZip(t testing.TB, b []byte, lim Limits) (result, error) {
	var res result
	err := ExtractZip(context.Background(), bytes.NewReader(b), int64(len(b)), lim, collector(t, &res))
	return res, err
}

func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return "not *Error: " + err.Error()
}
