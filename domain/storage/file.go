package storage

import (
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/permission"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// FileState is a file aggregate as its last event leaves it: an upload in
// progress, a file, or neither (never started, abandoned, deleted).
type FileState struct {
	Upload *eventsv1.Upload
	File   *eventsv1.File
}

// StateOf returns the state after the aggregate's last event (nil: none).
func StateOf(last *eventsv1.Envelope) FileState {
	switch p := last.GetPayload().(type) {
	case *eventsv1.Envelope_UploadProgressed:
		return FileState{Upload: p.UploadProgressed.GetUpload()}
	case *eventsv1.Envelope_FileCreated:
		return FileState{File: p.FileCreated.GetFile()}
	case *eventsv1.Envelope_FileUpdated:
		return FileState{File: p.FileUpdated.GetFile()}
	}
	return FileState{}
}

// Live drops what belongs to another incarnation of the bucket: a bucket
// deleted and made again with the same id (a new uid) has none of the old
// one's files or uploads.
func (s FileState) Live(b *eventsv1.Bucket) FileState {
	if b == nil {
		return FileState{}
	}
	if s.File != nil && s.File.GetBucketUid() != b.GetUid() {
		s.File = nil
	}
	if s.Upload != nil && s.Upload.GetFile().GetBucketUid() != b.GetUid() {
		s.Upload = nil
	}
	return s
}

// Chunk is what the node stored for one chunk (package filestore).
type Chunk struct {
	Offset, Size, Stored int64
	Nonce                string
}

// UploadChunk records a chunk the node has stored. The first chunk
// (Offset 0 with no upload in progress) starts the upload with the file's
// name, permissions and storage layout; the chunk that completes the
// announced size creates the file.
type UploadChunk struct {
	Bucket      *eventsv1.Bucket
	FileID      string
	Name        string
	Permissions []string
	// Size is the announced size of the whole file.
	Size  int64
	Chunk Chunk
	// ChunksTotal is the count the client announced (0: unknown, e.g. one
	// streamed request).
	ChunksTotal int64
	// HashState is the SHA-256 state after the chunk; SHA256 its hex sum,
	// set when the chunk completes the file.
	HashState []byte
	SHA256    string
	// MimeType is sniffed from the first chunk's bytes.
	MimeType string
	// Layout of a new upload.
	BlobUID     string
	PartSize    int64
	Compression string
	SealedKey   []byte
	// Owner is the end user starting the upload ("" for a key or guest).
	Owner string
	// InstanceMax is --max-file-size; Expiry how long an upload may idle.
	InstanceMax int64
	Expiry      time.Duration
	Now         time.Time
}

// AbandonUpload ends an upload that expired before Now.
type AbandonUpload struct{ Now time.Time }

// UpdateFile changes the fields that are set.
type UpdateFile struct {
	Name        *string
	Permissions *[]string
	Now         time.Time
}

// DeleteFile deletes the file; the node deletes its bytes.
type DeleteFile struct{ Now time.Time }

// FileCommand is one of UploadChunk, AbandonUpload, UpdateFile, DeleteFile.
type FileCommand interface{ isFileCommand() }

func (UploadChunk) isFileCommand()   {}
func (AbandonUpload) isFileCommand() {}
func (UpdateFile) isFileCommand()    {}
func (DeleteFile) isFileCommand()    {}

// ErrFileNotFound: no such file.
var ErrFileNotFound = domain.Errorf(domain.KindNotFound, "file not found")

// DecideFile returns the events that follow from cmd given the live state.
func DecideFile(s FileState, cmd FileCommand) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case UploadChunk:
		return uploadChunk(s, c)
	case AbandonUpload:
		if s.Upload == nil || !s.Upload.GetExpiresAt().AsTime().Before(c.Now) {
			return nil, nil
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_UploadAbandoned{UploadAbandoned: &eventsv1.UploadAbandoned{Upload: s.Upload}}}}, nil
	case UpdateFile:
		if s.File == nil {
			return nil, ErrFileNotFound
		}
		f := proto.CloneOf(s.File)
		f.UpdatedAt = timestamppb.New(c.Now)
		if c.Name != nil {
			if err := ValidateName(*c.Name); err != nil {
				return nil, err
			}
			f.Name = *c.Name
		}
		if c.Permissions != nil {
			p, err := permission.ParsePermissions(*c.Permissions)
			if err != nil {
				return nil, domain.FieldError("permissions", "%v", err)
			}
			f.Permissions = permission.Strings(p)
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FileUpdated{FileUpdated: &eventsv1.FileUpdated{File: f}}}}, nil
	case DeleteFile:
		if s.File == nil {
			return nil, ErrFileNotFound
		}
		f := proto.CloneOf(s.File)
		f.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FileDeleted{FileDeleted: &eventsv1.FileDeleted{File: f}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown file command %T", cmd)
	}
}

// ErrWrongOffset: a chunk that does not start where the upload stands.
// The caller tells the client where to resume (Upload.Received).
var ErrWrongOffset = domain.Errorf(domain.KindFailedPrecondition, "chunk does not start where the upload stands")

// CheckChunk says whether a chunk [offset, offset+n) of a file of size total
// may be stored next, before the node spends time storing it.
func CheckChunk(s FileState, b *eventsv1.Bucket, fileID, name string, offset, n, total, instanceMax int64) error {
	if s.File != nil {
		return domain.Errorf(domain.KindAlreadyExists, "file %q already exists in bucket %q", fileID, b.GetId())
	}
	if total < 0 || offset < 0 || n < 0 || offset+n > total {
		return domain.FieldError("Content-Range", "bytes %d-%d are outside a file of %d bytes", offset, offset+n-1, total)
	}
	if s.Upload == nil {
		if offset != 0 {
			return domain.Errorf(domain.KindFailedPrecondition, "no upload of file %q is in progress: start at byte 0, not %d", fileID, offset)
		}
		if err := ValidateName(name); err != nil {
			return err
		}
		if max := MaxFileSize(b, instanceMax); max > 0 && total > max {
			return domain.Errorf(domain.KindInvalid, "file of %d bytes is larger than bucket %q allows (%d bytes)", total, b.GetId(), max)
		}
		if exts := b.GetAllowedFileExtensions(); len(exts) > 0 && !slices.Contains(exts, Extension(name)) {
			return domain.FieldError("name", "extension %q is not allowed in bucket %q (allowed: %v)", Extension(name), b.GetId(), exts)
		}
		return nil
	}
	u := s.Upload
	if total != u.GetFile().GetSize() {
		return domain.FieldError("Content-Range", "the upload of file %q announced %d bytes, this chunk says %d", fileID, u.GetFile().GetSize(), total)
	}
	if offset != u.GetReceived() {
		return ErrWrongOffset
	}
	return nil
}

func uploadChunk(s FileState, c UploadChunk) ([]*eventsv1.Envelope, error) {
	if err := CheckChunk(s, c.Bucket, c.FileID, c.Name, c.Chunk.Offset, c.Chunk.Size, c.Size, c.InstanceMax); err != nil {
		return nil, err
	}
	var u *eventsv1.Upload
	if s.Upload == nil {
		perms, err := permission.ParsePermissions(c.Permissions)
		if err != nil {
			return nil, domain.FieldError("permissions", "%v", err)
		}
		compression := c.Compression
		if compression == "" {
			compression = CompressionNone
		}
		u = &eventsv1.Upload{File: &eventsv1.File{
			Id: c.FileID, ProjectId: c.Bucket.GetProjectId(), BucketId: c.Bucket.GetId(), BucketUid: c.Bucket.GetUid(),
			Name: c.Name, Permissions: permission.Strings(perms), Size: c.Size, MimeType: c.MimeType,
			ChunksTotal: c.ChunksTotal, BlobUid: c.BlobUID, PartSize: c.PartSize, Compression: compression,
			SealedKey: c.SealedKey, CreatedAt: timestamppb.New(c.Now),
		}, Owner: c.Owner}
	} else {
		u = proto.CloneOf(s.Upload)
	}
	f := u.File
	if c.Chunk.Size > 0 {
		f.Chunks = append(f.Chunks, &eventsv1.FileChunk{Offset: c.Chunk.Offset, Size: c.Chunk.Size, Nonce: c.Chunk.Nonce, Stored: c.Chunk.Stored})
	}
	f.ChunksUploaded++
	f.StoredSize += c.Chunk.Stored
	f.UpdatedAt = timestamppb.New(c.Now)
	u.Received = c.Chunk.Offset + c.Chunk.Size
	u.HashState = c.HashState
	if u.Received == f.GetSize() {
		if c.SHA256 == "" {
			return nil, domain.Errorf(domain.KindInternal, "the last chunk of file %q has no sha256", c.FileID)
		}
		f.Sha256 = c.SHA256
		if f.ChunksTotal < f.ChunksUploaded {
			f.ChunksTotal = f.ChunksUploaded
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FileCreated{FileCreated: &eventsv1.FileCreated{File: f}}}}, nil
	}
	u.ExpiresAt = timestamppb.New(c.Now.Add(c.Expiry))
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_UploadProgressed{UploadProgressed: &eventsv1.UploadProgressed{Upload: u}}}}, nil
}

// ValidateName checks a file name: 1 to 255 characters of valid UTF-8
// without control characters or path separators (it ends up in
// Content-Disposition headers and in users' file systems).
func ValidateName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 255 || !utf8.ValidString(name) {
		return domain.FieldError("name", "must be 1 to 255 characters of UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return domain.FieldError("name", "must not contain control characters or path separators")
		}
	}
	return nil
}
