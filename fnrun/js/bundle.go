package js

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
	"github.com/evanw/esbuild/pkg/api"

	"github.com/cairn-dev/cairn/fnrun"
)

// BundleOptions tune Bundle.
type BundleOptions struct {
	// Minify shrinks the bundle; stack traces still map to the sources
	// through the inline source map.
	Minify bool
	// NoSourceMap leaves out the inline source map (smaller bundle, stack
	// traces name bundle lines instead of source lines).
	NoSourceMap bool
}

// Bundle bundles dir's entry (e.g. "index.ts") and the npm packages it
// imports from dir/node_modules into one CommonJS file, transpiled to what
// goja runs, with an inline source map so that stack traces name the
// original files and lines. Node built-ins (fs, child_process, …) do not
// resolve. Returns an error wrapping fnrun.ErrInvalidCode that lists
// esbuild's messages as file:line:column: text.
func Bundle(dir, entry string) ([]byte, error) {
	return BundleWith(dir, entry, BundleOptions{})
}

// BundleWith is Bundle with options.
func BundleWith(dir, entry string, o BundleOptions) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("js: bundle: %w", err)
	}
	opts := api.BuildOptions{
		AbsWorkingDir: abs,
		EntryPoints:   []string{entry},
		Bundle:        true,
		Write:         false,
		Outfile:       "index.js",
		Format:        api.FormatCommonJS,
		Platform:      api.PlatformNeutral,
		// The neutral platform resolves no package.json fields by default;
		// npm packages mostly publish "module" and "main".
		MainFields: []string{"module", "main"},
		Target:     api.ES2022,
		// goja lacks these; esbuild lowers the first two and reports the
		// third.
		Supported: map[string]bool{
			"async-generator":      false,
			"for-await":            false,
			"regexp-match-indices": false,
		},
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		MinifyWhitespace:  o.Minify,
		MinifyIdentifiers: o.Minify,
		MinifySyntax:      o.Minify,
		LogLevel:          api.LogLevelSilent,
	}
	if !o.NoSourceMap {
		opts.Sourcemap = api.SourceMapInline
		opts.SourcesContent = api.SourcesContentExclude
	}
	r := api.Build(opts)
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("%w: %s", fnrun.ErrInvalidCode, formatMessages(r.Errors))
	}
	for _, f := range r.OutputFiles {
		if strings.HasSuffix(f.Path, ".js") {
			return f.Contents, nil
		}
	}
	return nil, fmt.Errorf("%w: esbuild wrote no JavaScript", fnrun.ErrInvalidCode)
}

func formatMessages(msgs []api.Message) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteString("; ")
		}
		if l := m.Location; l != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", l.File, l.Line, l.Column+1)
		}
		b.WriteString(m.Text)
	}
	return b.String()
}

// Check validates that a bundle compiles: the deployment's build step.
// Returns an error wrapping fnrun.ErrInvalidCode if it does not.
func Check(code []byte) error {
	_, err := compile(code)
	return err
}

// bundleName is the file name stack traces give the bundle when it has no
// source map.
const bundleName = "index.js"

// compile compiles a CommonJS bundle into a program whose completion value
// is a function(exports, module). The wrapper opens on the bundle's first
// line so that line numbers are unchanged.
func compile(code []byte) (*goja.Program, error) {
	src := "(function (exports, module) {" + string(code) + "\n})"
	// Source maps are read only from the bundle itself (inline data:
	// URLs): the default loader would read the worker's filesystem.
	ast, err := parser.ParseFile(nil, bundleName, src, 0, parser.WithSourceMapLoader(noSourceMapFiles))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", fnrun.ErrInvalidCode, err)
	}
	prg, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", fnrun.ErrInvalidCode, err)
	}
	return prg, nil
}

func noSourceMapFiles(string) ([]byte, error) { return nil, nil }
