package archive

import (
	"archive/zip"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// ExtractZip reads a zip archive of size bytes from ra and calls put for
// each regular file, in archive (central directory) order, with its cleaned
// path and a reader of exactly its bytes. Every entry's header is checked
// before put is first called; directories are skipped (their names are
// still checked); links, special files, encrypted entries and compression
// methods other than store and deflate are rejected, as are entries whose
// data overlap (a known zip bomb construction). put's work is provisional
// until ExtractZip returns nil. It returns an *Error for anything wrong with
// the archive, ctx's error if cancelled, ra's error if reading fails, or
// put's error.
func ExtractZip(ctx context.Context, ra io.ReaderAt, size int64, lim Limits, put PutFunc) error {
	x := newExtractor(ctx, lim)
	if err := ctx.Err(); err != nil {
		return err
	}
	zra := &readerAt{x: x, r: ra, size: size}
	zr, err := zip.NewReader(zra, size)
	if err != nil && (zr == nil || !errors.Is(err, zip.ErrInsecurePath)) {
		return x.fail(err, "")
	}
	if n := len(zr.File); n > x.lim.maxEntries() {
		return &Error{Reason: ReasonTooManyFiles, Detail: fmt.Sprintf("%d entries, at most %d", n, x.lim.maxEntries())}
	}

	type item struct {
		f          *zip.File
		path       string
		start, end int64
	}
	var items []item
	var declared int64
	for i, f := range zr.File {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		name, mode := f.Name, f.Mode()
		dir := mode.IsDir() || strings.HasSuffix(name, "/")
		switch {
		case mode&fs.ModeSymlink != 0:
			return &Error{Reason: ReasonLink, Path: name}
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			return &Error{Reason: ReasonSpecialFile, Path: name}
		case f.Flags&0x1 != 0:
			return &Error{Reason: ReasonEncrypted, Path: name}
		case !dir && f.Method != zip.Store && f.Method != zip.Deflate:
			return &Error{Reason: ReasonUnsupportedCompression, Path: name, Detail: fmt.Sprintf("method %d; use deflate or store", f.Method)}
		}
		p, err := x.entry(name, dir)
		if err != nil {
			return err
		}
		if dir {
			continue
		}
		if f.UncompressedSize64 > uint64(x.lim.MaxFileSize) {
			return &Error{Reason: ReasonFileTooLarge, Path: name, Detail: fmt.Sprintf("%d bytes, at most %d", f.UncompressedSize64, x.lim.MaxFileSize)}
		}
		if declared += int64(f.UncompressedSize64); declared > x.lim.MaxTotalSize {
			return &Error{Reason: ReasonTotalTooLarge, Path: name, Detail: fmt.Sprintf("more than %d bytes", x.lim.MaxTotalSize)}
		}
		if f.Method == zip.Store && f.CompressedSize64 != f.UncompressedSize64 {
			return &Error{Reason: ReasonMalformed, Path: name, Detail: "stored entry with different compressed and uncompressed sizes"}
		}
		start, err := f.DataOffset()
		if err != nil {
			return x.fail(err, name)
		}
		if f.CompressedSize64 > uint64(size) || start > size-int64(f.CompressedSize64) {
			return &Error{Reason: ReasonMalformed, Path: name, Detail: "data extends past the end of the archive"}
		}
		items = append(items, item{f: f, path: p, start: start, end: start + int64(f.CompressedSize64)})
	}
	if err := x.conflicts(); err != nil {
		return err
	}
	byStart := slices.Clone(items)
	slices.SortFunc(byStart, func(a, b item) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(byStart); i++ {
		if byStart[i].start < byStart[i-1].end {
			return &Error{Reason: ReasonMalformed, Path: byStart[i].f.Name,
				Detail: fmt.Sprintf("data overlaps %q", byStart[i-1].f.Name)}
		}
	}

	// The ratio's denominator: archive bytes actually read from here on (no
	// byte is read twice: entries do not overlap).
	zra.n = 0
	x.compressed = func() int64 { return min(zra.n, size) }
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		rc, err := it.f.Open()
		if err != nil {
			return x.fail(err, it.f.Name)
		}
		e := &entryReader{x: x, src: rc, name: it.f.Name, declared: int64(it.f.UncompressedSize64), ratio: true}
		err = e.run(it.path, put)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// readerAt counts the bytes read through it, records the caller's I/O
// errors and checks for cancellation.
type readerAt struct {
	x    *extractor
	r    io.ReaderAt
	size int64
	n    int64 // not atomic: entries are read one at a time
}

func (r *readerAt) ReadAt(p []byte, off int64) (int, error) {
	if err := r.x.ctx.Err(); err != nil {
		return 0, err
	}
	// Offsets come from the archive: out of range is its fault, not the
	// reader's.
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	if int64(len(p)) > r.size-off {
		n, err := r.ReadAt(p[:r.size-off], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	n, err := r.r.ReadAt(p, off)
	r.n += int64(n)
	if err != nil && err != io.EOF && r.x.ioErr == nil {
		r.x.ioErr = err
	}
	return n, err
}
