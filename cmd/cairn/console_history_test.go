package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestConsoleRealtimeAndHistory: the realtime inspector receives a
// document's create and update live; the audit log opens the update and
// travels back to the state the document had at its creation.
func TestConsoleRealtimeAndHistory(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	benchCollection(t, in, op, "demo")

	browser := edgeBrowser(t, 120*time.Second)
	p := openConsoleTab(t, browser)

	p.signIn(in.url, "/p/demo/realtime")
	p.step("subscribe", consoleSetText(`#realtime-form input[name=channels]`, "databases.main.collections.posts.documents"),
		chromedp.Click(chromedp.CSS(`#realtime-form button[type=submit]`)))
	p.wait("live", `document.querySelector("#realtime-state")?.dataset.state === "live" ? "yes" : ""`)

	dbs := in.databases()
	doc := func(title string) *structpb.Struct {
		s, err := structpb.NewStruct(map[string]any{"title": title})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	created, err := dbs.CreateDocument(op, &cairnv1.CreateDocumentRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "d1", Data: doc("first draft")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.UpdateDocument(op, &cairnv1.UpdateDocumentRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts",
		DocumentId: "d1", Data: doc("final text")}); err != nil {
		t.Fatal(err)
	}
	rows := p.wait("two events", `document.querySelectorAll("#realtime-events tbody tr").length >= 2 ? document.querySelector("#realtime-events tbody").innerText : ""`)
	if !strings.Contains(rows, "documents.d1.update") || !strings.Contains(rows, "documents.d1.create") {
		t.Errorf("the inspector shows:\n%s", rows)
	}
	edgeShot(t, p.c, "1-realtime")
	p.step("open live event", chromedp.Click(chromedp.CSS(`#realtime-events tbody tr:first-child`)))
	if j := p.wait("payload", consoleText("#realtime-json")); !strings.Contains(j, "final text") {
		t.Errorf("the newest event's payload: %s", j)
	}
	edgeShot(t, p.c, "2-realtime-event")

	// Still signed in (the key is in the tab's session storage).
	p.step("audit", chromedp.Navigate(in.url+"/console/p/demo/audit?subject=databases.main.collections.posts.documents.>"))
	p.wait("events", `document.querySelectorAll("#events tbody tr").length >= 2 ? "yes" : ""`)
	p.step("open update", chromedp.Click(chromedp.CSS(`#events tbody tr:last-child`)))
	versions := p.wait("versions", `document.querySelectorAll("#versions tbody tr").length === 2 ? document.querySelector("#versions tbody").innerText : ""`)
	if !strings.Contains(versions, "documentCreated") || !strings.Contains(versions, "documentUpdated") {
		t.Errorf("the document's versions:\n%s", versions)
	}
	if now := p.wait("state now", consoleText("#state-json")); !strings.Contains(now, "final text") {
		t.Errorf("the state at the update: %s", now)
	}
	if res := p.wait("changed", consoleText("#state-at-result")); !strings.Contains(res, "changed since") {
		t.Errorf("the state's summary: %q", res)
	}
	createdSeq := created.GetDocument().GetSequence()
	p.step("travel back", consoleSetText(`#state-at input[name=seq]`, strconv.FormatUint(createdSeq, 10)))
	if then := p.wait("state then", `(() => { const s = document.querySelector("#state-json")?.innerText ?? ""; return s.includes("first draft") ? s : ""; })()`); strings.Contains(then, "final text") {
		t.Errorf("the state at sequence %d: %s", createdSeq, then)
	}
	p.step("before it existed", consoleSetText(`#state-at input[name=seq]`, "1"))
	if res := p.wait("not yet", consoleText("#state-at-result")); !strings.Contains(res, "Did not exist yet") {
		t.Errorf("at sequence 1: %q", res)
	}
	p.step("back to the creation", consoleSetText(`#state-at input[name=seq]`, strconv.FormatUint(createdSeq, 10)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#history").scrollIntoView()`))
	edgeShot(t, p.c, "3-history")
}

// TestConsoleAuth: users (create, block), teams (create) and settings (an
// allowed origin; an SMTP password kept when the field is left empty)
// edited in the console, checked through the API.
func TestConsoleAuth(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	browser := edgeBrowser(t, 120*time.Second)
	p := openConsoleTab(t, browser)

	p.signIn(in.url, "/p/demo/auth")
	p.step("create user", consoleSetText(`#user-create input[name=email]`, "ada@example.com"), consoleSetText(`#user-create input[name=name]`, "Ada"),
		consoleSetText(`#user-create input[name=password]`, "a long enough password"), chromedp.Click(chromedp.CSS(`#user-create button[type=submit]`)))
	p.wait("user listed", `document.querySelector("#users tbody")?.innerText.includes("ada@example.com") ? "yes" : ""`)
	p.step("block", chromedp.Click(chromedp.CSS(`#users tbody tr:first-child button.block`)))
	p.wait("blocked", `document.querySelector("#users tbody")?.innerText.includes("blocked") ? "yes" : ""`)
	users, err := in.users().ListUsers(op, &cairnv1.ListUsersRequest{ProjectId: "demo"})
	if err != nil || len(users.GetUsers()) != 1 || !users.GetUsers()[0].GetBlocked() || users.GetUsers()[0].GetName() != "Ada" {
		t.Errorf("users after the console: %v %v", users.GetUsers(), err)
	}
	edgeShot(t, p.c, "1-users")

	p.step("teams", chromedp.Click(chromedp.CSS("#auth-teams")), consoleSetText(`#team-create input[name=name]`, "Editors"),
		chromedp.Click(chromedp.CSS(`#team-create button[type=submit]`)))
	p.wait("team listed", `document.querySelector("#teams tbody")?.innerText.includes("Editors") ? "yes" : ""`)

	p.step("settings", chromedp.Click(chromedp.CSS("#auth-settings")))
	p.wait("settings form", `document.querySelector("form#auth-settings") ? "yes" : ""`)
	p.step("edit settings", consoleSetText(`textarea[name=allowedOrigins]`, "https://app.example.com\n"),
		chromedp.Click(chromedp.CSS(`input[name=smtpOn]`)))
	p.step("smtp", consoleSetText(`input[name=smtpHost]`, "smtp.example.com"), consoleSetText(`input[name=smtpPassword]`, "smtp secret"),
		consoleSetText(`input[name=smtpSenderEmail]`, "noreply@example.com"), chromedp.Click(chromedp.CSS(`form#auth-settings button[type=submit]`)))
	p.wait("saved", `document.querySelector("#settings-saved") ? "yes" : ""`)
	s, err := in.users().GetAuthSettings(op, &cairnv1.GetAuthSettingsRequest{ProjectId: "demo"})
	if err != nil || len(s.GetSettings().GetAllowedOrigins()) != 1 || s.GetSettings().GetAllowedOrigins()[0] != "https://app.example.com" ||
		s.GetSettings().GetSmtp().GetHost() != "smtp.example.com" || !s.GetSettings().GetSmtp().GetPasswordSet() {
		t.Fatalf("settings after the console: %v %v", s, err)
	}
	// Saved again with the password field empty: the stored one stays.
	p.step("save again", consoleSetText(`input[name=smtpSenderName]`, "Demo"), chromedp.Click(chromedp.CSS(`form#auth-settings button[type=submit]`)))
	p.wait("saved again", `document.querySelector("#settings-saved") ? "yes" : ""`)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s, err = in.users().GetAuthSettings(op, &cairnv1.GetAuthSettingsRequest{ProjectId: "demo"})
		if err == nil && s.GetSettings().GetSmtp().GetSenderName() == "Demo" || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || s.GetSettings().GetSmtp().GetSenderName() != "Demo" || !s.GetSettings().GetSmtp().GetPasswordSet() {
		t.Errorf("settings saved again: %v %v", s, err)
	}
	edgeShot(t, p.c, "2-settings")
}
