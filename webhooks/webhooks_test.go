package webhooks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/webhooks"
)

func TestSignVerify(t *testing.T) {
	secret, body, now := []byte("s3cret"), []byte(`{"a":1}`), time.Unix(1700000000, 0)
	h := webhooks.Sign(secret, now, body)
	if !strings.HasPrefix(h, "t=1700000000,v1=") {
		t.Fatal(h)
	}
	if err := webhooks.Verify(secret, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Verify(secret, h, []byte(`{"a":2}`), now, 0); err != webhooks.ErrBadSignature {
		t.Fatal("tampered body accepted", err)
	}
	if err := webhooks.Verify([]byte("other"), h, body, now, 0); err != webhooks.ErrBadSignature {
		t.Fatal("other secret accepted", err)
	}
	if err := webhooks.Verify(secret, h, body, now.Add(webhooks.ReplayWindow+time.Second), 0); err != webhooks.ErrExpired {
		t.Fatal("replay accepted", err)
	}
}

func TestGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	d := webhooks.Delivery{URL: srv.URL, Secret: []byte("x"), EventID: "e", Event: "users.u.create", Attempt: 1, Body: []byte("{}")}
	r := webhooks.Post(context.Background(), webhooks.NewClient(webhooks.ClientOptions{}), d, time.Now())
	if r.OK() || !strings.Contains(r.Err, "blocked") {
		t.Fatalf("loopback reached without allow: %+v", r)
	}
	r = webhooks.Post(context.Background(), webhooks.NewClient(webhooks.ClientOptions{Allow: []string{"127.0.0.1"}}), d, time.Now())
	if !r.OK() || string(r.Excerpt) != "ok" {
		t.Fatalf("allowed loopback: %+v", r)
	}
	if webhooks.Backoff(1, time.Minute) != time.Second || webhooks.Backoff(4, time.Minute) != 8*time.Second || webhooks.Backoff(30, time.Minute) != time.Minute {
		t.Fatal("backoff")
	}
}
