package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestConsoleWebhooks: a webhook created in the console (its secret shown
// once, then verifiable by the receiver), its deliveries listed, a
// redelivery from a chosen sequence (the receiver sees the events again,
// in order), a refused sequence showing the API's message and field, and
// an edit that disables it.
func TestConsoleWebhooks(t *testing.T) {
	requireChromium(t)
	in := startInstance(t, t.TempDir(), "--webhook-allow", "127.0.0.1", "--webhook-max-backoff", "1s")
	admin := op(t)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	docsFixture(t, admin, in.databases(), "demo", "posts", []string{`read("any")`}, false)
	rcv := newHookReceiver(t)
	browser := edgeBrowser(t, 150*time.Second)
	p := openConsoleTab(t, browser)
	text := consoleText

	p.signIn(in.url, "/p/demo/webhooks")
	p.wait("webhooks screen", text("#create-webhook"))
	p.step("create", consoleSetText(`#create-webhook input[name=webhookId]`, "hook"),
		consoleSetText(`#create-webhook input[name=webhookUrl]`, rcv.srv.URL+"/in"),
		consoleSetText(`#create-webhook input[name=webhookEvents]`, "databases.*.collections.*.documents.*.create"),
		chromedp.Click(chromedp.CSS(`#create-webhook button[type=submit]`)))
	secret := p.wait("secret shown", text("#webhook-secret-value"))
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown: %q", secret)
	}
	rcv.mu.Lock()
	rcv.secret = []byte(secret)
	rcv.mu.Unlock()
	p.wait("listed", text(`#webhooks tr[data-webhook=hook]`))
	edgeShot(t, p.c, "created")
	p.step("hide secret", chromedp.Click(chromedp.CSS("#webhook-secret-done")))
	if got := p.wait("secret gone", `document.body.innerText.includes(`+jsString(secret)+`) ? "" : "gone"`); got != "gone" {
		t.Fatal("the secret is still on the page")
	}

	for _, id := range []string{"d1", "d2"} {
		if _, err := in.databases().CreateDocument(admin, &cairnv1.CreateDocumentRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts",
			Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id})}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := rcv.accepted(2); !slices.Equal(got, []string{"d1", "d2"}) {
		t.Fatalf("delivered %v", got)
	}
	var seq1 uint64
	for _, h := range rcv.hits() {
		if docOfEvent(h.event) == "d1" {
			seq1 = h.seq
		}
	}
	p.step("open", chromedp.Click(chromedp.CSS(`#webhooks tr[data-webhook=hook]`)))
	p.wait("panel", text("#webhook-panel"))
	p.step("refresh", chromedp.Click(chromedp.CSS(`#redeliver button[type=button]`)))
	p.wait("two deliveries", `document.querySelectorAll("#webhook-deliveries tbody tr").length === 2 ? "yes" : ""`)
	edgeShot(t, p.c, "deliveries")

	// A sequence before the webhook existed: the API's message and field.
	p.step("bad sequence", consoleSetText(`#redeliver input[name=fromSequence]`, "1"),
		chromedp.Click(chromedp.CSS(`#redeliver button[type=submit]`)))
	p.wantRefused("refused", "#webhook-panel .error", "from_sequence")

	p.step("redeliver", consoleSetText(`#redeliver input[name=fromSequence]`, strconv.FormatUint(seq1, 10)),
		chromedp.Click(chromedp.CSS(`#redeliver button[type=submit]`)))
	if got := rcv.accepted(4); !slices.Equal(got, []string{"d1", "d2", "d1", "d2"}) {
		t.Fatalf("after the console's redelivery: %v", got)
	}
	if got := p.wait("redelivery shown", text("#redeliver-from")); got != strconv.FormatUint(seq1, 10) {
		t.Errorf("redelivered from %q, want %d", got, seq1)
	}
	p.step("refresh again", chromedp.Click(chromedp.CSS(`#redeliver button[type=button]`)))
	p.wait("four deliveries", `document.querySelectorAll("#webhook-deliveries tbody tr").length === 4 ? "yes" : ""`)
	if got := p.wait("redelivery rows", text("#webhook-deliveries tbody")); !strings.Contains(got, "(redelivery)") {
		t.Errorf("deliveries table: %q", got)
	}
	edgeShot(t, p.c, "redelivered")

	// Disabled from the edit form, as the API then says.
	p.step("disable", chromedp.Click(chromedp.CSS(`#edit-webhook input[name=webhookEnabled]`)),
		chromedp.Click(chromedp.CSS(`#edit-webhook button[type=submit]`)))
	p.wait("shown disabled", `document.querySelector("#webhooks tr[data-webhook=hook] [data-state]")?.dataset.state === "disabled" ? "yes" : ""`)
	g, err := in.webhooks().GetWebhook(admin, &cairnv1.GetWebhookRequest{ProjectId: "demo", WebhookId: "hook"})
	if err != nil {
		t.Fatal(err)
	}
	if w := g.GetWebhook(); w.GetEnabled() || w.GetRedelivery() != 1 || w.GetRedeliverFrom() != seq1 {
		t.Fatalf("after the console's edit: %v", w)
	}
}
