package js_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/js"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBundleTypeScriptProject(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"index.ts": `import { greet, type Greeting } from './greet';
import shout from 'tiny-shout';

interface Ctx { req: { query: Record<string, string> }; res: { json(o: unknown, status?: number): unknown }; log(...a: unknown[]): void }

async function* numbers(): AsyncGenerator<number> { yield 1; yield 2; }

class Counter { #n = 0; static made = 0; inc(): number { return ++this.#n; } }

export default async ({ req, res, log }: Ctx) => {
  const g: Greeting = await greet(req.query.name ?? 'world');
  let sum = 0;
  for await (const n of numbers()) sum += n;
  const c = new Counter();
  c.inc();
  log('bundled', g.text);
  return res.json({ text: shout(g.text), sum, count: c.inc() }, 200);
};
`,
		"greet.ts": `export type Greeting = { text: string };
export async function greet(name: string): Promise<Greeting> {
  await new Promise((r) => setTimeout(r, 1));
  return { text: ` + "`hello ${name}`" + ` };
}
`,
		"node_modules/tiny-shout/package.json": `{"name":"tiny-shout","version":"1.0.0","main":"index.js"}`,
		"node_modules/tiny-shout/index.js":     `module.exports = function shout(s) { return s.toUpperCase() + '!'; };`,
	})
	for _, minify := range []bool{false, true} {
		code, err := js.BundleWith(dir, "index.ts", js.BundleOptions{Minify: minify})
		if err != nil {
			t.Fatal(err)
		}
		if err := js.Check(code); err != nil {
			t.Fatal(err)
		}
		p := newPool(t, js.PoolOptions{})
		resp := mustRun(t, p, code, fnrun.Request{Query: map[string][]string{"name": {"cairn"}}})
		if want := `{"text":"HELLO CAIRN!","sum":3,"count":2}`; string(resp.Body) != want {
			t.Errorf("minify=%v: body = %s, want %s", minify, resp.Body, want)
		}
		if resp.Logs != "bundled hello cairn\n" {
			t.Errorf("logs = %q", resp.Logs)
		}
	}
}

func TestBundleStackNamesSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"index.ts": "import { fail } from './lib';\nexport default async () => {\n  fail('x');\n};\n",
		"lib.ts":   "export function fail(why: string): never {\n  throw new Error('failed: ' + why);\n}\n",
	})
	code, err := js.Bundle(dir, "index.ts")
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(t, js.PoolOptions{})
	resp, err := run(t, p, code, fnrun.Request{}, fnrun.Limits{})
	if !errors.Is(err, fnrun.ErrCrashed) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(resp.Errors, "lib.ts:2:") {
		t.Errorf("stack does not name lib.ts:2: %q", resp.Errors)
	}
}

func TestBundleErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"index.ts": "import fs from 'fs';\nimport missing from './missing';\nexport default () => {\n",
	})
	_, err := js.Bundle(dir, "index.ts")
	if !errors.Is(err, fnrun.ErrInvalidCode) {
		t.Fatalf("err = %v, want ErrInvalidCode", err)
	}
	if !strings.Contains(err.Error(), "index.ts:") {
		t.Errorf("error does not name file:line: %v", err)
	}
}
