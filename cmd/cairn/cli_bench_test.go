package main

import (
	"context"
	"fmt"
	"testing"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkCLIListDocuments: what the CLI adds to a query (building the
// command tree, resolving the credential, a new connection, formatting)
// against the same ListDocuments call through a long-lived Connect client,
// in the same run: go test ./cmd/cairn -run '^$' -bench BenchmarkCLIListDocuments -benchtime 200x
func BenchmarkCLIListDocuments(b *testing.B) {
	in := startInstance(b, b.TempDir())
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_KEY": testAdminKey, "CAIRN_PROJECT": "bench"}
	must := func(args ...string) {
		if _, stderr, err := runCLI(env, args...); err != nil {
			b.Fatalf("%v: %v %s", args, err, stderr)
		}
	}
	must("projects", "create", "bench")
	must("databases", "create", "main")
	must("collections", "create", "todos", "--database", "main")
	must("attributes", "create", "title", "--database", "main", "--collection", "todos", "--type", "string", "--size", "100")
	coll := []string{"--database", "main", "--collection", "todos"}
	for i := range 20 {
		must(append([]string{"documents", "create", "--data", fmt.Sprintf(`{"title":"todo %d"}`, i)}, coll...)...)
	}
	ctx, _ := as(context.Background(), testAdminKey)
	req := &cairnv1.ListDocumentsRequest{ProjectId: "bench", DatabaseId: "main", CollectionId: "todos", Limit: 20}
	b.Run("connect client", func(b *testing.B) {
		for b.Loop() {
			res, err := in.databases().ListDocuments(ctx, req)
			if err != nil || len(res.GetDocuments()) != 20 {
				b.Fatal(err)
			}
		}
	})
	for _, format := range []string{"json", "table"} {
		b.Run("cli "+format, func(b *testing.B) {
			args := append([]string{"documents", "list", "--limit", "20", "-o", format}, coll...)
			for b.Loop() {
				if _, _, err := runCLI(env, args...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
