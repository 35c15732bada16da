package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFloor runs the floor on loopback: a create answers only once its
// event is in Badger (a get right after it finds the same bytes), a second
// create of the same id is refused by the stream's expected sequence, and
// the server stops with its context.
func TestFloor(t *testing.T) {
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- runFloor(ctx, []string{"--http", addr, "--dir", t.TempDir()}) }()
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(base + "/health"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the floor did not answer within 30 s")
		}
	}

	f := &floorServer{}
	f.base = base
	hc, closeIdle := newClient(8, true)
	defer closeIdle()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < 200; i += 8 {
				id, err := f.create(ctx, hc, i, "t1")
				if err != nil {
					t.Error(err)
					return
				}
				var got map[string]any
				if err := call(ctx, hc, http.MethodGet, base+"/get?id="+id, "", nil, &got); err != nil {
					t.Errorf("get right after create %s: %v", id, err)
					return
				}
				if got["title"] != fmt.Sprintf("document number %d", i) {
					t.Errorf("get %s: %v", id, got)
				}
			}
		})
	}
	wg.Wait()
	if _, err := f.create(ctx, hc, 7, "t1"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("a second create of d7: %v, want 409", err)
	}
	if err := f.get(ctx, hc, "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("get of a missing id: %v, want 404", err)
	}
	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the floor did not stop")
	}
}
