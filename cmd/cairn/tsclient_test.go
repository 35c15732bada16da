package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestTypeScriptClient runs the TypeScript client's tests (clients/ts,
// node --test) against a real instance: sign-up and sign-in, documents,
// typed errors, a refused session cleared from the store, realtime resume
// across a dropped socket, chunked uploads resumed after a failed chunk.
// It needs clients/ts/node_modules (npm ci), skipped without it unless CI.
func TestTypeScriptClient(t *testing.T) {
	dir, err := filepath.Abs("../../clients/ts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("clients/ts/node_modules is missing: run npm ci in clients/ts (.ci/run does)")
		}
		t.Skip("clients/ts/node_modules is missing: run npm ci in clients/ts")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	build := exec.Command(node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.test.json")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("tsc -p tsconfig.test.json: %v\n%s", err, out)
	}

	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "tsapp"
	secret := newProjectWithKey(t, in, p, append(docScopes, "users.read", "users.write", "buckets.read", "buckets.write", "files.read", "files.write", "keys.write")...)
	k, _ := as(ctx, secret)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	// Signed-in users create todos; each sees only their own.
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "todos", Name: "Todos",
		Permissions: []string{`create("users")`}, DocumentSecurity: true}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*cairnv1.Attribute{
		{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64, Required: true},
		{Key: "done", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN, Default: val(false)},
		{Key: "n", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, Default: val(0)},
		{Key: "at", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_POINT},
		{Key: "scores", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, Array: true},
	} {
		if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "todos", Attribute: a}); err != nil {
			t.Fatal(err)
		}
	}
	// Realtime presence: any signed-in user may read the lobby.
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "lobby", Name: "Lobby",
		Permissions: []string{`read("users")`}}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "uploads", Name: "Uploads",
		Permissions: []string{`create("users")`}, FileSecurity: true}); err != nil {
		t.Fatal(err)
	}

	tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(tctx, node, "--test", "--test-concurrency=1", "build/test/")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CAIRN_URL="+in.url, "CAIRN_PROJECT="+p, "CAIRN_KEY="+secret)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("node --test (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
}
