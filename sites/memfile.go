package sites

import (
	"errors"
	"io"
	"os"
	"sync"
)

// memFile holds a large cached file in an anonymous in-memory file (Linux
// memfd: memory, not the filesystem), so that a response can hand it to the
// kernel with sendfile instead of copying it through user space: what
// http.FileServer does from disk, and why it served 1 MiB files faster than
// a Write from the cache.
//
// sendfile reads from an open file's position, so concurrent responses need
// their own positions: each takes a handle of its own (a reopening of the
// memfd, kept for reuse) and gives it back.
type memFile struct {
	size int64
	path string // reopens the memfd (/proc/self/fd/N)

	mu     sync.Mutex
	src    *os.File // the memfd; nil once closed
	idle   []*os.File
	closed bool
}

// memFileIdle bounds the handles kept per file: each is a descriptor.
const memFileIdle = 4

// errMemFileClosed: the file left the cache between the lookup and the
// open; the caller loads it again.
var errMemFileClosed = errors.New("sites: cached file was evicted")

// open returns a handle positioned at the start; give it back with release.
func (m *memFile) open() (*os.File, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errMemFileClosed
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
func (m *memFile) release(f *os.File) {
	m.mu.Lock()
	if !m.closed && len(m.idle) < memFileIdle {
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
func (m *memFile) readAll() ([]byte, error) {
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

// close frees the memory once the cache drops the file; handles in use are
// closed when they come back.
func (m *memFile) close() {
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

// blob is a cached file: its bytes, or (a large one) its in-memory file.
type blob struct {
	data []byte
	mem  *memFile
}

// size is the content's length; 0 for no blob (a 304 needs none).
func (b *blob) size() int64 {
	switch {
	case b == nil:
		return 0
	case b.mem != nil:
		return b.mem.size
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
// handle of b.mem, read without moving its position) for an in-memory file.
func (b *blob) head(f *os.File) []byte {
	const sniffLen = 512
	switch {
	case b == nil:
		return nil
	case b.mem == nil:
		return b.data[:min(len(b.data), sniffLen)]
	}
	buf := make([]byte, min(b.mem.size, sniffLen))
	n, _ := f.ReadAt(buf, 0)
	return buf[:n]
}

// drop frees what the cache held once it lets go of b.
func (b *blob) drop() {
	if b.mem != nil {
		b.mem.close()
	}
}

// copyFile sends f to w: through the connection's ReadFrom (sendfile) when
// w (or what it wraps) offers it.
func copyFile(w io.Writer, f *os.File) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(f)
	}
	return io.Copy(w, f)
}
