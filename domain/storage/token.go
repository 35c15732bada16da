package storage

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// CreateFileToken makes a token for File (live). SecretHash is the SHA-256
// of the secret the caller hands out once.
type CreateFileToken struct {
	File       *eventsv1.File
	ID         string
	SecretHash []byte
	// ExpiresAt zero: never.
	ExpiresAt time.Time
	Now       time.Time
}

// DecideCreateFileToken returns the FileTokenCreated event.
func DecideCreateFileToken(existing *eventsv1.FileToken, c CreateFileToken) ([]*eventsv1.Envelope, error) {
	if c.File == nil {
		return nil, ErrFileNotFound
	}
	if existing != nil {
		return nil, domain.Errorf(domain.KindAlreadyExists, "file token %q already exists", c.ID)
	}
	if len(c.SecretHash) == 0 {
		return nil, domain.Errorf(domain.KindInternal, "file token %q has no secret hash", c.ID)
	}
	t := &eventsv1.FileToken{
		Id: c.ID, ProjectId: c.File.GetProjectId(), BucketId: c.File.GetBucketId(), FileId: c.File.GetId(),
		SecretHash: c.SecretHash, CreatedAt: timestamppb.New(c.Now), BlobUid: c.File.GetBlobUid(),
	}
	if !c.ExpiresAt.IsZero() {
		if !c.ExpiresAt.After(c.Now) {
			return nil, domain.FieldError("expires_at", "must be in the future")
		}
		t.ExpiresAt = timestamppb.New(c.ExpiresAt)
	}
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FileTokenCreated{FileTokenCreated: &eventsv1.FileTokenCreated{Token: t}}}}, nil
}

// DecideDeleteFileToken revokes a token.
func DecideDeleteFileToken(existing *eventsv1.FileToken) ([]*eventsv1.Envelope, error) {
	if existing == nil {
		return nil, domain.Errorf(domain.KindNotFound, "file token not found")
	}
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FileTokenDeleted{FileTokenDeleted: &eventsv1.FileTokenDeleted{Token: proto.CloneOf(existing)}}}}, nil
}

// TokenGrants reports whether token t lets its holder read file f at now:
// not expired, and f is the very file it was made for (not a later file
// with the same id).
func TokenGrants(t *eventsv1.FileToken, f *eventsv1.File, now time.Time) bool {
	if t == nil || f == nil || t.GetFileId() != f.GetId() || t.GetBucketId() != f.GetBucketId() || t.GetBlobUid() != f.GetBlobUid() {
		return false
	}
	return t.GetExpiresAt() == nil || now.Before(t.GetExpiresAt().AsTime())
}
