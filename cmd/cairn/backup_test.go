package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// TestOnlineBackup: a backup taken while a writer keeps writing, restored
// into an empty data directory, serves every write acknowledged before the
// backup's cut-off, its files (encrypted ones too: the master key came
// along) and its keys; bad restores are refused before anything is
// written.
func TestOnlineBackup(t *testing.T) {
	dirA, dirB := t.TempDir(), filepath.Join(t.TempDir(), "restored")
	a := startInstance(t, dirA)
	key, _, files := transferFixture(t, a, "alpha")
	kctx, _ := as(context.Background(), key)

	// The writer: one document at a time, each with its acknowledgement's
	// time.
	type ack struct {
		id string
		at time.Time
	}
	var (
		mu    sync.Mutex
		acks  []ack
		stop  = make(chan struct{})
		wdone = make(chan error, 1)
	)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				wdone <- nil
				return
			default:
			}
			id := "w" + strconv.Itoa(i)
			if _, err := a.databases().CreateDocument(kctx, &cairnv1.CreateDocumentRequest{ProjectId: "alpha", DatabaseId: "main", CollectionId: "posts",
				Document: &cairnv1.DocumentInput{DocumentId: id, Data: data(t, map[string]any{"title": id, "views": i})}}); err != nil {
				wdone <- err
				return
			}
			mu.Lock()
			acks = append(acks, ack{id, time.Now()})
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	bdir := filepath.Join(t.TempDir(), "backup")
	started := time.Now()
	out, err := a.cli(t, "backup", "-o", bdir)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(started)
	time.Sleep(200 * time.Millisecond) // writes after the backup: not in it
	close(stop)
	if err := <-wdone; err != nil {
		t.Fatal(err)
	}
	var m struct {
		Cutoff  time.Time `json:"cutoff"`
		Streams []struct {
			Name  string `json:"name"`
			State struct {
				LastSeq uint64 `json:"last_seq"`
			} `json:"state"`
		} `json:"streams"`
	}
	b, err := os.ReadFile(filepath.Join(bdir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatal(err)
	}
	if m.Cutoff.Before(started.Add(-time.Second)) || m.Cutoff.After(started.Add(took)) {
		t.Fatalf("cut-off %s outside the backup's run %s + %s", m.Cutoff, started, took)
	}
	names := map[string]bool{}
	for _, s := range m.Streams {
		names[s.Name] = true
	}
	for _, want := range []string{"CAIRN_SYS", "PROJECT_alpha", "OBJ_alpha", "KV_cairn_usage"} {
		if !names[want] {
			t.Errorf("backup lacks stream %s: %v", want, names)
		}
	}
	t.Logf("%s", strings.TrimSpace(out))

	// Bad restores write nothing.
	bad := filepath.Join(t.TempDir(), "bad")
	if _, err := a.cli(t, "restore", bdir, "--data-dir", bad, "--passphrase-file", writeTemp(t, "not it")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("restore with a wrong passphrase: %v", err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged")
	copyDir(t, bdir, damaged)
	snap := filepath.Join(damaged, "streams", "PROJECT_alpha.snap")
	sb, _ := os.ReadFile(snap)
	sb[len(sb)/2] ^= 1
	if err := os.WriteFile(snap, sb, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cli(t, "restore", damaged, "--data-dir", bad); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("restore of a damaged backup: %v", err)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatalf("a refused restore created %s", bad)
	}

	if out, err := a.cli(t, "restore", bdir, "--data-dir", dirB); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("%s", strings.TrimSpace(out))
	}
	if _, err := a.cli(t, "restore", bdir, "--data-dir", dirB); err == nil || !strings.Contains(err.Error(), "empty data directory") {
		t.Fatalf("restore over a restored data dir: %v", err)
	}

	// The restored instance has every write acknowledged before the cut-off.
	r := startInstance(t, dirB)
	before, after, found := 0, 0, 0
	for _, w := range acks {
		_, err := r.databases().GetDocument(kctx, &cairnv1.GetDocumentRequest{ProjectId: "alpha", DatabaseId: "main", CollectionId: "posts", DocumentId: w.id})
		if w.at.Before(m.Cutoff) {
			before++
			if err != nil {
				t.Fatalf("write %s acknowledged at %s, before the cut-off %s, is missing: %v", w.id, w.at, m.Cutoff, err)
			}
		} else {
			after++
		}
		if err == nil {
			found++
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("the writer did not write on both sides of the cut-off: %d before, %d after", before, after)
	}
	t.Logf("%d writes acknowledged before the cut-off, all restored; %d after it, of which %d made it into the backup", before, after, found-before)
	checkFiles(t, r, "alpha", files)
	if _, err := r.databases().CreateDocument(kctx, &cairnv1.CreateDocumentRequest{ProjectId: "alpha", DatabaseId: "main", CollectionId: "posts",
		Document: &cairnv1.DocumentInput{DocumentId: "after-restore", Data: data(t, map[string]any{"title": "new"})}}); err != nil {
		t.Fatalf("write on the restored instance: %v", err)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
