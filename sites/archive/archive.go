package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Format is an archive format.
type Format int

// Formats.
const (
	Unknown Format = iota
	TarGz
	Zip
)

func (f Format) String() string {
	switch f {
	case TarGz:
		return "tar.gz"
	case Zip:
		return "zip"
	}
	return "unknown"
}

// Detect sniffs an archive's format from its first bytes (4 are enough; pass
// up to 512 for a better message on unsupported formats). gzip data is
// assumed to be a gzipped tar. It returns an *Error with Reason
// ReasonUnknownFormat for anything else.
func Detect(head []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return TarGz, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		// Local file header, or the end record of an empty archive.
		return Zip, nil
	}
	detail := "expected a .tar.gz or .zip archive"
	switch {
	case len(head) < 4:
		detail = "too short to be a .tar.gz or .zip archive"
	case bytes.HasPrefix(head, []byte("BZh")):
		detail = "bzip2 is not supported; upload a .tar.gz or .zip archive"
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		detail = "xz is not supported; upload a .tar.gz or .zip archive"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		detail = "zstd is not supported; upload a .tar.gz or .zip archive"
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		detail = "uncompressed tar is not supported; gzip it (.tar.gz)"
	}
	return Unknown, &Error{Reason: ReasonUnknownFormat, Detail: detail}
}

// Limits bound what an extraction may produce. A zero (or negative) field
// takes its default.
type Limits struct {
	// MaxFiles is the most regular files an archive may hold (default
	// 10,000). Entries of any kind, directories included, are bounded by
	// twice this.
	MaxFiles int
	// MaxFileSize is the most bytes one entry may decompress to (default
	// 25 MiB).
	MaxFileSize int64
	// MaxTotalSize is the most bytes all entries together may decompress to
	// (default 250 MiB).
	MaxTotalSize int64
	// MaxRatio is the largest allowed ratio of decompressed bytes to
	// compressed bytes read so far (default 100), checked continuously once
	// more than 1 MiB has been decompressed.
	MaxRatio int64
}

// Defaults.
const (
	DefaultMaxFiles     = 10_000
	DefaultMaxFileSize  = 25 << 20
	DefaultMaxTotalSize = 250 << 20
	DefaultMaxRatio     = 100

	// MaxPathLen is the longest path (after cleaning) accepted, in bytes.
	MaxPathLen = 1024

	// ratioGrace is how many bytes may be decompressed before the ratio is
	// enforced: a few highly compressible small files are no bomb.
	ratioGrace = 1 << 20
)

// WithDefaults returns l with every unset field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

func (l Limits) maxEntries() int { return 2 * l.MaxFiles }

// Reasons, the values of Error.Reason.
const (
	ReasonUnknownFormat          = "unknown_format"          // not a .tar.gz or .zip
	ReasonMalformed              = "malformed"               // corrupt, truncated, or a size that does not match the data
	ReasonPathTraversal          = "path_traversal"          // a ".." segment
	ReasonAbsolutePath           = "absolute_path"           // leading "/" or "\", or a drive letter ("C:")
	ReasonInvalidName            = "invalid_name"            // empty, ".", control characters, or a file name ending in "/"
	ReasonNotUTF8                = "not_utf8"                // the name is not valid UTF-8
	ReasonPathTooLong            = "path_too_long"           // longer than MaxPathLen
	ReasonDuplicatePath          = "duplicate_path"          // same path twice (after cleaning)
	ReasonPathConflict           = "path_conflict"           // a path is both a file and a directory
	ReasonLink                   = "link"                    // symlink or hard link
	ReasonSpecialFile            = "special_file"            // device, fifo, socket
	ReasonUnsupportedEntry       = "unsupported_entry"       // other entry types (sparse files, ...)
	ReasonUnsupportedCompression = "unsupported_compression" // zip method other than store and deflate
	ReasonEncrypted              = "encrypted"               // encrypted zip entry
	ReasonTooManyFiles           = "too_many_files"          // more than MaxFiles
	ReasonFileTooLarge           = "file_too_large"          // an entry above MaxFileSize
	ReasonTotalTooLarge          = "total_too_large"         // all entries above MaxTotalSize
	ReasonRatioExceeded          = "ratio_exceeded"          // decompresses more than MaxRatio times its size: a zip bomb
)

var reasonText = map[string]string{
	ReasonUnknownFormat:          "unsupported archive format",
	ReasonMalformed:              "malformed archive",
	ReasonPathTraversal:          `path escapes the site root ("..")`,
	ReasonAbsolutePath:           "absolute path",
	ReasonInvalidName:            "invalid file name",
	ReasonNotUTF8:                "file name is not valid UTF-8",
	ReasonPathTooLong:            "path too long",
	ReasonDuplicatePath:          "path appears more than once",
	ReasonPathConflict:           "path is both a file and a directory",
	ReasonLink:                   "links are not allowed",
	ReasonSpecialFile:            "special files are not allowed",
	ReasonUnsupportedEntry:       "unsupported entry type",
	ReasonUnsupportedCompression: "unsupported compression method",
	ReasonEncrypted:              "encrypted entries are not supported",
	ReasonTooManyFiles:           "too many files",
	ReasonFileTooLarge:           "file too large",
	ReasonTotalTooLarge:          "archive too large when decompressed",
	ReasonRatioExceeded:          "compression ratio too high (zip bomb?)",
}

// Error is what is wrong with an archive, fit to show its user.
type Error struct {
	Reason string // one of the Reason constants
	Path   string // the entry's name as found in the archive (raw), if any
	Detail string // more about it, if anything
	Err    error  // the underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("archive")
	if e.Path != "" {
		p := e.Path
		if len(p) > 200 {
			p = p[:200] + "…"
		}
		fmt.Fprintf(&b, ": entry %q", p)
	}
	b.WriteString(": ")
	if t, ok := reasonText[e.Reason]; ok {
		b.WriteString(t)
	} else {
		b.WriteString(e.Reason)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// CleanPath validates an entry name and returns its cleaned form:
// slash-separated, relative, without "." or empty segments. Backslashes are
// taken as separators. It rejects ".." segments, absolute paths (leading
// "/" or "\", drive letters), empty names, control and bidirectional
// control characters, invalid UTF-8, and paths longer than MaxPathLen. A trailing "/" is dropped; callers
// that know an entry is a regular file must reject it themselves. The error
// is an *Error.
func CleanPath(name string) (string, error) {
	fail := func(reason, detail string) (string, error) {
		return "", &Error{Reason: reason, Path: name, Detail: detail}
	}
	if !utf8.ValidString(name) {
		return fail(ReasonNotUTF8, "")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fail(ReasonInvalidName, fmt.Sprintf("control character %U", r))
		}
		if unicode.Is(unicode.Bidi_Control, r) {
			return fail(ReasonInvalidName, fmt.Sprintf("bidirectional control character %U", r))
		}
	}
	if name == "" {
		return fail(ReasonInvalidName, "empty name")
	}
	if len(name) > 4*MaxPathLen { // don't bother cleaning
		return fail(ReasonPathTooLong, fmt.Sprintf("%d bytes, at most %d", len(name), MaxPathLen))
	}
	s := strings.ReplaceAll(name, `\`, "/")
	if strings.HasPrefix(s, "/") {
		return fail(ReasonAbsolutePath, "")
	}
	segs := strings.Split(s, "/")
	out := segs[:0]
	for _, seg := range segs {
		switch seg {
		case "", ".":
			continue
		case "..":
			return fail(ReasonPathTraversal, "")
		}
		out = append(out, seg)
	}
	if len(out) == 0 {
		return fail(ReasonInvalidName, "empty name")
	}
	if f := out[0]; len(f) >= 2 && f[1] == ':' && ('a' <= f[0]|0x20 && f[0]|0x20 <= 'z') {
		return fail(ReasonAbsolutePath, "drive letter")
	}
	p := strings.Join(out, "/")
	if len(p) > MaxPathLen {
		return fail(ReasonPathTooLong, fmt.Sprintf("%d bytes, at most %d", len(p), MaxPathLen))
	}
	return p, nil
}

// CommonPrefix returns the longest directory prefix, ending in "/", shared by
// all paths (as produced by the extractors, e.g. "dist/"), or "" if there is
// none. A caller may offer to strip it; the extractors never do.
func CommonPrefix(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	prefix := paths[0]
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return ""
	}
	prefix = prefix[:i+1]
	for _, p := range paths[1:] {
		for !strings.HasPrefix(p, prefix) {
			i := strings.LastIndexByte(prefix[:len(prefix)-1], '/')
			if i < 0 {
				return ""
			}
			prefix = prefix[:i+1]
		}
	}
	return prefix
}

// PutFunc receives each regular file: its cleaned path and a reader of
// exactly its bytes. r is valid only until put returns; what put leaves
// unread is read and checked by the extractor. A read error from r that
// is an *Error (a limit, corrupt data) makes the extraction fail with it
// whatever put returns.
type PutFunc = func(path string, r io.Reader) error

// extractor holds what is shared by all entries of one extraction.
type extractor struct {
	ctx   context.Context
	lim   Limits
	files int // regular files seen
	seen  int // entries of any kind seen
	total int64
	paths map[string]bool // regular files
	dirs  []string        // declared directories
	// compressed returns the number of compressed bytes consumed so far,
	// the denominator of the ratio.
	compressed func() int64
	// ioErr is the first error of the caller's reader: not the archive's
	// fault, returned as is.
	ioErr error
	// archErr is the first limit error found below the archive reader
	// (tar: on the decompressed stream), which that reader may have
	// wrapped or replaced.
	archErr error
}

// fail turns an error met while reading entry name into the error to
// return: cancellation, then the caller's I/O error, then an *Error.
func (x *extractor) fail(err error, name string) error {
	if cerr := x.ctx.Err(); cerr != nil {
		return cerr
	}
	if x.ioErr != nil {
		return x.ioErr
	}
	if x.archErr != nil {
		return x.archErr
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	detail := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		detail = "truncated"
	}
	return &Error{Reason: ReasonMalformed, Path: name, Detail: detail, Err: err}
}

func newExtractor(ctx context.Context, lim Limits) *extractor {
	return &extractor{ctx: ctx, lim: lim.WithDefaults(), paths: map[string]bool{}}
}

// entry validates one entry's name and records it. dir says whether it is
// a directory.
func (x *extractor) entry(name string, dir bool) (string, error) {
	x.seen++
	if x.seen > x.lim.maxEntries() {
		return "", &Error{Reason: ReasonTooManyFiles, Path: name, Detail: fmt.Sprintf("more than %d entries", x.lim.maxEntries())}
	}
	if !dir {
		x.files++
		if x.files > x.lim.MaxFiles {
			return "", &Error{Reason: ReasonTooManyFiles, Path: name, Detail: fmt.Sprintf("more than %d", x.lim.MaxFiles)}
		}
		if strings.HasSuffix(name, "/") || strings.HasSuffix(name, `\`) {
			return "", &Error{Reason: ReasonInvalidName, Path: name, Detail: "a file name cannot end with a slash"}
		}
	}
	if dir && isRoot(name) { // "./", as in tar -C dist -czf site.tgz .
		return "", nil
	}
	p, err := CleanPath(name)
	if err != nil {
		return "", err
	}
	if dir {
		if x.paths[p] {
			return "", &Error{Reason: ReasonPathConflict, Path: name, Detail: fmt.Sprintf("%q is a file", p)}
		}
		x.dirs = append(x.dirs, p)
		return p, nil
	}
	if x.paths[p] {
		return "", &Error{Reason: ReasonDuplicatePath, Path: name, Detail: fmt.Sprintf("%q again", p)}
	}
	x.paths[p] = true
	return p, nil
}

// conflicts finds a path that is both a file and a directory (declared, or
// implied by a longer path), once all entries are known. It sorts rather
// than recording every parent of every path: that could take O(files ×
// depth) memory.
func (x *extractor) conflicts() error {
	all := make([]string, 0, len(x.paths)+len(x.dirs))
	for p := range x.paths {
		all = append(all, p)
	}
	for _, d := range x.dirs {
		all = append(all, d+"/")
	}
	slices.Sort(all)
	for _, p := range all {
		if strings.HasSuffix(p, "/") {
			continue // a directory
		}
		// Paths under p/ sort together, from the first one >= "p/".
		under := p + "/"
		i, found := slices.BinarySearch(all, under)
		switch {
		case found:
			return &Error{Reason: ReasonPathConflict, Path: p, Detail: fmt.Sprintf("%q is also a directory", p)}
		case i < len(all) && strings.HasPrefix(all[i], under):
			return &Error{Reason: ReasonPathConflict, Path: p, Detail: fmt.Sprintf("%q is a file and %q is in it", p, all[i])}
		}
	}
	return nil
}

// isRoot reports whether name is a relative spelling of the root: only "."
// and empty segments.
func isRoot(name string) bool {
	if name == "" || name[0] == '/' || name[0] == '\\' {
		return false
	}
	for _, seg := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg != "." {
			return false
		}
	}
	return true
}

// checkRatio fails if decompressed bytes exceed MaxRatio times the
// compressed bytes consumed.
func (x *extractor) checkRatio(decompressed int64, path string) error {
	if decompressed <= ratioGrace {
		return nil
	}
	c := x.compressed()
	// decompressed > c*MaxRatio, without overflow.
	if c <= 0 || decompressed/c > x.lim.MaxRatio || decompressed/c == x.lim.MaxRatio && decompressed%c != 0 {
		return &Error{Reason: ReasonRatioExceeded, Path: path,
			Detail: fmt.Sprintf("%d bytes from %d compressed, more than %d:1", decompressed, c, x.lim.MaxRatio)}
	}
	return nil
}

// entryReader is what put reads: one entry's bytes, bounded by the limits
// and by its declared size, checked as they are read.
type entryReader struct {
	x        *extractor
	src      io.Reader
	name     string // raw, for errors
	declared int64
	n        int64
	err      error // sticky
	// ratio: whether this reader checks the ratio on the files' bytes (tar
	// also checks it on the whole decompressed stream).
	ratio bool
}

func (e *entryReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := e.x.ctx.Err(); err != nil {
		e.err = err
		return 0, err
	}
	// Never read more than one byte past any bound, so as not to
	// decompress far beyond it.
	room := min(e.x.lim.MaxFileSize-e.n, e.x.lim.MaxTotalSize-e.x.total, e.declared-e.n)
	if int64(len(p)) > room+1 {
		p = p[:room+1]
	}
	n, err := e.src.Read(p)
	if n > 0 {
		var lerr error
		switch {
		case e.n+int64(n) > e.x.lim.MaxFileSize:
			lerr = &Error{Reason: ReasonFileTooLarge, Path: e.name, Detail: fmt.Sprintf("more than %d bytes", e.x.lim.MaxFileSize)}
		case e.x.total+int64(n) > e.x.lim.MaxTotalSize:
			lerr = &Error{Reason: ReasonTotalTooLarge, Path: e.name, Detail: fmt.Sprintf("more than %d bytes", e.x.lim.MaxTotalSize)}
		case e.n+int64(n) > e.declared:
			lerr = &Error{Reason: ReasonMalformed, Path: e.name, Detail: fmt.Sprintf("more data than the declared %d bytes", e.declared)}
		}
		if lerr != nil {
			n = int(room)
		}
		e.n += int64(n)
		e.x.total += int64(n)
		if lerr == nil && e.ratio {
			lerr = e.x.checkRatio(e.x.total, e.name)
		}
		if lerr != nil {
			e.err = lerr
			return n, lerr
		}
	}
	switch {
	case err == nil:
	case err == io.EOF:
		if e.n != e.declared {
			err = &Error{Reason: ReasonMalformed, Path: e.name, Detail: fmt.Sprintf("%d bytes of data, %d declared", e.n, e.declared)}
		}
	case errors.Is(err, zip.ErrFormat) && e.x.ctx.Err() == nil && e.x.ioErr == nil:
		// What archive/zip says when an entry has more data than declared.
		err = &Error{Reason: ReasonMalformed, Path: e.name, Detail: fmt.Sprintf("more data than the declared %d bytes", e.declared), Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF) && e.x.ctx.Err() == nil && e.x.ioErr == nil:
		err = &Error{Reason: ReasonMalformed, Path: e.name, Detail: fmt.Sprintf("truncated: %d bytes of data, %d declared", e.n, e.declared), Err: err}
	default:
		err = e.x.fail(err, e.name)
	}
	if err != nil {
		e.err = err
	}
	return n, err
}

// finish drains what put left unread, so that the entry is checked in full.
func (e *entryReader) finish() error {
	if e.err == nil {
		_, err := io.Copy(io.Discard, e)
		if err != nil && e.err == nil {
			e.err = err
		}
	}
	if e.err == io.EOF {
		return nil
	}
	return e.err
}

// run hands an entry to put and settles the outcome: the entry's own error
// (limits, corruption, cancellation) wins over whatever put returns.
func (e *entryReader) run(path string, put PutFunc) error {
	perr := put(path, e)
	if e.err != nil && e.err != io.EOF {
		return e.err
	}
	if perr != nil {
		return perr
	}
	return e.finish()
}

// countingReader counts the bytes read through it, records the first
// error of the caller's reader, and checks for cancellation.
type countingReader struct {
	x *extractor
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.x.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.x.ioErr == nil {
		c.x.ioErr = err
	}
	return n, err
}
