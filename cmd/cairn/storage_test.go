package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"testing"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// fileBytes is n deterministic bytes: half random (incompressible), half
// a repeated pattern, so compression has something to do.
func fileBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]byte, n)
	for i := range out {
		if (i/4096)%2 == 0 {
			out[i] = byte(r.Uint32())
		} else {
			out[i] = "cairn storage "[i%14]
		}
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestStorageSmoke(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "st", allScopes()...)
	ctx, _ := as(context.Background(), key)
	if _, err := in.storage().CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: "st", BucketId: "b", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	data := fileBytes(3<<20+1, 1)
	f := in.uploadChunked(t, key, "st", "b", "f1", "data.bin", data, 1<<20)
	if f.GetSha256() != sha(data) || f.GetSize() != int64(len(data)) {
		t.Fatalf("file %v", f)
	}
	res := in.fetch(t, key, "st", "b", "f1", "download", nil)
	if res.status != http.StatusOK || !bytes.Equal(res.body, data) {
		t.Fatalf("download: %d, %d bytes", res.status, len(res.body))
	}
}
