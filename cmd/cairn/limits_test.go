package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/cairn-dev/cairn/domain/database"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestDocumentSizeEdge: the largest document the limit allows, made of the
// characters JSON encoders like to escape, creates and updates (the update
// event carries before and after); one byte more is refused by name.
func TestDocumentSizeEdge(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "big"
	secret := newProjectWithKey(t, in, p, docScopes...)
	k, _ := as(ctx, secret)
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(k, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: "main", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(k, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(k, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c",
		Attribute: &cairnv1.Attribute{Key: "body", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: database.MaxStringSize}}); err != nil {
		t.Fatal(err)
	}
	// Stored as {"body":"…"}: 11 bytes around the string.
	largest := database.MaxDocumentBytes - len(`{"body":""}`)
	for _, c := range []string{"<", ">", "&"} {
		id := "doc" + map[string]string{"<": "lt", ">": "gt", "&": "amp"}[c]
		if _, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c",
			Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"body": strings.Repeat(c, largest)})}}); err != nil {
			t.Fatalf("create %d × %q: %v", largest, c, err)
		}
		res, err := dbs.UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c", DocumentId: id,
			Data: data(t, map[string]any{"body": strings.Repeat("<", largest-1) + "x"})})
		if err != nil {
			t.Fatalf("update %d × %q: %v", largest, c, err)
		}
		if got := len(res.GetDocument().GetData().GetFields()["body"].GetStringValue()); got != largest {
			t.Fatalf("updated body holds %d characters, want %d", got, largest)
		}
	}
	_, err := dbs.CreateDocument(k, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c",
		Document: &cairnv1.DocumentInput{DocumentId: "over", Data: data(t, map[string]any{"body": strings.Repeat("<", largest+1)})}})
	wantError(t, err, connect.CodeInvalidArgument, "at most 262144 bytes")
	// Escapes count as stored: a quote takes two bytes.
	_, err = dbs.UpdateDocument(k, &cairnv1.UpdateDocumentRequest{ProjectId: p, DatabaseId: "main", CollectionId: "c", DocumentId: "doclt",
		Data: data(t, map[string]any{"body": strings.Repeat(`"`, largest/2+1)})})
	wantError(t, err, connect.CodeInvalidArgument, "as stored")
}

// TestRemoteNATSMaxPayload: a NATS server whose max_payload is below what
// the limits need is refused at start, naming the setting.
func TestRemoteNATSMaxPayload(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	var logs logBuffer
	err = run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--nats-url", srv.ClientURL()},
		io.Discard, &logs, func(k string) string { return map[string]string{"CAIRN_ADMIN_KEY": testAdminKey}[k] })
	if err == nil || !strings.Contains(err.Error(), "max_payload: 8MB") {
		t.Fatalf("start against a 1 MiB NATS: %v", err)
	}
}
