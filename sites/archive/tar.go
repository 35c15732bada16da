package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ExtractTarGz reads a gzipped tar from r and calls put for each regular
// file, in archive order, with its cleaned path and a reader of exactly its
// bytes. Directories are skipped (their names are still checked); links and
// special files are rejected. The whole stream is read and checked, gzip
// checksum included: put's work is provisional until ExtractTarGz returns
// nil. It returns an *Error for anything wrong with the archive, ctx's error
// if cancelled, r's error if reading fails, or put's error.
func ExtractTarGz(ctx context.Context, r io.Reader, lim Limits, put PutFunc) error {
	x := newExtractor(ctx, lim)
	in := &countingReader{x: x, r: r}
	x.compressed = func() int64 { return in.n }
	zr, err := gzip.NewReader(in)
	if err != nil {
		return x.fail(err, "")
	}
	// Headers and padding are at most a few KiB an entry; beyond that the
	// stream is larger than its files can be.
	stream := &streamReader{x: x, r: zr,
		max: x.lim.MaxTotalSize + int64(x.lim.maxEntries())*4096 + 2<<20}
	tr := tar.NewReader(stream)
	var declared int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && (hdr == nil || !errors.Is(err, tar.ErrInsecurePath)) {
			return x.fail(err, "")
		}
		name := hdr.Name
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader: // metadata, e.g. git archive's commit id
			if x.seen++; x.seen > x.lim.maxEntries() {
				return &Error{Reason: ReasonTooManyFiles, Path: name, Detail: fmt.Sprintf("more than %d entries", x.lim.maxEntries())}
			}
			continue
		case tar.TypeSymlink, tar.TypeLink:
			return &Error{Reason: ReasonLink, Path: name, Detail: fmt.Sprintf("-> %q", hdr.Linkname)}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return &Error{Reason: ReasonSpecialFile, Path: name}
		case tar.TypeDir:
			if hdr.Size != 0 {
				return &Error{Reason: ReasonMalformed, Path: name, Detail: "directory with data"}
			}
			if _, err := x.entry(name, true); err != nil {
				return err
			}
			continue
		case tar.TypeReg:
			for k := range hdr.PAXRecords {
				if strings.HasPrefix(k, "GNU.sparse.") {
					return &Error{Reason: ReasonUnsupportedEntry, Path: name, Detail: "sparse file"}
				}
			}
		default:
			return &Error{Reason: ReasonUnsupportedEntry, Path: name, Detail: fmt.Sprintf("tar type %q", hdr.Typeflag)}
		}
		p, err := x.entry(name, false)
		if err != nil {
			return err
		}
		if hdr.Size > x.lim.MaxFileSize {
			return &Error{Reason: ReasonFileTooLarge, Path: name, Detail: fmt.Sprintf("%d bytes, at most %d", hdr.Size, x.lim.MaxFileSize)}
		}
		if declared += hdr.Size; declared > x.lim.MaxTotalSize {
			return &Error{Reason: ReasonTotalTooLarge, Path: name, Detail: fmt.Sprintf("more than %d bytes", x.lim.MaxTotalSize)}
		}
		// The ratio is checked on the stream, and on the files too: the
		// holes of a sparse file would not show in the stream.
		e := &entryReader{x: x, src: tr, name: name, declared: hdr.Size, ratio: true}
		if err := e.run(p, put); err != nil {
			return err
		}
	}
	if err := x.conflicts(); err != nil {
		return err
	}
	// Read to the end of the gzip stream, so that its checksum is verified,
	// allowing for the zero padding tar writers add.
	n, err := io.Copy(io.Discard, io.LimitReader(stream, 1<<20+1))
	if err != nil {
		return x.fail(err, "")
	}
	if n > 1<<20 {
		return &Error{Reason: ReasonMalformed, Detail: "data after the end of the tar archive"}
	}
	return nil
}

// streamReader bounds the decompressed tar stream: its size and its ratio
// to the compressed bytes read.
type streamReader struct {
	x   *extractor
	r   io.Reader
	n   int64
	max int64
}

func (s *streamReader) Read(p []byte) (int, error) {
	if s.x.archErr != nil {
		return 0, s.x.archErr
	}
	if room := s.max - s.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n > s.max {
		s.x.archErr = &Error{Reason: ReasonTotalTooLarge, Detail: fmt.Sprintf("tar stream larger than %d bytes", s.max)}
	} else if rerr := s.x.checkRatio(s.n, ""); rerr != nil {
		s.x.archErr = rerr
	}
	if s.x.archErr != nil {
		return 0, s.x.archErr
	}
	return n, err
}
