package main

// The console's document grid query builder, in Chromium against a real
// instance: every operator the API has, several values (IN), two values
// (between), and/or groups nested, orders ($random included), the query
// shown as the TypeScript client's call and as JSON, explain following
// it, and the API's error for a bad query. Each grid is checked against
// the same query asked through the API.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// queryDriver (JavaScript) builds spec in the grid's query builder by
// clicking and typing as a user does, runs it, waits for the grid to
// answer that run, and returns the rows' ids, the error shown and the
// query's JSON.
const queryDriver = `async (spec) => {
  const tick = () => new Promise((r) => setTimeout(r, 15));
  const set = async (el, v, ev) => { el.value = v; el.dispatchEvent(new Event(ev, { bubbles: true })); await tick(); };
  const kids = (g) => [...g.children].filter((e) => e.matches(".condition, .group"));
  const root = () => document.querySelector('#filter .group[data-group="root"]');
  for (let k = kids(root()); k.length; k = kids(root())) {
    const last = k[k.length - 1];
    (last.matches(".group") ? last.querySelector(":scope > .group-head .remove-group") : last.querySelector(":scope > .remove-condition")).click();
    await tick();
  }
  const fill = async (group, items) => {
    for (const it of items) {
      if (it.g) {
        group().querySelector(":scope > .group-actions .add-group").click(); await tick();
        const at = kids(group()).length - 1;
        const sub = () => kids(group())[at];
        kids(sub())[0].querySelector(":scope > .remove-condition").click(); await tick();
        await set(sub().querySelector(":scope > .group-head select[name=groupOp]"), it.g, "change");
        await fill(sub, it.items);
        continue;
      }
      group().querySelector(":scope > .group-actions .add-condition").click(); await tick();
      const at = kids(group()).length - 1;
      const c = () => kids(group())[at];
      await set(c().querySelector("select[name=operator]"), it.op, "change");
      if (it.a && c().querySelector("select[name=attribute]")) await set(c().querySelector("select[name=attribute]"), it.a, "change");
      const vs = it.v || [];
      for (let i = 1; i < vs.length; i++) if (!c().querySelector("input[name=value" + i + "]")) { c().querySelector(".add-value").click(); await tick(); }
      for (let i = 0; i < vs.length; i++) await set(c().querySelector("input[name=value" + i + "]"), vs[i], "input");
    }
  };
  await set(root().querySelector(":scope > .group-head select[name=groupOp]"), spec.op || "and", "change");
  await fill(root, spec.items || []);
  const order = spec.order || { a: "$createdAt", desc: true };
  await set(document.querySelector("#query-orders select[name=orderAttribute]"), order.a, "change");
  if (order.a !== "$random") await set(document.querySelector("#query-orders select[name=orderDirection]"), order.desc ? "desc" : "asc", "change");
  const run = Number(document.querySelector("#grid-state").dataset.run);
  document.querySelector("#run-query").click();
  for (let i = 0; i < 600 && document.querySelector("#grid-state")?.dataset.loaded !== String(run + 1); i++) await tick();
  const shown = async (id) => { document.querySelector(id).click(); await tick(); return document.querySelector("#query-text").textContent; };
  const ts = await shown("#query-as-ts");
  const json = await shown("#query-as-json");
  return JSON.stringify({
    loaded: document.querySelector("#grid-state")?.dataset.loaded === String(run + 1),
    ids: [...document.querySelectorAll("#documents tbody tr")].map((r) => r.dataset.document),
    error: document.querySelector("#grid-state ~ .error")?.innerText ?? "",
    ts, json,
  });
}`

type queryItem struct {
	Group string      `json:"g,omitempty"`
	Items []queryItem `json:"items,omitempty"`
	Attr  string      `json:"a,omitempty"`
	Op    string      `json:"op,omitempty"`
	V     []string    `json:"v,omitempty"`
}

type queryOrder struct {
	Attr string `json:"a"`
	Desc bool   `json:"desc"`
}

type querySpec struct {
	Op    string      `json:"op,omitempty"`
	Items []queryItem `json:"items"`
	Order *queryOrder `json:"order,omitempty"`
}

type queryResult struct {
	Loaded bool     `json:"loaded"`
	IDs    []string `json:"ids"`
	Error  string   `json:"error"`
	TS     string   `json:"ts"`
	JSON   string   `json:"json"`
}

func TestConsoleQueryBuilder(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	admin := op(t)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "demo", Name: "Demo"}); err != nil {
		t.Fatal(err)
	}
	dbs := in.databases()
	p, db, coll := "demo", "main", "items"
	if _, err := dbs.CreateDatabase(admin, &cairnv1.CreateDatabaseRequest{ProjectId: p, DatabaseId: db, Name: db}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs.CreateCollection(admin, &cairnv1.CreateCollectionRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Name: coll}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*cairnv1.Attribute{
		{Key: "status", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 32},
		{Key: "n", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER},
		{Key: "tags", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 16, Array: true},
		{Key: "note", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 64},
		{Key: "at", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_POINT},
	} {
		if _, err := dbs.CreateAttribute(admin, &cairnv1.CreateAttributeRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Attribute: a}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ix := range []*cairnv1.Index{
		{Key: "by_status", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"status"}},
		{Key: "note_text", Type: cairnv1.IndexType_INDEX_TYPE_FULLTEXT, Attributes: []string{"note"}},
	} {
		if _, err := dbs.CreateIndex(admin, &cairnv1.CreateIndexRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Index: ix}); err != nil {
			t.Fatal(err)
		}
	}
	waitIndexes(t, dbs, admin, p, db, coll)
	created := map[string]string{}
	for _, d := range []struct {
		id   string
		data map[string]any
	}{
		{"a", map[string]any{"status": "paid", "n": 1, "tags": []any{"red", "blue"}, "note": "hello world", "at": []any{2.35, 48.86}}},
		{"b", map[string]any{"status": "open", "n": 5, "tags": []any{"red"}, "at": []any{-0.13, 51.51}}},
		{"c", map[string]any{"status": "paid", "n": 10, "tags": []any{"green", "blue"}, "note": "goodbye moon", "at": []any{13.4, 52.52}}},
		{"d", map[string]any{"status": "void", "n": 7, "tags": []any{}, "note": "hello there"}},
	} {
		s, err := structpb.NewStruct(d.data)
		if err != nil {
			t.Fatal(err)
		}
		r, err := dbs.CreateDocument(admin, &cairnv1.CreateDocumentRequest{ProjectId: p, DatabaseId: db, CollectionId: coll,
			Document: &cairnv1.DocumentInput{DocumentId: d.id, Data: s}})
		if err != nil {
			t.Fatal(err)
		}
		created[d.id] = r.GetDocument().GetCreatedAt().AsTime().Format(time.RFC3339Nano)
		time.Sleep(5 * time.Millisecond) // distinct creation times
	}

	// The same query through the API: what the grid must show.
	value := func(attr, op, v string) *structpb.Value {
		if attr == "at" { // geo: a point or ring as JSON, meters as a number
			var x any
			if err := json.Unmarshal([]byte(v), &x); err == nil {
				if sv, err := structpb.NewValue(x); err == nil {
					return sv
				}
			}
		}
		if attr == "n" && !strings.HasPrefix(op, "created") && !strings.HasPrefix(op, "updated") {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err == nil {
				return structpb.NewNumberValue(f)
			}
		}
		return structpb.NewStringValue(v)
	}
	var toFilter func(it queryItem) *cairnv1.Filter
	toFilter = func(it queryItem) *cairnv1.Filter {
		if it.Group != "" {
			f := &cairnv1.Filter{Op: cairnv1.Operator(cairnv1.Operator_value["OPERATOR_"+strings.ToUpper(it.Group)])}
			for _, x := range it.Items {
				f.Filters = append(f.Filters, toFilter(x))
			}
			return f
		}
		name := "OPERATOR_"
		for _, r := range it.Op {
			if r >= 'A' && r <= 'Z' {
				name += "_"
			}
			name += strings.ToUpper(string(r))
		}
		opv, ok := cairnv1.Operator_value[name]
		if !ok {
			t.Fatalf("no operator %s", name)
		}
		f := &cairnv1.Filter{Op: cairnv1.Operator(opv), Attribute: it.Attr}
		for _, v := range it.V {
			f.Values = append(f.Values, value(it.Attr, it.Op, v))
		}
		return f
	}
	apiIDs := func(spec querySpec, seed uint64) ([]string, error) {
		req := &cairnv1.ListDocumentsRequest{ProjectId: p, DatabaseId: db, CollectionId: coll, Limit: 25}
		var fs []*cairnv1.Filter
		for _, it := range spec.Items {
			fs = append(fs, toFilter(it))
		}
		if spec.Op == "or" && len(fs) > 1 {
			fs = []*cairnv1.Filter{{Op: cairnv1.Operator_OPERATOR_OR, Filters: fs}}
		}
		req.Filters = fs
		o := &cairnv1.Order{Attribute: "$createdAt", Desc: true}
		if spec.Order != nil {
			o = &cairnv1.Order{Attribute: spec.Order.Attr, Desc: spec.Order.Desc, Seed: seed}
		}
		req.Orders = []*cairnv1.Order{o}
		l, err := dbs.ListDocuments(admin, req)
		var out []string
		for _, d := range l.GetDocuments() {
			out = append(out, d.GetId())
		}
		return out, err
	}

	browser := edgeBrowser(t, 200*time.Second)
	tab := openConsoleTab(t, browser)
	tab.signIn(in.url, "/p/demo/databases/main/items")
	tab.wait("grid", consoleText("#documents tbody"))
	drive := func(name string, spec querySpec) queryResult {
		t.Helper()
		b, _ := json.Marshal(spec)
		ctx, cancel := context.WithTimeout(tab.c, 30*time.Second)
		defer cancel()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string]("("+queryDriver+")("+string(b)+")", chromedp.EvalAwaitPromise))
		if err != nil {
			edgeShot(t, tab.c, "failed-"+name)
			t.Fatalf("%s: %v", name, err)
		}
		var r queryResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if !r.Loaded {
			edgeShot(t, tab.c, "failed-"+name)
			t.Fatalf("%s: the grid did not answer the run", name)
		}
		return r
	}
	cond := func(attr, op string, v ...string) querySpec {
		return querySpec{Items: []queryItem{{Attr: attr, Op: op, V: v}}}
	}

	// Every operator, each alone: the grid shows what the API answers, and
	// where the answer is certain, that answer.
	cases := []struct {
		spec querySpec
		want string // ids in $createdAt desc order; "?" checks against the API only
	}{
		{cond("status", "equal", "paid", "open"), "c b a"}, // several values: IN
		{cond("status", "notEqual", "paid"), "d b"},
		{cond("n", "lessThan", "5"), "a"},
		{cond("n", "lessThanEqual", "5"), "b a"},
		{cond("n", "greaterThan", "5"), "d c"},
		{cond("n", "greaterThanEqual", "7"), "d c"},
		{cond("n", "between", "2", "8"), "d b"},
		{cond("n", "notBetween", "2", "8"), "c a"},
		{cond("note", "isNull"), "?"},
		{cond("note", "isNotNull"), "?"},
		{cond("note", "exists"), "?"},
		{cond("note", "notExists"), "?"},
		{cond("status", "startsWith", "pa"), "c a"},
		{cond("status", "notStartsWith", "pa"), "d b"},
		{cond("status", "endsWith", "id"), "d c a"},
		{cond("status", "notEndsWith", "id"), "b"},
		{cond("tags", "contains", "red"), "b a"},
		{cond("tags", "notContains", "red"), "d c"},
		{cond("tags", "containsAny", "green", "red"), "c b a"},
		{cond("tags", "containsAll", "red", "blue"), "a"},
		{cond("note", "search", "hello"), "d a"},
		{cond("note", "notSearch", "hello"), "?"},
		{cond("status", "regex", "^(paid|void)$"), "d c a"},
		{cond("", "createdBefore", created["c"]), "b a"},
		{cond("", "createdAfter", created["b"]), "d c"},
		{cond("", "createdBetween", created["b"], created["c"]), "c b"},
		{cond("", "updatedBefore", created["c"]), "b a"},
		{cond("", "updatedAfter", created["b"]), "d c"},
		{cond("", "updatedBetween", created["b"], created["c"]), "c b"},
		// Paris a, London b (344 km), Berlin c (878 km); d has no point.
		{cond("at", "distanceLessThan", "[2.35,48.86]", "500000"), "b a"},
		{cond("at", "distanceGreaterThan", "[2.35,48.86]", "500000"), "c"},
		{cond("at", "intersects", "[[-1,50],[3,50],[3,53],[-1,53],[-1,50]]"), "b"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		it := c.spec.Items[0]
		seen[it.Op] = true
		r := drive(it.Op, c.spec)
		want, err := apiIDs(c.spec, 0)
		if err != nil {
			t.Errorf("%s through the API: %v", it.Op, err)
			continue
		}
		if r.Error != "" {
			t.Errorf("%s: the console shows %q, the API answers %v", it.Op, r.Error, want)
			continue
		}
		if strings.Join(r.IDs, " ") != strings.Join(want, " ") || c.want != "?" && strings.Join(want, " ") != c.want {
			t.Errorf("%s %v: the grid shows %v, the API %v, want %s", it.Op, it.V, r.IDs, want, c.want)
		}
		if !strings.Contains(r.JSON, `"`+toFilter(it).GetOp().String()+`"`) {
			t.Errorf("%s: the JSON shown does not name the operator:\n%s", it.Op, r.JSON)
		}
	}
	for name := range cairnv1.Operator_value {
		op := strings.TrimPrefix(name, "OPERATOR_")
		if op == "UNSPECIFIED" || op == "AND" || op == "OR" {
			continue
		}
		camel := ""
		for i, w := range strings.Split(strings.ToLower(op), "_") {
			if i > 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			camel += w
		}
		if !seen[camel] {
			// An operator added to the API after this test: the builder must offer it.
			t.Logf("operator %s is not exercised here", camel)
		}
	}
	in2 := drive("in", cond("status", "equal", "paid", "open"))
	if !strings.Contains(in2.TS, `Query.equal("status", "paid", "open")`) || !strings.Contains(in2.TS, `cairn.collection("main", "items").list(`) {
		t.Errorf("the TypeScript shown for an IN query:\n%s", in2.TS)
	}
	// Explain follows the query run: the IN query in $createdAt order reads
	// that order; in status order it reads by_status.
	tab.step("explain", chromedp.Click(chromedp.CSS("#explain-query")))
	if x := tab.wait("explain", consoleText("#explain")); !strings.Contains(x, "$createdAt") {
		t.Errorf("explain of the IN query: %q, want the $createdAt order", x)
	}
	byStatus := cond("status", "equal", "paid", "open")
	byStatus.Order = &queryOrder{Attr: "status"}
	if r := drive("in by status", byStatus); strings.Join(r.IDs, " ") != "b a c" && strings.Join(r.IDs, " ") != "b c a" {
		t.Errorf("IN ordered by status: %v", r.IDs)
	}
	tab.step("explain again", chromedp.Click(chromedp.CSS("#explain-query")))
	if x := tab.wait("explain by status", consoleText("#explain")); !strings.Contains(x, "by_status") {
		t.Errorf("explain of the IN query in status order: %q, want by_status", x)
	}
	edgeShot(t, tab.c, "1-in-explained")
	nb := drive("notBetween code", cond("n", "notBetween", "2", "8"))
	if !strings.Contains(nb.TS, `{ op: "notBetween", attribute: "n", values: [2, 8] }`) {
		t.Errorf("the TypeScript shown for notBetween (no Query builder in the client):\n%s", nb.TS)
	}

	// Groups: status paid AND (n between 1 and 5 OR tags hold green and blue).
	nested := querySpec{Items: []queryItem{
		{Attr: "status", Op: "equal", V: []string{"paid"}},
		{Group: "or", Items: []queryItem{{Attr: "n", Op: "between", V: []string{"1", "5"}}, {Attr: "tags", Op: "containsAll", V: []string{"green", "blue"}}}},
	}}
	r := drive("nested", nested)
	if want, err := apiIDs(nested, 0); err != nil || strings.Join(r.IDs, " ") != "c a" || strings.Join(want, " ") != "c a" {
		t.Errorf("nested groups: the grid %v, the API %v %v, want c a", r.IDs, want, err)
	}
	if !strings.Contains(r.JSON, "OPERATOR_OR") || !strings.Contains(strings.ReplaceAll(r.JSON, " ", ""), `"filters":[`) {
		t.Errorf("the nested query's JSON:\n%s", r.JSON)
	}
	tab.step("show code", chromedp.Evaluate[chromedp.Void](`document.querySelector("#query-code").open = true`), chromedp.Click(chromedp.CSS("#query-as-ts")))
	edgeShot(t, tab.c, "2-nested-groups")
	tab.step("scroll to code", chromedp.Evaluate[chromedp.Void](`document.querySelector("#query-code").scrollIntoView()`))
	edgeShot(t, tab.c, "2-nested-groups-code")
	// The top level as OR: status open, or n over 8.
	anyOf := querySpec{Op: "or", Items: []queryItem{{Attr: "status", Op: "equal", V: []string{"open"}}, {Attr: "n", Op: "greaterThan", V: []string{"8"}}}}
	if r := drive("or", anyOf); strings.Join(r.IDs, " ") != "c b" {
		t.Errorf("match any: the grid %v, want c b", r.IDs)
	}

	// Orders: by n descending; random with the seed the console chose, the
	// same shuffle as the API's with that seed.
	byN := querySpec{Order: &queryOrder{Attr: "n", Desc: true}}
	if r := drive("order", byN); strings.Join(r.IDs, " ") != "c d b a" {
		t.Errorf("ordered by n descending: %v, want c d b a", r.IDs)
	}
	random := querySpec{Order: &queryOrder{Attr: "$random"}}
	r = drive("random", random)
	var sent struct {
		Orders []struct {
			Attribute string `json:"attribute"`
			Seed      string `json:"seed"`
		} `json:"orders"`
	}
	if err := json.Unmarshal([]byte(r.JSON), &sent); err != nil || len(sent.Orders) != 1 || sent.Orders[0].Attribute != "$random" || sent.Orders[0].Seed == "" {
		t.Fatalf("the random order's JSON: %s %v", r.JSON, err)
	}
	var seed uint64
	if err := json.Unmarshal([]byte(sent.Orders[0].Seed), &seed); err != nil {
		t.Fatal(err)
	}
	if want, err := apiIDs(random, seed); err != nil || !slices.Equal(r.IDs, want) || len(want) != 4 {
		t.Errorf("orderRandom seed %d: the grid %v, the API %v %v", seed, r.IDs, want, err)
	}
	if !strings.Contains(r.TS, `orders: ["$random"]`) {
		t.Errorf("the TypeScript shown for a random order:\n%s", r.TS)
	}

	// A bad query: the API's message and the field it names.
	bad := drive("bad regex", cond("status", "regex", "(unclosed"))
	if !strings.Contains(bad.Error, "invalid_argument") || !strings.Contains(bad.Error, "field") {
		t.Errorf("a bad regex shows %q, want the API's invalid_argument and its field", bad.Error)
	} else {
		t.Logf("the error shown: %s", bad.Error)
	}
	edgeShot(t, tab.c, "3-bad-regex")
}
