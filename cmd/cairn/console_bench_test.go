package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// BenchmarkConsole measures the console in Debian's Chromium on loopback:
// time to interactive (navigation to the projects list rendered, signed in)
// and the time to render the first page of a 10,000-document collection's
// grid (navigation to 25 rows shown with the count: the grid counts up to
// 5,000 and then says "or more").
//
//	go test ./cmd/cairn -run '^$' -bench Console -benchtime 10x
func BenchmarkConsole(b *testing.B) {
	requireChromium(b)
	in, _ := edgeInstance(b)
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		b.Fatal(err)
	}
	benchCollection(b, in, op, "demo")
	const docs, batch = 10_000, 100
	for i := 0; i < docs; i += batch {
		page := make([]*cairnv1.DocumentInput, batch)
		for j := range page {
			s, err := structpb.NewStruct(map[string]any{"title": fmt.Sprintf("document %05d", i+j)})
			if err != nil {
				b.Fatal(err)
			}
			page[j] = &cairnv1.DocumentInput{DocumentId: fmt.Sprintf("d%05d", i+j), Data: s}
		}
		if _, err := in.databases().CreateDocuments(op, &cairnv1.CreateDocumentsRequest{ProjectId: "demo", DatabaseId: "main", CollectionId: "posts", Documents: page}); err != nil {
			b.Fatal(err)
		}
	}
	c := edgeBrowser(b, 10*time.Minute)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		b.Helper()
		ctx, cancel := context.WithTimeout(c, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			b.Fatalf("%s: %v", what, err)
		}
	}
	until := func(what, expr string) {
		b.Helper()
		if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			page, _ := chromedp.Run(c, chromedp.Evaluate[string](`document.body.innerText`))
			b.Fatalf("%s: %v\npage:\n%s", what, err, page)
		}
	}
	run("open", chromedp.Navigate(in.url+"/console/"))
	// The form opens on operator accounts; the key is one click away.
	run("key sign-in", chromedp.Click(chromedp.CSS("#signin-switch")))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#operator-key"), testAdminKey), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	until("signed in", `!!document.querySelector("#signout")`)

	var tti, grid time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		run("projects", chromedp.Navigate(in.url+"/console/"))
		until("projects listed", `document.body.innerText.includes("demo") && !!document.querySelector("#signout")`)
		tti += time.Since(t0)

		t0 = time.Now()
		run("collection", chromedp.Navigate(in.url+"/console/p/demo/databases/main/posts"))
		until("grid", `document.querySelectorAll("#documents tbody tr").length === 25 && /\b\d+ documents/.test(document.body.innerText)`)
		grid += time.Since(t0)
	}
	b.ReportMetric(float64(tti.Microseconds())/1000/float64(b.N), "tti-ms")
	b.ReportMetric(float64(grid.Microseconds())/1000/float64(b.N), "grid-10k-ms")
	b.ReportMetric(0, "ns/op")
}
