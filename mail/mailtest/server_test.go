package mailtest_test

import (
	"context"
	"errors"
	"net/smtp"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/mail/mailtest"
)

// TestServer drives the server with the standard library's SMTP client.
func TestServer(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: "u", Password: "p"})
	raw := "Subject: =?UTF-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nYour code is 123456, see https://a.test/x?y=3D1 now.\r\n"

	if err := smtp.SendMail(srv.Addr(), smtp.PlainAuth("", "u", "wrong", srv.Host), "a@b.test", []string{"c@d.test"}, []byte(raw)); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := smtp.SendMail(srv.Addr(), nil, "a@b.test", []string{"c@d.test"}, []byte(raw)); err == nil {
		t.Fatal("mail without AUTH accepted")
	}
	for range 2 {
		if err := smtp.SendMail(srv.Addr(), smtp.PlainAuth("", "u", "p", srv.Host), "a@b.test", []string{"C@D.test"}, []byte(raw)); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for range 2 {
		m, err := srv.Wait(ctx, "c@d.test")
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if m.From != "a@b.test" || m.Subject != "Grüße" || m.Code() != "123456" || m.FirstURL() != "https://a.test/x?y=1" {
			t.Errorf("got from %q subject %q code %q url %q", m.From, m.Subject, m.Code(), m.FirstURL())
		}
	}

	// Both messages were taken: a third Wait blocks until ctx ends.
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := srv.Wait(short, "c@d.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want DeadlineExceeded", err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("Messages = %d, want 2", n)
	}
}
