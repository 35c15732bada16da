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
}
