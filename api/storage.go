package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	"github.com/cairn-dev/cairn/domain/permission"
	"github.com/cairn-dev/cairn/domain/storage"
	"github.com/cairn-dev/cairn/filestore"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// storageReads is what storage needs of the read models.
type storageReads interface {
	Bucket(project, id string) (*eventsv1.Bucket, error)
	ListBuckets(project, after string, limit int) ([]*eventsv1.Bucket, error)
	File(project string, b *eventsv1.Bucket, id string) (*eventsv1.File, error)
	ScanFiles(project string, b *eventsv1.Bucket, after string, max int, fn func(*eventsv1.File) bool) (bool, error)
	Upload(project string, b *eventsv1.Bucket, id string) (*eventsv1.Upload, error)
	FileToken(project string, f *eventsv1.File, id string) (*eventsv1.FileToken, error)
	ListFileTokens(project string, f *eventsv1.File) ([]*eventsv1.FileToken, error)
	StorageUsage(project string) (bytes, files int64, err error)
	Preview(project, blobUID, key string) ([]byte, error)
	CachePreview(project, blobUID, key string, data []byte) error
}

// StorageLimits bound file storage (Config); zero means the default.
type StorageLimits struct {
	// MaxFileSize is the largest file any bucket accepts.
	MaxFileSize int64
	// DefaultQuota is a project's storage quota in bytes unless its limits
	// set one; 0 means unlimited.
	DefaultQuota int64
	// UploadExpiry is how long a chunked upload may wait for its next
	// chunk before it is abandoned and its bytes deleted.
	UploadExpiry time.Duration
	// MaxChunkSize is the largest chunk of a Content-Range upload.
	MaxChunkSize int64
	// PreviewMaxBytes is the largest image previews are rendered from.
	PreviewMaxBytes int64
	// PartSize is the plaintext size of a stored part (filestore).
	PartSize int64
}

// Storage defaults.
const (
	DefaultMaxFileSize     = 5 << 30
	DefaultUploadExpiry    = 24 * time.Hour
	DefaultMaxChunkSize    = 64 << 20
	DefaultPreviewMaxBytes = 20 << 20
	// maxFilesScanned bounds the files a filtered or ordered ListFiles
	// reads; beyond it the query fails and says so.
	maxFilesScanned = 10_000
)

func (l StorageLimits) withDefaults() StorageLimits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.UploadExpiry <= 0 {
		l.UploadExpiry = DefaultUploadExpiry
	}
	if l.MaxChunkSize <= 0 {
		l.MaxChunkSize = DefaultMaxChunkSize
	}
	if l.PreviewMaxBytes <= 0 {
		l.PreviewMaxBytes = DefaultPreviewMaxBytes
	}
	if l.PartSize <= 0 {
		l.PartSize = filestore.DefaultPartSize
	}
	return l
}

type storageHandler struct{ *Server }

// bucketView is an open bucket and who is asking.
type bucketView struct {
	project string
	b       *eventsv1.Bucket
	perms   []permission.Permission
	subj    permission.Subject
	// hidden: the caller may do nothing here; it must not learn the
	// bucket exists (hidden.go).
	hidden bool
}

func (bv *bucketView) server() bool {
	return bv.subj.Kind == permission.APIKey || bv.subj.Kind == permission.Operator
}

// can reports whether the caller may act on f (nil: on the bucket).
func (bv *bucketView) can(a permission.Action, f *eventsv1.File) bool {
	var item []permission.Permission
	if f != nil && bv.b.GetFileSecurity() {
		item, _ = permission.ParsePermissions(f.GetPermissions())
	}
	return permission.Check(bv.subj, a, bv.perms, item, bv.b.GetFileSecurity())
}

// loadBucket returns the bucket from the read model, or KindNotFound.
func (s *Server) loadBucket(project, id string) (*eventsv1.Bucket, error) {
	b, err := s.reads.Bucket(project, id)
	if errors.Is(err, errNotFound) {
		return nil, domain.Errorf(domain.KindNotFound, "bucket %q not found", id)
	}
	return b, err
}

// openBucket loads a bucket for the caller p. End users see no disabled
// bucket, nor one they may do nothing in (hidden.go).
func (s *Server) openBucket(project, id string, p access.Principal) (*bucketView, error) {
	bv, err := s.openBucketView(project, id, p)
	if err == nil && bv.hidden {
		return nil, bucketNotFound(id)
	}
	return bv, err
}

// openBucketView is openBucket that leaves a hidden bucket to the caller
// (a file token may still grant a read in it).
func (s *Server) openBucketView(project, id string, p access.Principal) (*bucketView, error) {
	subj, err := s.subject(project, p)
	if err != nil {
		return nil, err
	}
	b, err := s.loadBucket(project, id)
	if err != nil {
		return nil, err
	}
	bv := &bucketView{project: project, b: b, subj: subj}
	if !bv.server() && !b.GetEnabled() {
		return nil, bucketNotFound(id)
	}
	if bv.perms, err = permission.ParsePermissions(b.GetPermissions()); err != nil {
		return nil, fmt.Errorf("stored permissions of bucket %s: %w", id, err)
	}
	bv.hidden = !bv.server() && !sees(subj, bv.perms, b.GetFileSecurity())
	return bv, nil
}

// readableFile returns a file the caller may read; a file it may not read
// is not found, as a document is.
func (s *Server) readableFile(bv *bucketView, id string) (*eventsv1.File, error) {
	f, err := s.reads.File(bv.project, bv.b, id)
	if errors.Is(err, errNotFound) || (err == nil && !bv.can(permission.Read, f)) {
		if err == nil && bv.can(permission.Read, nil) {
			return nil, domain.Errorf(domain.KindPermissionDenied, "no permission to read file %q", id)
		}
		return nil, domain.Errorf(domain.KindNotFound, "file %q not found in bucket %q", id, bv.b.GetId())
	}
	return f, err
}

func bucketState(last *eventsv1.Envelope) *eventsv1.Bucket {
	switch p := last.GetPayload().(type) {
	case *eventsv1.Envelope_BucketCreated:
		return p.BucketCreated.GetBucket()
	case *eventsv1.Envelope_BucketUpdated:
		return p.BucketUpdated.GetBucket()
	}
	return nil
}

func (h *storageHandler) writeBucket(ctx context.Context, project, id string, cmd storage.BucketCommand) (*eventsv1.Bucket, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	res, err := h.log.Write(ctx, eventlog.BucketAggregate(project, id), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		return storage.DecideBucket(bucketState(last), cmd)
	})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	if len(res.Events) == 0 {
		return nil, nil
	}
	return bucketState(res.Events[len(res.Events)-1]), nil
}

var compressionNames = map[cairnv1.Compression]string{
	cairnv1.Compression_COMPRESSION_UNSPECIFIED: storage.CompressionNone,
	cairnv1.Compression_COMPRESSION_NONE:        storage.CompressionNone,
	cairnv1.Compression_COMPRESSION_GZIP:        storage.CompressionGzip,
	cairnv1.Compression_COMPRESSION_ZSTD:        storage.CompressionZstd,
}

func compressionOut(c string) cairnv1.Compression {
	switch c {
	case storage.CompressionGzip:
		return cairnv1.Compression_COMPRESSION_GZIP
	case storage.CompressionZstd:
		return cairnv1.Compression_COMPRESSION_ZSTD
	}
	return cairnv1.Compression_COMPRESSION_NONE
}

func bucketOut(b *eventsv1.Bucket) *cairnv1.Bucket {
	return &cairnv1.Bucket{
		Id: b.GetId(), ProjectId: b.GetProjectId(), Name: b.GetName(), Permissions: b.GetPermissions(),
		FileSecurity: b.GetFileSecurity(), Enabled: b.GetEnabled(), MaximumFileSize: b.GetMaximumFileSize(),
		AllowedFileExtensions: b.GetAllowedFileExtensions(), Compression: compressionOut(b.GetCompression()),
		Encryption: b.GetEncryption(), CreatedAt: b.GetCreatedAt(), UpdatedAt: b.GetUpdatedAt(),
	}
}

func fileOut(f *eventsv1.File) *cairnv1.File {
	return &cairnv1.File{
		Id: f.GetId(), ProjectId: f.GetProjectId(), BucketId: f.GetBucketId(), Name: f.GetName(),
		Permissions: f.GetPermissions(), Size: f.GetSize(), MimeType: f.GetMimeType(), Sha256: f.GetSha256(),
		ChunksTotal: f.GetChunksTotal(), ChunksUploaded: f.GetChunksUploaded(), Encrypted: len(f.GetSealedKey()) > 0,
		Compression: compressionOut(f.GetCompression()), StoredSize: f.GetStoredSize(),
		CreatedAt: f.GetCreatedAt(), UpdatedAt: f.GetUpdatedAt(),
	}
}

func (h *storageHandler) CreateBucket(ctx context.Context, req *cairnv1.CreateBucketRequest) (*cairnv1.CreateBucketResponse, error) {
	project, id := req.GetProjectId(), req.GetBucketId()
	if id == "" || id == domain.UniqueID {
		id = h.log.NewID()
	}
	b, err := h.writeBucket(ctx, project, id, storage.CreateBucket{
		ProjectID: project, ID: id, Name: req.GetName(), Permissions: req.GetPermissions(), FileSecurity: req.GetFileSecurity(),
		Enabled: req.Enabled == nil || *req.Enabled, MaxFileSize: req.GetMaximumFileSize(),
		Extensions: req.GetAllowedFileExtensions(), Compression: compressionNames[req.GetCompression()],
		Encryption: req.GetEncryption(), InstanceMax: h.storage.MaxFileSize, UID: h.log.NewID(), Now: h.log.Now(),
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateBucketResponse{Bucket: bucketOut(b)}, nil
}

func (h *storageHandler) GetBucket(ctx context.Context, req *cairnv1.GetBucketRequest) (*cairnv1.GetBucketResponse, error) {
	b, err := h.loadBucket(req.GetProjectId(), req.GetBucketId())
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetBucketResponse{Bucket: bucketOut(b)}, nil
}

func (h *storageHandler) ListBuckets(ctx context.Context, req *cairnv1.ListBucketsRequest) (*cairnv1.ListBucketsResponse, error) {
	bs, err := h.reads.ListBuckets(req.GetProjectId(), req.GetCursorAfter(), pageSize(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListBucketsResponse{}
	for _, b := range bs {
		res.Buckets = append(res.Buckets, bucketOut(b))
	}
	return res, nil
}

func (h *storageHandler) UpdateBucket(ctx context.Context, req *cairnv1.UpdateBucketRequest) (*cairnv1.UpdateBucketResponse, error) {
	cmd := storage.UpdateBucket{Name: req.Name, FileSecurity: req.FileSecurity, Enabled: req.Enabled,
		MaxFileSize: req.MaximumFileSize, Encryption: req.Encryption, InstanceMax: h.storage.MaxFileSize, Now: h.log.Now()}
	if req.GetPermissions() != nil {
		perms := req.GetPermissions().GetValues()
		cmd.Permissions = &perms
	}
	if req.GetAllowedFileExtensions() != nil {
		exts := req.GetAllowedFileExtensions().GetValues()
		cmd.Extensions = &exts
	}
	if req.GetCompression() != cairnv1.Compression_COMPRESSION_UNSPECIFIED {
		c := compressionNames[req.GetCompression()]
		cmd.Compression = &c
	}
	b, err := h.writeBucket(ctx, req.GetProjectId(), req.GetBucketId(), cmd)
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateBucketResponse{Bucket: bucketOut(b)}, nil
}

func (h *storageHandler) DeleteBucket(ctx context.Context, req *cairnv1.DeleteBucketRequest) (*cairnv1.DeleteBucketResponse, error) {
	if _, err := h.writeBucket(ctx, req.GetProjectId(), req.GetBucketId(), storage.DeleteBucket{Now: h.log.Now()}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteBucketResponse{}, nil
}

// MaxRPCFileBytes is the largest file CreateFile takes in one call.
const MaxRPCFileBytes = 4 << 20

func (h *storageHandler) CreateFile(ctx context.Context, req *cairnv1.CreateFileRequest) (*cairnv1.CreateFileResponse, error) {
	p := principal(ctx)
	bv, err := h.openBucket(req.GetProjectId(), req.GetBucketId(), p)
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var perms *[]string
	if req.GetPermissions() != nil {
		v := req.GetPermissions().GetValues()
		perms = &v
	}
	content := req.GetContent()
	up, err := h.putChunk(ctx, meta, bv, chunkRequest{
		fileID: req.GetFileId(), name: req.GetName(), perms: perms, user: p,
		offset: 0, length: int64(len(content)), total: int64(len(content)), body: strings.NewReader(string(content)),
	})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, up.seq)
	return &cairnv1.CreateFileResponse{File: fileOut(up.file)}, nil
}

// chunkRequest is one chunk of an upload, from an RPC or HTTP.
type chunkRequest struct {
	fileID, name string
	// perms are the file's permissions as sent (nil: the default).
	perms *[]string
	user  access.Principal
	// offset and length of the chunk in a file of total bytes; length -1:
	// the body is the whole file, of a size known once read (total -1).
	offset, length, total int64
	chunksTotal           int64
	body                  io.Reader
}

// chunkResult is the upload's state after a chunk.
type chunkResult struct {
	file     *eventsv1.File // the file, complete or not yet
	received int64
	complete bool
	seq      uint64
}

// putChunk checks a chunk against the upload's state in the log, stores
// its bytes, and records it; the chunk that completes the file creates
// it. Bytes of a chunk that is then refused are deleted again.
func (s *Server) putChunk(ctx context.Context, meta eventlog.Meta, bv *bucketView, c chunkRequest) (chunkResult, error) {
	project, b := bv.project, bv.b
	if c.fileID == "" || c.fileID == domain.UniqueID {
		if c.offset != 0 {
			return chunkResult{}, domain.FieldError("fileId", "a chunk after the first must name the file the first one created")
		}
		c.fileID = s.log.NewID()
	}
	if !domain.ValidResourceID(c.fileID) {
		return chunkResult{}, domain.FieldError("fileId", "must be 1 to 36 letters, digits, '_' or '-', not starting with '_' or '-'")
	}
	agg := eventlog.FileAggregate(project, b.GetId(), c.fileID)
	last, _, err := s.log.Last(ctx, agg)
	if err != nil {
		return chunkResult{}, err
	}
	state := storage.StateOf(last).Live(b)
	// Authorize before CheckChunk: its errors tell whether the file exists
	// and how far an upload stands.
	if state.Upload == nil {
		if !bv.can(permission.Create, nil) {
			return chunkResult{}, domain.Errorf(domain.KindPermissionDenied, "no permission to create files in bucket %q", b.GetId())
		}
	} else if !bv.server() && state.Upload.GetOwner() != bv.subj.UserID {
		// Only whoever started an upload may continue it.
		return chunkResult{}, domain.Errorf(domain.KindPermissionDenied, "the upload of file %q was started by someone else", c.fileID)
	}
	checkLen, checkTotal := c.length, c.total
	if c.total < 0 {
		checkLen, checkTotal = 0, 0
	}
	if err := storage.CheckChunk(state, b, c.fileID, c.name, c.offset, checkLen, checkTotal, s.storage.MaxFileSize); err != nil {
		if errors.Is(err, storage.ErrWrongOffset) {
			return chunkResult{}, domain.Errorf(domain.KindFailedPrecondition,
				"chunk starts at byte %d but the upload of file %q has received %d bytes: resume from byte %d",
				c.offset, c.fileID, state.Upload.GetReceived(), state.Upload.GetReceived())
		}
		return chunkResult{}, err
	}
	var perms []string
	if state.Upload == nil {
		if perms, err = s.filePermissions(bv, c.perms); err != nil {
			return chunkResult{}, err
		}
	}
	maxSize := storage.MaxFileSize(b, s.storage.MaxFileSize)
	remaining := c.total - c.offset
	if c.total < 0 {
		remaining = maxSize
	}
	if err := s.checkQuota(ctx, project, state.Upload, remaining, c.total < 0); err != nil {
		return chunkResult{}, err
	}

	layout, sealed, err := s.layoutFor(project, b, state.Upload)
	if err != nil {
		return chunkResult{}, err
	}
	h := sha256.New()
	if state.Upload != nil {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state.Upload.GetHashState()); err != nil {
			return chunkResult{}, fmt.Errorf("restore the upload's sha256 state: %w", err)
		}
	}
	limit := c.length
	if c.length < 0 {
		limit = maxSize
	}
	head := &headTee{r: c.body}
	obs, err := s.store.ObjectStore(ctx, project)
	if err != nil {
		return chunkResult{}, err
	}
	chunk, err := filestore.WriteChunk(ctx, obs, layout, c.offset, head, limit, h)
	if errors.Is(err, filestore.ErrTooLarge) {
		if c.length < 0 {
			return chunkResult{}, domain.Errorf(domain.KindInvalid, "file is larger than bucket %q allows (%d bytes)", b.GetId(), maxSize)
		}
		return chunkResult{}, domain.FieldError("body", "has more than the %d bytes Content-Range announced", c.length)
	}
	if err != nil {
		if isMaxBytes(err) {
			return chunkResult{}, domain.Errorf(domain.KindResourceExhausted, "request body too large")
		}
		return chunkResult{}, fmt.Errorf("store chunk of file %s: %w", c.fileID, err)
	}
	drop := func() {
		if err := filestore.Delete(context.WithoutCancel(ctx), obs, layout, []filestore.Chunk{chunk}); err != nil {
			s.logger.Warn("deleting the bytes of a refused chunk", "project", project, "file", c.fileID, "err", err)
		}
	}
	total := c.total
	if c.length < 0 {
		total = chunk.Size
		if err := s.checkQuota(ctx, project, nil, total, false); err != nil {
			drop()
			return chunkResult{}, err
		}
	} else if chunk.Size != c.length {
		drop()
		return chunkResult{}, domain.FieldError("body", "has %d bytes but Content-Range announced %d", chunk.Size, c.length)
	}
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		drop()
		return chunkResult{}, fmt.Errorf("save sha256 state: %w", err)
	}
	cmd := storage.UploadChunk{
		Bucket: b, FileID: c.fileID, Name: c.name, Permissions: perms, Size: total,
		Chunk:       storage.Chunk{Offset: chunk.Offset, Size: chunk.Size, Stored: chunk.Stored, Nonce: chunk.Nonce},
		ChunksTotal: c.chunksTotal, HashState: hs, MimeType: filestore.Sniff(head.bytes(), c.name),
		BlobUID: strings.TrimPrefix(layout.UID, b.GetUid()+"-"), PartSize: layout.PartSize, Compression: layout.Compression,
		SealedKey: sealed, Owner: bv.subj.UserID, InstanceMax: s.storage.MaxFileSize, Expiry: s.storage.UploadExpiry, Now: s.log.Now(),
	}
	if c.offset+chunk.Size == total {
		cmd.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	res, err := s.log.Write(ctx, agg, meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		return storage.DecideFile(storage.StateOf(last).Live(b), cmd)
	})
	if err != nil {
		drop()
		if errors.Is(err, storage.ErrWrongOffset) {
			return chunkResult{}, domain.Errorf(domain.KindConflict, "another chunk of file %q was stored at the same time; ask GetUpload where to resume", c.fileID)
		}
		return chunkResult{}, err
	}
	if res.Duplicate {
		drop() // a retry of a recorded chunk: the first copy's parts count
	}
	out := chunkResult{seq: res.Seq}
	switch st := storage.StateOf(res.Events[len(res.Events)-1]); {
	case st.File != nil:
		out.file, out.received, out.complete = st.File, st.File.GetSize(), true
	case st.Upload != nil:
		out.file, out.received = st.Upload.GetFile(), st.Upload.GetReceived()
	}
	return out, nil
}

// filePermissions are a new file's permissions: the ones sent (which an
// end user may only grant to roles it holds), or for an end user by
// default read, update and delete for itself, as for documents.
func (s *Server) filePermissions(bv *bucketView, sent *[]string) ([]string, error) {
	if sent != nil {
		perms, err := permission.ParsePermissions(*sent)
		if err != nil {
			return nil, domain.FieldError("permissions", "%v", err)
		}
		if err := permission.CanGrant(bv.subj, perms); err != nil {
			return nil, err
		}
		return permission.Strings(perms), nil
	}
	if bv.subj.Kind != permission.User {
		return nil, nil
	}
	role := fmt.Sprintf("user:%s", bv.subj.UserID)
	return []string{
		fmt.Sprintf("read(%q)", role), fmt.Sprintf("update(%q)", role), fmt.Sprintf("delete(%q)", role),
	}, nil
}

// checkQuota refuses an upload that would take the project past its
// storage quota: adding more bytes to what is stored (u's received bytes
// are counted already). Concurrent uploads are checked against the usage
// each saw, so a quota can be overshot by the uploads in flight at once.
// Site files count as files do.
func (s *Server) checkQuota(ctx context.Context, project string, u *eventsv1.Upload, more int64, unknown bool) error {
	quota := s.storage.DefaultQuota
	if p, err := s.reads.Project(project); err == nil && p.GetLimits().GetMaxStorageBytes() > 0 {
		quota = p.GetLimits().GetMaxStorageBytes()
	}
	if quota <= 0 {
		return nil
	}
	used, _, err := s.reads.StorageUsage(project)
	if err != nil {
		return err
	}
	site, err := s.siteBytes(ctx, project)
	if err != nil {
		return err
	}
	used += site
	if unknown {
		more = 0 // checked again once the size is known
	}
	if used+more > quota {
		return domain.Errorf(domain.KindResourceExhausted,
			"storage quota exceeded: project %q stores %d of %d bytes and this upload needs %d more", project, used, quota, more)
	}
	return nil
}

// layoutFor returns where an upload's bytes go: a new blob with the
// bucket's compression and, with encryption, a fresh key (returned sealed
// for the log), or the upload in progress's own.
func (s *Server) layoutFor(project string, b *eventsv1.Bucket, u *eventsv1.Upload) (filestore.Layout, []byte, error) {
	if u != nil {
		l, err := s.fileLayout(u.GetFile())
		return l, u.GetFile().GetSealedKey(), err
	}
	l := filestore.Layout{UID: layoutUID(b.GetUid(), s.log.NewID()), PartSize: s.storage.PartSize, Compression: b.GetCompression()}
	if !b.GetEncryption() {
		return l, nil, nil
	}
	key, err := filestore.NewKey()
	if err != nil {
		return l, nil, err
	}
	sealed, err := s.seal(project, "file-key:"+l.UID, key)
	if err != nil {
		return l, nil, err
	}
	l.Key = key
	return l, sealed, nil
}

// layoutUID names a file's objects: under its bucket's uid, so a deleted
// bucket's objects are found by prefix whichever upload wrote them.
func layoutUID(bucketUID, blobUID string) string { return bucketUID + "-" + blobUID }

// plainLayout is where a file's bytes are, without its key (enough to
// delete them).
func plainLayout(f *eventsv1.File) filestore.Layout {
	return filestore.Layout{UID: layoutUID(f.GetBucketUid(), f.GetBlobUid()), PartSize: f.GetPartSize(), Compression: f.GetCompression()}
}

// fileLayout is where a stored file's bytes are.
func (s *Server) fileLayout(f *eventsv1.File) (filestore.Layout, error) {
	l := plainLayout(f)
	if len(f.GetSealedKey()) > 0 {
		key, err := s.unseal(f.GetProjectId(), "file-key:"+l.UID, f.GetSealedKey())
		if err != nil {
			return l, fmt.Errorf("file %s: %w", f.GetId(), err)
		}
		l.Key = key
	}
	return l, nil
}

func fileChunks(f *eventsv1.File) []filestore.Chunk {
	out := make([]filestore.Chunk, len(f.GetChunks()))
	for i, c := range f.GetChunks() {
		out[i] = filestore.Chunk{Offset: c.GetOffset(), Size: c.GetSize(), Nonce: c.GetNonce(), Stored: c.GetStored()}
	}
	return out
}

// headTee keeps the first bytes read through it, for content sniffing.
type headTee struct {
	r    io.Reader
	head []byte
}

func (t *headTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if len(t.head) < 512 {
		t.head = append(t.head, p[:min(n, 512-len(t.head))]...)
	}
	return n, err
}

func (t *headTee) bytes() []byte { return t.head }

func (h *storageHandler) GetFile(ctx context.Context, req *cairnv1.GetFileRequest) (*cairnv1.GetFileResponse, error) {
	bv, err := h.openBucket(req.GetProjectId(), req.GetBucketId(), principal(ctx))
	if err != nil {
		return nil, err
	}
	f, err := h.readableFile(bv, req.GetFileId())
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetFileResponse{File: fileOut(f)}, nil
}

// fileSchema is what ListFiles filters and orders by.
var fileSchema = &database.Schema{
	Attributes: []database.Attribute{
		{Key: "name", Type: database.TypeString, Size: 255, Status: database.StatusAvailable},
		{Key: "mimeType", Type: database.TypeString, Size: 255, Status: database.StatusAvailable},
		{Key: "size", Type: database.TypeInteger, IntMin: 0, IntMax: 1 << 62, Status: database.StatusAvailable},
		{Key: "signature", Type: database.TypeString, Size: 64, Status: database.StatusAvailable},
	},
	Indexes: []database.Index{
		{Key: "name", Type: database.IndexFulltext, Attributes: []string{"name"}, Desc: []bool{false}, Status: database.StatusAvailable},
	},
}

func fileFields(f *eventsv1.File, seq int64) map[string]any {
	return map[string]any{
		database.AttrID:        f.GetId(),
		database.AttrSequence:  seq,
		database.AttrCreatedAt: f.GetCreatedAt().AsTime().Truncate(database.DatetimePrecision),
		database.AttrUpdatedAt: f.GetUpdatedAt().AsTime().Truncate(database.DatetimePrecision),
		"name":                 f.GetName(),
		"mimeType":             f.GetMimeType(),
		"size":                 f.GetSize(),
		"signature":            f.GetSha256(),
	}
}

// fileListTotalCap is where ListFiles stops counting, as ListDocuments.
const fileListTotalCap = 5000

func (h *storageHandler) ListFiles(ctx context.Context, req *cairnv1.ListFilesRequest) (*cairnv1.ListFilesResponse, error) {
	bv, err := h.openBucket(req.GetProjectId(), req.GetBucketId(), principal(ctx))
	if err != nil {
		return nil, err
	}
	readAll := bv.can(permission.Read, nil)
	if !readAll && !bv.b.GetFileSecurity() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "no permission to read bucket %q", bv.b.GetId())
	}
	q := &query.Query{Filters: filtersIn(req.GetFilters()), Limit: int(req.GetLimit()), Offset: int(req.GetOffset()),
		CursorAfter: req.GetCursorAfter(), CursorBefore: req.GetCursorBefore()}
	q.Orders = ordersIn(req.GetOrders())
	if s := strings.TrimSpace(req.GetSearch()); s != "" {
		q.Filters = append(q.Filters, query.Filter{Op: query.OpSearch, Attribute: "name", Values: []any{s}})
	}
	if err := query.Validate(q, fileSchema, query.Limits{MaxLimit: 5000}); err != nil {
		return nil, err
	}
	var docs []map[string]any
	var files []*eventsv1.File
	seq := int64(0)
	truncated, err := h.reads.ScanFiles(bv.project, bv.b, "", maxFilesScanned, func(f *eventsv1.File) bool {
		seq++
		if readAll || bv.can(permission.Read, f) {
			docs = append(docs, fileFields(f, seq))
			files = append(files, f)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if truncated {
		return nil, domain.Errorf(domain.KindFailedPrecondition,
			"bucket %q holds more than %d files: ListFiles reads at most that many; split the files across buckets", bv.b.GetId(), maxFilesScanned)
	}
	byID := make(map[string]*eventsv1.File, len(files))
	for _, f := range files {
		byID[f.GetId()] = f
	}
	page, err := query.Run(q, docs)
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListFilesResponse{}
	for _, d := range page {
		res.Files = append(res.Files, fileOut(byID[d[database.AttrID].(string)]))
	}
	if req.Total == nil || *req.Total {
		all := *q
		all.Limit, all.Offset, all.CursorAfter, all.CursorBefore = 0, 0, "", ""
		matched, err := query.Run(&all, docs)
		if err != nil {
			return nil, err
		}
		n := int64(min(len(matched), fileListTotalCap))
		res.Total = &n
		res.TotalCapped = len(matched) > fileListTotalCap
	}
	return res, nil
}

func (h *storageHandler) UpdateFile(ctx context.Context, req *cairnv1.UpdateFileRequest) (*cairnv1.UpdateFileResponse, error) {
	bv, err := h.openBucket(req.GetProjectId(), req.GetBucketId(), principal(ctx))
	if err != nil {
		return nil, err
	}
	cmd := storage.UpdateFile{Name: req.Name, Now: h.log.Now()}
	if req.GetPermissions() != nil {
		perms, err := permission.ParsePermissions(req.GetPermissions().GetValues())
		if err != nil {
			return nil, domain.FieldError("permissions", "%v", err)
		}
		if err := permission.CanGrant(bv.subj, perms); err != nil {
			return nil, err
		}
		v := permission.Strings(perms)
		cmd.Permissions = &v
	}
	f, err := h.writeFile(ctx, bv, req.GetFileId(), permission.Update, cmd)
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateFileResponse{File: fileOut(f)}, nil
}

func (h *storageHandler) DeleteFile(ctx context.Context, req *cairnv1.DeleteFileRequest) (*cairnv1.DeleteFileResponse, error) {
	bv, err := h.openBucket(req.GetProjectId(), req.GetBucketId(), principal(ctx))
	if err != nil {
		return nil, err
	}
	if _, err := h.writeFile(ctx, bv, req.GetFileId(), permission.Delete, storage.DeleteFile{Now: h.log.Now()}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteFileResponse{}, nil
}

// writeFile runs an update or delete of a file, authorized against the
// file's state in the log.
func (h *storageHandler) writeFile(ctx context.Context, bv *bucketView, id string, action permission.Action, cmd storage.FileCommand) (*eventsv1.File, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	res, err := h.log.Write(ctx, eventlog.FileAggregate(bv.project, bv.b.GetId(), id), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		st := storage.StateOf(last).Live(bv.b)
		if st.File == nil || !bv.can(action, st.File) {
			if st.File != nil && bv.can(permission.Read, st.File) {
				return nil, domain.Errorf(domain.KindPermissionDenied, "no permission to %s file %q", action, id)
			}
			return nil, domain.Errorf(domain.KindNotFound, "file %q not found in bucket %q", id, bv.b.GetId())
		}
		return storage.DecideFile(st, cmd)
	})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return storage.StateOf(res.Events[len(res.Events)-1]).File, nil
}

func (h *storageHandler) GetUpload(ctx context.Context, req *cairnv1.GetUploadRequest) (*cairnv1.GetUploadResponse, error) {
	bv, err := h.openBucket(req.GetProjectId(), req.GetBucketId(), principal(ctx))
	if err != nil {
		return nil, err
	}
	if !bv.can(permission.Create, nil) {
		return nil, domain.Errorf(domain.KindPermissionDenied, "no permission to create files in bucket %q", bv.b.GetId())
	}
	last, _, err := h.log.Last(ctx, eventlog.FileAggregate(bv.project, bv.b.GetId(), req.GetFileId()))
	if err != nil {
		return nil, err
	}
	st := storage.StateOf(last).Live(bv.b)
	switch {
	case st.File != nil:
		return &cairnv1.GetUploadResponse{Received: st.File.GetSize(), Size: st.File.GetSize(), ChunksUploaded: st.File.GetChunksUploaded()}, nil
	case st.Upload == nil:
		return nil, domain.Errorf(domain.KindNotFound, "no upload of file %q in progress in bucket %q", req.GetFileId(), bv.b.GetId())
	}
	u := st.Upload
	return &cairnv1.GetUploadResponse{Received: u.GetReceived(), Size: u.GetFile().GetSize(),
		ChunksUploaded: u.GetFile().GetChunksUploaded(), ExpiresAt: u.GetExpiresAt()}, nil
}

func fileTokenOut(t *eventsv1.FileToken) *cairnv1.FileToken {
	return &cairnv1.FileToken{Id: t.GetId(), BucketId: t.GetBucketId(), FileId: t.GetFileId(), ExpiresAt: t.GetExpiresAt(), CreatedAt: t.GetCreatedAt()}
}

func (h *storageHandler) tokenFile(ctx context.Context, project, bucket, file string) (*eventsv1.File, error) {
	bv, err := h.openBucket(project, bucket, principal(ctx))
	if err != nil {
		return nil, err
	}
	return h.readableFile(bv, file)
}

func (h *storageHandler) CreateFileToken(ctx context.Context, req *cairnv1.CreateFileTokenRequest) (*cairnv1.CreateFileTokenResponse, error) {
	f, err := h.tokenFile(ctx, req.GetProjectId(), req.GetBucketId(), req.GetFileId())
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	id := h.log.NewID()
	secret, err := randomSecret()
	if err != nil {
		return nil, err
	}
	token := id + "." + secret
	sum := sha256.Sum256([]byte(token))
	var expires time.Time
	if req.GetExpiresAt() != nil {
		expires = req.GetExpiresAt().AsTime()
	}
	res, err := h.log.Write(ctx, eventlog.FileTokenAggregate(req.GetProjectId(), req.GetBucketId(), req.GetFileId(), id), meta,
		func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
			return storage.DecideCreateFileToken(last.GetFileTokenCreated().GetToken(), storage.CreateFileToken{
				File: f, ID: id, SecretHash: sum[:], ExpiresAt: expires, Now: h.log.Now()})
		})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.CreateFileTokenResponse{Token: fileTokenOut(res.Events[0].GetFileTokenCreated().GetToken()), Secret: token}, nil
}

func randomSecret() (string, error) {
	key, err := filestore.NewKey()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(key), nil
}

func (h *storageHandler) ListFileTokens(ctx context.Context, req *cairnv1.ListFileTokensRequest) (*cairnv1.ListFileTokensResponse, error) {
	f, err := h.tokenFile(ctx, req.GetProjectId(), req.GetBucketId(), req.GetFileId())
	if err != nil {
		return nil, err
	}
	ts, err := h.reads.ListFileTokens(req.GetProjectId(), f)
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListFileTokensResponse{}
	for _, t := range ts {
		res.Tokens = append(res.Tokens, fileTokenOut(t))
	}
	return res, nil
}

func (h *storageHandler) DeleteFileToken(ctx context.Context, req *cairnv1.DeleteFileTokenRequest) (*cairnv1.DeleteFileTokenResponse, error) {
	f, err := h.tokenFile(ctx, req.GetProjectId(), req.GetBucketId(), req.GetFileId())
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	res, err := h.log.Write(ctx, eventlog.FileTokenAggregate(req.GetProjectId(), req.GetBucketId(), req.GetFileId(), req.GetTokenId()), meta,
		func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
			t := last.GetFileTokenCreated().GetToken()
			if t.GetBlobUid() != f.GetBlobUid() {
				t = nil
			}
			if t == nil {
				return nil, domain.Errorf(domain.KindNotFound, "token %q of file %q not found", req.GetTokenId(), req.GetFileId())
			}
			return storage.DecideDeleteFileToken(t)
		})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.DeleteFileTokenResponse{}, nil
}

// tokenGrants checks a file token from a URL against the file.
func (s *Server) tokenGrants(project string, f *eventsv1.File, token string) bool {
	id, _, ok := strings.Cut(token, ".")
	if !ok || !domain.ValidResourceID(id) {
		return false
	}
	t, err := s.reads.FileToken(project, f, id)
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], t.GetSecretHash()) == 1 && storage.TokenGrants(t, f, s.now())
}

func (h *storageHandler) GetStorageUsage(ctx context.Context, req *cairnv1.GetStorageUsageRequest) (*cairnv1.GetStorageUsageResponse, error) {
	used, files, err := h.reads.StorageUsage(req.GetProjectId())
	if err != nil {
		return nil, err
	}
	site, err := h.siteBytes(ctx, req.GetProjectId())
	if err != nil {
		return nil, err
	}
	used += site // site files count against the quota too
	quota := h.storage.DefaultQuota
	if p, err := h.reads.Project(req.GetProjectId()); err == nil && p.GetLimits().GetMaxStorageBytes() > 0 {
		quota = p.GetLimits().GetMaxStorageBytes()
	}
	return &cairnv1.GetStorageUsageResponse{UsedBytes: used, QuotaBytes: quota, Files: files}, nil
}
