package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/streams"
)

// title reads document id of re's collection through Document (and so
// through the document cache) and returns its title, or "" when there is
// no such document.
func (re *rankEnv) title(id string) string {
	re.t.Helper()
	d, err := re.p.Document(re.project, re.c, id)
	if errors.Is(err, ErrNotFound) {
		return ""
	}
	if err != nil {
		re.t.Fatal(err)
	}
	f, err := Fields(mustSchema(re), d)
	if err != nil {
		re.t.Fatal(err)
	}
	s, _ := f["title"].(string)
	return s
}

func mustSchema(re *rankEnv) *database.Schema {
	re.t.Helper()
	s, err := re.p.Schema(re.c)
	if err != nil {
		re.t.Fatal(err)
	}
	return s
}

// TestDocumentCacheSeesWrites: a document read by id twice comes from the
// cache the second time, and the very next read after a write that
// returned (update, delete, re-create) sees it; a write to another
// collection keeps this one's documents, a write to this one drops them at
// once (no memory held by a collection being written), and any other
// change of the project's read model drops all its documents.
func TestDocumentCacheSeesWrites(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	re := newRankEnv(t, e, p, "dc", false)
	other := re.sibling("others", "01OTHERUID")
	re.put("create", "a", map[string]any{"tag": "x", "n": 1, "title": "first"})
	re.put("create", "b", map[string]any{"tag": "x", "n": 2, "title": "bee"})
	other.put("create", "a", map[string]any{"tag": "x", "n": 1, "title": "other a"})

	if got := re.title("a"); got != "first" {
		t.Fatalf("a = %q", got)
	}
	if p.docs.Bytes() == 0 {
		t.Fatal("a read by id was not kept")
	}
	if got := re.title("a"); got != "first" {
		t.Fatalf("a again = %q", got)
	}
	if got := other.title("a"); got != "other a" {
		t.Fatalf("the other collection's a = %q (same id, another collection)", got)
	}
	re.title("b")
	held := p.docs.Bytes()

	// A write to the other collection keeps this one's.
	other.put("update", "a", map[string]any{"tag": "x", "n": 1, "title": "other a2"})
	if got := other.title("a"); got != "other a2" {
		t.Fatalf("other a after its update = %q", got)
	}
	if p.docs.get(streams.ProjectStream(re.project), collKey("main", re.c.GetId()), re.c.GetUid(), "b",
		p.state(streams.ProjectStream(re.project)).docVersion(collKey("main", re.c.GetId()))) == nil {
		t.Fatal("a write to another collection dropped this one's cached b")
	}

	steps := []struct {
		verb, id, title string
		want            string
	}{
		{"update", "a", "second", "second"},
		{"update", "a", "third", "third"},
		{"delete", "a", "", ""},
		{"create", "a", "again", "again"},
	}
	for _, s := range steps {
		re.title(s.id) // cached before the write
		re.put(s.verb, s.id, map[string]any{"tag": "x", "n": 1, "title": s.title})
		if got := re.title(s.id); got != s.want {
			t.Fatalf("after %s %s: %q, want %q", s.verb, s.id, got, s.want)
		}
	}

	// The write dropped the collection's documents at once.
	re.title("a")
	re.title("b")
	before := p.docs.Bytes()
	re.put("update", "b", map[string]any{"tag": "x", "n": 2, "title": "bee2"})
	if after := p.docs.Bytes(); after >= before || after >= held {
		t.Fatalf("cached bytes %d before a write to the collection, %d after (the other collection's: under %d)", before, after, held)
	}
	if got := re.title("b"); got != "bee2" {
		t.Fatalf("b = %q", got)
	}

	// Any other change of the project's read model (here a key) drops
	// every document of the project.
	re.title("a")
	last := e.keyEvent(re.project, "create", key(re.project, "k1", "k"), "")
	wait(t, p, streams.ProjectStream(re.project), last)
	if n := p.docs.Bytes(); n != 0 {
		t.Fatalf("%d bytes cached after a key event in the only project", n)
	}
	if got := re.title("a"); got != "again" {
		t.Fatalf("a after the key event = %q", got)
	}

	// A rebuild (the read model dropped and replayed) and then the
	// project's deletion.
	if _, err := p.Rebuild(context.Background(), re.project); err != nil {
		t.Fatal(err)
	}
	if got := re.title("b"); got != "bee2" {
		t.Fatalf("b after the rebuild = %q", got)
	}
	wait(t, p, streams.SystemStream, e.deleteProject(re.project))
	eventually(t, "the project's documents to go", func() bool { return re.title("b") == "" })
}

// TestDocumentCachePerProject: two projects whose collections have the
// same id and uid and whose documents have the same ids each read their
// own document from the cache, and a write in one keeps the other's.
func TestDocumentCachePerProject(t *testing.T) {
	p, a, b := twoProjects(t)
	a.put("create", "d", map[string]any{"tag": "x", "n": 1, "title": "from a"})
	b.put("create", "d", map[string]any{"tag": "x", "n": 1, "title": "from b"})
	for range 3 {
		if ta, tb := a.title("d"), b.title("d"); ta != "from a" || tb != "from b" {
			t.Fatalf("a read %q, b read %q", ta, tb)
		}
	}
	held := p.docs.Bytes()
	b.put("update", "d", map[string]any{"tag": "x", "n": 1, "title": "from b, again"})
	if n := p.docs.Bytes(); n == 0 || n >= held {
		t.Fatalf("%d bytes cached after b's write (%d before): a's document should stay, b's go", n, held)
	}
	if ta, tb := a.title("d"), b.title("d"); ta != "from a" || tb != "from b, again" {
		t.Fatalf("after b's write: a read %q, b read %q", ta, tb)
	}
}

// TestDocumentCacheReadsItsWrites: readers that read one document by id
// in a loop while it is updated never see a version older than the last
// update that returned — a reader that missed, read the old bytes, and
// kept them after the write must not serve them to the next reader.
func TestDocumentCacheReadsItsWrites(t *testing.T) {
	e := newEnv(t)
	p, _ := e.newProjections()
	re := newRankEnv(t, e, p, "ryw", false)
	re.put("create", "d", map[string]any{"tag": "x", "n": 0, "title": "0"})
	var done atomic.Int64 // the last n whose update returned
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	schema := mustSchema(re)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reads := 0
			for !stop.Load() || reads == 0 {
				want := done.Load()
				d, err := p.Document(re.project, re.c, "d")
				if err != nil {
					errs <- err
					return
				}
				f, err := Fields(schema, d)
				if err != nil {
					errs <- err
					return
				}
				if got := asInt(f["n"]); got < want {
					errs <- fmt.Errorf("read n = %d after the update to %d returned", got, want)
					return
				}
				reads++
			}
		}()
	}
	for n := int64(1); n <= 200; n++ {
		re.put("update", "d", map[string]any{"tag": "x", "n": n, "title": fmt.Sprint(n)})
		done.Store(n)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestDocCacheBound: the cache keeps to its bound, least recently used
// first; bytes read at an older version never replace newer ones; a
// lookup at another version (or under another uid) drops the collection.
func TestDocCacheBound(t *testing.T) {
	c := newDocCache(64 << 10)
	v1, v2 := readVersion{1, 0}, readVersion{1, 1}
	raw := make([]byte, 500)
	for i := range 200 {
		c.put("s", "db/c", "u", fmt.Sprintf("d%03d", i), v1, raw)
		if c.Bytes() > c.max {
			t.Fatalf("%d bytes kept, bound %d", c.Bytes(), c.max)
		}
		c.get("s", "db/c", "u", "d000", v1) // keeps d000 recently used
	}
	if c.get("s", "db/c", "u", "d000", v1) == nil {
		t.Fatal("the most recently used document was evicted")
	}
	if c.get("s", "db/c", "u", "d001", v1) != nil {
		t.Fatal("the least recently used document was kept")
	}
	if c.get("s", "db/c", "u", "d199", v1) == nil {
		t.Fatal("the last document put was evicted")
	}
	if c.get("s", "db/c", "u", "d199", v1); c.get("s", "db/c", "other-uid", "d199", v1) != nil || c.Bytes() != 0 {
		t.Fatalf("another uid: found, or the collection kept (%d bytes)", c.Bytes())
	}
	c.put("s", "db/c", "u", "x", v2, []byte("new"))
	c.put("s", "db/c", "u", "x", v1, []byte("old")) // a reader overtaken by the write
	if got := c.get("s", "db/c", "u", "x", v2); string(got) != "new" {
		t.Fatalf("x at v2 = %q", got)
	}
	if c.get("s", "db/c", "u", "x", readVersion{2, 0}) != nil || c.Bytes() != 0 {
		t.Fatal("a lookup at a newer version found or kept older bytes")
	}
	c.put("s", "db/c", "u", "big", v1, make([]byte, c.max/64))
	if c.Bytes() != 0 {
		t.Fatal("a document above a 64th of the bound was kept")
	}
	c.put("s", "db/c", "u", "a", v1, raw)
	c.put("s", "db/d", "u", "a", v1, raw)
	c.put("t", "db/c", "u", "a", v1, raw)
	c.changed("s", []string{"db/c"}, false)
	if c.get("s", "db/c", "u", "a", v1) != nil || c.get("s", "db/d", "u", "a", v1) == nil || c.get("t", "db/c", "u", "a", v1) == nil {
		t.Fatal("changed(s, db/c) dropped the wrong documents")
	}
	c.changed("s", nil, true)
	if c.get("s", "db/d", "u", "a", v1) != nil || c.get("t", "db/c", "u", "a", v1) == nil {
		t.Fatal("changed(s, all) dropped the wrong documents")
	}
}

// asInt is a decoded integer field's value.
func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return -1
}

// BenchmarkDocumentByID reads random documents of 20,000 by id (pbcompare's
// get), through the document cache (warm) and straight from Badger.
func BenchmarkDocumentByID(b *testing.B) {
	e := newEnv(b)
	p, _ := e.newProjections()
	re := newRankEnv(b, e, p, "bench", false)
	const docs = 20_000
	for i := range docs {
		re.send("create", fmt.Sprintf("d%d", i), map[string]any{"tag": fmt.Sprintf("t%d", i%10), "n": i * 7919 % 1_000_003,
			"title": fmt.Sprintf("document number %d", i)})
	}
	wait(b, p, streams.ProjectStream(re.project), re.last)
	read := func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i += 7919
				if _, err := p.Document(re.project, re.c, fmt.Sprintf("d%d", i%docs)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("cache", func(b *testing.B) {
		for i := range docs { // warm
			if _, err := p.Document(re.project, re.c, fmt.Sprintf("d%d", i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		read(b)
	})
	b.Run("badger", func(b *testing.B) {
		kept := p.docs
		p.docs = nil
		defer func() { p.docs = kept }()
		read(b)
	})
}
