// Package backup copies a whole Cairn instance while it serves, and
// restores the copy into an empty NATS (an empty data directory).
//
// A backup is a directory:
//
//	streams/<NAME>.snap   a JetStream snapshot of every stream of the
//	                      account: the system stream, every project's
//	                      stream and object store, the key-value buckets
//	                      (usage counters), the jobs and schedules streams,
//	                      with their durable consumers
//	keys.json             the instance master key, sealed under the backup
//	                      passphrase (argon2id, AES-256-GCM)
//	manifest.json         format, version, the cut-off time, and per stream
//	                      its snapshot's size, SHA-256 and state (last
//	                      sequence, messages); written last, so a backup
//	                      without it is incomplete
//
// Every write acknowledged before the cut-off (the moment the backup
// began) is in it: each stream's snapshot is taken after that moment, and
// holds the stream as it was when its own snapshot began. The system
// stream (the project registry) is taken first, so every project it lists
// has its stream in the backup (a project's stream is created before its
// registration); a project created during the backup may have a stream in
// it that the registry does not list yet, which a restored instance
// ignores.
//
// Read models (Badger) are not in a backup: a restored instance rebuilds
// them from the streams when it starts. The operator's admin key is not in
// it either: give the restored instance one (--admin-key, or let it
// generate one).
//
// A backup holds everything the data directory holds except the master key
// in clear: password hashes, API-key hashes, and every secret sealed with
// the master key. Keep it as safe as the data directory.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/transfer"
)

const (
	// Format names a backup in its manifest.
	Format = "cairn-backup"
	// Version is the backup layout this code writes and reads.
	Version = 1

	manifestName = "manifest.json"
	keysName     = "keys.json"
	streamsDir   = "streams"
	// keysPurpose binds the sealed keys to their use.
	keysPurpose = "cairn-backup keys"
)

// ErrBadBackup is wrapped by every refusal of a backup's contents.
var ErrBadBackup = errors.New("bad backup")

// Stream is one stream's snapshot in a backup.
type Stream struct {
	Name string `json:"name"`
	// File is the snapshot's path relative to the backup directory.
	File   string                `json:"file"`
	Size   int64                 `json:"size"`
	SHA256 string                `json:"sha256"`
	State  streams.SnapshotState `json:"state"`
	Info   streams.SnapshotInfo  `json:"info"`
}

// Manifest describes a complete backup.
type Manifest struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Cutoff is when the backup began: every write acknowledged before it
	// is in the backup.
	Cutoff   time.Time `json:"cutoff"`
	Finished time.Time `json:"finished"`
	Streams  []Stream  `json:"streams"`
}

// Keys are the instance's secrets a backup keeps (sealed).
type Keys struct {
	// MasterKey is the instance master key as hex (--master-key).
	MasterKey string `json:"master_key"`
}

// Source is the instance a backup copies.
type Source interface {
	// StreamNames lists every stream.
	StreamNames(ctx context.Context) ([]string, error)
	// Snapshot writes a snapshot of stream to w.
	Snapshot(ctx context.Context, stream string, w io.Writer) (streams.SnapshotInfo, error)
	// SealedKeys returns the instance's Keys sealed under passphrase.
	SealedKeys(ctx context.Context, passphrase string) (transfer.SealedSecret, error)
}

// SealKeys seals k under passphrase, for Source.SealedKeys.
func SealKeys(k Keys, passphrase string) (transfer.SealedSecret, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return transfer.SealedSecret{}, err
	}
	return transfer.SealSecret(passphrase, keysPurpose, b)
}

// Progress is told of each stream as its snapshot is written.
type Progress func(stream string, done, total int)

// Write backs src up into dir, which must not exist or be empty.
func Write(ctx context.Context, src Source, dir, passphrase string, now func() time.Time, progress Progress) (Manifest, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return Manifest{}, fmt.Errorf("backup: %s is not empty", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, streamsDir), 0o700); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	m := Manifest{Format: Format, Version: Version, Cutoff: now().UTC()}
	sealed, err := src.SealedKeys(ctx, passphrase)
	if err != nil {
		return m, fmt.Errorf("backup: keys: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, keysName), sealed); err != nil {
		return m, err
	}
	// The registry first: every project it lists then has its stream
	// (created before the project is registered) in the list below.
	if err := snapshot(ctx, src, dir, streams.SystemStream, &m); err != nil {
		return m, err
	}
	names, err := src.StreamNames(ctx)
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	progress(streams.SystemStream, 1, len(names))
	for _, name := range backupOrder(names) {
		if err := snapshot(ctx, src, dir, name, &m); err != nil {
			if errors.Is(err, streams.ErrNoStream) {
				continue // deleted since the listing (a deleted project)
			}
			return m, err
		}
		progress(name, len(m.Streams), len(names))
	}
	m.Finished = now().UTC()
	if err := writeJSON(filepath.Join(dir, manifestName), m); err != nil {
		return m, err
	}
	return m, nil
}

// backupOrder is the order streams are copied in after the system stream:
// each project's stream right before its object store. A file's bytes are
// stored before the event that creates it, so every file in the stream's
// snapshot has its bytes in the object store's, taken just after (only a
// deletion swept in between can take them away).
func backupOrder(names []string) []string {
	has, paired := map[string]bool{}, map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	for _, n := range names {
		if p, ok := streams.ProjectFromStream(n); ok && has[streams.ObjectStoreStream(p)] {
			paired[streams.ObjectStoreStream(p)] = true
		}
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		switch p, ok := streams.ProjectFromStream(n); {
		case n == streams.SystemStream, paired[n]:
		case ok && paired[streams.ObjectStoreStream(p)]:
			out = append(out, n, streams.ObjectStoreStream(p))
		default:
			out = append(out, n)
		}
	}
	return out
}

func snapshot(ctx context.Context, src Source, dir, name string, m *Manifest) error {
	rel := filepath.Join(streamsDir, name+".snap")
	f, err := os.OpenFile(filepath.Join(dir, rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	info, err := src.Snapshot(ctx, name, cw)
	if cerr := f.Sync(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(filepath.Join(dir, rel))
		return fmt.Errorf("backup: stream %s: %w", name, err)
	}
	st, err := info.Parsed()
	if err != nil {
		return err
	}
	m.Streams = append(m.Streams, Stream{Name: name, File: rel, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil)), State: st, Info: info})
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return os.Rename(tmp, path)
}

// Read returns a backup's manifest after checking that it is complete and
// that every snapshot matches its size and checksum.
func Read(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return m, fmt.Errorf("%w: %s has no %s (not a backup, or one that did not finish)", ErrBadBackup, dir, manifestName)
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrBadBackup, manifestName, err)
	}
	if m.Format != Format || m.Version != Version {
		return m, fmt.Errorf("%w: format %q version %d; this cairn reads %q version %d", ErrBadBackup, m.Format, m.Version, Format, Version)
	}
	for _, s := range m.Streams {
		if filepath.IsAbs(s.File) || filepath.Dir(s.File) != streamsDir {
			return m, fmt.Errorf("%w: stream %s: file %q outside %s/", ErrBadBackup, s.Name, s.File, streamsDir)
		}
		f, err := os.Open(filepath.Join(dir, s.File))
		if err != nil {
			return m, fmt.Errorf("%w: stream %s: %v", ErrBadBackup, s.Name, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return m, err
		}
		if n != s.Size || hex.EncodeToString(h.Sum(nil)) != s.SHA256 {
			return m, fmt.Errorf("%w: stream %s: %s is %d bytes with another checksum than the manifest's (%d bytes): damaged", ErrBadBackup, s.Name, s.File, n, s.Size)
		}
	}
	return m, nil
}

// OpenKeys returns the instance keys of the backup in dir.
func OpenKeys(dir, passphrase string) (Keys, error) {
	var k Keys
	b, err := os.ReadFile(filepath.Join(dir, keysName))
	if err != nil {
		return k, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	var sealed transfer.SealedSecret
	if err := json.Unmarshal(b, &sealed); err != nil {
		return k, fmt.Errorf("%w: %s: %v", ErrBadBackup, keysName, err)
	}
	plain, err := sealed.Open(passphrase)
	if err != nil {
		return k, fmt.Errorf("backup: keys: %w", err)
	}
	if err := json.Unmarshal(plain, &k); err != nil {
		return k, fmt.Errorf("%w: keys: %v", ErrBadBackup, err)
	}
	return k, nil
}

// Restore creates every stream of the backup in dir (checked by Read
// first) on store, whose NATS must hold none of them: an empty data
// directory's embedded server, or an empty cluster account.
func Restore(ctx context.Context, store *streams.Store, dir string, progress Progress) (Manifest, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	m, err := Read(dir)
	if err != nil {
		return m, err
	}
	existing, err := store.StreamNames(ctx)
	if err != nil {
		return m, err
	}
	for _, s := range m.Streams {
		// streams.Open creates an empty system stream: that one may be
		// replaced, anything else means the target is not empty.
		if !slices.Contains(existing, s.Name) {
			continue
		}
		if s.Name != streams.SystemStream {
			return m, fmt.Errorf("backup: restore into a NATS that already has stream %s: restore into an empty data directory", s.Name)
		}
		info, err := store.StreamInfo(ctx, s.Name)
		if err != nil {
			return m, err
		}
		if info.Msgs > 0 {
			return m, fmt.Errorf("backup: restore into an instance that already has %d events in its system stream: restore into an empty data directory", info.Msgs)
		}
		if err := store.JetStream().DeleteStream(ctx, s.Name); err != nil {
			return m, fmt.Errorf("backup: replace the empty system stream: %w", err)
		}
	}
	for i, s := range m.Streams {
		f, err := os.Open(filepath.Join(dir, s.File))
		if err != nil {
			return m, err
		}
		err = store.Restore(ctx, s.Name, s.Info, f)
		f.Close()
		if err != nil {
			return m, err
		}
		progress(s.Name, i+1, len(m.Streams))
	}
	return m, nil
}
