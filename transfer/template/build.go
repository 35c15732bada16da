package template

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-dev/cairn/fnrun/js"
)

// Build turns a function's code path into the bytes deployed, as
// `cairn functions deploy` does: for js a bundle of dir's entry (default
// index.ts, else index.js), for wasm the .wasm file (or dir/main.wasm).
// Bundling is deterministic, so the bytes' SHA-256 tells whether the
// deployed code is this code.
func Build(runtime, dir, entry string) ([]byte, error) {
	switch runtime {
	case "js":
		if entry == "" {
			entry = "index.ts"
			if _, err := os.Stat(filepath.Join(dir, entry)); err != nil {
				entry = "index.js"
			}
		}
		b, err := js.Bundle(dir, entry)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", filepath.Join(dir, entry), err)
		}
		return b, nil
	case "wasm":
		file := dir
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			file = filepath.Join(dir, "main.wasm")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read wasm code: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("runtime %q has no builder", runtime)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// resolve makes a code path relative to the project file's directory.
func resolve(base, path string) string {
	if filepath.IsAbs(path) || base == "" {
		return path
	}
	return filepath.Join(base, path)
}
