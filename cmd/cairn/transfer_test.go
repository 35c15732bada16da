package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/projections"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
)

const testPassphrase = "correct horse battery staple"

// cli runs `cairn args…` against in as the operator.
func (in *instance) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_ADMIN_KEY": testAdminKey, "CAIRN_PASSPHRASE": testPassphrase}
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	if err != nil {
		return out.String(), errors.Join(err, errors.New(errb.String()))
	}
	return out.String(), nil
}

// transferFixture fills project p: a key, documents, a user with a session,
// an SMTP password (sealed), a plain and an encrypted file. It returns the
// key and the session secret.
func transferFixture(t *testing.T, in *instance, p string) (key, session string, files map[string][]byte) {
	t.Helper()
	key = newProjectWithKey(t, in, p, allScopes()...)
	ctx, _ := as(context.Background(), key)
	docsFixture(t, ctx, in.databases(), p, "posts", []string{"read(\"any\")"}, false)
	for i := range 20 {
		if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: "d" + strconv.Itoa(i), Data: data(t, map[string]any{"title": "post " + strconv.Itoa(i), "views": i})}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.users().UpdateAuthSettings(ctx, &cairnv1.UpdateAuthSettingsRequest{ProjectId: p, Settings: &cairnv1.AuthSettings{
		Smtp: &cairnv1.SmtpSettings{Host: "smtp.example.com", Port: 587, Username: "u", Password: "smtp secret", SenderEmail: "a@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	g, _ := guest(context.Background(), p, "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "ann@example.com", Password: "ann password 1"}); err != nil {
		t.Fatal(err)
	}
	session = signIn(t, in, p, "ann@example.com", "ann password 1").GetSecret()
	files = map[string][]byte{}
	for _, b := range []*cairnv1.CreateBucketRequest{
		{ProjectId: p, BucketId: "plain", Name: "plain"},
		{ProjectId: p, BucketId: "sealed", Name: "sealed", Compression: cairnv1.Compression_COMPRESSION_GZIP, Encryption: true},
	} {
		if _, err := in.storage().CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte(b.GetBucketId()+" bytes "), 40_000)
		in.uploadChunked(t, key, p, b.GetBucketId(), "f1", "f1.txt", body, 1<<20)
		files[b.GetBucketId()] = body
	}
	return key, session, files
}

// checkFiles downloads every fixture file from project p as the operator.
func checkFiles(t *testing.T, in *instance, p string, files map[string][]byte) {
	t.Helper()
	for bucket, want := range files {
		res := in.fetch(t, testAdminKey, p, bucket, "f1", "download", nil)
		if res.status != http.StatusOK || !bytes.Equal(res.body, want) {
			t.Fatalf("project %s file %s/f1: %d, %d bytes (want %d)", p, bucket, res.status, len(res.body), len(want))
		}
	}
}

// snapshot stops nothing: in must be stopped. It returns p's read models
// without the checkpoint (stream creation time) and with project ids
// replaced by "<p>", so two projects' read models compare.
func snapshot(t *testing.T, dir, p string) []projections.KV {
	t.Helper()
	n := openStopped(t, dir)
	defer n.close()
	if err := n.reads.CollectGarbage(); err != nil {
		t.Fatal(err)
	}
	kvs, err := n.reads.Snapshot(streams.ProjectStream(p))
	if err != nil {
		t.Fatal(err)
	}
	out := kvs[:0]
	for _, kv := range kvs {
		kv.Value = unsealed(kv.Key, kv.Value)
		kv.Key = strings.ReplaceAll(kv.Key, p, "<p>")
		kv.Value = bytes.ReplaceAll(kv.Value, []byte(p), []byte("<p>"))
		kv.ExpiresAt = 0 // idempotency records expire relative to their message's store time
		out = append(out, kv)
	}
	return out
}

func diffSnapshots(a, b []projections.KV) string {
	drop := func(kvs []projections.KV) []projections.KV {
		var out []projections.KV
		for _, kv := range kvs {
			if strings.HasSuffix(kv.Key, "/ckpt") {
				continue // the stream's creation time and the last event's id
			}
			out = append(out, kv)
		}
		return out
	}
	a, b = drop(a), drop(b)
	if len(a) != len(b) {
		return crashDiffKV(a, b)
	}
	var diffs []string
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			diffs = append(diffs, fmt.Sprintf("%q/%q (%d/%d bytes)", a[i].Key, b[i].Key, len(a[i].Value), len(b[i].Value)))
		}
	}
	return strings.Join(diffs, "; ")
}

// unsealed blanks the sealed secrets of a read-model value: re-sealing
// under another master key (or project) gives other bytes for the same
// secret, so those are compared by use (downloads) instead.
func unsealed(key string, v []byte) []byte {
	var m proto.Message
	switch {
	case strings.HasSuffix(key, "/auth"):
		m = &eventsv1.AuthSettings{}
	case strings.Contains(key, "/files/"):
		m = &eventsv1.File{}
	default:
		return v
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return v
	}
	switch x := m.(type) {
	case *eventsv1.AuthSettings:
		if x.GetSmtp() != nil {
			x.Smtp.PasswordSealed = nil
		}
	case *eventsv1.File:
		x.SealedKey = nil
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return v
	}
	return out
}

// leftovers reports what of project p exists on a stopped instance.
func leftovers(t *testing.T, dir, p string) string {
	t.Helper()
	n := openStopped(t, dir)
	defer n.close()
	var out []string
	if _, err := n.store.StreamInfo(context.Background(), streams.ProjectStream(p)); err == nil {
		out = append(out, "stream")
	}
	if has, _ := n.store.HasObjectStore(context.Background(), p); has {
		out = append(out, "object store")
	}
	if _, err := n.reads.Project(p); err == nil {
		out = append(out, "registry entry")
	}
	return strings.Join(out, ", ")
}

// rewritePackage copies a package, letting edit change an entry's bytes.
func rewritePackage(t *testing.T, src, dst string, edit func(name string, b []byte) []byte) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(f), tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		b = edit(h.Name, b)
		h.Size = int64(len(b))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	if err := os.WriteFile(dst, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestExportImport: a project exported from a running instance and
// imported into another has equal read models, working encrypted files
// and secrets; bad packages are refused and leave nothing behind; keys and
// sessions are revoked unless kept.
func TestExportImport(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := startInstance(t, dirA), startInstance(t, dirB)
	key, session, files := transferFixture(t, a, "alpha")
	pkg := filepath.Join(t.TempDir(), "alpha.cairnpkg")
	start := time.Now()
	if out, err := a.cli(t, "projects", "export", "alpha", "-o", pkg); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("%s in %s", strings.TrimSpace(out), time.Since(start))
	}

	// Bad input: each refused with a clear error, nothing written.
	st, _ := os.Stat(pkg)
	whole, _ := os.ReadFile(pkg)
	bad := func(name string, content []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tampered := filepath.Join(t.TempDir(), "tampered.cairnpkg")
	rewritePackage(t, pkg, tampered, func(name string, b []byte) []byte {
		if strings.HasPrefix(name, "objects/") && len(b) > 100 {
			b[50] ^= 1
		}
		return b
	})
	foreign := filepath.Join(t.TempDir(), "foreign.cairnpkg")
	rewritePackage(t, pkg, foreign, func(name string, b []byte) []byte {
		if name == "cairnpkg.json" {
			return bytes.Replace(b, []byte(`"version": 1`), []byte(`"version": 2`), 1)
		}
		return b
	})
	for _, tc := range []struct {
		name, file, want string
		args             []string
	}{
		{"truncated", bad("trunc.cairnpkg", whole[:st.Size()*2/3]), "truncated", nil},
		{"tampered", tampered, "checksum mismatch", nil},
		{"foreign version", foreign, "version 2", nil},
		{"wrong passphrase", pkg, "wrong passphrase", []string{"--passphrase-file", bad("pass", []byte("not it"))}},
	} {
		args := append([]string{"projects", "import", tc.file, "--as", "beta"}, tc.args...)
		_, err := b.cli(t, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: want an error saying %q, got %v", tc.name, tc.want, err)
		}
		t.Logf("%s: %v", tc.name, strings.SplitN(err.Error(), "\n", 2)[0])
	}

	// Kept credentials: the read models must equal the source's.
	start = time.Now()
	out, err := b.cli(t, "projects", "import", pkg, "--keep-keys", "--keep-sessions")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("import: %s in %s", strings.TrimSpace(out), time.Since(start))
	checkFiles(t, b, "alpha", files)
	kctx, _ := as(context.Background(), key)
	if _, err := b.databases().GetDocument(kctx, &cairnv1.GetDocumentRequest{ProjectId: "alpha", DatabaseId: "main", CollectionId: "posts", DocumentId: "d7"}); err != nil {
		t.Fatalf("kept key on the import: %v", err)
	}
	if _, err := b.cli(t, "projects", "import", pkg); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("import over an existing project: %v", err)
	}

	// Default policy, new id: keys and sessions revoked, data there.
	if _, err := b.cli(t, "projects", "import", pkg, "--as", "gamma"); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, b, "gamma", files)
	op, _ := as(context.Background(), testAdminKey)
	for p, want := range map[string]int{"alpha": 1, "gamma": 0} {
		keys, err := b.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: p})
		if err != nil || len(keys.GetKeys()) != want {
			t.Fatalf("project %s: %d keys (want %d): %v", p, len(keys.GetKeys()), want, err)
		}
		users, err := b.users().ListUsers(op, &cairnv1.ListUsersRequest{ProjectId: p})
		if err != nil || len(users.GetUsers()) != 1 {
			t.Fatalf("project %s users: %v %v", p, users, err)
		}
		ss, err := b.users().ListUserSessions(op, &cairnv1.ListUserSessionsRequest{ProjectId: p, UserId: users.GetUsers()[0].GetId()})
		if err != nil || len(ss.GetSessions()) != want {
			t.Fatalf("project %s: %d sessions (want %d): %v", p, len(ss.GetSessions()), want, err)
		}
	}
	// The kept session works on the import (same id: its cookie names it).
	sctx, _ := guest(context.Background(), "alpha", session)
	if _, err := b.account().GetAccount(sctx, &cairnv1.GetAccountRequest{}); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	set, err := b.users().GetAuthSettings(op, &cairnv1.GetAuthSettingsRequest{ProjectId: "gamma"})
	if err != nil || !set.GetSettings().GetSmtp().GetPasswordSet() {
		t.Fatalf("SMTP password on the import: %v %v", set, err)
	}

	a.stop()
	b.stop()
	if d := diffSnapshots(snapshot(t, dirA, "alpha"), snapshot(t, dirB, "alpha")); d != "" {
		t.Fatalf("imported read models differ from the source's: %s", d)
	}
	for _, p := range []string{"beta"} {
		if l := leftovers(t, dirB, p); l != "" {
			t.Fatalf("failed imports left %s", l)
		}
	}
	if l := leftovers(t, dirB, "alpha"); l != "stream, object store, registry entry" {
		t.Fatalf("imported project: %q", l)
	}
}

// TestFork: a fork at a noted sequence (or time) has exactly the state the
// project had then, whatever was written after.
func TestFork(t *testing.T) {
	dir := t.TempDir()
	a := startInstance(t, dir)
	key, _, files := transferFixture(t, a, "forkfrom")
	kctx, info := as(context.Background(), key)
	if _, err := a.databases().UpdateDocument(kctx, &cairnv1.UpdateDocumentRequest{ProjectId: "forkfrom", DatabaseId: "main", CollectionId: "posts",
		DocumentId: "d1", Data: data(t, map[string]any{"views": 100})}); err != nil {
		t.Fatal(err)
	}
	seq := info.ResponseHeader().Get("Cairn-Seq")
	time.Sleep(20 * time.Millisecond)
	at := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	a.stop()
	before := snapshot(t, dir, "forkfrom")

	a = startInstance(t, dir)
	kctx, _ = as(context.Background(), key)
	for i := range 10 {
		if _, err := a.databases().CreateDocument(kctx, &cairnv1.CreateDocumentRequest{ProjectId: "forkfrom", DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: "late" + strconv.Itoa(i), Data: data(t, map[string]any{"title": "late"})}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.databases().DeleteDocument(kctx, &cairnv1.DeleteDocumentRequest{ProjectId: "forkfrom", DatabaseId: "main", CollectionId: "posts", DocumentId: "d3"}); err != nil {
		t.Fatal(err)
	}
	a.uploadChunked(t, key, "forkfrom", "plain", "f2", "f2.txt", bytes.Repeat([]byte("later "), 10_000), 1<<20)

	start := time.Now()
	out, err := a.cli(t, "projects", "fork", "forkfrom", "--at", seq, "--as", "forkinto", "--keep-keys", "--keep-sessions")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fork at %s: %s in %s", seq, strings.TrimSpace(out), time.Since(start))
	var res struct {
		LastSeq uint64 `json:"last_seq"`
		Objects int    `json:"objects"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || strconv.FormatUint(res.LastSeq, 10) != seq || res.Objects != 2 {
		t.Fatalf("fork result %s: %v (want last_seq %s, the 2 objects of f1)", out, err, seq)
	}
	checkFiles(t, a, "forkinto", files)
	if r := a.fetch(t, testAdminKey, "forkinto", "plain", "f2", "download", nil); r.status != http.StatusNotFound {
		t.Fatalf("file written after the fork point: %s", r)
	}
	// By time: the same point.
	out, err = a.cli(t, "projects", "fork", "forkfrom", "--at", at.Format(time.RFC3339Nano), "--as", "forktime", "--keep-keys", "--keep-sessions")
	if err != nil || !strings.Contains(out, `"last_seq":`+seq+",") {
		t.Fatalf("fork at %s: %s %v (want last_seq %s)", at, out, err, seq)
	}
	// Bad input.
	for _, args := range [][]string{
		{"forkfrom", "--at", "999999", "--as", "late"},
		{"forkfrom", "--as", "forkinto"},
		{"forkfrom", "--at", "yesterday", "--as", "late"},
		{"nosuch", "--as", "late"},
	} {
		if _, err := a.cli(t, append([]string{"projects", "fork"}, args...)...); err == nil {
			t.Fatalf("fork %v: no error", args)
		} else {
			t.Logf("fork %v: %v", args, strings.SplitN(err.Error(), "\n", 2)[0])
		}
	}
	a.stop()
	if d := diffSnapshots(before, snapshot(t, dir, "forkinto")); d != "" {
		t.Fatalf("fork differs from the project at sequence %s: %s", seq, d)
	}
	if l := leftovers(t, dir, "late"); l != "" {
		t.Fatalf("failed forks left %s", l)
	}
}

// TestImportSizeLimit: --max-import-bytes is the largest package an import
// accepts; one byte more is refused with 413 and a message naming the
// limit, whether the upload announces its length or streams it.
func TestImportSizeLimit(t *testing.T) {
	a := startInstance(t, t.TempDir())
	newProjectWithKey(t, a, "small", "keys.read")
	pkg := filepath.Join(t.TempDir(), "small.cairnpkg")
	if _, err := a.cli(t, "projects", "export", "small", "-o", pkg); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(whole))

	over := startInstance(t, t.TempDir(), "--max-import-bytes", strconv.FormatInt(size-1, 10))
	_, err = over.cli(t, "projects", "import", pkg)
	if err == nil || !strings.Contains(err.Error(), "413") || !strings.Contains(err.Error(), fmt.Sprintf("import limit of %d bytes", size-1)) {
		t.Fatalf("import one byte over the limit, length announced: %v", err)
	}
	// Streamed without a length: cut off at the limit while spooling.
	req, err := http.NewRequest(http.MethodPost, over.url+"/v1/projects/import", io.MultiReader(bytes.NewReader(whole)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Cairn-Passphrase", testPassphrase)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "--max-import-bytes") {
		t.Fatalf("streamed import over the limit: %d %s", res.StatusCode, body)
	}
	if l, err := over.cli(t, "projects", "list"); err != nil || strings.Contains(l, "small") {
		t.Fatalf("a refused import left a project: %q %v", l, err)
	}

	exact := startInstance(t, t.TempDir(), "--max-import-bytes", strconv.FormatInt(size, 10))
	if _, err := exact.cli(t, "projects", "import", pkg); err != nil {
		t.Fatalf("import of exactly the limit: %v", err)
	}
}

// TestExportKeepsObjectsDeletedDuringIt: a file deleted after an export's
// cut-off, and swept while the export is still copying an earlier object,
// is in the package whole: the export holds the project's objects.
func TestExportKeepsObjectsDeletedDuringIt(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--storage-sweep-every", "100ms")
	key := newProjectWithKey(t, in, "held", allScopes()...)
	kctx, _ := as(context.Background(), key)
	if _, err := in.storage().CreateBucket(kctx, &cairnv1.CreateBucketRequest{ProjectId: "held", BucketId: "b", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	// The big file comes first in the object store: the export blocks on
	// it while the client does not read.
	big := fileBytes(32<<20, 1)
	in.uploadChunked(t, key, "held", "b", "big", "big.bin", big, 8<<20)
	small := fileBytes(100_000, 2)
	in.uploadChunked(t, key, "held", "b", "small", "small.bin", small, 1<<20)

	req, err := http.NewRequest(http.MethodGet, in.url+"/v1/projects/held/export", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Cairn-Passphrase", testPassphrase)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var pkg bytes.Buffer
	if _, err := io.CopyN(&pkg, res.Body, 64<<10); err != nil { // the cut-off is taken: events are streaming
		t.Fatal(err)
	}
	// After the cut-off: delete the small file and give the sweeper time
	// to delete its bytes, were they not held.
	if _, err := in.storage().DeleteFile(kctx, &cairnv1.DeleteFileRequest{ProjectId: "held", BucketId: "b", FileId: "small"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := io.Copy(&pkg, res.Body); err != nil {
		t.Fatal(err)
	}
	if st := res.Trailer.Get("Cairn-Export-Status"); st != "ok" {
		t.Fatalf("export status %q", st)
	}
	file := filepath.Join(t.TempDir(), "held.cairnpkg")
	if err := os.WriteFile(file, pkg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startInstance(t, t.TempDir())
	if _, err := b.cli(t, "projects", "import", file, "--keep-keys"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][]byte{"big": big, "small": small} {
		res := b.fetch(t, testAdminKey, "held", "b", id, "download", nil)
		if res.status != http.StatusOK || !bytes.Equal(res.body, want) {
			t.Fatalf("imported file %s: %d, %d bytes (want %d)", id, res.status, len(res.body), len(want))
		}
	}
	// Released: the sweeper deletes the small file's bytes now.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex := filepath.Join(t.TempDir(), "again.cairnpkg")
		if _, err := in.cli(t, "projects", "export", "held", "-o", ex); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(ex)
		if st.Size() < int64(len(big))+int64(len(small)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted file's bytes were never swept after the export")
		}
		time.Sleep(300 * time.Millisecond)
	}
}
