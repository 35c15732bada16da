package main

// The console's remaining screens: a function's variables (secrets never
// shown again), a file's tokens (the URL shown once and working) and a
// collection's permissions editor with the grid query's explain.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

func TestConsoleVariablesTokensPermissions(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	admin := op(t)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.functions().CreateFunction(admin, &cairnv1.CreateFunctionRequest{ProjectId: "demo", FunctionId: "mailer", Name: "mailer", Runtime: "js"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.storage().CreateBucket(admin, &cairnv1.CreateBucketRequest{ProjectId: "demo", BucketId: "docs", Name: "docs"}); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notes, []byte("the quarterly numbers"), 0o644); err != nil {
		t.Fatal(err)
	}
	dbs := in.databases()
	if _, err := dbs.CreateDatabase(admin, &cairnv1.CreateDatabaseRequest{ProjectId: "demo", DatabaseId: "main", Name: "main"}); err != nil {
		t.Fatal(err)
	}
	orders := &cairnv1.CreateCollectionRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "orders", Name: "orders"}
	if _, err := dbs.CreateCollection(admin, orders); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateAttribute(admin, &cairnv1.CreateAttributeRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "orders",
		Attribute: &cairnv1.Attribute{Key: "status", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 32}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateIndex(admin, &cairnv1.CreateIndexRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "orders",
		Index: &cairnv1.Index{Key: "by_status", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"status"}}}); err != nil {
		t.Fatal(err)
	}
	waitIndexes(t, dbs, admin, "demo", "main", "orders")
	for i, st := range []string{"paid", "open", "paid"} {
		data, _ := structpb.NewStruct(map[string]any{"status": st})
		if _, err := dbs.CreateDocument(admin, &cairnv1.CreateDocumentRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "orders",
			Document: &cairnv1.DocumentInput{DocumentId: "o" + string(rune('1'+i)), Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	browser := edgeBrowser(t, 150*time.Second)
	p := openConsoleTab(t, browser)
	text := consoleText
	const secret = "s3cr3t-smtp-password"

	// Functions: a plain variable and a secret added, the plain one updated,
	// then deleted; the secret's value is never on the page after saving.
	p.signIn(in.url, "/p/demo/functions")
	p.wait("function listed", text("#functions tbody"))
	p.step("open function", chromedp.Click(chromedp.CSS(`#functions tbody tr:first-child`)))
	p.wait("variables", `document.querySelector("#variable-form") ? "yes" : ""`)
	p.step("add bad key", consoleSetText(`#variable-form input[name=variableKey]`, "1-BAD"),
		chromedp.Click(chromedp.CSS(`#variable-form button[type=submit]`)))
	p.wantRefused("bad key refused", "#variable-form .error", "variables")
	p.step("add plain", consoleSetText(`#variable-form input[name=variableKey]`, "FROM"),
		consoleSetText(`#variable-form input[name=variableValue]`, "team@example.com"),
		chromedp.Click(chromedp.CSS(`#variable-form button[type=submit]`)))
	p.wait("plain listed", text(`#variables tr[data-variable=FROM]`))
	p.step("add secret", consoleSetText(`#variable-form input[name=variableKey]`, "SMTP_PASSWORD"),
		chromedp.Click(chromedp.CSS(`#variable-form input[name=variableSecret]`)),
		consoleSetText(`#variable-form input[name=variableValue]`, secret),
		chromedp.Click(chromedp.CSS(`#variable-form button[type=submit]`)))
	if row := p.wait("secret listed", text(`#variables tr[data-variable=SMTP_PASSWORD]`)); !strings.Contains(row, "secret") {
		t.Errorf("the secret's row: %q, want it masked", row)
	}
	p.step("edit plain", chromedp.Click(chromedp.CSS(`#variables tr[data-variable=FROM] .edit-variable`)),
		consoleSetText(`#variable-form input[name=variableValue]`, "ops@example.com"),
		chromedp.Click(chromedp.CSS(`#variable-form button[type=submit]`)))
	p.wait("plain updated", `document.querySelector("#variables tr[data-variable=FROM]")?.innerText.includes("ops@example.com") ? "yes" : ""`)
	page := p.wait("page", `document.body.innerText + [...document.querySelectorAll("input")].map((i) => i.value).join(" ")`)
	if strings.Contains(page, secret) {
		t.Error("the secret's value is on the page after saving")
	}
	edgeShot(t, p.c, "1-function-variables")
	f, err := in.functions().GetFunction(admin, &cairnv1.GetFunctionRequest{ProjectId: "demo", FunctionId: "mailer"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*cairnv1.FunctionVariable{}
	for _, v := range f.GetFunction().GetVariables() {
		got[v.GetKey()] = v
	}
	if got["FROM"].GetValue() != "ops@example.com" || !got["SMTP_PASSWORD"].GetSecret() || got["SMTP_PASSWORD"].GetValue() != "" || len(got) != 2 {
		t.Errorf("the function's variables after the console's edits: %v", f.GetFunction().GetVariables())
	}
	p.step("delete plain", chromedp.Click(chromedp.CSS(`#variables tr[data-variable=FROM] .delete-variable`)))
	p.wait("plain deleted", `!document.querySelector("#variables tr[data-variable=FROM]") && document.querySelector("#variables tr[data-variable=SMTP_PASSWORD]") ? "yes" : ""`)
	if f, err := in.functions().GetFunction(admin, &cairnv1.GetFunctionRequest{ProjectId: "demo", FunctionId: "mailer"}); err != nil {
		t.Fatal(err)
	} else if vs := f.GetFunction().GetVariables(); len(vs) != 1 || vs[0].GetKey() != "SMTP_PASSWORD" || !vs[0].GetSecret() {
		t.Errorf("after the delete the variables are %v, want the secret alone", vs)
	}

	// Storage: a token for a file; its URL shown once reads the file with no
	// other credential, and stops working once the token is deleted.
	get := func(u string) (int, string) {
		t.Helper()
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	p.step("bucket", chromedp.Navigate(in.url+"/console/p/demo/storage/docs"))
	p.wait("upload form", `document.querySelector("#upload") ? "yes" : ""`)
	p.step("upload", chromedp.SetUploadFiles(chromedp.CSS(`#upload input[type=file]`), []string{notes}))
	p.wait("file listed", text("#files tbody"))
	p.step("tokens", chromedp.Click(chromedp.CSS(`#files tbody tr:first-child button.tokens`)))
	p.wait("no token", `document.querySelector("#create-token") && document.querySelector(".modal .empty") ? "yes" : ""`)
	p.step("create token", chromedp.Click(chromedp.CSS(`#create-token button[type=submit]`)))
	tokenURL := p.wait("token URL", `document.querySelector("#token-url input")?.value ?? ""`)
	p.wait("token listed", `document.querySelectorAll("#tokens tbody tr").length === 1 ? "yes" : ""`)
	edgeShot(t, p.c, "2-file-token")
	if !strings.Contains(tokenURL, "token=") {
		t.Fatalf("the token's URL %q has no token", tokenURL)
	}
	if code, body := get(tokenURL); code != http.StatusOK || body != "the quarterly numbers" {
		t.Errorf("GET the token's URL: %d %q, want the file", code, body)
	}
	if code, _ := get(strings.Split(tokenURL, "token=")[0]); code == http.StatusOK {
		t.Error("the file is readable without the token")
	}
	p.step("close", chromedp.Click(chromedp.CSS(`.modal .modal-head button`)))
	p.step("tokens again", chromedp.Click(chromedp.CSS(`#files tbody tr:first-child button.tokens`)))
	p.wait("token listed again", `document.querySelectorAll("#tokens tbody tr").length === 1 && !document.querySelector("#token-url") ? "yes" : ""`)
	secretPart := strings.Split(strings.Split(tokenURL, "token=")[1], "&")[0]
	if page := p.wait("page", `document.body.innerText`); strings.Contains(page, secretPart) {
		t.Error("the token's secret is shown again after the dialog closed")
	}
	p.step("delete token", chromedp.Click(chromedp.CSS(`#tokens tbody tr:first-child button.danger`)))
	p.wait("token deleted", `document.querySelector(".modal .empty") ? "yes" : ""`)
	if code, _ := get(tokenURL); code == http.StatusOK {
		t.Error("the deleted token still reads the file")
	}
	p.step("close tokens", chromedp.Click(chromedp.CSS(`.modal .modal-head button`)))

	// Databases: the collection's permissions as chips; a bad role is refused
	// with the API's message and field, a good set saved with UpdateCollection.
	p.step("collection", chromedp.Navigate(in.url+"/console/p/demo/databases/main/orders"))
	p.wait("grid", text("#documents tbody"))
	p.step("permissions tab", chromedp.Click(chromedp.CSS("#subtab-permissions")))
	p.wait("editor", `document.querySelector("#permissions input[name=role-read]") ? "yes" : ""`)
	addRole := func(action, role string) {
		t.Helper()
		p.step("add "+action+" "+role, consoleSetText(`#permissions input[name=role-`+action+`]`, role),
			chromedp.Click(chromedp.CSS(`#permissions tr[data-action=`+action+`] .add-role`)))
		p.wait(action+" "+role+" chip", `document.querySelector('#permissions tr[data-action=`+action+`] [data-role=`+jsString(role)+`]') ? "yes" : ""`)
	}
	addRole("read", "any")
	addRole("create", "users")
	addRole("update", "team:ops")
	addRole("delete", "label:vip")
	addRole("delete", "label:not valid")
	p.step("save bad", chromedp.Click(chromedp.CSS(`#permissions button[type=submit]`)))
	p.wantRefused("refused", "#permissions .error", "label")
	edgeShot(t, p.c, "3-permissions-refused")
	p.step("remove bad", chromedp.Click(chromedp.CSS(`#permissions [data-role="label:not valid"] .remove-role`)),
		chromedp.Click(chromedp.CSS(`#permissions button[type=submit]`)))
	p.wait("saved", `document.querySelector("#permissions-saved") && !document.querySelector("#permissions .error") ? "yes" : ""`)
	edgeShot(t, p.c, "4-permissions-saved")
	gc, err := dbs.GetCollection(admin, &cairnv1.GetCollectionRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`read("any")`, `create("users")`, `update("team:ops")`, `delete("label:vip")`}
	if got := gc.GetCollection().GetPermissions(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the collection's permissions: %q, want %q", got, want)
	}

	// The grid's query explained: filtered on status, it uses by_status.
	p.step("documents tab", chromedp.Click(chromedp.CSS("#subtab-documents")))
	p.wait("grid again", text("#documents tbody"))
	p.step("filter", chromedp.Click(chromedp.CSS(`#filter .add-condition`)))
	p.step("filter on status", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#filter select[name=attribute]");
		s.value = "status"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`))
	p.step("filter value", consoleSetText(`#filter input[name=value0]`, "paid"), chromedp.Click(chromedp.CSS(`#run-query`)))
	p.wait("filtered", `document.querySelectorAll("#documents tbody tr").length === 2 ? "yes" : ""`)
	p.step("explain", chromedp.Click(chromedp.CSS("#explain-query")))
	if x := p.wait("explain", text("#explain")); !strings.Contains(x, "by_status") {
		t.Errorf("the query's explain: %q, want the by_status index", x)
	}
	edgeShot(t, p.c, "5-explain")

	// A viewer of the project sees the roles and the variables, with no way
	// to change them, and no secret.
	if _, err := in.operators().CreateOperator(admin, &cairnv1.CreateOperatorRequest{Email: "viewer@example.com", Name: "Vic",
		Password: "vic's password", Roles: []*cairnv1.OperatorRole{{ProjectId: "demo", Role: "viewer"}}}); err != nil {
		t.Fatal(err)
	}
	p.step("sign out", chromedp.Click(chromedp.CSS("#signout")))
	p.wait("sign-in form", `document.querySelector("#operator-email") ? "yes" : ""`)
	p.step("sign in as viewer", chromedp.SendKeys(chromedp.CSS("#operator-email"), "viewer@example.com"),
		chromedp.SendKeys(chromedp.CSS("#operator-password"), "vic's password"),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	p.wait("signed in", text("#whoami"))
	p.step("viewer's collection", chromedp.Navigate(in.url+"/console/p/demo/databases/main/orders"))
	p.wait("viewer's grid", text("#documents tbody"))
	p.step("viewer's permissions", chromedp.Click(chromedp.CSS("#subtab-permissions")))
	shown := `(() => { const e = document.querySelector(%s); return e && e.offsetParent !== null ? "yes" : "no"; })()`
	p.wait("roles shown", `document.querySelector('#permissions [data-role="team:ops"]') ? "yes" : ""`)
	for _, sel := range []string{`#permissions button[type=submit]`, `#permissions input[name=role-read]`, `#permissions .remove-role`} {
		if v := p.wait("visible "+sel, strings.Replace(shown, "%s", jsString(sel), 1)); v != "no" {
			t.Errorf("a viewer is offered %s", sel)
		}
	}
	edgeShot(t, p.c, "6-viewer-permissions")
	p.step("viewer's functions", chromedp.Navigate(in.url+"/console/p/demo/functions"))
	p.wait("viewer's function", text("#functions tbody"))
	p.step("viewer opens function", chromedp.Click(chromedp.CSS(`#functions tbody tr:first-child`)))
	if row := p.wait("viewer's variables", text(`#variables tr[data-variable=SMTP_PASSWORD]`)); strings.Contains(row, secret) {
		t.Error("a viewer sees the secret")
	}
	if v := p.wait("variable form", strings.Replace(shown, "%s", jsString("#variable-form"), 1)); v != "no" {
		t.Error("a viewer is offered changing variables")
	}
}
