package main

// The console with operator accounts: the administrator (operator key)
// creates an account with a developer role on one project in the
// Operators screen; the developer signs in with email and password, sees
// only that project, has no way to manage its keys or reach another
// project, and loses the write actions the moment its role becomes viewer.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

func TestConsoleOperators(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	admin := op(t)
	for _, id := range []string{"alpha", "beta"} {
		if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	browser := edgeBrowser(t, 150*time.Second)
	p := openConsoleTab(t, browser)
	c := p.c
	text := consoleText
	visible := func(sel string) string {
		return `(() => { const e = document.querySelector(` + jsString(sel) + `); return e && e.offsetParent !== null ? "yes" : "no"; })()`
	}
	isVisible := func(sel string) bool {
		t.Helper()
		v, err := chromedp.Run(c, chromedp.Evaluate[string](visible(sel)))
		if err != nil {
			t.Fatal(err)
		}
		return v == "yes"
	}

	// The administrator creates the account in the Operators screen.
	p.signIn(in.url, "/")
	p.step("operators", chromedp.Click(chromedp.CSS("#nav-operators")))
	p.wait("operators screen", `document.querySelector("#create-operator select[name=role-alpha]") ? "yes" : ""`)
	p.step("new account", chromedp.SendKeys(chromedp.CSS(`#create-operator input[name=email]`), "dev@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#create-operator input[name=name]`), "Dana Dev"),
		chromedp.SendKeys(chromedp.CSS(`#create-operator input[name=password]`), "dana's password"),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#create-operator select[name=role-alpha]");
			s.value = "viewer"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`),
		chromedp.Click(chromedp.CSS(`#create-operator button[type=submit]`)))
	if row := p.wait("account listed", text(`tr[data-operator="dev@example.com"]`)); !strings.Contains(row, "alpha: viewer") || strings.Contains(row, "beta") {
		t.Errorf("the account's row: %q, want a viewer of alpha only", row)
	}
	// Its role raised to developer in the Roles dialog.
	p.step("edit roles", chromedp.Click(chromedp.CSS(`tr[data-operator="dev@example.com"] .edit-roles`)))
	p.wait("roles dialog", `document.querySelector("#edit-roles select[name=role-alpha]")?.value === "viewer" ? "yes" : ""`)
	p.step("developer", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#edit-roles select[name=role-alpha]");
			s.value = "developer"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`),
		chromedp.Click(chromedp.CSS(`#edit-roles button[type=submit]`)))
	if row := p.wait("role changed", `(() => { const t = document.querySelector('tr[data-operator="dev@example.com"]')?.innerText ?? "";
		return !document.querySelector("#edit-roles") && t.includes("alpha: developer") ? t : ""; })()`); strings.Contains(row, "beta") {
		t.Errorf("the account's row: %q, want a developer of alpha only", row)
	}
	edgeShot(t, c, "1-operators")
	p.step("sign out", chromedp.Click(chromedp.CSS("#signout")))

	// The developer signs in with email and password.
	p.wait("sign-in form", `document.querySelector("#operator-email") ? "yes" : ""`)
	p.step("sign in as developer", chromedp.SendKeys(chromedp.CSS("#operator-email"), "dev@example.com"),
		chromedp.SendKeys(chromedp.CSS("#operator-password"), "dana's password"),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	if who := p.wait("signed in", text("#whoami")); who != "dev@example.com" {
		t.Errorf("signed in as %q", who)
	}
	if stored, _ := chromedp.Run(c, chromedp.Evaluate[string](`sessionStorage.getItem("cairn.console.operatorKey") ?? ""`)); !strings.HasPrefix(stored, "co_") {
		t.Errorf("the tab keeps %q, want the console session", stored)
	}
	rows := p.wait("projects", `(() => { const r = document.querySelectorAll("#projects tbody tr"); return r.length ? [...r].map((x) => x.dataset.project).join(",") : ""; })()`)
	if rows != "alpha" {
		t.Errorf("the developer's projects: %q, want alpha only", rows)
	}
	if isVisible("#create-project") || isVisible("#nav-operators") || isVisible(`tr[data-project="alpha"] button.danger`) {
		t.Error("the developer is offered creating or deleting projects, or the Operators screen")
	}
	edgeShot(t, c, "2-developer-projects")

	// In alpha: databases may be created, keys not.
	p.step("open alpha", chromedp.Click(chromedp.CSS(`a[href="/console/p/alpha/keys"]`)))
	p.wait("keys screen", `document.querySelector("[data-right]")?.dataset.right === "write" ? "yes" : ""`)
	if isVisible("#create-key") {
		t.Error("a developer is offered creating API keys")
	}
	edgeShot(t, c, "3-developer-keys")
	p.step("databases", chromedp.Click(chromedp.CSS("#tab-databases")))
	p.step("create database", chromedp.SendKeys(chromedp.CSS(`#create-database input[name=databaseId]`), "main"),
		chromedp.Click(chromedp.CSS(`#create-database button[type=submit]`)))
	p.wait("database listed", `document.querySelector("[data-database=main]") ? "yes" : ""`)
	edgeShot(t, c, "4-developer-databases")
	evs, err := in.events().ListEvents(admin, &cairnv1.ListEventsRequest{ProjectId: "alpha", Subject: "databases.>"})
	if err != nil || len(evs.GetEvents()) != 1 {
		t.Fatalf("alpha's database events: %v %v", evs, err)
	}
	if a := evs.GetEvents()[0].GetEnvelope().GetActor(); a.GetKind() != eventsv1.Actor_KIND_OPERATOR || a.GetName() != "dev@example.com" {
		t.Errorf("the console's write is recorded as %v, want the developer's account", a)
	}

	// The console's audit log names the account.
	p.step("audit", chromedp.Click(chromedp.CSS("#tab-audit")))
	if rows := p.wait("audit rows", text("#events tbody")); !strings.Contains(rows, "operator dev@example.com") {
		t.Errorf("the audit log shows %q, want the database's creation by operator dev@example.com", rows)
	}
	edgeShot(t, c, "4b-developer-audit")

	// Auth: a developer manages users, but the sign-in settings are the owner's.
	p.step("auth", chromedp.Click(chromedp.CSS("#tab-auth")))
	p.wait("users", `document.querySelector("#user-create") ? "yes" : ""`)
	if !isVisible("#user-create") {
		t.Error("a developer is not offered creating users")
	}
	p.step("auth settings", chromedp.Click(chromedp.CSS("button#auth-settings")))
	p.wait("settings", `document.querySelector("form#auth-settings button[type=submit]") ? "yes" : ""`)
	if isVisible("form#auth-settings button[type=submit]") {
		t.Error("a developer is offered saving the sign-in settings (the owner's)")
	}
	edgeShot(t, c, "4c-developer-auth-settings")

	// Another project, by its address: not found, as if it did not exist.
	p.step("beta by URL", chromedp.Navigate(in.url+"/console/p/beta/databases"))
	if msg := p.wait("refusal", text(".screen .error")); !strings.Contains(msg, "not_found") {
		t.Errorf("beta's databases show %q, want not_found", msg)
	}
	edgeShot(t, c, "5-developer-other-project")

	// The role becomes viewer: the next screen offers no write.
	var devID string
	if l, err := in.operators().ListOperators(admin, &cairnv1.ListOperatorsRequest{}); err != nil || len(l.GetOperators()) != 1 {
		t.Fatalf("operators: %v %v", l, err)
	} else {
		devID = l.GetOperators()[0].GetId()
	}
	if _, err := in.operators().UpdateOperator(admin, &cairnv1.UpdateOperatorRequest{OperatorId: devID,
		Roles: &cairnv1.OperatorRoles{Roles: []*cairnv1.OperatorRole{{ProjectId: "alpha", Role: "viewer"}}}}); err != nil {
		t.Fatal(err)
	}
	p.step("alpha again", chromedp.Navigate(in.url+"/console/p/alpha/databases"))
	p.wait("read-only", `document.querySelector("[data-right]")?.dataset.right === "read" && document.querySelector("[data-database=main]") ? "yes" : ""`)
	if isVisible("#create-database") || isVisible(`[data-database=main] .create-collection`) {
		t.Error("a viewer is offered creating databases or collections")
	}
	edgeShot(t, c, "6-viewer-databases")

	// Revoked: the next call signs the tab out.
	if _, err := in.operators().RevokeOperatorSessions(admin, &cairnv1.RevokeOperatorSessionsRequest{OperatorId: devID}); err != nil {
		t.Fatal(err)
	}
	p.step("after revocation", chromedp.Navigate(in.url+"/console/p/alpha/databases"))
	p.wait("signed out", `document.querySelector("#operator-email") ? "yes" : ""`)
	if _, err := in.databases().ListDatabases(func() context.Context { ctx, _ := as(context.Background(), "co_"+strings.Repeat("0", 64)); return ctx }(),
		&cairnv1.ListDatabasesRequest{ProjectId: "alpha"}); err == nil {
		t.Error("a made-up console session was accepted")
	}
	edgeShot(t, c, "7-revoked")
}
