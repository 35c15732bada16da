package sites

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/streams"
)

// ObjectBlobs keeps site files content-addressed in each project's JetStream
// object store: the object's name is the SHA-256 of its bytes, so equal
// files are stored once per project, across deployments and sites, and any
// node can serve any deployment.
type ObjectBlobs struct {
	store *streams.Store
}

// NewObjectBlobs returns the blob store over store's object stores.
func NewObjectBlobs(store *streams.Store) *ObjectBlobs { return &ObjectBlobs{store: store} }

// objectName is where a blob lives in the project's object store.
func objectName(sha string) string { return "sites/" + sha }

// Load returns a blob's bytes; ErrBlobNotFound when the project lacks it.
func (b *ObjectBlobs) Load(ctx context.Context, project, sha string) ([]byte, error) {
	obs, err := b.store.ObjectStore(ctx, project)
	if err != nil {
		return nil, err
	}
	data, err := obs.GetBytes(ctx, objectName(sha))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("blob %s of project %s: %w", sha, project, ErrBlobNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load blob %s of project %s: %w", sha, project, err)
	}
	return data, nil
}

// Missing returns the blobs of shas the project does not have.
func (b *ObjectBlobs) Missing(ctx context.Context, project string, shas []string) ([]string, error) {
	obs, err := b.store.ObjectStore(ctx, project)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, sha := range shas {
		_, err := obs.GetInfo(ctx, objectName(sha))
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			missing = append(missing, sha)
		case err != nil:
			return nil, fmt.Errorf("look up blob %s of project %s: %w", sha, project, err)
		}
	}
	return missing, nil
}

// PutBytes stores data and returns its SHA-256; a blob already there is not
// written again.
func (b *ObjectBlobs) PutBytes(ctx context.Context, project string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	return sha, b.Put(ctx, project, sha, bytes.NewReader(data))
}

// ErrHashMismatch: an upload's bytes do not have the SHA-256 it was sent as.
var ErrHashMismatch = errors.New("sites: content does not match its sha256")

// MaxBlobSize is the largest site file.
const MaxBlobSize = 25 << 20

// Put stores r under sha after checking that the bytes have that hash, so a
// bad upload never becomes visible, not even for a moment. A blob already
// there is not written again. r is read whole (at most MaxBlobSize).
func (b *ObjectBlobs) Put(ctx context.Context, project, sha string, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxBlobSize+1))
	if err != nil {
		return fmt.Errorf("read blob %s: %w", sha, err)
	}
	if len(data) > MaxBlobSize {
		return fmt.Errorf("%w: a site file is at most %d bytes", ErrBlobTooLarge, MaxBlobSize)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != sha {
		return fmt.Errorf("%w: got %s", ErrHashMismatch, got)
	}
	obs, err := b.store.ObjectStore(ctx, project)
	if err != nil {
		return err
	}
	name := objectName(sha)
	if _, err := obs.GetInfo(ctx, name); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("look up blob %s: %w", sha, err)
	}
	if _, err := obs.PutBytes(ctx, name, data); err != nil {
		return fmt.Errorf("store blob %s: %w", sha, err)
	}
	return nil
}

// ErrBlobTooLarge: a file over MaxBlobSize.
var ErrBlobTooLarge = errors.New("sites: file too large")

// ContentType is the type a site file is recorded with: by its extension,
// else sniffed from its first bytes.
func ContentType(path string, data []byte) string {
	if t := mime.TypeByExtension(filepath.Ext(path)); t != "" {
		return t
	}
	return http.DetectContentType(data)
}

// BlobInfo describes one stored site file.
type BlobInfo struct {
	SHA256  string
	Size    int64
	ModTime time.Time
}

// List returns the project's site files (none when it has no object store).
func (b *ObjectBlobs) List(ctx context.Context, project string) ([]BlobInfo, error) {
	has, err := b.store.HasObjectStore(ctx, project)
	if err != nil || !has {
		return nil, err
	}
	obs, err := b.store.ObjectStore(ctx, project)
	if err != nil {
		return nil, err
	}
	infos, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list site files of project %s: %w", project, err)
	}
	var out []BlobInfo
	for _, info := range infos {
		if sha, ok := strings.CutPrefix(info.Name, "sites/"); ok {
			out = append(out, BlobInfo{SHA256: sha, Size: int64(info.Size), ModTime: info.ModTime})
		}
	}
	return out, nil
}

// Usage is the bytes of the project's site files, counted in its storage.
func (b *ObjectBlobs) Usage(ctx context.Context, project string) (int64, error) {
	infos, err := b.List(ctx, project)
	var n int64
	for _, i := range infos {
		n += i.Size
	}
	return n, err
}

// Delete removes a site file; one already gone is no error.
func (b *ObjectBlobs) Delete(ctx context.Context, project, sha string) error {
	obs, err := b.store.ObjectStore(ctx, project)
	if err != nil {
		return err
	}
	if err := obs.Delete(ctx, objectName(sha)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete site file %s of project %s: %w", sha, project, err)
	}
	return nil
}
