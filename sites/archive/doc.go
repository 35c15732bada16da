// Package archive safely extracts uploaded static-site build archives
// (.tar.gz and .zip) into a stream of (path, contents) pairs.
//
// It provides [Detect] to sniff the format, [ExtractTarGz] and [ExtractZip]
// to walk an archive and hand every regular file to a caller-supplied put
// function, [CleanPath] to validate a single path by the same rules (for
// file-by-file uploads), and [CommonPrefix] so a caller can offer to strip a
// wrapping directory such as "dist/".
//
// Some checks can only complete at the end of an archive (a truncated
// stream, a checksum, a file that is also a directory), so what put did is
// provisional until the extractor returns nil: on an error the caller must
// discard it, and serve nothing of it.
//
// Everything that is wrong with an archive is reported as an [*Error] whose
// Reason is a short machine word (see the Reason constants) and whose Error
// message can be shown to the user as is.
//
// What this package must never do:
//
//   - write anything to disk: it has no notion of a destination directory;
//     what put does with the bytes is the caller's business;
//   - follow, create or pass on links: symlinks, hard links, devices, fifos
//     and sockets are rejected with an error, never skipped silently;
//   - hand put a path that is absolute, contains "..", backslashes, control
//     characters or invalid UTF-8, is longer than 1,024 bytes, or repeats an
//     earlier path: every path given to put satisfies CleanPath(p) == p;
//   - yield more bytes than the [Limits] allow or trust a size declared in an
//     archive header: sizes and the compression ratio are checked on the
//     bytes actually decompressed, as they are decompressed;
//   - strip a wrapping top-level directory on its own.
package archive
