package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCreateDocumentJSONByHand: CreateDocument's JSON request is read and
// validated by hand when plain (api/createjson.go). Over loopback HTTP,
// each body is sent as it is and once more with the project id's first
// letter escaped (\u0061…), which the hand reader leaves to protojson:
// a good create answers the same document either way (answer == get,
// byte for byte, for the hand-read one), and a bad one the same status
// and the same error body (code, message, the field named).
func TestCreateDocumentJSONByHand(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	const p = "answers"
	secret := newProjectWithKey(t, in, p, docScopes...)
	k, _ := as(ctx, secret)
	docsFixture(t, k, in.databases(), p, "posts", nil, false)

	post := func(method, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url+"/cairn.v1.DatabasesService/"+method, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, out
	}
	// body is a create request with document members doc.
	body := func(escaped bool, doc string) string {
		project := `"answers"`
		if escaped {
			project = `"\u0061nswers"`
		}
		return `{"projectId":` + project + `,"databaseId":"main","collectionId":"posts","document":{` + doc + `}}`
	}
	// answer is the document of a create's answer without what differs
	// between two creates (id, times, sequences).
	answer := func(raw []byte) map[string]any {
		t.Helper()
		var res struct{ Document map[string]any }
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		for _, k := range []string{"id", "createdAt", "updatedAt", "sequence", "version"} {
			delete(res.Document, k)
		}
		return res.Document
	}

	good := []string{
		`"documentId":"%s","data":{"title":"plain","views":3}`,
		`"documentId":"%s","data":{"title":"é ü 𝄞 \"quoted\" \u00e9\n","email":"%s@example.com"}`,
		`"documentId":"%s","data":{"title":"perms"},"permissions":{"values":["read(\"any\")","update(\"users\")"]}`,
		`"documentId":"%s","data":{"title":"no permissions"},"permissions":{}`,
		` "document_id" : "%s" , "data" : { "title" : "spaced" , "views" : 1e2 } `,
	}
	for i, g := range good {
		var got [2]map[string]any
		for j, escaped := range []bool{false, true} {
			id := fmt.Sprintf("g%d-%d", i, j)
			doc := g
			if strings.Count(g, "%s") == 2 {
				doc = fmt.Sprintf(g, id, id)
			} else {
				doc = fmt.Sprintf(g, id)
			}
			status, raw := post("CreateDocument", body(escaped, doc))
			if status != http.StatusOK {
				t.Fatalf("create %d (escaped %v): %d %s", i, escaped, status, raw)
			}
			got[j] = answer(raw)
			if data, _ := got[j]["data"].(map[string]any); strings.Contains(g, "email") {
				if data["email"] != id+"@example.com" {
					t.Fatalf("create %d: email %v", i, data["email"])
				}
				delete(data, "email")
			}
			if !escaped {
				// The answer is what a get returns, byte for byte.
				_, read := post("GetDocument", `{"projectId":"answers","databaseId":"main","collectionId":"posts","documentId":"`+id+`"}`)
				var created, fetched struct{ Document json.RawMessage }
				if json.Unmarshal(raw, &created) != nil || json.Unmarshal(read, &fetched) != nil || !bytes.Equal(created.Document, fetched.Document) {
					t.Fatalf("create %d answered %s, get reads %s", i, raw, read)
				}
			}
		}
		a, _ := json.Marshal(got[0])
		b, _ := json.Marshal(got[1])
		if !bytes.Equal(a, b) {
			t.Fatalf("create %d: read by hand it answers %s, through protojson %s", i, a, b)
		}
	}

	bad := []string{
		`"documentId":"a b","data":{"title":"x"}`,
		`"documentId":"-x","data":{"title":"x"}`,
		`"documentId":"ok1","data":{"title":"x","nope":1}`,
		`"documentId":"ok2","data":{"title":1}`,
		`"documentId":"ok3","data":{"views":"many"}`,
		`"documentId":"ok4","data":{"$id":"x","title":"x"}`,
		`"documentId":"ok5","data":{}`,
		`"documentId":"ok6","data":{"title":"x","views":1.5}`,
		`"documentId":"ok7","data":{"title":"x","views":1e300}`,
		`"documentId":"ok8","data":{"title":"x","email":"not an email"}`,
		`"documentId":"ok9","data":{"title":"x"},"permissions":{"values":["read(\"nobody\""]}`,
		`"documentId":"ok10","data":{"title":"x"},"permissions":{"values":[` + strings.Repeat(`"read(\"any\")",`, 100) + `"read(\"any\")"]}`,
		`"documentId":"g0-0","data":{"title":"exists"}`,
		`"documentId":"ok11","data":{"title":"` + strings.Repeat("x", 65) + `"}`,
	}
	for i, d := range bad {
		status, raw := post("CreateDocument", body(false, d))
		status2, raw2 := post("CreateDocument", body(true, d))
		if status == http.StatusOK || status != status2 || !bytes.Equal(raw, raw2) {
			t.Fatalf("bad create %d: read by hand %d %s, through protojson %d %s", i, status, raw, status2, raw2)
		}
	}
	// No document at all: refused the same way, naming the field.
	for _, b := range []string{`{"projectId":"answers","databaseId":"main","collectionId":"posts"}`, `{"projectId":"answers","databaseId":"main","collectionId":"posts","document":null}`} {
		status, raw := post("CreateDocument", b)
		if status != http.StatusBadRequest || !strings.Contains(string(raw), "document") {
			t.Fatalf("%s: %d %s", b, status, raw)
		}
	}
}
