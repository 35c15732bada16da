package sites

import (
	"errors"
	"io"
	"os"
	"sync"
)

// cachedFile holds a large cached file in an unnamed file (O_TMPFILE: no
// name in any directory, gone when closed, so nothing can be served from it
// but through the cache), so that a response can hand it to the kernel
// with sendfile instead of copying it through user space: what
// http.FileServer does from disk, and why it served 1 MiB files faster than
// a Write from the cache. Its bytes live in the page cache, not in the
// process's heap. A memfd is the fallback where O_TMPFILE is refused; it
// measured slower than the copy (shmem's 4 KiB pages, where a disk file's
// page cache has large folios), so it only saves the heap.
//
// sendfile reads from an open file's position, so concurrent responses need
// their own positions: each takes a handle of its own (a reopening of the
// file, kept for reuse) and gives it back.
type cachedFile struct {
	size int64
	path string // reopens the file (/proc/self/fd/N)

	mu     sync.Mutex
	src    *os.File // the file; nil once closed
	idle   []*os.File
	closed bool
}

// cachedFileIdle bounds the handles kept per file: each is a descriptor.
const cachedFileIdle = 4

// errCachedFileClosed: the file left the cache between the lookup and the
// open; the caller loads it again.
var errCachedFileClosed = errors.New("sites: cached file was evicted")

// open returns a handle positioned at the start; give it back with release.
func (m *cachedFile) open() (*os.File, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errCachedFileClosed
	}
	if n := len(m.idle); n > 0 {
		f := m.idle[n-1]
		m.idle = m.idle[:n-1]
		m.mu.Unlock()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	// Under the lock, so that close cannot free the descriptor number
	// (and another file take it) between here and the open.
	f, err := os.Open(m.path)
	m.mu.Unlock()
	return f, err
}

// release gives a handle back for reuse (or closes it).
func (m *cachedFile) release(f *os.File) {
	m.mu.Lock()
	if !m.closed && len(m.idle) < cachedFileIdle {
		m.idle = append(m.idle, f)
		f = nil
	}
	m.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// readAll copies the whole content out (for the rare paths that need the
// bytes: on-the-fly compression, a large 404 page).
func (m *cachedFile) readAll() ([]byte, error) {
	f, err := m.open()
	if err != nil {
		return nil, err
	}
	defer m.release(f)
	b := make([]byte, m.size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// close frees the file once the cache drops it; handles in use are
// closed when they come back.
func (m *cachedFile) close() {
	m.mu.Lock()
	idle, src := m.idle, m.src
	m.idle, m.src, m.closed = nil, nil, true
	m.mu.Unlock()
	for _, f := range idle {
		f.Close()
	}
	if src != nil {
		src.Close()
	}
}

// blob is a cached file: its bytes, or (a large one) its cachedFile.
type blob struct {
	data []byte
	kept *cachedFile
}

// size is the content's length; 0 for no blob (a 304 needs none).
func (b *blob) size() int64 {
	switch {
	case b == nil:
		return 0
	case b.kept != nil:
		return b.kept.size
	}
	return int64(len(b.data))
}

// bytes is the content of a blob held as bytes (nil for none).
func (b *blob) bytes() []byte {
	if b == nil {
		return nil
	}
	return b.data
}

// head is what content sniffing reads: the first 512 bytes, from f (a
// handle of b.kept, read without moving its position) for a cachedFile.
func (b *blob) head(f *os.File) []byte {
	const sniffLen = 512
	switch {
	case b == nil:
		return nil
	case b.kept == nil:
		return b.data[:min(len(b.data), sniffLen)]
	}
	buf := make([]byte, min(b.kept.size, sniffLen))
	n, _ := f.ReadAt(buf, 0)
	return buf[:n]
}

// drop frees what the cache held once it lets go of b.
func (b *blob) drop() {
	if b.kept != nil {
		b.kept.close()
	}
}

// copyFile sends f's size bytes to w: through the connection's ReadFrom
// (sendfile) when w (or what it wraps) offers it. The limit saves the
// sendfile call that would only find the end of the file.
func copyFile(w io.Writer, f *os.File, size int64) (int64, error) {
	src := &io.LimitedReader{R: f, N: size}
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(w, src)
}
