package storage

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func kind(err error) domain.Kind {
	var e *domain.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return -1
}

func newBucket(t *testing.T, c CreateBucket) *eventsv1.Bucket {
	t.Helper()
	evs, err := DecideBucket(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return evs[0].GetBucketCreated().GetBucket()
}

func TestBucketSettings(t *testing.T) {
	b := newBucket(t, CreateBucket{ID: "b", Name: "B", Permissions: []string{`read("any")`}, Extensions: []string{"PNG", ".jpg", "png"}, InstanceMax: 100, UID: "u1", Now: now})
	if got := b.GetAllowedFileExtensions(); len(got) != 2 || got[0] != "jpg" || got[1] != "png" {
		t.Errorf("extensions %v, want [jpg png]", got)
	}
	if b.GetCompression() != CompressionNone || MaxFileSize(b, 100) != 100 {
		t.Errorf("defaults: compression %q, max %d", b.GetCompression(), MaxFileSize(b, 100))
	}
	if _, err := DecideBucket(b, CreateBucket{ID: "b", Name: "B", UID: "u2", Now: now}); kind(err) != domain.KindAlreadyExists {
		t.Errorf("create twice: %v", err)
	}
	bad := []CreateBucket{
		{ID: "b", Name: "B", Compression: "brotli"},
		{ID: "b", Name: "B", MaxFileSize: 101, InstanceMax: 100},
		{ID: "b", Name: "B", Extensions: []string{"p.ng"}},
		{ID: "b", Name: "B", Permissions: []string{"read(nobody)"}},
	}
	for _, c := range bad {
		if _, err := DecideBucket(nil, c); kind(err) != domain.KindInvalid {
			t.Errorf("%+v: %v, want invalid", c, err)
		}
	}
	size := int64(10)
	evs, err := DecideBucket(b, UpdateBucket{MaxFileSize: &size, InstanceMax: 100, Now: now})
	if err != nil || MaxFileSize(evs[0].GetBucketUpdated().GetBucket(), 100) != 10 {
		t.Fatalf("update: %v", err)
	}
	if _, err := DecideBucket(nil, DeleteBucket{Now: now}); !errors.Is(err, ErrBucketNotFound) {
		t.Errorf("delete missing: %v", err)
	}
}

// An upload in three chunks: each chunk must start where the last ended,
// the size is fixed by the first, and the last one creates the file.
func TestChunkedUpload(t *testing.T) {
	b := newBucket(t, CreateBucket{ID: "b", Name: "B", Extensions: []string{"bin"}, UID: "u1", Now: now})
	chunk := func(s FileState, off, n int64) (FileState, error) {
		c := UploadChunk{Bucket: b, FileID: "f", Name: "data.bin", Size: 25, Chunk: Chunk{Offset: off, Size: n, Stored: n, Nonce: "x"},
			HashState: []byte{1}, InstanceMax: 100, Expiry: time.Hour, Now: now, BlobUID: "blob", PartSize: 8}
		if off+n == 25 {
			c.SHA256 = "abc"
		}
		evs, err := DecideFile(s, c)
		if err != nil {
			return s, err
		}
		return StateOf(evs[0]), nil
	}
	s, err := chunk(FileState{}, 0, 10)
	if err != nil || s.Upload.GetReceived() != 10 || s.Upload.GetFile().GetBlobUid() != "blob" {
		t.Fatalf("first chunk: %+v %v", s, err)
	}
	if _, err := chunk(s, 5, 10); !errors.Is(err, ErrWrongOffset) {
		t.Errorf("overlapping chunk: %v", err)
	}
	if _, err := chunk(FileState{}, 10, 10); kind(err) != domain.KindFailedPrecondition {
		t.Errorf("chunk without an upload: %v", err)
	}
	if s, err = chunk(s, 10, 10); err != nil {
		t.Fatal(err)
	}
	if evs, err := DecideFile(s, AbandonUpload{Now: now}); err != nil || len(evs) != 0 {
		t.Errorf("abandon before expiry: %v %v", evs, err)
	}
	if s, err = chunk(s, 20, 5); err != nil || s.File == nil {
		t.Fatalf("last chunk: %+v %v", s, err)
	}
	f := s.File
	if f.GetSize() != 25 || len(f.GetChunks()) != 3 || f.GetChunksUploaded() != 3 || f.GetSha256() != "abc" || f.GetStoredSize() != 25 {
		t.Errorf("file %+v", f)
	}
	if _, err := chunk(s, 0, 10); kind(err) != domain.KindAlreadyExists {
		t.Errorf("upload over an existing file: %v", err)
	}
	// A bucket made again with the same id does not see the old file.
	b2 := newBucket(t, CreateBucket{ID: "b", Name: "B", UID: "u2", Now: now})
	if s.Live(b2).File != nil {
		t.Error("file of a deleted bucket is live in its successor")
	}
}

func TestUploadLimits(t *testing.T) {
	b := newBucket(t, CreateBucket{ID: "b", Name: "B", MaxFileSize: 10, Extensions: []string{"png"}, UID: "u1", Now: now})
	cases := []struct {
		name  string
		total int64
		kind  domain.Kind
	}{
		{"a.png", 11, domain.KindInvalid},
		{"a.exe", 5, domain.KindInvalid},
		{"a", 5, domain.KindInvalid},
		{"a/b.png", 5, domain.KindInvalid},
		{"a\x00.png", 5, domain.KindInvalid},
	}
	for _, c := range cases {
		if err := CheckChunk(FileState{}, b, "f", c.name, 0, c.total, c.total, 100); kind(err) != c.kind {
			t.Errorf("%q of %d bytes: %v", c.name, c.total, err)
		}
	}
	if err := CheckChunk(FileState{}, b, "f", "a.PNG", 0, 10, 10, 100); err != nil {
		t.Errorf("allowed upload: %v", err)
	}
}

func TestAbandonAndTokens(t *testing.T) {
	up := &eventsv1.Upload{File: &eventsv1.File{Id: "f"}, ExpiresAt: nil}
	up.ExpiresAt = timestampAt(now.Add(-time.Minute))
	evs, err := DecideFile(FileState{Upload: up}, AbandonUpload{Now: now})
	if err != nil || len(evs) != 1 || evs[0].GetUploadAbandoned() == nil {
		t.Fatalf("abandon expired: %v %v", evs, err)
	}
	f := &eventsv1.File{Id: "f", BucketId: "b", BlobUid: "blob1"}
	evs, err = DecideCreateFileToken(nil, CreateFileToken{File: f, ID: "t", SecretHash: []byte{1}, ExpiresAt: now.Add(time.Hour), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	tok := evs[0].GetFileTokenCreated().GetToken()
	if !TokenGrants(tok, f, now) || TokenGrants(tok, f, now.Add(2*time.Hour)) {
		t.Error("token expiry")
	}
	if TokenGrants(tok, &eventsv1.File{Id: "f", BucketId: "b", BlobUid: "blob2"}, now) {
		t.Error("token grants a later file with the same id")
	}
	if _, err := DecideCreateFileToken(nil, CreateFileToken{File: f, ID: "t", SecretHash: []byte{1}, ExpiresAt: now.Add(-time.Hour), Now: now}); kind(err) != domain.KindInvalid {
		t.Errorf("expired at creation: %v", err)
	}
}

func timestampAt(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
