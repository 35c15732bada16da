package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestSitesDeployBench measures deploying a generated 2,000-file site to an
// in-process instance, through the CLI (`cairn sites deploy`: manifest,
// upload of the missing files only, deployment) and through the archive
// upload, and a redeploy with one changed file each way. Figures for the
// closing note; set CAIRN_SITES_BENCH=1 to run it (CI does not).
func TestSitesDeployBench(t *testing.T) {
	if os.Getenv("CAIRN_SITES_BENCH") != "1" {
		t.Skip("set CAIRN_SITES_BENCH=1 to measure site deploy times")
	}
	const files = 2000
	dir := t.TempDir()
	total, big := genSite(t, dir, files)
	t.Logf("site: %d files, %.1f MiB (%d files of 100 KiB–1 MiB)", files, float64(total)/(1<<20), big)

	in := startInstance(t, t.TempDir())
	op, _ := as(context.Background(), testAdminKey)
	for _, p := range []string{"cli", "arc"} {
		if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: p, Name: p}); err != nil {
			t.Fatal(err)
		}
		if _, err := in.sites().CreateSite(op, &cairnv1.CreateSiteRequest{ProjectId: p, SiteId: "web", Name: "web"}); err != nil {
			t.Fatal(err)
		}
	}
	report := func(what string, d time.Duration, bytes int64) {
		t.Logf("%-46s %8s  (%.1f MiB/s, %.0f files/s)", what, d.Round(time.Millisecond), float64(bytes)/(1<<20)/d.Seconds(), files/d.Seconds())
	}

	// The CLI: every file missing, then nothing, then one.
	deploy := func(wantUpload int) time.Duration {
		t.Helper()
		var out bytes.Buffer
		env := map[string]string{"CAIRN_KEY": testAdminKey}
		t0 := time.Now()
		err := run(context.Background(), []string{"sites", "deploy", "--project", "cli", "--site", "web", "--url", in.url, "--activate", dir},
			&out, io.Discard, func(k string) string { return env[k] })
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("sites deploy: %v\n%s", err, out.String())
		}
		if want := fmt.Sprintf("%d files, %d to upload\n", files, wantUpload); !strings.HasPrefix(out.String(), want) {
			t.Fatalf("sites deploy: want %q first, got:\n%s", want, out.String())
		}
		return d
	}
	report("CLI deploy, all 2,000 files uploaded", deploy(files), total)
	report("CLI redeploy, nothing changed (0 uploaded)", deploy(0), total)
	changed := filepath.Join(dir, "assets", "chunk-0005.js")
	if err := os.WriteFile(changed, []byte("console.log('changed');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report("CLI redeploy, one file changed (1 uploaded)", deploy(1), total)
	res, page := in.httpDo(t, "GET", "/_sites/cli/web/assets/chunk-0005.js", "", nil, nil)
	if res.StatusCode != 200 || page != "console.log('changed');\n" {
		t.Fatalf("changed file after redeploy: %d %q", res.StatusCode, page)
	}

	// The archive upload: the whole build each time (the server stores
	// only the new objects).
	upload := func() time.Duration {
		t.Helper()
		t0 := time.Now()
		arc := tarGzDir(t, dir)
		build := time.Since(t0)
		t1 := time.Now()
		res, body := in.httpDo(t, "POST", "/v1/sites/arc/web/deployments?activate=true", testAdminKey, arc, nil)
		d := time.Since(t1)
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("archive upload: %d %s", res.StatusCode, body)
		}
		t.Logf("  archive: %.1f MiB compressed, built client-side in %s", float64(len(arc))/(1<<20), build.Round(time.Millisecond))
		return d
	}
	report("archive upload, new project (all stored)", upload(), total)
	if err := os.WriteFile(changed, []byte("console.log('changed again');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report("archive upload, one file changed", upload(), total)
}

// genSite writes n files under dir with realistic sizes: mostly 1–20 KiB
// (scripts, styles, pages, small images), 2 % of 100 KiB–1 MiB (bundles,
// images). Contents are distinct and half compressible. It returns the
// total size and the number of large files.
func genSite(t *testing.T, dir string, n int) (total int64, big int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []struct{ dir, ext string }{{"assets", "js"}, {"assets", "css"}, {"pages", "html"}, {"img", "png"}, {"data", "json"}}
	for i := range n {
		size := 1<<10 + rng.IntN(19<<10)
		if i%50 == 25 {
			size = 100<<10 + rng.IntN(924<<10)
			big++
		}
		k := kinds[i%len(kinds)]
		name := filepath.Join(dir, k.dir, fmt.Sprintf("chunk-%04d.%s", i, k.ext))
		if i == 0 {
			name = filepath.Join(dir, "index.html")
		}
		b := make([]byte, size)
		for j := range b {
			if j%2 == 0 {
				b[j] = byte(rng.Uint32())
			} else {
				b[j] = 'a' + byte(j%26)
			}
		}
		text := base64.StdEncoding.EncodeToString(b)[:size]
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(size)
	}
	return total, big
}

// tarGzDir archives dir's files as a .tar.gz.
func tarGzDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
