package sites

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// newMemFile copies data into a new memfd.
func newMemFile(data []byte) (*memFile, error) {
	fd, err := unix.MemfdCreate("cairn-site-file", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	src := os.NewFile(uintptr(fd), "cairn-site-file")
	for off := 0; off < len(data); {
		n, err := src.Write(data[off:])
		if err != nil {
			src.Close()
			return nil, fmt.Errorf("fill memfd: %w", err)
		}
		off += n
	}
	return &memFile{size: int64(len(data)), src: src, path: "/proc/self/fd/" + strconv.Itoa(fd)}, nil
}
