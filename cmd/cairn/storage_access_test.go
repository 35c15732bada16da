package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// storageScopes is what a server key of the storage tests holds.
var storageScopes = []string{"buckets.read", "buckets.write", "files.read", "files.write", "teams.read", "teams.write", "users.read"}

// pngBytes is a w×h PNG image.
func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(x * 7), G: uint8(y * 11), B: uint8(x ^ y), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// multipartFile is an upload form: fileId, permissions[] and the file
// part; it returns the body and its Content-Type.
func multipartFile(t testing.TB, fileID, name string, data []byte, perms ...string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("fileId", fileID); err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if err := mw.WriteField("permissions[]", p); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// upload sends data as one raw request (no Content-Range) with optional
// permissions.
func (in *instance) upload(t testing.TB, token, project, bucket, fileID, name string, data []byte, perms ...string) httpResult {
	t.Helper()
	q := url.Values{"fileId": {fileID}, "name": {name}}
	if len(perms) > 0 {
		q["permissions"] = perms
	}
	return in.do(t, httpCall{method: http.MethodPost, path: filesPath(bucket), project: project, token: token, query: q, body: bytes.NewReader(data)})
}

// wantStatus fails unless res has status and, for a 200, exactly the
// bytes want.
func wantStatus(t *testing.T, what string, res httpResult, status int, want []byte) {
	t.Helper()
	if res.status != status {
		t.Fatalf("%s: want %d, got %s", what, status, res)
	}
	if status == http.StatusOK && want != nil && sha(res.body) != sha(want) {
		t.Fatalf("%s: %d bytes with sha256 %s, want %d bytes with %s", what, len(res.body), sha(res.body), len(want), sha(want))
	}
}

// storageUsers makes a project with a server key and two signed-up,
// signed-in users, ann and bob.
func storageUsers(t *testing.T, in *instance, p string) (key string, ann, bob *cairnv1.CreateEmailPasswordSessionResponse) {
	t.Helper()
	key = newProjectWithKey(t, in, p, storageScopes...)
	g, _ := guest(context.Background(), p, "")
	for _, e := range []string{"ann@example.com", "bob@example.com"} {
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
	}
	ann = signIn(t, in, p, "ann@example.com", "password of ann@example.com")
	bob = signIn(t, in, p, "bob@example.com", "password of bob@example.com")
	return key, ann, bob
}

// A bucket without file security: its permissions decide alone. Guests
// read what "any" may, signed-in users upload (HTTP and RPC), and nobody
// deletes another's file until the bucket grants delete.
func TestStorageBucketPermissions(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "pics"
	key, ann, bob := storageUsers(t, in, p)
	k, _ := as(ctx, key)
	st := in.storage()
	if _, err := st.CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "pub", Name: "Public",
		Permissions: []string{`read("any")`, `create("users")`}}); err != nil {
		t.Fatal(err)
	}
	g, _ := guest(ctx, p, "")
	ac, _ := guest(ctx, p, ann.GetSecret())
	bc, _ := guest(ctx, p, bob.GetSecret())
	annID := ann.GetSession().GetUserId()

	// Ann uploads over HTTP with her session as Bearer, in chunks and as a
	// multipart form, and by RPC.
	photo := fileBytes(48<<10, 2)
	f := in.uploadChunked(t, ann.GetSecret(), p, "pub", "photo", "photo.bin", photo, 20<<10)
	if f.GetSha256() != sha(photo) || len(f.GetPermissions()) != 3 || !strings.Contains(f.GetPermissions()[0], annID) {
		t.Fatalf("ann's upload: %v", f)
	}
	body, ctype := multipartFile(t, "form", "form.txt", []byte("from a form"))
	res := in.do(t, httpCall{method: http.MethodPost, path: filesPath("pub"), project: p, token: ann.GetSecret(),
		header: http.Header{"Content-Type": {ctype}}, body: body})
	wantStatus(t, "ann's multipart upload", res, http.StatusCreated, nil)
	if _, err := st.CreateFile(ac, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "pub", FileId: "note", Name: "note.txt", Content: []byte("ann's note")}); err != nil {
		t.Fatalf("ann's CreateFile: %v", err)
	}

	// Guests download and list, but do not upload, change or delete.
	wantStatus(t, "guest download", in.fetch(t, "", p, "pub", "photo", "download", nil), http.StatusOK, photo)
	wantStatus(t, "guest view", in.fetch(t, "", p, "pub", "note", "view", nil), http.StatusOK, []byte("ann's note"))
	l, err := st.ListFiles(g, &cairnv1.ListFilesRequest{ProjectId: p, BucketId: "pub"})
	if err != nil || len(l.GetFiles()) != 3 || l.GetTotal() != 3 {
		t.Fatalf("guest list: %v %v", l, err)
	}
	wantStatus(t, "guest upload", in.upload(t, "", p, "pub", "spam", "spam.txt", []byte("spam")), http.StatusForbidden, nil)
	wantStatus(t, "guest chunk", in.putChunk(t, "", p, "pub", "spam", "spam.txt", 0, 8, []byte("spam")), http.StatusForbidden, nil)
	_, err = st.CreateFile(g, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "pub", Name: "spam.txt", Content: []byte("spam")})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = st.DeleteFile(g, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "pub", FileId: "photo"})
	wantCode(t, err, connect.CodePermissionDenied)

	// Bob reads Ann's files but may neither rename nor delete them.
	wantStatus(t, "bob's download of ann's photo", in.fetch(t, bob.GetSecret(), p, "pub", "photo", "download", nil), http.StatusOK, photo)
	newName := "bob's now"
	_, err = st.UpdateFile(bc, &cairnv1.UpdateFileRequest{ProjectId: p, BucketId: "pub", FileId: "photo", Name: &newName})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = st.DeleteFile(bc, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "pub", FileId: "photo"})
	wantCode(t, err, connect.CodePermissionDenied)
	// Nor may he overwrite one by uploading under its id.
	wantStatus(t, "bob's upload over ann's photo", in.upload(t, bob.GetSecret(), p, "pub", "photo", "x.bin", []byte("x")), http.StatusConflict, nil)
	// Ann's own file permissions do not count without file security: she
	// may not delete hers either.
	_, err = st.DeleteFile(ac, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "pub", FileId: "note"})
	wantCode(t, err, connect.CodePermissionDenied)

	// Once the bucket grants delete to users, Bob deletes Ann's photo.
	if _, err := st.UpdateBucket(k, &cairnv1.UpdateBucketRequest{ProjectId: p, BucketId: "pub",
		Permissions: &cairnv1.Permissions{Values: []string{`read("any")`, `create("users")`, `delete("users")`}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteFile(bc, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "pub", FileId: "photo"}); err != nil {
		t.Fatalf("bob's delete with delete(\"users\"): %v", err)
	}
	_, err = st.GetFile(ac, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "pub", FileId: "photo"})
	wantCode(t, err, connect.CodeNotFound)
	wantStatus(t, "download of the deleted photo", in.fetch(t, "", p, "pub", "photo", "download", nil), http.StatusNotFound, nil)
	// Guests still may not delete.
	_, err = st.DeleteFile(g, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "pub", FileId: "note"})
	wantCode(t, err, connect.CodePermissionDenied)

	// End users and guests cannot manage buckets or file tokens.
	for _, c := range []struct {
		name string
		ctx  context.Context
		code connect.Code
	}{{"session", ac, connect.CodePermissionDenied}, {"guest", g, connect.CodeUnauthenticated}} {
		for _, sc := range storageServerCalls(in, p, "pub", "note") {
			if err := sc.call(c.ctx); connect.CodeOf(err) != c.code {
				t.Errorf("%s as %s: want %v, got %v", sc.name, c.name, c.code, err)
			}
		}
	}
	// The bucket is as the server left it.
	b, err := st.GetBucket(k, &cairnv1.GetBucketRequest{ProjectId: p, BucketId: "pub"})
	if err != nil || b.GetBucket().GetName() != "Public" || len(b.GetBucket().GetPermissions()) != 3 {
		t.Fatalf("bucket: %v %v", b, err)
	}
}

// storageServerCalls calls every StorageService RPC that is for servers
// only (API keys and operators).
func storageServerCalls(in *instance, p, bucket, file string) []call {
	st := in.storage()
	name := "x"
	return []call{
		{"CreateBucket", func(ctx context.Context) error {
			_, err := st.CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "mine", Name: "mine"})
			return err
		}},
		{"GetBucket", func(ctx context.Context) error {
			_, err := st.GetBucket(ctx, &cairnv1.GetBucketRequest{ProjectId: p, BucketId: bucket})
			return err
		}},
		{"ListBuckets", func(ctx context.Context) error {
			_, err := st.ListBuckets(ctx, &cairnv1.ListBucketsRequest{ProjectId: p})
			return err
		}},
		{"UpdateBucket", func(ctx context.Context) error {
			_, err := st.UpdateBucket(ctx, &cairnv1.UpdateBucketRequest{ProjectId: p, BucketId: bucket, Name: &name})
			return err
		}},
		{"DeleteBucket", func(ctx context.Context) error {
			_, err := st.DeleteBucket(ctx, &cairnv1.DeleteBucketRequest{ProjectId: p, BucketId: bucket})
			return err
		}},
		{"GetStorageUsage", func(ctx context.Context) error {
			_, err := st.GetStorageUsage(ctx, &cairnv1.GetStorageUsageRequest{ProjectId: p})
			return err
		}},
		{"CreateFileToken", func(ctx context.Context) error {
			_, err := st.CreateFileToken(ctx, &cairnv1.CreateFileTokenRequest{ProjectId: p, BucketId: bucket, FileId: file})
			return err
		}},
		{"ListFileTokens", func(ctx context.Context) error {
			_, err := st.ListFileTokens(ctx, &cairnv1.ListFileTokensRequest{ProjectId: p, BucketId: bucket, FileId: file})
			return err
		}},
		{"DeleteFileToken", func(ctx context.Context) error {
			_, err := st.DeleteFileToken(ctx, &cairnv1.DeleteFileTokenRequest{ProjectId: p, BucketId: bucket, FileId: file, TokenId: "t"})
			return err
		}},
	}
}

// A bucket with file security: each file's own permissions count too.
// Creators get read, update and delete; others see nothing; sharing
// (by user or team) opens a file, and a revoked membership closes it at
// once; users grant only roles they hold; a disabled bucket is gone for
// end users; only the starter of a chunked upload may continue it.
func TestStorageFileSecurity(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "docs"
	key, ann, bob := storageUsers(t, in, p)
	k, _ := as(ctx, key)
	st := in.storage()
	if _, err := st.CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "priv", Name: "Private",
		Permissions: []string{`create("users")`}, FileSecurity: true}); err != nil {
		t.Fatal(err)
	}
	g, _ := guest(ctx, p, "")
	ac, _ := guest(ctx, p, ann.GetSecret())
	bc, _ := guest(ctx, p, bob.GetSecret())
	annID, bobID := ann.GetSession().GetUserId(), bob.GetSession().GetUserId()
	annOwns := []string{`read("user:` + annID + `")`, `update("user:` + annID + `")`, `delete("user:` + annID + `")`}

	// Ann uploads two files without permissions: hers alone.
	secret := fileBytes(40<<10, 3)
	f := in.uploadChunked(t, ann.GetSecret(), p, "priv", "a1", "secret.bin", secret, 16<<10)
	if strings.Join(f.GetPermissions(), " ") != strings.Join(annOwns, " ") {
		t.Fatalf("creator's default permissions: %v, want %v", f.GetPermissions(), annOwns)
	}
	if _, err := st.CreateFile(ac, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a2", Name: "club.txt", Content: []byte("for the club")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateFile(bc, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "priv", FileId: "b1", Name: "bob.txt", Content: []byte("bob's")}); err != nil {
		t.Fatal(err)
	}
	// Ann reads, renames and (below) deletes hers.
	if got, err := st.GetFile(ac, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1"}); err != nil || got.GetFile().GetSha256() != sha(secret) {
		t.Fatalf("ann's GetFile: %v %v", got, err)
	}
	wantStatus(t, "ann's download", in.fetch(t, ann.GetSecret(), p, "priv", "a1", "download", nil), http.StatusOK, secret)
	renamed := "renamed.bin"
	if u, err := st.UpdateFile(ac, &cairnv1.UpdateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1", Name: &renamed}); err != nil || u.GetFile().GetName() != renamed {
		t.Fatalf("ann's rename: %v %v", u, err)
	}
	// Bob and guests: not found, and not listed.
	for _, c := range []struct {
		name, token string
		ctx         context.Context
	}{{"bob", bob.GetSecret(), bc}, {"guest", "", g}} {
		_, err := st.GetFile(c.ctx, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1"})
		wantCode(t, err, connect.CodeNotFound)
		for _, what := range []string{"download", "view", "preview"} {
			wantStatus(t, c.name+" "+what+"s ann's file", in.fetch(t, c.token, p, "priv", "a1", what, nil), http.StatusNotFound, nil)
		}
		_, err = st.UpdateFile(c.ctx, &cairnv1.UpdateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1", Name: &renamed})
		wantCode(t, err, connect.CodeNotFound)
		_, err = st.DeleteFile(c.ctx, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1"})
		wantCode(t, err, connect.CodeNotFound)
	}
	listed := func(c context.Context) []string {
		t.Helper()
		l, err := st.ListFiles(c, &cairnv1.ListFilesRequest{ProjectId: p, BucketId: "priv"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, f := range l.GetFiles() {
			ids = append(ids, f.GetId())
		}
		if int64(len(ids)) != l.GetTotal() {
			t.Fatalf("listed %v with total %d", ids, l.GetTotal())
		}
		return ids
	}
	if got := strings.Join(listed(bc), ","); got != "b1" {
		t.Fatalf("bob lists %q, want b1", got)
	}
	if got := strings.Join(listed(g), ","); got != "" {
		t.Fatalf("a guest lists %q, want nothing", got)
	}
	if got := strings.Join(listed(ac), ","); got != "a1,a2" {
		t.Fatalf("ann lists %q, want a1,a2", got)
	}

	// A user cannot grant a role it does not hold, on upload or update; a
	// server can.
	someone := []string{`read("user:` + bobID + `")`}
	_, err := st.UpdateFile(ac, &cairnv1.UpdateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1", Permissions: &cairnv1.Permissions{Values: slices.Concat(annOwns, someone)}})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = st.CreateFile(ac, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a3", Name: "x.txt", Content: []byte("x"),
		Permissions: &cairnv1.Permissions{Values: []string{`read("user:someoneelse")`}}})
	wantCode(t, err, connect.CodePermissionDenied)
	wantStatus(t, "upload granting another user", in.upload(t, ann.GetSecret(), p, "priv", "a3", "x.txt", []byte("x"), `read("user:someoneelse")`), http.StatusForbidden, nil)
	body, ctype := multipartFile(t, "a3", "x.txt", []byte("x"), `read("team:club")`)
	res := in.do(t, httpCall{method: http.MethodPost, path: filesPath("priv"), project: p, token: ann.GetSecret(), header: http.Header{"Content-Type": {ctype}}, body: body})
	wantStatus(t, "multipart upload granting a team ann is not in", res, http.StatusForbidden, nil)
	if _, err := st.GetFile(k, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "priv", FileId: "a3"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refused upload left a file: %v", err)
	}
	// She may grant what she holds: "users", or herself.
	if _, err := st.CreateFile(ac, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a4", Name: "all.txt", Content: []byte("for users"),
		Permissions: &cairnv1.Permissions{Values: []string{`read("users")`}}}); err != nil {
		t.Fatalf("granting a held role: %v", err)
	}
	wantStatus(t, "bob reads a file shared with users", in.fetch(t, bob.GetSecret(), p, "priv", "a4", "download", nil), http.StatusOK, []byte("for users"))
	if _, err := st.UpdateFile(k, &cairnv1.UpdateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1", Permissions: &cairnv1.Permissions{Values: slices.Concat(annOwns, someone)}}); err != nil {
		t.Fatalf("a server shares ann's file with bob: %v", err)
	}
	// Shared with read("user:bob"): Bob downloads it, lists it, still may not delete it.
	wantStatus(t, "bob's download of the shared file", in.fetch(t, bob.GetSecret(), p, "priv", "a1", "download", nil), http.StatusOK, secret)
	if got := strings.Join(listed(bc), ","); got != "a1,a4,b1" {
		t.Fatalf("bob lists %q, want a1,a4,b1", got)
	}
	_, err = st.DeleteFile(bc, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1"})
	wantCode(t, err, connect.CodePermissionDenied)

	// Teams: Ann joins club and shares a2 with it (a role she holds).
	if _, err := in.teams().CreateTeam(k, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "club", Name: "Club"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.teams().CreateMembership(k, &cairnv1.CreateMembershipRequest{ProjectId: p, TeamId: "club", UserId: annID}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateFile(ac, &cairnv1.UpdateFileRequest{ProjectId: p, BucketId: "priv", FileId: "a2",
		Permissions: &cairnv1.Permissions{Values: slices.Concat(annOwns, []string{`read("team:club")`})}}); err != nil {
		t.Fatalf("ann shares with her team: %v", err)
	}
	wantStatus(t, "bob outside the club", in.fetch(t, bob.GetSecret(), p, "priv", "a2", "download", nil), http.StatusNotFound, nil)
	m, err := in.teams().CreateMembership(k, &cairnv1.CreateMembershipRequest{ProjectId: p, TeamId: "club", UserId: bobID})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "bob in the club", in.fetch(t, bob.GetSecret(), p, "priv", "a2", "download", nil), http.StatusOK, []byte("for the club"))
	if _, err := st.GetFile(bc, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "priv", FileId: "a2"}); err != nil {
		t.Fatalf("a club member's GetFile: %v", err)
	}
	// Revoked: the same session loses access at once.
	if _, err := in.teams().DeleteMembership(k, &cairnv1.DeleteMembershipRequest{ProjectId: p, TeamId: "club", MembershipId: m.GetMembership().GetId()}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "bob after leaving the club", in.fetch(t, bob.GetSecret(), p, "priv", "a2", "download", nil), http.StatusNotFound, nil)
	_, err = st.GetFile(bc, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "priv", FileId: "a2"})
	wantCode(t, err, connect.CodeNotFound)
	if got := strings.Join(listed(bc), ","); got != "a1,a4,b1" {
		t.Fatalf("bob lists %q after leaving the club, want a1,a4,b1", got)
	}

	// A chunked upload is continued only by whoever started it.
	big := fileBytes(30<<10, 4)
	wantStatus(t, "ann's first chunk", in.putChunk(t, ann.GetSecret(), p, "priv", "big", "big.bin", 0, int64(len(big)), big[:10<<10]), http.StatusAccepted, nil)
	wantStatus(t, "bob's chunk of ann's upload", in.putChunk(t, bob.GetSecret(), p, "priv", "big", "big.bin", 10<<10, int64(len(big)), big[10<<10:20<<10]), http.StatusForbidden, nil)
	wantStatus(t, "a guest's chunk of ann's upload", in.putChunk(t, "", p, "priv", "big", "big.bin", 10<<10, int64(len(big)), big[10<<10:20<<10]), http.StatusForbidden, nil)
	// A wrong offset or size tells others nothing about the upload either.
	wantStatus(t, "bob restarting ann's upload", in.putChunk(t, bob.GetSecret(), p, "priv", "big", "big.bin", 0, int64(len(big)), big[:10<<10]), http.StatusForbidden, nil)
	wantStatus(t, "bob probing ann's upload's size", in.putChunk(t, bob.GetSecret(), p, "priv", "big", "big.bin", 10<<10, 99<<10, big[10<<10:20<<10]), http.StatusForbidden, nil)
	// Nor does an upload under the id of a file the caller cannot see
	// tell a guest (who may not create) that it exists.
	wantStatus(t, "guest upload over ann's file", in.upload(t, "", p, "priv", "a1", "x.txt", []byte("x")), http.StatusForbidden, nil)
	if u, err := st.GetUpload(ac, &cairnv1.GetUploadRequest{ProjectId: p, BucketId: "priv", FileId: "big"}); err != nil || u.GetReceived() != 10<<10 {
		t.Fatalf("ann's upload after bob's chunk: %v %v", u, err)
	}
	wantStatus(t, "ann's second chunk", in.putChunk(t, ann.GetSecret(), p, "priv", "big", "big.bin", 10<<10, int64(len(big)), big[10<<10:20<<10]), http.StatusAccepted, nil)
	wantStatus(t, "ann's last chunk", in.putChunk(t, ann.GetSecret(), p, "priv", "big", "big.bin", 20<<10, int64(len(big)), big[20<<10:]), http.StatusCreated, nil)
	wantStatus(t, "ann's chunked file", in.fetch(t, ann.GetSecret(), p, "priv", "big", "download", nil), http.StatusOK, big)

	// Ann deletes her file; a4, which she shared with read("users") only,
	// is not hers to delete.
	_, err = st.DeleteFile(ac, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "priv", FileId: "a4"})
	wantCode(t, err, connect.CodePermissionDenied)
	if _, err := st.DeleteFile(ac, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "priv", FileId: "a2"}); err != nil {
		t.Fatalf("ann deletes her file: %v", err)
	}
	wantStatus(t, "deleted file", in.fetch(t, ann.GetSecret(), p, "priv", "a2", "download", nil), http.StatusNotFound, nil)

	// A disabled bucket is not found for end users; a server still uses it.
	off := false
	if _, err := st.UpdateBucket(k, &cairnv1.UpdateBucketRequest{ProjectId: p, BucketId: "priv", Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	_, err = st.GetFile(ac, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = st.ListFiles(ac, &cairnv1.ListFilesRequest{ProjectId: p, BucketId: "priv"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = st.CreateFile(ac, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "priv", Name: "x.txt", Content: []byte("x")})
	wantCode(t, err, connect.CodeNotFound)
	_, err = st.DeleteFile(ac, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1"})
	wantCode(t, err, connect.CodeNotFound)
	wantStatus(t, "ann's download from a disabled bucket", in.fetch(t, ann.GetSecret(), p, "priv", "a1", "download", nil), http.StatusNotFound, nil)
	wantStatus(t, "ann's upload to a disabled bucket", in.upload(t, ann.GetSecret(), p, "priv", "a5", "x.txt", []byte("x")), http.StatusNotFound, nil)
	if got, err := st.GetFile(k, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "priv", FileId: "a1"}); err != nil || got.GetFile().GetSha256() != sha(secret) {
		t.Fatalf("server GetFile in a disabled bucket: %v %v", got, err)
	}
	wantStatus(t, "server download from a disabled bucket", in.fetch(t, key, p, "priv", "a1", "download", nil), http.StatusOK, secret)
	wantStatus(t, "server upload to a disabled bucket", in.upload(t, key, p, "priv", "s1", "s.txt", []byte("server")), http.StatusCreated, nil)
}

// File tokens: made by servers, they open one file (that file, not
// another, not a later file under its id) until deleted or expired;
// their secrets are shown once. Keys act within their scopes.
func TestStorageFileTokens(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "share"
	key, ann, _ := storageUsers(t, in, p)
	k, _ := as(ctx, key)
	ac, _ := guest(ctx, p, ann.GetSecret())
	st := in.storage()
	if _, err := st.CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "b", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	x, y := fileBytes(24<<10, 5), pngBytes(t, 16, 16)
	in.uploadChunked(t, key, p, "b", "x", "x.bin", x, 10<<10)
	in.uploadChunked(t, key, p, "b", "y", "y.png", y, 1<<20)
	withToken := func(secret string) url.Values { return url.Values{"token": {secret}} }
	wantStatus(t, "guest without a token", in.fetch(t, "", p, "b", "x", "download", nil), http.StatusNotFound, nil)

	tok, err := st.CreateFileToken(k, &cairnv1.CreateFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "x"})
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.GetSecret()
	for _, what := range []string{"download", "view"} {
		wantStatus(t, "guest "+what+" with the token", in.fetch(t, "", p, "b", "x", what, withToken(secret)), http.StatusOK, x)
	}
	wantStatus(t, "ranged download with the token", in.fetch(t, "", p, "b", "x", "download", withToken(secret), "Range", "bytes=100-199"), http.StatusPartialContent, nil)
	// A wrong secret, a malformed token and another file: refused. Bucket
	// b grants guests nothing, so they answer as a missing bucket would
	// (api/hidden.go).
	id, _, _ := strings.Cut(secret, ".")
	wantStatus(t, "wrong secret", in.fetch(t, "", p, "b", "x", "download", withToken(id+".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")), http.StatusNotFound, nil)
	wantStatus(t, "token id alone", in.fetch(t, "", p, "b", "x", "download", withToken(id)), http.StatusNotFound, nil)
	for _, what := range []string{"download", "view", "preview"} {
		wantStatus(t, what+" of y with x's token", in.fetch(t, "", p, "b", "y", what, withToken(secret)), http.StatusNotFound, nil)
	}
	// A token is read only: no upload with it.
	res := in.do(t, httpCall{method: http.MethodPost, path: filesPath("b"), project: p, query: url.Values{"fileId": {"x"}, "name": {"x.bin"}, "token": {secret}},
		body: strings.NewReader("overwrite")})
	wantStatus(t, "upload with a file token", res, http.StatusNotFound, nil)

	// ListFileTokens never shows a secret.
	ls, err := st.ListFileTokens(k, &cairnv1.ListFileTokensRequest{ProjectId: p, BucketId: "b", FileId: "x"})
	if err != nil || len(ls.GetTokens()) != 1 || ls.GetTokens()[0].GetId() != tok.GetToken().GetId() {
		t.Fatalf("list tokens: %v %v", ls, err)
	}
	js, err := protojson.Marshal(ls)
	if err != nil {
		t.Fatal(err)
	}
	_, secretPart, _ := strings.Cut(secret, ".")
	if strings.Contains(string(js), secretPart) || strings.Contains(ls.String(), secretPart) {
		t.Fatalf("ListFileTokens reveals the secret: %s", js)
	}

	// Deleted: refused at once.
	if _, err := st.DeleteFileToken(k, &cairnv1.DeleteFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "x", TokenId: tok.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "deleted token", in.fetch(t, "", p, "b", "x", "download", withToken(secret)), http.StatusNotFound, nil)
	if ls, err := st.ListFileTokens(k, &cairnv1.ListFileTokensRequest{ProjectId: p, BucketId: "b", FileId: "x"}); err != nil || len(ls.GetTokens()) != 0 {
		t.Fatalf("tokens after delete: %v %v", ls, err)
	}

	// Expiring: works until expires_at, refused after.
	expires := time.Now().Add(2 * time.Second)
	et, err := st.CreateFileToken(k, &cairnv1.CreateFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "x", ExpiresAt: timestamppb.New(expires)})
	if err != nil {
		t.Fatal(err)
	}
	if d := et.GetToken().GetExpiresAt().AsTime().Sub(expires).Abs(); d > time.Millisecond {
		t.Fatalf("expires_at %v, want %v", et.GetToken().GetExpiresAt().AsTime(), expires)
	}
	wantStatus(t, "unexpired token", in.fetch(t, "", p, "b", "x", "download", withToken(et.GetSecret())), http.StatusOK, x)
	for deadline := time.Now().Add(5 * time.Second); ; {
		before := time.Now()
		res := in.fetch(t, "", p, "b", "x", "download", withToken(et.GetSecret()))
		if res.status == http.StatusNotFound {
			if before.Before(expires.Add(-50 * time.Millisecond)) {
				t.Fatalf("token refused at %v, before it expires at %v", before, expires)
			}
			break
		}
		wantStatus(t, "token before expiry", res, http.StatusOK, x)
		if time.Now().After(deadline) {
			t.Fatalf("token still works %v after expires_at", time.Since(expires))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An expiry in the past is refused up front or never works.
	if pt, err := st.CreateFileToken(k, &cairnv1.CreateFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "x", ExpiresAt: timestamppb.New(time.Now().Add(-time.Minute))}); err == nil {
		wantStatus(t, "token expired at birth", in.fetch(t, "", p, "b", "x", "download", withToken(pt.GetSecret())), http.StatusNotFound, nil)
	}

	// A file deleted and uploaded again under the same id is a new file:
	// the old token does not open it.
	old, err := st.CreateFileToken(k, &cairnv1.CreateFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "x"})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "token before the re-upload", in.fetch(t, "", p, "b", "x", "download", withToken(old.GetSecret())), http.StatusOK, x)
	if _, err := st.DeleteFile(k, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "b", FileId: "x"}); err != nil {
		t.Fatal(err)
	}
	// (With a token, a missing file and a refused token answer alike.)
	wantStatus(t, "token of a deleted file", in.fetch(t, "", p, "b", "x", "download", withToken(old.GetSecret())), http.StatusNotFound, nil)
	x2 := fileBytes(24<<10, 6)
	in.uploadChunked(t, key, p, "b", "x", "x.bin", x2, 10<<10)
	wantStatus(t, "old token on the new file", in.fetch(t, "", p, "b", "x", "download", withToken(old.GetSecret())), http.StatusNotFound, nil)
	wantStatus(t, "server download of the new file", in.fetch(t, key, p, "b", "x", "download", nil), http.StatusOK, x2)
	if ls, err := st.ListFileTokens(k, &cairnv1.ListFileTokensRequest{ProjectId: p, BucketId: "b", FileId: "x"}); err != nil || len(ls.GetTokens()) != 0 {
		t.Fatalf("the new file inherits tokens: %v %v", ls, err)
	}
	_, err = st.DeleteFileToken(k, &cairnv1.DeleteFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "x", TokenId: old.GetToken().GetId()})
	wantCode(t, err, connect.CodeNotFound)

	// End users cannot make, list or delete tokens, even of files they read.
	if _, err := st.UpdateBucket(k, &cairnv1.UpdateBucketRequest{ProjectId: p, BucketId: "b", Permissions: &cairnv1.Permissions{Values: []string{`read("users")`}}}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "ann reads y", in.fetch(t, ann.GetSecret(), p, "b", "y", "download", nil), http.StatusOK, y)
	_, err = st.CreateFileToken(ac, &cairnv1.CreateFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "y"})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = st.ListFileTokens(ac, &cairnv1.ListFileTokensRequest{ProjectId: p, BucketId: "b", FileId: "y"})
	wantCode(t, err, connect.CodePermissionDenied)

	// Scopes: a key without files.write uploads nothing (HTTP 403, RPC
	// PermissionDenied) but reads; one without files.read reads nothing.
	op, _ := as(ctx, testAdminKey)
	mk := func(scopes ...string) string {
		r, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: p, Name: strings.Join(scopes, "+"), Scopes: &cairnv1.Scopes{Scopes: scopes}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetSecret()
	}
	reader, writer := mk("files.read", "buckets.read", "buckets.write"), mk("files.write")
	wantStatus(t, "upload without files.write", in.upload(t, reader, p, "b", "r", "r.txt", []byte("r")), http.StatusForbidden, nil)
	wantStatus(t, "chunk without files.write", in.putChunk(t, reader, p, "b", "r", "r.txt", 0, 2, []byte("r")), http.StatusForbidden, nil)
	rc, _ := as(ctx, reader)
	_, err = st.CreateFile(rc, &cairnv1.CreateFileRequest{ProjectId: p, BucketId: "b", Name: "r.txt", Content: []byte("r")})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = st.DeleteFile(rc, &cairnv1.DeleteFileRequest{ProjectId: p, BucketId: "b", FileId: "y"})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = st.CreateFileToken(rc, &cairnv1.CreateFileTokenRequest{ProjectId: p, BucketId: "b", FileId: "y"})
	wantCode(t, err, connect.CodePermissionDenied)
	wantStatus(t, "download with files.read", in.fetch(t, reader, p, "b", "y", "download", nil), http.StatusOK, y)
	wantStatus(t, "download without files.read", in.fetch(t, writer, p, "b", "y", "download", nil), http.StatusForbidden, nil)
	wc, _ := as(ctx, writer)
	_, err = st.GetFile(wc, &cairnv1.GetFileRequest{ProjectId: p, BucketId: "b", FileId: "y"})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = st.CreateBucket(wc, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "w", Name: "w"})
	wantCode(t, err, connect.CodePermissionDenied)
	wantStatus(t, "upload with files.write", in.upload(t, writer, p, "b", "w", "w.txt", []byte("w")), http.StatusCreated, nil)
}
