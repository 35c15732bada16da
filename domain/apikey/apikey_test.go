package apikey

import (
	"bytes"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var (
	t0   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hash = bytes.Repeat([]byte{7}, 32)
)

func create() Create {
	return Create{ID: "k1", ProjectID: "p1", Name: "ci", Scopes: []string{"keys.write", "keys.read", "keys.read"}, SecretHash: hash, Now: t0}
}

func TestDecide(t *testing.T) {
	createdEvents, err := Decide(nil, create())
	if err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	none := []string{}
	bad := []string{"keys.*"}
	cases := []struct {
		name    string
		given   []*eventsv1.Envelope
		when    Command
		wantErr domain.Kind
		check   func(t *testing.T, k *eventsv1.Key)
	}{
		{name: "create normalizes scopes", when: create(), check: func(t *testing.T, k *eventsv1.Key) {
			if len(k.Scopes) != 2 || k.Scopes[0] != "keys.read" || k.ExpiresAt != nil || !bytes.Equal(k.SecretHash, hash) {
				t.Fatalf("bad key %v", k)
			}
		}},
		{name: "create exists", given: createdEvents, when: create(), wantErr: domain.KindAlreadyExists},
		{name: "create unknown scope", when: func() Command { c := create(); c.Scopes = bad; return c }(), wantErr: domain.KindInvalid},
		{name: "create past expiry", when: func() Command { c := create(); c.ExpiresAt = t0.Add(-time.Second); return c }(), wantErr: domain.KindInvalid},
		{name: "create bad hash", when: func() Command { c := create(); c.SecretHash = nil; return c }(), wantErr: domain.KindInternal},
		{name: "rename", given: createdEvents, when: Update{Name: &name, Now: t0.Add(time.Minute)}, check: func(t *testing.T, k *eventsv1.Key) {
			if k.Name != name || !k.UpdatedAt.AsTime().Equal(t0.Add(time.Minute)) || !k.CreatedAt.AsTime().Equal(t0) {
				t.Fatalf("bad key %v", k)
			}
		}},
		{name: "drop all scopes", given: createdEvents, when: Update{Scopes: &none, Now: t0}, check: func(t *testing.T, k *eventsv1.Key) {
			if len(k.Scopes) != 0 {
				t.Fatalf("scopes kept: %v", k.Scopes)
			}
		}},
		{name: "update unknown scope", given: createdEvents, when: Update{Scopes: &bad, Now: t0}, wantErr: domain.KindInvalid},
		{name: "expiry and clear", given: createdEvents, when: Update{ExpiresAt: t0.Add(time.Hour), ClearExpiry: true, Now: t0}, wantErr: domain.KindInvalid},
		{name: "update missing", when: Update{Name: &name, Now: t0}, wantErr: domain.KindNotFound},
		{name: "delete", given: createdEvents, when: Delete{Now: t0}, check: func(t *testing.T, k *eventsv1.Key) {
			if k.Id != "k1" {
				t.Fatalf("delete must carry last state, got %v", k)
			}
		}},
		{name: "delete missing", when: Delete{Now: t0}, wantErr: domain.KindNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s State
			for _, e := range c.given {
				s = Evolve(s, e)
			}
			got, err := Decide(s, c.when)
			if c.check == nil {
				if err == nil || domain.KindOf(err) != c.wantErr {
					t.Fatalf("want %v error, got %v", c.wantErr, err)
				}
				return
			}
			if err != nil || len(got) != 1 {
				t.Fatalf("want one event, got %v, %v", got, err)
			}
			var k *eventsv1.Key
			switch p := got[0].GetPayload().(type) {
			case *eventsv1.Envelope_KeyCreated:
				k = p.KeyCreated.Key
			case *eventsv1.Envelope_KeyUpdated:
				k = p.KeyUpdated.Key
			case *eventsv1.Envelope_KeyDeleted:
				k = p.KeyDeleted.Key
			}
			c.check(t, k)
		})
	}
}

func TestUsable(t *testing.T) {
	evs, _ := Decide(nil, Create{ID: "k", ProjectID: "p", Name: "n", SecretHash: hash, ExpiresAt: t0.Add(time.Hour), Now: t0})
	k := Evolve(nil, evs[0])
	if !Usable(k, t0) || Usable(k, t0.Add(time.Hour)) || Usable(nil, t0) {
		t.Fatal("Usable wrong around expiry")
	}
}
