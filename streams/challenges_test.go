package streams

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestChallengesSingleUse(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	ch := env.store.Challenges(time.Minute)
	now := time.Now()
	if err := ch.Put(ctx, "p1", "signin", "abc", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := ch.Put(ctx, "p1", "signin", "abc", []byte("v2")); err == nil {
		t.Fatal("a challenge id was stored twice")
	}
	// Another project, or another kind, does not see it.
	for _, k := range [][2]string{{"p2", "signin"}, {"p1", "register"}} {
		if _, err := ch.Take(ctx, k[0], k[1], "abc", now); !errors.Is(err, ErrNoChallenge) {
			t.Fatalf("%v took p1's challenge: %v", k, err)
		}
	}
	v, err := ch.Take(ctx, "p1", "signin", "abc", now)
	if err != nil || string(v) != "v1" {
		t.Fatalf("take: %q %v", v, err)
	}
	if _, err := ch.Take(ctx, "p1", "signin", "abc", now); !errors.Is(err, ErrNoChallenge) {
		t.Fatalf("taken twice: %v", err)
	}
	// Malformed ids are simply unknown.
	if _, err := ch.Take(ctx, "p1", "signin", "a.b>", now); !errors.Is(err, ErrNoChallenge) {
		t.Fatalf("malformed id: %v", err)
	}
}

func TestChallengesExpire(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	ch := env.store.Challenges(time.Minute)
	if err := ch.Put(ctx, "p1", "signin", "old", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Take(ctx, "p1", "signin", "old", time.Now().Add(time.Minute+time.Second)); !errors.Is(err, ErrNoChallenge) {
		t.Fatalf("an expired challenge was taken: %v", err)
	}
}

// Racing takes of one challenge (two nodes, a replayed request): exactly
// one wins.
func TestChallengesRacingTakes(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	for round := range 5 {
		ch := env.store.Challenges(time.Minute)
		id := "race" + string(rune('a'+round))
		if err := ch.Put(ctx, "p1", "signin", id, []byte("v")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each taker as its own node would: its own handle.
				if _, err := env.store.Challenges(time.Minute).Take(ctx, "p1", "signin", id, time.Now()); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, ErrNoChallenge) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d takers won", round, wins)
		}
	}
}
