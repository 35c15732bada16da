package transfer

import (
	"archive/tar"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/argon2"
)

const (
	// Format names the package kind in its header.
	Format = "cairnpkg"
	// Version is the package format this code writes and reads. A reader
	// refuses any other: an older reader cannot know a newer layout.
	Version = 1

	headerName   = "cairnpkg.json"
	manifestName = "manifest.json"
	eventsPrefix = "events/"
	objectPrefix = "objects/"
	// chunkBytes is about how much event data one events/ entry holds.
	chunkBytes = 4 << 20

	paxName = "CAIRN.name"
	paxMeta = "CAIRN.meta"
)

// ErrBadPackage is wrapped by every refusal of a package's contents.
var ErrBadPackage = errors.New("bad package")

// ErrPassphrase means the passphrase does not open the package.
var ErrPassphrase = errors.New("wrong passphrase")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPackage, fmt.Sprintf(format, args...))
}

// KDF are the argon2id parameters of a package's key.
type KDF struct {
	Alg     string `json:"alg"`
	Salt    []byte `json:"salt"`
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// Header is a package's first entry.
type Header struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Project is the source project's registry state (protojson).
	Project    json.RawMessage `json:"project"`
	ProjectID  string          `json:"project_id"`
	LastSeq    uint64          `json:"last_seq"`
	ExportedAt time.Time       `json:"exported_at"`
	KDF        KDF             `json:"kdf"`
	// Check is a known text sealed under the passphrase key: a wrong
	// passphrase is told at once, not after reading the whole package.
	Check []byte `json:"check"`
}

// Entry is one tar entry as the manifest records it.
type Entry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is a package's last entry.
type Manifest struct {
	Format      string  `json:"format"`
	Version     int     `json:"version"`
	ProjectID   string  `json:"project_id"`
	Events      uint64  `json:"events"`
	LastSeq     uint64  `json:"last_seq"`
	Objects     int     `json:"objects"`
	ObjectBytes int64   `json:"object_bytes"`
	Secrets     int     `json:"secrets"`
	Entries     []Entry `json:"entries"`
	// MAC is HMAC-SHA256 under the passphrase's MAC key of the manifest
	// with MAC empty: checksums alone would not stop an edited package
	// whose checksums were edited too.
	MAC []byte `json:"mac,omitempty"`
}

func (m Manifest) mac(key []byte) []byte {
	m.MAC = nil
	b, _ := json.Marshal(m) // plain types: cannot fail
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(nil)
}

// keys are what a passphrase derives.
type keys struct {
	aead cipher.AEAD
	mac  []byte
}

const checkText = "cairnpkg passphrase check"

func newKDF() (KDF, error) {
	k := KDF{Alg: "argon2id", Salt: make([]byte, 16), Time: 3, Memory: 64 << 10, Threads: 2}
	if _, err := rand.Read(k.Salt); err != nil {
		return k, fmt.Errorf("transfer: salt: %w", err)
	}
	return k, nil
}

func deriveKeys(passphrase string, k KDF) (*keys, error) {
	if passphrase == "" {
		return nil, errors.New("transfer: a passphrase is required (it protects the package's secrets)")
	}
	if k.Alg != "argon2id" || len(k.Salt) < 16 || k.Time == 0 || k.Time > 16 || k.Memory < 8<<10 || k.Memory > 1<<20 || k.Threads == 0 {
		return nil, bad("unsupported key derivation %q (time %d, memory %d KiB, threads %d)", k.Alg, k.Time, k.Memory, k.Threads)
	}
	raw := argon2.IDKey([]byte(passphrase), k.Salt, k.Time, k.Memory, k.Threads, 64)
	block, err := aes.NewCipher(raw[:32])
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &keys{aead: a, mac: raw[32:]}, nil
}

func aad(purpose string) []byte { return []byte("cairnpkg v1\x00" + purpose) }

// seal encrypts a secret for the package, bound to its purpose (not to a
// project: the package's project id changes on import).
func (k *keys) seal(purpose string, plain []byte) ([]byte, error) {
	out := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("transfer: seal: %w", err)
	}
	return k.aead.Seal(out, out, plain, aad(purpose)), nil
}

func (k *keys) open(purpose string, sealed []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return nil, bad("sealed %s too short", purpose)
	}
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], aad(purpose))
	if err != nil {
		return nil, fmt.Errorf("%w: secret %s does not open", ErrPassphrase, purpose)
	}
	return plain, nil
}

// record is one stored message of the project's stream.
type record struct {
	Seq     uint64
	Subject string // relative to the project: "users.u1.create"
	Header  nats.Header
	Data    []byte
}

// Headers that describe how a message was appended at the source (its
// concurrency expectations, its atomic batch), not the event: an import
// appends in order with its own expectation instead.
func keepHeader(k string) bool {
	return !hasPrefix(k, "Nats-Expected") && !hasPrefix(k, "Nats-Batch") && k != "Nats-Required-Api-Level"
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func (r record) append(b []byte) []byte {
	b = binary.AppendUvarint(b, r.Seq)
	b = appendBytes(b, []byte(r.Subject))
	n := 0
	for k, vs := range r.Header {
		if keepHeader(k) {
			n += len(vs)
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for k, vs := range r.Header {
		if !keepHeader(k) {
			continue
		}
		for _, v := range vs {
			b = appendBytes(b, []byte(k))
			b = appendBytes(b, []byte(v))
		}
	}
	return appendBytes(b, r.Data)
}

// recordReader decodes one events/ entry's records.
type recordReader struct{ b []byte }

func (rr *recordReader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(rr.b)
	if n <= 0 {
		return 0, bad("corrupt event record")
	}
	rr.b = rr.b[n:]
	return v, nil
}

func (rr *recordReader) bytes() ([]byte, error) {
	n, err := rr.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(rr.b)) {
		return nil, bad("corrupt event record")
	}
	v := rr.b[:n:n]
	rr.b = rr.b[n:]
	return v, nil
}

func (rr *recordReader) next() (record, bool, error) {
	if len(rr.b) == 0 {
		return record{}, false, nil
	}
	var r record
	var err error
	if r.Seq, err = rr.uvarint(); err != nil {
		return r, false, err
	}
	subj, err := rr.bytes()
	if err != nil {
		return r, false, err
	}
	r.Subject = string(subj)
	nh, err := rr.uvarint()
	if err != nil {
		return r, false, err
	}
	if nh > 1024 {
		return r, false, bad("event %d has %d headers", r.Seq, nh)
	}
	if nh > 0 {
		r.Header = nats.Header{}
	}
	for range nh {
		k, err := rr.bytes()
		if err != nil {
			return r, false, err
		}
		v, err := rr.bytes()
		if err != nil {
			return r, false, err
		}
		r.Header.Add(string(k), string(v))
	}
	if r.Data, err = rr.bytes(); err != nil {
		return r, false, err
	}
	return r, true, nil
}

// hashWriter counts and hashes what passes through to a tar entry.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// packageWriter writes entries and remembers them for the manifest.
type packageWriter struct {
	tw      *tar.Writer
	entries []Entry
	modTime time.Time
}

func (pw *packageWriter) entry(name string, size int64, pax map[string]string, body func(io.Writer) error) error {
	hdr := &tar.Header{Name: name, Size: size, Mode: 0o644, ModTime: pw.modTime, Typeflag: tar.TypeReg, PAXRecords: pax}
	if pax != nil {
		hdr.Format = tar.FormatPAX
	}
	if err := pw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("transfer: write %s: %w", name, err)
	}
	hw := &hashWriter{w: pw.tw, h: sha256.New()}
	if err := body(hw); err != nil {
		return fmt.Errorf("transfer: write %s: %w", name, err)
	}
	if hw.n != size {
		return fmt.Errorf("transfer: write %s: %d bytes, announced %d", name, hw.n, size)
	}
	pw.entries = append(pw.entries, Entry{Name: name, Size: size, SHA256: hex.EncodeToString(hw.h.Sum(nil))})
	return nil
}

func (pw *packageWriter) bytesEntry(name string, b []byte) error {
	return pw.entry(name, int64(len(b)), nil, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// objectMeta is what an object entry's PAX record keeps of its metadata.
type objectMeta struct {
	Description string              `json:"description,omitempty"`
	Headers     map[string][]string `json:"headers,omitempty"`
	Metadata    map[string]string   `json:"metadata,omitempty"`
}

// SealedSecret is a secret sealed under a passphrase as a package seals
// its secrets (argon2id, AES-256-GCM bound to a purpose), with the key
// derivation's parameters: what an instance backup keeps of the instance's
// own keys.
type SealedSecret struct {
	KDF     KDF    `json:"kdf"`
	Purpose string `json:"purpose"`
	Sealed  []byte `json:"sealed"`
}

// SealSecret seals plain under passphrase for purpose.
func SealSecret(passphrase, purpose string, plain []byte) (SealedSecret, error) {
	kdf, err := newKDF()
	if err != nil {
		return SealedSecret{}, err
	}
	k, err := deriveKeys(passphrase, kdf)
	if err != nil {
		return SealedSecret{}, err
	}
	sealed, err := k.seal(purpose, plain)
	if err != nil {
		return SealedSecret{}, err
	}
	return SealedSecret{KDF: kdf, Purpose: purpose, Sealed: sealed}, nil
}

// Open returns the secret; an error wrapping ErrPassphrase if passphrase
// is not the one it was sealed with.
func (s SealedSecret) Open(passphrase string) ([]byte, error) {
	k, err := deriveKeys(passphrase, s.KDF)
	if err != nil {
		return nil, err
	}
	return k.open(s.Purpose, s.Sealed)
}
