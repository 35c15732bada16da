package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/transfer/template"
)

// templateEnv holds the secrets a rich project's file names.
var templateEnv = map[string]string{
	"SMTP_PASSWORD":              "smtp secret",
	"OAUTH_GITHUB_CLIENT_SECRET": "gh secret",
	"STRIPE_KEY":                 "sk_test_123",
}

// templateCLI runs `cairn args…` against in as the operator, with the
// template secrets in the environment; stdout is returned either way.
func (in *instance) templateCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return in.templateCLIWith(t, nil, args...)
}

// templateCLIWith is templateCLI with more environment (CAIRN_KEY: a
// project key instead of the operator's).
func (in *instance) templateCLIWith(t *testing.T, extra map[string]string, args ...string) (string, error) {
	t.Helper()
	env := map[string]string{"CAIRN_URL": in.url, "CAIRN_ADMIN_KEY": testAdminKey}
	for k, v := range templateEnv {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	if err != nil {
		return out.String(), errors.Join(err, errors.New(errb.String()))
	}
	return out.String(), nil
}

// richProject builds project p through the API, every kind of resource a
// project file holds, and deploys the function's code from dir with the
// CLI. It returns p's key.
func richProject(t *testing.T, in *instance, p, codeDir string) string {
	t.Helper()
	key := newProjectWithKey(t, in, p, allScopes()...)
	ctx, _ := as(context.Background(), key)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	val := func(v any) *structpb.Value {
		x, err := structpb.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	off := false
	must(in.users().UpdateAuthSettings(ctx, &cairnv1.UpdateAuthSettingsRequest{ProjectId: p, Settings: &cairnv1.AuthSettings{
		SessionDuration: durationpb.New(720 * 3600e9), MaxSessions: 5, PasswordMinLength: 10, PasswordCheckCommon: true,
		AllowedOrigins: []string{"https://shop.example.com", "http://localhost:5173"}, DisabledMethods: []string{"anonymous"},
		Smtp:           &cairnv1.SmtpSettings{Host: "smtp.example.com", Port: 587, Username: "shop", Password: "smtp secret", SenderEmail: "shop@example.com", SenderName: "Shop"},
		OauthProviders: []*cairnv1.OAuthProvider{{Id: "github", Kind: "github", ClientId: "Iv1.abc", ClientSecret: "gh secret", Scopes: []string{"read:user"}}},
	}}))
	must(in.teams().CreateTeam(ctx, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "staff", Name: "Staff", Prefs: data(t, map[string]any{"color": "blue"})}))
	must(in.teams().CreateTeam(ctx, &cairnv1.CreateTeamRequest{ProjectId: p, TeamId: "buyers", Name: "Buyers"}))
	for _, db := range []string{"shop", "archive"} {
		must(in.databases().CreateDatabase(ctx, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: strings.ToUpper(db)}))
	}
	must(in.databases().UpdateDatabase(ctx, &cairnv1.UpdateDatabaseRequest{ProjectId: p, DatabaseId: "archive", Enabled: &off}))
	must(in.databases().CreateCollection(ctx, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "shop", CollectionId: "products", Name: "Products",
		Permissions: []string{`read("any")`, `write("team:staff")`}}))
	must(in.databases().CreateCollection(ctx, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: "shop", CollectionId: "orders", Name: "Orders",
		DocumentSecurity: true, Enabled: &off}))
	for _, a := range []*cairnv1.Attribute{
		{Key: "title", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Required: true, Size: 200},
		{Key: "price", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT, FloatMin: f64(0)},
		{Key: "stock", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER, IntMin: i64(0), IntMax: i64(10000), Default: val(0)},
		{Key: "status", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM, Elements: []string{"draft", "live"}, Default: val("draft")},
		{Key: "tags", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Array: true, Size: 32},
		{Key: "published", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_DATETIME},
		{Key: "featured", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN, Default: val(false)},
		{Key: "site", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_URL},
	} {
		must(in.databases().CreateAttribute(ctx, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "shop", CollectionId: "products", Attribute: a}))
	}
	must(in.databases().CreateAttribute(ctx, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: "shop", CollectionId: "orders",
		Attribute: &cairnv1.Attribute{Key: "email", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_EMAIL, Required: true}}))
	// A document, so that indexes are built over existing data.
	must(in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: "shop", CollectionId: "products",
		Document: &cairnv1.DocumentInput{DocumentId: "p1", Data: data(t, map[string]any{"title": "Mug", "price": 9.5})}}))
	for _, ix := range []*cairnv1.Index{
		{Key: "by_title", Type: cairnv1.IndexType_INDEX_TYPE_UNIQUE, Attributes: []string{"title"}},
		{Key: "by_price", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"status", "price"}, Desc: []bool{false, true}},
		{Key: "search", Type: cairnv1.IndexType_INDEX_TYPE_FULLTEXT, Attributes: []string{"title"}},
	} {
		must(in.databases().CreateIndex(ctx, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: "shop", CollectionId: "products", Index: ix}))
	}
	must(in.storage().CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "images", Name: "Images", Permissions: []string{`read("any")`},
		MaximumFileSize: 10 << 20, AllowedFileExtensions: []string{"jpg", "png"}, Compression: cairnv1.Compression_COMPRESSION_ZSTD, Encryption: true}))
	must(in.storage().CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "private", Name: "Private", FileSecurity: true}))
	must(in.functions().CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: p, FunctionId: "hello", Name: "Hello", Runtime: "js", TimeoutSeconds: 30,
		Execute: []string{"users"}, Scopes: []string{"documents.read"}, Events: []string{"databases.shop.collections.orders.documents.*.create"},
		Schedule: "0 3 * * *", MaxConcurrency: 4,
		Variables: []*cairnv1.FunctionVariable{{Key: "CURRENCY", Value: "EUR"}, {Key: "STRIPE_KEY", Value: "sk_test_123", Secret: true}}}))
	if _, err := in.templateCLI(t, "functions", "deploy", codeDir, "--project", p, "--function", "hello", "--activate"); err != nil {
		t.Fatal(err)
	}
	must(in.sites().CreateSite(ctx, &cairnv1.CreateSiteRequest{ProjectId: p, SiteId: "www", Name: "Storefront", Settings: &eventsv1.SiteSettings{
		SpaFallback: true, TrailingSlash: eventsv1.TrailingSlash_TRAILING_SLASH_REMOVE,
		Headers:   []*eventsv1.HeaderRule{{Pattern: "/assets/*", Name: "Cache-Control", Value: "public, max-age=31536000"}},
		Redirects: []*eventsv1.Redirect{{From: "/old", To: "/", Status: 301}}}}))
	must(in.webhooks().CreateWebhook(ctx, &cairnv1.CreateWebhookRequest{ProjectId: p, WebhookId: "erp", Name: "ERP", Url: "https://erp.example.com/hook",
		Events: &cairnv1.WebhookEvents{Events: []string{"databases.shop.collections.*.documents.*.create"}}}))
	return key
}

// writeFunctionCode writes a js function's code under dir/functions/hello.
func writeFunctionCode(t *testing.T, dir string) string {
	t.Helper()
	code := filepath.Join(dir, "functions", "hello")
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(code, "index.js"), []byte("export default async ({ res }) => res.json({ hello: 'world' });\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return code
}

// TestTemplateRoundTrip: pull a rich project, apply the file to a new
// project, pull that → the same file; plan after apply → no changes;
// applying again changes nothing.
func TestTemplateRoundTrip(t *testing.T) {
	in := startInstance(t, t.TempDir())
	dir := t.TempDir()
	code := writeFunctionCode(t, dir)
	richProject(t, in, "src", code)
	file := filepath.Join(dir, "cairn.json")
	// The server keeps only built code: the file being refreshed says
	// where the function's code lives, and pull keeps that.
	if err := os.WriteFile(file, []byte(`{"version": 1, "functions": [{"id": "hello", "name": "x", "runtime": "js", "code": {"path": "functions/hello"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := in.templateCLI(t, "pull", "src", "-f", file); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"passwordEnv": "SMTP_PASSWORD"`, `"clientSecretEnv": "OAUTH_GITHUB_CLIENT_SECRET"`, `"secretEnv": "STRIPE_KEY"`,
		`"path": "functions/hello"`, `"desc": [`, `"type": "fulltext"`, `"compression": "zstd"`, `"trailingSlash": "remove"`, `"enabled": false`} {
		if !bytes.Contains(first, []byte(want)) {
			t.Errorf("pulled file lacks %s:\n%s", want, first)
		}
	}
	for _, secret := range []string{"smtp secret", "gh secret", "sk_test_123"} {
		if bytes.Contains(first, []byte(secret)) {
			t.Fatalf("a secret is in the file: %q", secret)
		}
	}
	out, err := in.templateCLI(t, "plan", "src", "-f", file, "--exit-code")
	if err != nil || !strings.Contains(out, "No changes") {
		t.Fatalf("plan of the project the file was pulled from: %v\n%s", err, out)
	}
	// A plan with changes exits 2 with --exit-code (CI's drift check).
	args := []string{"plan", "empty", "-f", file, "--exit-code"}
	if _, err := in.templateCLI(t, "projects", "create", "--id", "empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.templateCLI(t, args...); err == nil || exitCode(err, args) != 2 {
		t.Fatalf("plan --exit-code with changes: %v (exit %d)", err, exitCode(err, args))
	}

	out, err = in.templateCLI(t, "apply", "dst", "-f", file, "--create-project", "--yes")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	for _, want := range []string{"+   database shop", "+   index shop/products/by_price", "~   code hello: deploy functions/hello", "webhook erp signing secret (shown once): whsec_"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	// Pull the new project over a copy of the file (so code paths carry).
	second := filepath.Join(dir, "again.json")
	if err := os.WriteFile(second, first, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := in.templateCLI(t, "pull", "dst", "-f", second); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, first) {
		t.Fatalf("pull after apply differs:\n--- src\n%s\n--- dst\n%s", first, got)
	}
	out, err = in.templateCLI(t, "plan", "dst", "-f", file)
	if err != nil || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after apply: %v\n%s", err, out)
	}
	out, err = in.templateCLI(t, "apply", "dst", "-f", file, "--yes")
	if err != nil || !strings.Contains(out, "No changes") {
		t.Fatalf("second apply: %v\n%s", err, out)
	}

	// The secrets arrived from the environment, and the code runs.
	op, _ := as(context.Background(), testAdminKey)
	s, err := in.users().GetAuthSettings(op, &cairnv1.GetAuthSettingsRequest{ProjectId: "dst"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.GetSettings().GetSmtp().GetPasswordSet() || !s.GetSettings().GetOauthProviders()[0].GetClientSecretSet() {
		t.Fatalf("secrets not set: %v", s.GetSettings())
	}
	ex, err := in.functions().CreateExecution(op, &cairnv1.CreateExecutionRequest{ProjectId: "dst", FunctionId: "hello", Method: "GET", Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ex.GetExecution().GetResponseBody()), "world") {
		t.Fatalf("execution answered %q (%s)", ex.GetExecution().GetResponseBody(), ex.GetExecution().GetErrors())
	}
	// Each change was an ordinary event, by the operator.
	ev, err := in.events().ListEvents(op, &cairnv1.ListEventsRequest{ProjectId: "dst", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ev.GetEvents()); n < 20 {
		t.Fatalf("dst's log holds %d events", n)
	}

	// A changed function's code is a deploy in the plan.
	if err := os.WriteFile(filepath.Join(code, "index.js"), []byte("export default async ({ res }) => res.json({ hello: 'there' });\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = in.templateCLI(t, "plan", "dst", "-f", file)
	if err != nil || !strings.Contains(out, "~   code hello: deploy functions/hello") || !strings.Contains(out, "1 to update") {
		t.Fatalf("plan after a code change: %v\n%s", err, out)
	}
	// Code larger than a request may be goes over the deployments route.
	big := "export default async ({ res }) => res.json({ hello: 'big', n: " + "'" + strings.Repeat("x", 1<<20) + "'.length });\n"
	if err := os.WriteFile(filepath.Join(code, "index.js"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := in.templateCLI(t, "apply", "dst", "-f", file, "--yes"); err != nil || !strings.Contains(out, "~   code hello") {
		t.Fatalf("apply of 1 MiB of code: %v\n%s", err, out)
	}
	if out, err := in.templateCLI(t, "plan", "dst", "-f", file); err != nil || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after deploying 1 MiB of code: %v\n%s", err, out)
	}
	ex, err = in.functions().CreateExecution(op, &cairnv1.CreateExecutionRequest{ProjectId: "dst", FunctionId: "hello", Method: "GET", Path: "/"})
	if err != nil || !strings.Contains(string(ex.GetExecution().GetResponseBody()), `"n":1048576`) {
		t.Fatalf("the big code's execution: %v %q", err, ex.GetExecution().GetResponseBody())
	}
}

// TestTemplateDestructive: a plan that loses data is refused, changing
// nothing, unless --allow-destructive; a changed attribute is replaced; a
// read-only key can pull and plan but not apply; a bad file or a missing
// secret stops apply before any call.
func TestTemplateDestructive(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "p", allScopes()...)
	ctx, _ := as(context.Background(), key)
	dir := t.TempDir()
	file := filepath.Join(dir, "cairn.json")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = `{"version": 1,
  "databases": [{"id": "shop", "name": "Shop", "collections": [{"id": "items", "name": "Items",
    "attributes": [{"key": "title", "type": "string", "size": 50}, {"key": "n", "type": "integer"}],
    "indexes": [{"key": "by_n", "type": "key", "attributes": ["n"]}]}]}],
  "buckets": [{"id": "b", "name": "B"}],
  "webhooks": [{"id": "w", "name": "W", "url": "https://example.com/hook", "events": ["users.*.create"]}]}`
	write(base)
	if out, err := in.templateCLI(t, "apply", "p", "-f", file, "--yes"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if _, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: "p", DatabaseId: "shop", CollectionId: "items",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: data(t, map[string]any{"title": "kept", "n": 7})}}); err != nil {
		t.Fatal(err)
	}

	// Drop attribute n (its index too), the bucket and the webhook, and
	// rename the collection.
	write(`{"version": 1,
  "databases": [{"id": "shop", "name": "Shop", "collections": [{"id": "items", "name": "Things",
    "attributes": [{"key": "title", "type": "string", "size": 50}]}]}]}`)
	out, err := in.templateCLI(t, "plan", "p", "-f", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"~   collection shop/items: name\n",
		"-   attribute shop/items/n: every document loses its value; indexes over it go too: by_n  [destructive]",
		"-   bucket b: with its files  [destructive]",
		"-   webhook w: with its delivery history  [destructive]",
		"1 to update, 0 to replace, 3 to delete (3 destructive)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	// Without a terminal to confirm on, apply wants --yes.
	if _, err := in.templateCLI(t, "apply", "p", "-f", file, "--allow-destructive"); err == nil || !strings.Contains(err.Error(), "nothing changed: pass --yes") {
		t.Fatalf("apply without --yes: %v", err)
	}
	out, err = in.templateCLI(t, "apply", "p", "-f", file, "--yes")
	if err == nil || !strings.Contains(err.Error(), "nothing changed: the plan has destructive changes (3, first: -   attribute shop/items/n") ||
		!strings.Contains(err.Error(), "--allow-destructive") {
		t.Fatalf("apply without --allow-destructive: %v\n%s", err, out)
	}
	col, err := in.databases().GetCollection(ctx, &cairnv1.GetCollectionRequest{ProjectId: "p", DatabaseId: "shop", CollectionId: "items"})
	if err != nil {
		t.Fatal(err)
	}
	if col.GetCollection().GetName() != "Items" || len(col.GetCollection().GetAttributes()) != 2 || len(col.GetCollection().GetIndexes()) != 1 {
		t.Fatalf("a refused apply changed the collection: %v", col.GetCollection())
	}
	if _, err := in.storage().GetBucket(ctx, &cairnv1.GetBucketRequest{ProjectId: "p", BucketId: "b"}); err != nil {
		t.Fatalf("a refused apply deleted the bucket: %v", err)
	}
	if out, err := in.templateCLI(t, "apply", "p", "-f", file, "--yes", "--allow-destructive"); err != nil {
		t.Fatalf("apply --allow-destructive: %v\n%s", err, out)
	}
	if out, err := in.templateCLI(t, "plan", "p", "-f", file); err != nil || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after apply: %v\n%s", err, out)
	}
	doc, err := in.databases().GetDocument(ctx, &cairnv1.GetDocumentRequest{ProjectId: "p", DatabaseId: "shop", CollectionId: "items", DocumentId: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if m := doc.GetDocument().GetData().AsMap(); m["title"] != "kept" || m["n"] != nil {
		t.Fatalf("document after dropping n: %v", m)
	}

	// A changed attribute is deleted and created again: destructive.
	write(`{"version": 1,
  "databases": [{"id": "shop", "name": "Shop", "collections": [{"id": "items", "name": "Things",
    "attributes": [{"key": "title", "type": "string", "size": 100}]}]}]}`)
	out, err = in.templateCLI(t, "plan", "p", "-f", file)
	if err != nil || !strings.Contains(out, "-/+ attribute shop/items/title: size; every document loses its value  [destructive]") {
		t.Fatalf("plan of a changed attribute: %v\n%s", err, out)
	}
	if out, err := in.templateCLI(t, "apply", "p", "-f", file, "--yes", "--allow-destructive"); err != nil {
		t.Fatalf("apply a replaced attribute: %v\n%s", err, out)
	}
	a, err := in.databases().GetAttribute(ctx, &cairnv1.GetAttributeRequest{ProjectId: "p", DatabaseId: "shop", CollectionId: "items", Key: "title"})
	if err != nil || a.GetAttribute().GetSize() != 100 {
		t.Fatalf("replaced attribute: %v %v", a.GetAttribute(), err)
	}

	// A key with only read scopes pulls and plans, and cannot apply.
	op, _ := as(context.Background(), testAdminKey)
	var reads []string
	for _, s := range allScopes() {
		if strings.HasSuffix(s, ".read") {
			reads = append(reads, s)
		}
	}
	k, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "p", Name: "reader", Scopes: &cairnv1.Scopes{Scopes: reads}})
	if err != nil {
		t.Fatal(err)
	}
	reader := map[string]string{"CAIRN_KEY": k.GetSecret()}
	if out, err := in.templateCLIWith(t, reader, "pull", "p", "-f", "-"); err != nil || !strings.Contains(out, `"size": 100`) {
		t.Fatalf("pull with a read-only key: %v\n%s", err, out)
	}
	// …and learns nothing of another project.
	newProjectWithKey(t, in, "other", allScopes()...)
	if out, err := in.templateCLIWith(t, reader, "pull", "other", "-f", "-"); err == nil || out != "" {
		t.Fatalf("pull of another project with p's key: %v\n%s", err, out)
	}
	write(base)
	if out, err := in.templateCLIWith(t, reader, "plan", "p", "-f", file); err != nil || !strings.Contains(out, "+   bucket b") {
		t.Fatalf("plan with a read-only key: %v\n%s", err, out)
	}
	if _, err := in.templateCLIWith(t, reader, "apply", "p", "-f", file, "--yes", "--allow-destructive"); err == nil || !strings.Contains(err.Error(), "permission_denied") {
		t.Fatalf("apply with a read-only key: %v", err)
	}

	// A bad file names the place in it; nothing is called.
	write(strings.Replace(base, `"type": "integer"`, `"type": "int"`, 1))
	if _, err := in.templateCLI(t, "plan", "p", "-f", file); err == nil ||
		!strings.Contains(err.Error(), `databases[0].collections[0].attributes[1].type: "int" is not one of string, integer`) {
		t.Fatalf("plan of a bad file: %v", err)
	}
	// A secret the project lacks and the environment does not hold stops
	// apply before its first change.
	write(`{"version": 1, "teams": [{"id": "t", "name": "T"}],
  "functions": [{"id": "f", "name": "F", "runtime": "js", "variables": [{"key": "TOKEN", "secretEnv": "UNSET_TOKEN"}]}]}`)
	_, err = in.templateCLI(t, "apply", "p", "-f", file, "--yes", "--allow-destructive")
	if err == nil || !strings.Contains(err.Error(), "functions[0].variables[0].secretEnv: UNSET_TOKEN is not set") {
		t.Fatalf("apply with a missing secret: %v", err)
	}
	if _, err := in.teams().GetTeam(ctx, &cairnv1.GetTeamRequest{ProjectId: "p", TeamId: "t"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refused apply created a team: %v", err)
	}
	// …and with --create-project, before the project is created.
	_, err = in.templateCLI(t, "apply", "newp", "-f", file, "--yes", "--create-project")
	if err == nil || !strings.Contains(err.Error(), "project newp not created: functions[0].variables[0].secretEnv: UNSET_TOKEN is not set") {
		t.Fatalf("apply --create-project with a missing secret: %v", err)
	}
	if _, err := in.projects().GetProject(op, &cairnv1.GetProjectRequest{ProjectId: "newp"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refused template created its project: %v", err)
	}
}

// roundRobin sends each request to the next of several nodes, as a load
// balancer may.
type roundRobin struct {
	hosts []string
	n     atomic.Int64
	base  http.RoundTripper
	// withSeq counts the requests that carried both sequence headers.
	withSeq atomic.Int64
}

func (r *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Cairn-Min-Seq") != "" && req.Header.Get("Cairn-Min-Sys-Seq") != "" {
		r.withSeq.Add(1)
	}
	req = req.Clone(req.Context())
	req.URL.Host = r.hosts[int(r.n.Add(1))%len(r.hosts)]
	req.Host = req.URL.Host
	return r.base.RoundTrip(req)
}

// TestTemplateTwoNodes: a template applied through two nodes taking turns
// (each call on the other node than the one before) works, because every
// call carries the sequences of the writes before it; plan through them
// finds no changes.
func TestTemplateTwoNodes(t *testing.T) {
	url := startSharedNATS(t)
	a := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	b := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	var hosts []string
	for _, in := range []*instance{a, b} {
		u, err := neturl.Parse(in.url)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, u.Host)
	}
	rr := &roundRobin{hosts: hosts, base: h2cClient().Transport}
	hc := &http.Client{Transport: rr}
	f, err := template.Parse([]byte(`{"version": 1,
  "platforms": ["https://app.example.com"],
  "teams": [{"id": "staff", "name": "Staff"}],
  "databases": [{"id": "main", "name": "Main", "collections": [
    {"id": "a", "name": "A", "attributes": [{"key": "t", "type": "string", "size": 10}, {"key": "n", "type": "integer"}],
     "indexes": [{"key": "by_t", "type": "unique", "attributes": ["t"]}, {"key": "by_n", "type": "key", "attributes": ["n", "t"]}]},
    {"id": "b", "name": "B", "permissions": ["read(\"team:staff\")"], "attributes": [{"key": "x", "type": "float", "min": 0}],
     "indexes": [{"key": "by_x", "type": "key", "attributes": ["x"], "desc": [true]}]}]}],
  "buckets": [{"id": "files", "name": "Files"}],
  "sites": [{"id": "www", "name": "WWW", "settings": {"spaFallback": true}}],
  "webhooks": [{"id": "w", "name": "W", "url": "https://example.com/hook", "events": ["users.*.create"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn := template.NewConn(hc, a.url, testAdminKey, "twonodes")
	if err := conn.CreateProject(ctx, ""); err != nil {
		t.Fatal(err)
	}
	p, err := template.Diff(ctx, conn, f, template.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := template.Apply(ctx, p, template.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := rr.withSeq.Load(); n < int64(len(p.Changes)) {
		t.Fatalf("%d requests carried Cairn-Min-Seq and Cairn-Min-Sys-Seq, for %d changes", n, len(p.Changes))
	}
	for range 2 { // one plan starts on each node
		p, err = template.Diff(ctx, conn, f, template.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Empty() {
			var buf bytes.Buffer
			p.Write(&buf)
			t.Fatalf("plan after apply through two nodes:\n%s", buf.String())
		}
	}
}

// TestTemplateUpdates: a change of every kind of resource is an update in
// place (nothing destructive), and after apply the project pulls as the
// edited file, byte for byte.
func TestTemplateUpdates(t *testing.T) {
	in := startInstance(t, t.TempDir())
	dir := t.TempDir()
	richProject(t, in, "up", writeFunctionCode(t, dir))
	file := filepath.Join(dir, "cairn.json")
	if err := os.WriteFile(file, []byte(`{"version": 1, "functions": [{"id": "hello", "name": "x", "runtime": "js", "code": {"path": "functions/hello"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := in.templateCLI(t, "pull", "up", "-f", file); err != nil {
		t.Fatal(err)
	}
	f, err := template.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	f.Platforms = append(f.Platforms, "https://admin.example.com")
	f.Auth.MaxSessions, f.Auth.SMTP.Port = 7, 2525
	f.Auth.OAuthProviders[0].Scopes = []string{"read:user", "user:email"}
	f.Teams[1].Name, f.Teams[1].Prefs = "Staff members", map[string]any{"color": "red", "size": 3.0}
	f.Databases[0].Enabled = nil // archive enabled again
	products := &f.Databases[1].Collections[1]
	products.Name, products.Permissions, products.DocumentSecurity = "All products", []string{`read("users")`}, true
	f.Buckets[0].MaximumFileSize, f.Buckets[0].AllowedFileExtensions, f.Buckets[0].Compression = 5<<20, []string{"gif"}, "gzip"
	fn := &f.Functions[0]
	fn.Timeout, fn.Schedule, fn.Enabled, fn.Events = 60, "", &no, nil
	fn.Variables = append(fn.Variables, template.Variable{Key: "REGION", Value: "eu"})
	f.Sites[0].Settings.SPAFallback, f.Sites[0].Settings.NotFoundPage = false, "404.html"
	f.Webhooks[0].Events, f.Webhooks[0].Enabled = []string{"users.*.create"}, &no
	b, err := template.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := in.templateCLI(t, "plan", "up", "-f", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"~   auth settings: maxSessions, oauthProviders, smtp, platforms\n", "~   team staff: name, prefs\n",
		"~   database archive: enabled\n", "~   collection shop/products: documentSecurity, name, permissions\n",
		"~   bucket images: allowedFileExtensions, compression, maximumFileSize\n", "~   function hello: enabled, events, schedule, timeout, variables\n",
		"~   site www: settings\n", "~   webhook erp: enabled, events\n", "0 to create, 8 to update, 0 to replace, 0 to delete (0 destructive)"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if out, err := in.templateCLI(t, "apply", "up", "-f", file, "--yes"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	got := filepath.Join(dir, "again.json")
	if err := os.WriteFile(got, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := in.templateCLI(t, "pull", "up", "-f", got); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, b) {
		t.Fatalf("pull after apply differs from the edited file:\n--- edited\n%s\n--- pulled\n%s", b, after)
	}
	// The secrets stayed: the function's secret variable and the SMTP
	// password were sent again from the environment or kept.
	op, _ := as(context.Background(), testAdminKey)
	s, err := in.users().GetAuthSettings(op, &cairnv1.GetAuthSettingsRequest{ProjectId: "up"})
	if err != nil || !s.GetSettings().GetSmtp().GetPasswordSet() || !s.GetSettings().GetOauthProviders()[0].GetClientSecretSet() {
		t.Fatalf("secrets after an update: %v %v", s.GetSettings(), err)
	}
}
