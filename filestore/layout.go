package filestore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// DefaultPartSize is the plaintext size of a part: big enough that per-object
// overhead is small next to the bytes, small enough that a range read of a
// few bytes fetches little and a part fits comfortably in memory.
const DefaultPartSize = 1 << 20

// maxPartSize bounds PartSize, because a part is held in memory whole (a few
// at a time) on both the write and the read path.
const maxPartSize = 64 << 20

// Compression values of Layout.Compression.
const (
	compressionNone = "none"
	compressionGzip = "gzip"
	compressionZstd = "zstd"
)

// Layout says how one file's bytes are stored; it is recorded in the file's
// metadata by the caller, since reading needs exactly the values that wrote.
type Layout struct {
	// UID is unique per file upload (a ULID); object names are
	// "files/<UID>/...". It is not the file ID, so a re-upload under the
	// same file ID never mixes with the old parts.
	UID string
	// PartSize is the plaintext bytes per part; 0 means DefaultPartSize.
	// The last part of a chunk may be shorter.
	PartSize int64
	// Compression of each part: "", "none", "gzip" or "zstd".
	Compression string
	// Key is nil when the file is not encrypted, else a 32-byte AES-256-GCM
	// key for this file only.
	Key []byte
}

// Chunk is a contiguous range of the file written in one WriteChunk call.
// Its parts are named "files/<UID>/<Offset>-<Nonce>/<k>" (k = 0, 1, …); every
// part holds PartSize plaintext bytes except the last.
type Chunk struct {
	// Offset is the plaintext offset of the chunk's first byte in the file.
	Offset int64
	// Size is the chunk's plaintext bytes.
	Size int64
	// Nonce is random (16 hex characters) so that two racing writers of the
	// same range never overwrite each other's parts.
	Nonce string
	// Stored is the bytes stored in the object store for this chunk, after
	// compression and encryption: what the chunk costs in storage.
	Stored int64
}

// Errors callers tell apart; the returned errors wrap them with context.
var (
	// ErrTooLarge: the reader had more bytes than the chunk may hold.
	ErrTooLarge = errors.New("filestore: too large")
	// ErrCorrupt: a stored part fails authentication, decompression
	// or its expected size: it was damaged, tampered with or moved.
	ErrCorrupt = errors.New("filestore: stored data is corrupt")
	// ErrNotFound: a part a chunk names is not in the store.
	ErrNotFound = errors.New("filestore: not found")
)

// NewKey returns a new random AES-256 key for one file.
func NewKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("filestore: new key: %w", err)
	}
	return k, nil
}

// check validates l and fills in its defaults.
func (l Layout) check() (Layout, error) {
	if !validUID(l.UID) {
		return l, fmt.Errorf("filestore: invalid layout: UID %q is not 1-64 of [A-Za-z0-9_-]", l.UID)
	}
	if l.PartSize == 0 {
		l.PartSize = DefaultPartSize
	}
	if l.PartSize < 1 || l.PartSize > maxPartSize {
		return l, fmt.Errorf("filestore: invalid layout: part size %d not in [1, %d]", l.PartSize, maxPartSize)
	}
	switch l.Compression {
	case "", compressionNone, compressionGzip, compressionZstd:
	default:
		return l, fmt.Errorf("filestore: invalid layout: unknown compression %q", l.Compression)
	}
	if l.Key != nil && len(l.Key) != 32 {
		return l, fmt.Errorf("filestore: invalid layout: key is %d bytes, want 32", len(l.Key))
	}
	return l, nil
}

// validUID keeps object names and AADs unambiguous: a UID never contains the
// "/" that separates their fields.
func validUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validNonce accepts what newNonce makes, so a Chunk from elsewhere cannot
// address objects outside its file's parts.
func validNonce(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func newNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("filestore: chunk nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// partName is where part k of chunk c lives.
func partName(l Layout, c Chunk, k int64) string {
	return "files/" + l.UID + "/" + strconv.FormatInt(c.Offset, 10) + "-" + c.Nonce + "/" + strconv.FormatInt(k, 10)
}

// partAAD binds a part's ciphertext to its file, chunk and index, so parts
// cannot be swapped within a file or moved between files.
func partAAD(l Layout, c Chunk, k int64) []byte {
	return []byte(l.UID + "/" + strconv.FormatInt(c.Offset, 10) + "/" + c.Nonce + "/" + strconv.FormatInt(k, 10))
}

// numParts is how many parts a chunk of size bytes has.
func numParts(size, partSize int64) int64 {
	return (size + partSize - 1) / partSize
}
