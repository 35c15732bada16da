package sites

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// newCachedFile copies data into a new unnamed file in dir (a memfd when
// dir refuses O_TMPFILE).
func newCachedFile(dir string, data []byte) (*cachedFile, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		var merr error
		if fd, merr = unix.MemfdCreate("cairn-site-file", unix.MFD_CLOEXEC); merr != nil {
			return nil, fmt.Errorf("unnamed file in %s: %w; memfd: %w", dir, err, merr)
		}
	}
	src := os.NewFile(uintptr(fd), "cairn-site-file")
	for off := 0; off < len(data); {
		n, err := src.Write(data[off:])
		if err != nil {
			src.Close()
			return nil, fmt.Errorf("fill cached file: %w", err)
		}
		off += n
	}
	return &cachedFile{size: int64(len(data)), src: src, path: "/proc/self/fd/" + strconv.Itoa(fd)}, nil
}
