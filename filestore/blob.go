package filestore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// blobName is where a file's blob lives. It doubles as the blob's AAD: three
// "/"-separated fields against a part AAD's four, so a part can never pass
// for a blob nor a blob for a part, and the UID binds it to its file.
func blobName(l Layout, name string) string { return "previews/" + l.UID + "/" + name }

func checkBlob(l Layout, name string) (Layout, error) {
	l, err := l.check()
	if err != nil {
		return l, err
	}
	if name == "" || len(name) > 255 || strings.Contains(name, "/") {
		return l, fmt.Errorf("filestore: invalid blob name %q", name)
	}
	return l, nil
}

// PutBlob stores one small whole value (a cached image preview) of the file
// l describes, with the file's compression and encryption, replacing any
// blob of that name.
func PutBlob(ctx context.Context, obs jetstream.ObjectStore, l Layout, name string, data []byte) error {
	l, err := checkBlob(l, name)
	if err != nil {
		return err
	}
	if len(data) > maxBlobSize {
		return fmt.Errorf("filestore: blob %s: %w: %d bytes, at most %d", blobName(l, name), ErrTooLarge, len(data), maxBlobSize)
	}
	c, err := newCodec(l)
	if err != nil {
		return err
	}
	b := make([]byte, head+len(data), bufCap(int64(len(data))))
	copy(b[head:], data)
	var spare []byte
	if c.flag != flagRaw {
		spare = make([]byte, 0, cap(b))
	}
	stored, err := c.seal(b, spare, len(data), []byte(blobName(l, name)))
	if err != nil {
		return fmt.Errorf("filestore: blob %s: %w", blobName(l, name), err)
	}
	if _, err := obs.PutBytes(ctx, blobName(l, name), stored); err != nil {
		return fmt.Errorf("filestore: put blob %s: %w", blobName(l, name), err)
	}
	return nil
}

// GetBlob returns a blob PutBlob stored; ErrNotFound when there is none.
func GetBlob(ctx context.Context, obs jetstream.ObjectStore, l Layout, name string) ([]byte, error) {
	l, err := checkBlob(l, name)
	if err != nil {
		return nil, err
	}
	c, err := newCodec(l)
	if err != nil {
		return nil, err
	}
	stored, err := obs.GetBytes(ctx, blobName(l, name))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("filestore: blob %s: %w", blobName(l, name), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: get blob %s: %w", blobName(l, name), storeErr(err))
	}
	data, err := c.open(stored, nil, -1, []byte(blobName(l, name)))
	if err != nil {
		return nil, fmt.Errorf("filestore: blob %s: %w", blobName(l, name), err)
	}
	return data, nil
}

// DeletePreviews removes the named blobs of the file l describes; missing
// ones are not an error.
func DeletePreviews(ctx context.Context, obs jetstream.ObjectStore, l Layout, names []string) error {
	var errs []error
	for _, name := range names {
		l, err := checkBlob(l, name)
		if err != nil {
			return err
		}
		if err := obs.Delete(ctx, blobName(l, name)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			errs = append(errs, fmt.Errorf("filestore: delete blob %s: %w", blobName(l, name), err))
		}
	}
	return errors.Join(errs...)
}
