package storage

import (
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/permission"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Compression names.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// ErrBucketNotFound: no such bucket (or it was deleted).
var ErrBucketNotFound = domain.Errorf(domain.KindNotFound, "bucket not found")

// BucketCommand is one of CreateBucket, UpdateBucket, DeleteBucket.
type BucketCommand interface{ isBucketCommand() }

// CreateBucket makes a bucket.
type CreateBucket struct {
	ProjectID    string
	ID, Name     string
	Permissions  []string
	FileSecurity bool
	Enabled      bool
	// MaxFileSize 0 means InstanceMax.
	MaxFileSize int64
	Extensions  []string
	// Compression "" means none.
	Compression string
	Encryption  bool
	// InstanceMax is the largest file the instance accepts (--max-file-size).
	InstanceMax int64
	UID         string
	Now         time.Time
}

// UpdateBucket changes the fields that are set.
type UpdateBucket struct {
	Name         *string
	Permissions  *[]string
	FileSecurity *bool
	Enabled      *bool
	MaxFileSize  *int64
	Extensions   *[]string
	Compression  *string
	Encryption   *bool
	InstanceMax  int64
	Now          time.Time
}

// DeleteBucket deletes the bucket; the projection drops its files and the
// node sweeps their bytes.
type DeleteBucket struct{ Now time.Time }

func (CreateBucket) isBucketCommand() {}
func (UpdateBucket) isBucketCommand() {}
func (DeleteBucket) isBucketCommand() {}

// DecideBucket returns the events that follow from cmd given state (nil:
// no bucket). Errors are KindAlreadyExists, KindNotFound or KindInvalid
// naming the field.
func DecideBucket(state *eventsv1.Bucket, cmd BucketCommand) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case CreateBucket:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "bucket %q already exists", c.ID)
		}
		b := &eventsv1.Bucket{
			Id: c.ID, ProjectId: c.ProjectID, Name: c.Name, FileSecurity: c.FileSecurity, Enabled: c.Enabled, Uid: c.UID,
			CreatedAt: timestamppb.New(c.Now), UpdatedAt: timestamppb.New(c.Now),
		}
		if err := setBucket(b, &c.Permissions, &c.MaxFileSize, &c.Extensions, &c.Compression, c.InstanceMax); err != nil {
			return nil, err
		}
		b.Encryption = c.Encryption
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_BucketCreated{BucketCreated: &eventsv1.BucketCreated{Bucket: b}}}}, nil
	case UpdateBucket:
		if state == nil {
			return nil, ErrBucketNotFound
		}
		b := proto.CloneOf(state)
		b.UpdatedAt = timestamppb.New(c.Now)
		if c.Name != nil {
			b.Name = *c.Name
		}
		if c.FileSecurity != nil {
			b.FileSecurity = *c.FileSecurity
		}
		if c.Enabled != nil {
			b.Enabled = *c.Enabled
		}
		if c.Encryption != nil {
			b.Encryption = *c.Encryption
		}
		if err := setBucket(b, c.Permissions, c.MaxFileSize, c.Extensions, c.Compression, c.InstanceMax); err != nil {
			return nil, err
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_BucketUpdated{BucketUpdated: &eventsv1.BucketUpdated{Bucket: b}}}}, nil
	case DeleteBucket:
		if state == nil {
			return nil, ErrBucketNotFound
		}
		b := proto.CloneOf(state)
		b.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_BucketDeleted{BucketDeleted: &eventsv1.BucketDeleted{Bucket: b}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown bucket command %T", cmd)
	}
}

// setBucket validates and sets the settings that are non-nil.
func setBucket(b *eventsv1.Bucket, perms *[]string, maxSize *int64, exts *[]string, compression *string, instanceMax int64) error {
	if perms != nil {
		p, err := permission.ParsePermissions(*perms)
		if err != nil {
			return domain.FieldError("permissions", "%v", err)
		}
		b.Permissions = permission.Strings(p)
	}
	if maxSize != nil {
		if *maxSize < 0 || (instanceMax > 0 && *maxSize > instanceMax) {
			return domain.FieldError("maximum_file_size", "must be between 0 (the instance maximum) and %d bytes", instanceMax)
		}
		b.MaximumFileSize = *maxSize
	}
	if exts != nil {
		norm := make([]string, 0, len(*exts))
		for _, e := range *exts {
			e = strings.ToLower(strings.TrimPrefix(e, "."))
			if e == "" || len(e) > 16 || strings.Trim(e, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
				return domain.FieldError("allowed_file_extensions", "%q is not an extension (letters and digits, at most 16)", e)
			}
			norm = append(norm, e)
		}
		slices.Sort(norm)
		b.AllowedFileExtensions = slices.Compact(norm)
	}
	if compression != nil {
		switch *compression {
		case "", CompressionNone:
			b.Compression = CompressionNone
		case CompressionGzip, CompressionZstd:
			b.Compression = *compression
		default:
			return domain.FieldError("compression", "must be none, gzip or zstd")
		}
	}
	return nil
}

// MaxFileSize is the largest file bucket b accepts.
func MaxFileSize(b *eventsv1.Bucket, instanceMax int64) int64 {
	if m := b.GetMaximumFileSize(); m > 0 && (instanceMax <= 0 || m < instanceMax) {
		return m
	}
	return instanceMax
}

// Extension is a file name's extension, lower-case, without the dot.
func Extension(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return ""
	}
	return strings.ToLower(name[i+1:])
}
