package template

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A file with three collections, for errors deep inside it.
const goodFile = `{
  "version": 1,
  "platforms": ["https://shop.example.com"],
  "databases": [{
    "id": "main", "name": "Main",
    "collections": [
      {"id": "a", "name": "A"},
      {"id": "b", "name": "B"},
      {"id": "c", "name": "C",
       "attributes": [{"key": "title", "type": "string", "size": 100}],
       "indexes": [{"key": "by_title", "type": "key", "attributes": ["title"]}]}
    ]
  }],
  "functions": [{"id": "hello", "name": "Hello", "runtime": "js",
    "variables": [{"key": "MODE", "value": "live"}, {"key": "API_KEY", "secretEnv": "HELLO_API_KEY"}]}]
}`

func TestParseNamesThePathOfABadValue(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown type", `"type": "string", "size": 100`, `"type": "strng", "size": 100`,
			`databases[0].collections[2].attributes[0].type: "strng" is not one of string, integer`},
		{"wrong kind", `"size": 100`, `"size": "100"`,
			`databases[0].collections[2].attributes[0].size: want a whole number, got "100"`},
		{"unknown field", `"collections": [`, `"colections": [`,
			`databases[0].colections: unknown field (known: id, name, enabled, collections)`},
		{"index over a missing attribute", `"attributes": ["title"]`, `"attributes": ["titel"]`,
			`databases[0].collections[2].indexes[0].attributes[0]: "titel" is not an attribute of this collection`},
		{"duplicate id", `{"id": "b", "name": "B"}`, `{"id": "a", "name": "B"}`,
			`databases[0].collections[1].id: collection "main/a" is already defined at databases[0].collections[0]`},
		{"bad id", `"id": "main"`, `"id": "ma.in"`, `databases[0].id: "ma.in" is not an id`},
		{"secret in the file", `"secretEnv": "HELLO_API_KEY"`, `"secretEnv": "HELLO_API_KEY", "value": "sk_live"`,
			`functions[0].variables[1]: set value or secretEnv, not both`},
		{"version", `"version": 1`, `"version": 2`, `version: want 1`},
		{"list wanted", `"platforms": ["https://shop.example.com"]`, `"platforms": "https://shop.example.com"`,
			`platforms: want a list, got "https://shop.example.com"`},
		{"not an origin", `"https://shop.example.com"`, `"shop.example.com/app"`, `platforms[0]: "shop.example.com/app" is not an origin`},
		{"a default of the wrong type", `"type": "string", "size": 100}`, `"type": "string", "size": 100, "default": 5}`,
			`databases[0].collections[2].attributes[0].default: `},
		{"syntax", `"name": "A"}`, `"name": "A"},}`, `line 7: invalid character '}'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(goodFile, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			_, err := Parse([]byte(strings.Replace(goodFile, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
	f, err := Parse([]byte(goodFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Databases[0].Collections[2].Indexes[0].Attributes; len(got) != 1 || got[0] != "title" {
		t.Fatalf("index attributes %v", got)
	}
}

func TestParseFieldErrorHasThePath(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(goodFile, `"runtime": "js"`, `"runtime": "python"`, 1)))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "functions[0].runtime" {
		t.Fatalf("want a FieldError at functions[0].runtime, got %#v", err)
	}
}

// The example in docs/templates.md is a valid file, and Encode writes it
// back unchanged.
func TestDocsExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../docs/templates.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/templates.md has no json example")
	}
	f, err := Parse(m[1])
	if err != nil {
		t.Fatalf("the documented example: %v", err)
	}
	out, err := Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(m[1]) {
		t.Fatalf("the example is not in the form pull writes:\n%s", out)
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[string]string{"720h": "720h", "90s": "1m30s", "1h30m": "1h30m", "2m": "2m", "1h0m30s": "1h0m30s"} {
		d, err := time.ParseDuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %s, want %s", in, got, want)
		}
	}
}
