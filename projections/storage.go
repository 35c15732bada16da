package projections

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Storage, applied from the project's stream:
//
//	p/<project>/buckets/<b>                      eventsv1.Bucket
//	p/<project>/files/<bucketUID>/<f>            eventsv1.File
//	p/<project>/uploads/<bucketUID>/<f>          eventsv1.Upload (in progress)
//	p/<project>/ftokens/<blobUID>/<t>            eventsv1.FileToken
//	p/<project>/susage                           stored bytes (8) + file count (8), big-endian
//	p/<project>/blobgc/<blobUID>                 eventsv1.File whose bytes a node must delete
//	p/<project>/bucketgc/<bucketUID>             a deleted bucket whose objects a node must delete
//	p/<project>/pcache/<blobUID>/<key>           a rendered preview (a cache, not a read model)
//
// Files live under their bucket's UID and tokens under their file's blob
// UID, so a bucket or file made again under the same id starts empty.
// Object-store bytes are not deleted here (projections hold no object
// store): the blobgc and bucketgc entries are a work queue for the node's
// storage sweeper (api), which removes an entry once the bytes are gone.
// Queue and cache entries are not part of a Snapshot: they depend on when
// the sweeper ran, not on the log.
const (
	partBuckets  = "buckets/"
	partFiles    = "files/"
	partUploads  = "uploads/"
	partFTokens  = "ftokens/"
	partUsage    = "susage"
	partBlobGC   = "blobgc/"
	partBucketGC = "bucketgc/"
	partPreviews = "pcache/"
)

func bucketsPrefix(project string) string { return pp(project) + partBuckets }
func bucketKey(project, id string) []byte { return []byte(bucketsPrefix(project) + id) }
func filesPrefix(project, bucketUID string) string {
	return pp(project) + partFiles + bucketUID + "/"
}
func fileKey(project, bucketUID, id string) []byte {
	return []byte(filesPrefix(project, bucketUID) + id)
}
func uploadsPrefix(project, bucketUID string) string {
	return pp(project) + partUploads + bucketUID + "/"
}
func uploadKey(project, bucketUID, id string) []byte {
	return []byte(uploadsPrefix(project, bucketUID) + id)
}
func fileTokensPrefix(project, blobUID string) string {
	return pp(project) + partFTokens + blobUID + "/"
}
func usageKey(project string) []byte { return []byte(pp(project) + partUsage) }
func previewsPrefix(project, blobUID string) string {
	return pp(project) + partPreviews + blobUID + "/"
}

// notReadModel reports whether a key of a project keyspace is a work
// queue or cache entry rather than state derived from the log alone.
func notReadModel(key string) bool {
	rest, ok := strings.CutPrefix(key, projectPrefix)
	if !ok {
		return false
	}
	_, rest, _ = strings.Cut(rest, "/")
	return strings.HasPrefix(rest, partBlobGC) || strings.HasPrefix(rest, partBucketGC) || strings.HasPrefix(rest, partPreviews)
}

func (p *Projections) applyBucket(txn *badger.Txn, sp keyspace, ev event, b *eventsv1.Bucket, deleted bool) error {
	if err := checkIn(sp, ev, "bucket", b.GetProjectId(), b.GetId(), b.GetUid()); err != nil {
		return err
	}
	if !deleted {
		v, err := marshal(b)
		if err != nil {
			return fatal("encode bucket %s: %w", b.GetId(), err)
		}
		return txn.Set(bucketKey(sp.project, b.GetId()), v)
	}
	// The files' and uploads' keys go with the generic sweep; the bytes
	// they stand for are counted out of the usage now and deleted by the
	// storage sweeper.
	var bytes, files int64
	for _, prefix := range []string{filesPrefix(sp.project, b.GetUid()), uploadsPrefix(sp.project, b.GetUid())} {
		isFile := strings.HasPrefix(prefix, pp(sp.project)+partFiles)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				if isFile {
					f := &eventsv1.File{}
					if err := proto.Unmarshal(v, f); err != nil {
						return err
					}
					bytes += f.GetSize()
					files++
					return nil
				}
				u := &eventsv1.Upload{}
				if err := proto.Unmarshal(v, u); err != nil {
					return err
				}
				bytes += u.GetReceived()
				return nil
			})
			if err != nil {
				it.Close()
				return fatal("decode %s: %w", it.Item().Key(), err)
			}
		}
		it.Close()
	}
	if err := addUsage(txn, sp.project, ev, -bytes, -files); err != nil {
		return err
	}
	if err := p.dropPrefix(txn, sp.project, b.GetUid()+"-files", []byte(filesPrefix(sp.project, b.GetUid()))); err != nil {
		return err
	}
	if err := p.dropPrefix(txn, sp.project, b.GetUid()+"-uploads", []byte(uploadsPrefix(sp.project, b.GetUid()))); err != nil {
		return err
	}
	if err := txn.Set([]byte(pp(sp.project)+partBucketGC+b.GetUid()), nil); err != nil {
		return err
	}
	return txn.Delete(bucketKey(sp.project, b.GetId()))
}

// bucketGone reports whether f's bucket (by uid) is deleted: a file event
// of a deleted bucket (appended before the deletion was applied elsewhere)
// changes nothing but the bytes it stored, which are queued for deletion.
func bucketGone(txn *badger.Txn, project string, f *eventsv1.File) (bool, error) {
	b := &eventsv1.Bucket{}
	found, err := getIn(txn, bucketKey(project, f.GetBucketId()), b)
	if err != nil {
		return true, err
	}
	if found && b.GetUid() == f.GetBucketUid() {
		return false, nil
	}
	return true, queueBlob(txn, project, f)
}

func (p *Projections) applyUpload(txn *badger.Txn, sp keyspace, ev event, u *eventsv1.Upload, abandoned bool) error {
	f := u.GetFile()
	if err := checkIn(sp, ev, "upload", f.GetProjectId(), f.GetId(), f.GetBucketId(), f.GetBucketUid()); err != nil {
		return err
	}
	if gone, err := bucketGone(txn, sp.project, f); gone || err != nil {
		return err
	}
	key := uploadKey(sp.project, f.GetBucketUid(), f.GetId())
	old := &eventsv1.Upload{}
	if _, err := getIn(txn, key, old); err != nil {
		return err
	}
	if abandoned {
		if err := addUsage(txn, sp.project, ev, -old.GetReceived(), 0); err != nil {
			return err
		}
		if err := txn.Delete(key); err != nil {
			return err
		}
		return queueBlob(txn, sp.project, f)
	}
	if err := addUsage(txn, sp.project, ev, u.GetReceived()-old.GetReceived(), 0); err != nil {
		return err
	}
	v, err := marshal(u)
	if err != nil {
		return fatal("encode upload %s: %w", f.GetId(), err)
	}
	return txn.Set(key, v)
}

func (p *Projections) applyFile(txn *badger.Txn, sp keyspace, ev event, f *eventsv1.File, created, deleted bool) error {
	if err := checkIn(sp, ev, "file", f.GetProjectId(), f.GetId(), f.GetBucketId(), f.GetBucketUid(), f.GetBlobUid()); err != nil {
		return err
	}
	if gone, err := bucketGone(txn, sp.project, f); gone || err != nil {
		return err
	}
	key := fileKey(sp.project, f.GetBucketUid(), f.GetId())
	switch {
	case created:
		up := uploadKey(sp.project, f.GetBucketUid(), f.GetId())
		old := &eventsv1.Upload{}
		if _, err := getIn(txn, up, old); err != nil {
			return err
		}
		if err := addUsage(txn, sp.project, ev, f.GetSize()-old.GetReceived(), 1); err != nil {
			return err
		}
		if err := txn.Delete(up); err != nil {
			return err
		}
	case deleted:
		found, err := getIn(txn, key, &eventsv1.File{})
		if err != nil || !found {
			return err
		}
		if err := addUsage(txn, sp.project, ev, -f.GetSize(), -1); err != nil {
			return err
		}
		if err := p.dropPrefix(txn, sp.project, f.GetBlobUid()+"-tokens", []byte(fileTokensPrefix(sp.project, f.GetBlobUid()))); err != nil {
			return err
		}
		if err := p.dropPrefix(txn, sp.project, f.GetBlobUid()+"-previews", []byte(previewsPrefix(sp.project, f.GetBlobUid()))); err != nil {
			return err
		}
		if err := queueBlob(txn, sp.project, f); err != nil {
			return err
		}
		return txn.Delete(key)
	}
	v, err := marshal(f)
	if err != nil {
		return fatal("encode file %s: %w", f.GetId(), err)
	}
	return txn.Set(key, v)
}

// queueBlob asks the storage sweeper to delete a file's bytes.
func queueBlob(txn *badger.Txn, project string, f *eventsv1.File) error {
	if len(f.GetChunks()) == 0 {
		return nil
	}
	v, err := marshal(f)
	if err != nil {
		return fatal("encode file %s: %w", f.GetId(), err)
	}
	return txn.Set([]byte(pp(project)+partBlobGC+f.GetBlobUid()), v)
}

func (p *Projections) applyFileToken(txn *badger.Txn, sp keyspace, ev event, t *eventsv1.FileToken, deleted bool) error {
	if err := checkIn(sp, ev, "file token", t.GetProjectId(), t.GetId(), t.GetBlobUid()); err != nil {
		return err
	}
	key := []byte(fileTokensPrefix(sp.project, t.GetBlobUid()) + t.GetId())
	if deleted {
		return txn.Delete(key)
	}
	// A token for a file deleted meanwhile would outlive its sweep.
	f := &eventsv1.File{}
	found, err := getIn(txn, fileKeyOfToken(txn, sp.project, t), f)
	if err != nil || !found || f.GetBlobUid() != t.GetBlobUid() {
		return err
	}
	v, err := marshal(t)
	if err != nil {
		return fatal("encode file token %s: %w", t.GetId(), err)
	}
	return txn.Set(key, v)
}

func fileKeyOfToken(txn *badger.Txn, project string, t *eventsv1.FileToken) []byte {
	b := &eventsv1.Bucket{}
	if found, err := getIn(txn, bucketKey(project, t.GetBucketId()), b); err != nil || !found {
		return []byte(pp(project) + partFiles + "-/-")
	}
	return fileKey(project, b.GetUid(), t.GetFileId())
}

// addUsage moves the project's stored bytes and files, and the stored
// bytes of ev's day (DailyUsage).
func addUsage(txn *badger.Txn, project string, ev event, bytes, files int64) error {
	if err := addDaily(txn, project, ev, dailyStorageBytes, bytes); err != nil {
		return err
	}
	return addCounters(txn, usageKey(project), bytes, files)
}

// Bucket returns a project's bucket; ErrNotFound if there is none.
func (p *Projections) Bucket(project, id string) (*eventsv1.Bucket, error) {
	b := &eventsv1.Bucket{}
	if err := p.getProto(project, id, bucketKey(project, id), b); err != nil {
		return nil, fmt.Errorf("bucket %s of project %s: %w", id, project, err)
	}
	return b, nil
}

// ListBuckets returns up to limit buckets with ids after `after`.
func (p *Projections) ListBuckets(project, after string, limit int) ([]*eventsv1.Bucket, error) {
	return listProto(p, bucketsPrefix(project), after, limit, func() *eventsv1.Bucket { return &eventsv1.Bucket{} })
}

// File returns a file of bucket b; ErrNotFound if none.
func (p *Projections) File(project string, b *eventsv1.Bucket, id string) (*eventsv1.File, error) {
	f := &eventsv1.File{}
	if err := p.getProto(project, id, fileKey(project, b.GetUid(), id), f); err != nil {
		return nil, fmt.Errorf("file %s of bucket %s: %w", id, b.GetId(), err)
	}
	return f, nil
}

// ScanFiles calls fn for every file of bucket b in id order after `after`
// until fn returns false or max files were read; it reports whether it
// stopped at max with files left.
func (p *Projections) ScanFiles(project string, b *eventsv1.Bucket, after string, max int, fn func(*eventsv1.File) bool) (truncated bool, err error) {
	prefix := filesPrefix(project, b.GetUid())
	err = p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		start := []byte(prefix)
		if after != "" {
			start = append([]byte(prefix+after), 0)
		}
		n := 0
		for it.Seek(start); it.Valid(); it.Next() {
			if n == max {
				truncated = true
				return nil
			}
			f := &eventsv1.File{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, f) }); err != nil {
				return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
			}
			n++
			if !fn(f) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("projections: files of bucket %s: %w", b.GetId(), err)
	}
	return truncated, nil
}

// Upload returns an upload in progress in bucket b; ErrNotFound if none.
func (p *Projections) Upload(project string, b *eventsv1.Bucket, id string) (*eventsv1.Upload, error) {
	u := &eventsv1.Upload{}
	if err := p.getProto(project, id, uploadKey(project, b.GetUid(), id), u); err != nil {
		return nil, fmt.Errorf("upload %s of bucket %s: %w", id, b.GetId(), err)
	}
	return u, nil
}

// FileToken returns a token of file f; ErrNotFound if none.
func (p *Projections) FileToken(project string, f *eventsv1.File, id string) (*eventsv1.FileToken, error) {
	t := &eventsv1.FileToken{}
	if badToken(f.GetBlobUid()) {
		return nil, ErrNotFound
	}
	if err := p.getProto(project, id, []byte(fileTokensPrefix(project, f.GetBlobUid())+id), t); err != nil {
		return nil, fmt.Errorf("token %s of file %s: %w", id, f.GetId(), err)
	}
	return t, nil
}

// ListFileTokens returns the tokens of file f.
func (p *Projections) ListFileTokens(project string, f *eventsv1.File) ([]*eventsv1.FileToken, error) {
	if badToken(f.GetBlobUid()) {
		return nil, nil
	}
	return listProto(p, fileTokensPrefix(project, f.GetBlobUid()), "", MaxListLimit, func() *eventsv1.FileToken { return &eventsv1.FileToken{} })
}

// StorageUsage returns the bytes of a project's files and uploads in
// progress, and its file count.
func (p *Projections) StorageUsage(project string) (bytes, files int64, err error) {
	c, err := p.counters(usageKey(project), 2)
	if err != nil {
		return 0, 0, fmt.Errorf("projections: storage usage of %s: %w", project, err)
	}
	return c[0], c[1], nil
}

// ExpiredUpload is an upload to abandon.
type ExpiredUpload struct {
	Project string
	Upload  *eventsv1.Upload
}

// ExpiredUploads returns up to limit uploads of every project whose
// expiry is before now (unix nanoseconds).
func (p *Projections) ExpiredUploads(nowUnixNano int64, limit int) ([]ExpiredUpload, error) {
	var out []ExpiredUpload
	err := p.db.View(func(txn *badger.Txn) error {
		projects := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(sysProjects)})
		defer projects.Close()
		for projects.Rewind(); projects.Valid() && len(out) < limit; projects.Next() {
			id := string(projects.Item().Key()[len(sysProjects):])
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pp(id) + partUploads), PrefetchValues: true})
			for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
				u := &eventsv1.Upload{}
				if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, u) }); err != nil {
					it.Close()
					return err
				}
				if u.GetExpiresAt().AsTime().UnixNano() < nowUnixNano {
					out = append(out, ExpiredUpload{Project: id, Upload: u})
				}
			}
			it.Close()
		}
		return nil
	})
	return out, err
}

// StorageGarbage is bytes a node must delete from a project's object
// store: one file's chunks, or (File nil) every object of a bucket.
type StorageGarbage struct {
	Project   string
	File      *eventsv1.File
	BucketUID string
	key       []byte
}

// PendingStorageGarbage returns up to limit queued deletions.
func (p *Projections) PendingStorageGarbage(limit int) ([]StorageGarbage, error) {
	var out []StorageGarbage
	err := p.db.View(func(txn *badger.Txn) error {
		projects := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(sysProjects)})
		defer projects.Close()
		for projects.Rewind(); projects.Valid() && len(out) < limit; projects.Next() {
			id := string(projects.Item().Key()[len(sysProjects):])
			for _, part := range []string{partBlobGC, partBucketGC} {
				prefix := pp(id) + part
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
				for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
					g := StorageGarbage{Project: id, key: it.Item().KeyCopy(nil)}
					if part == partBucketGC {
						g.BucketUID = string(g.key[len(prefix):])
					} else {
						g.File = &eventsv1.File{}
						if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, g.File) }); err != nil {
							it.Close()
							return err
						}
					}
					out = append(out, g)
				}
				it.Close()
			}
		}
		return nil
	})
	return out, err
}

// StorageGarbageDone removes a deletion the sweeper finished.
func (p *Projections) StorageGarbageDone(g StorageGarbage) error {
	return p.db.Update(func(txn *badger.Txn) error { return txn.Delete(g.key) })
}

// Preview returns a cached preview of a file; ErrNotFound if none.
func (p *Projections) Preview(project, blobUID, key string) ([]byte, error) {
	if badToken(blobUID) || badToken(key) {
		return nil, ErrNotFound
	}
	var out []byte
	err := p.get([]byte(previewsPrefix(project, blobUID)+key), func(v []byte) error {
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// MaxPreviewsPerFile bounds the cached previews of one file, so that a
// client asking for every size cannot fill the node's disk; previews past
// it are rendered each time.
const MaxPreviewsPerFile = 32

// CachePreview stores a rendered preview, unless the file has
// MaxPreviewsPerFile already. A file deleted meanwhile leaves it to the
// next sweep of its prefix (or the project's deletion).
func (p *Projections) CachePreview(project, blobUID, key string, data []byte) error {
	if badToken(blobUID) || badToken(key) {
		return fmt.Errorf("projections: bad preview key %q/%q", blobUID, key)
	}
	prefix := []byte(previewsPrefix(project, blobUID))
	return p.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		n := 0
		for it.Rewind(); it.Valid() && n < MaxPreviewsPerFile; it.Next() {
			n++
		}
		it.Close()
		if n >= MaxPreviewsPerFile {
			return nil
		}
		return txn.Set(append(prefix, key...), data)
	})
}
