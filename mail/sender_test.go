package mail_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/mail"
	"github.com/cairn-dev/cairn/mail/mailtest"
)

const (
	testUser     = "project-smtp"
	testPassword = "s3cret-Pa55word"
)

// config points at srv with the given security, trusting its certificate.
func config(srv *mailtest.Server, security mail.Security) mail.Config {
	return mail.Config{
		Host:        srv.Host,
		Port:        srv.Port,
		SenderEmail: "no-reply@acme.test",
		SenderName:  "Acme",
		Security:    security,
		Timeout:     10 * time.Second,
		RootCAs:     srv.RootCAs(),
	}
}

func message(to string) mail.Message {
	return mail.Message{
		To:      mail.Address{Email: to, Name: "Ada Lovelace"},
		Subject: "Hello",
		Text:    "Open https://acme.test/verify?token=abc&x=1 to continue.\n",
		HTML:    `<p>Open <a href="https://acme.test/verify?token=abc&amp;x=1">this link</a>.</p>`,
		Headers: map[string]string{"X-Cairn-Project": "acme"},
	}
}

func waitFor(t *testing.T, srv *mailtest.Server, to string) mailtest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	got, err := srv.Wait(ctx, to)
	if err != nil {
		t.Fatalf("Wait(%s): %v", to, err)
	}
	return got
}

func TestSendDelivers(t *testing.T) {
	cases := []struct {
		name     string
		opts     mailtest.Options
		security mail.Security
		auth     bool
	}{
		{"plain", mailtest.Options{}, mail.SecurityNone, false},
		{"plain with auth on loopback", mailtest.Options{Username: testUser, Password: testPassword}, mail.SecurityNone, true},
		{"starttls", mailtest.Options{STARTTLS: true}, mail.SecuritySTARTTLS, false},
		{"starttls with auth", mailtest.Options{STARTTLS: true, Username: testUser, Password: testPassword}, mail.SecuritySTARTTLS, true},
		{"default security is starttls", mailtest.Options{STARTTLS: true}, "", false},
		{"implicit tls with auth", mailtest.Options{ImplicitTLS: true, Username: testUser, Password: testPassword}, mail.SecurityTLS, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.Start(t, tc.opts)
			cfg := config(srv, tc.security)
			if tc.auth {
				cfg.Username, cfg.Password = testUser, testPassword
			}
			var s mail.Sender
			if err := s.Send(t.Context(), cfg, message("ada@example.test")); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := waitFor(t, srv, "ada@example.test")

			if got.From != "no-reply@acme.test" {
				t.Errorf("envelope from = %q", got.From)
			}
			for name, want := range map[string]string{
				"Subject":         "Hello",
				"MIME-Version":    "1.0",
				"X-Cairn-Project": "acme",
			} {
				if v := got.Header.Get(name); v != want {
					t.Errorf("%s = %q, want %q", name, v, want)
				}
			}
			from, err := got.Header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Name != "Acme" || from[0].Address != "no-reply@acme.test" {
				t.Errorf("From = %v (%v)", from, err)
			}
			to, err := got.Header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Name != "Ada Lovelace" || to[0].Address != "ada@example.test" {
				t.Errorf("To = %v (%v)", to, err)
			}
			if _, err := got.Header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			if id := got.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@acme.test>") {
				t.Errorf("Message-ID = %q", id)
			}
			if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
				t.Errorf("Content-Type = %q", ct)
			}
			if u := got.FirstURL(); u != "https://acme.test/verify?token=abc&x=1" {
				t.Errorf("FirstURL = %q", u)
			}
			if !strings.Contains(got.HTML, `href="https://acme.test/verify?token=abc&amp;x=1"`) {
				t.Errorf("HTML = %q", got.HTML)
			}
			if strings.Contains(strings.ReplaceAll(string(got.Raw), "\r\n", ""), "\n") {
				t.Error("raw message has a bare LF")
			}
		})
	}
}

func TestSendLongLinesAndNonASCII(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	cfg := config(srv, mail.SecurityNone)
	cfg.SenderName = "Café Ünïcode"
	msg := message("zoe@example.test")
	msg.To.Name = "Zoë \"the\" Ångström"
	msg.Subject = "Bienvenue à Café — vérifiez votre adresse ✓"
	msg.Text = "Grüße! " + strings.Repeat("long line ", 40) + "\n"
	msg.HTML = ""

	var s mail.Sender
	if err := s.Send(t.Context(), cfg, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := waitFor(t, srv, "zoe@example.test")
	if got.Subject != msg.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, msg.Subject)
	}
	if raw := got.Header.Get("Subject"); !strings.HasPrefix(raw, "=?UTF-8?") {
		t.Errorf("raw Subject is not an encoded word: %q", raw)
	}
	to, err := got.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != msg.To.Name {
		t.Errorf("To = %v (%v), want name %q", to, err, msg.To.Name)
	}
	from, err := got.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != cfg.SenderName {
		t.Errorf("From = %v (%v)", from, err)
	}
	if got.Text != msg.Text {
		t.Errorf("Text = %q, want %q", got.Text, msg.Text)
	}
	if cte := got.Header.Get("Content-Transfer-Encoding"); !strings.EqualFold(cte, "quoted-printable") {
		t.Errorf("Content-Transfer-Encoding = %q", cte)
	}
	for _, line := range strings.Split(string(got.Raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d octets", len(line))
		}
		for i := 0; i < len(line); i++ {
			if line[i] >= 0x80 {
				t.Fatalf("raw message has 8-bit data: %q", line)
			}
		}
	}
}

func TestSendAuthFailure(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Username: testUser, Password: testPassword})
	cfg := config(srv, mail.SecuritySTARTTLS)
	cfg.Username, cfg.Password = testUser, "wrong-password-xyz"

	var s mail.Sender
	err := s.Send(t.Context(), cfg, message("ada@example.test"))
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), srv.Addr()) {
		t.Errorf("error does not name the server: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages", n)
	}

	// Without credentials the server refuses MAIL FROM.
	cfg.Username, cfg.Password = "", ""
	if err := s.Send(t.Context(), cfg, message("ada@example.test")); err == nil {
		t.Fatal("Send without credentials to a server requiring them succeeded")
	}
}

func TestSendStartTLSRequired(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: testUser, Password: testPassword})
	cfg := config(srv, mail.SecuritySTARTTLS)
	cfg.Username, cfg.Password = testUser, testPassword

	var s mail.Sender
	err := s.Send(t.Context(), cfg, message("ada@example.test"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a STARTTLS error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
}

func TestSendUntrustedCertificate(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true})
	cfg := config(srv, mail.SecuritySTARTTLS)
	cfg.RootCAs = nil // the system pool does not know the test CA

	var s mail.Sender
	if err := s.Send(t.Context(), cfg, message("ada@example.test")); err == nil {
		t.Fatal("Send to a server with an untrusted certificate succeeded")
	}
}

func TestSendRefusesHeaderInjection(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	good := config(srv, mail.SecurityNone)
	cases := []struct {
		name string
		cfg  func(*mail.Config)
		msg  func(*mail.Message)
		want error
	}{
		{"subject", nil, func(m *mail.Message) { m.Subject = "Hi\r\nBcc: victim@example.test" }, mail.ErrInvalidMessage},
		{"subject lf", nil, func(m *mail.Message) { m.Subject = "Hi\nBcc: victim@example.test" }, mail.ErrInvalidMessage},
		{"recipient name", nil, func(m *mail.Message) { m.To.Name = "Ada\r\nBcc: victim@example.test" }, mail.ErrInvalidMessage},
		{"recipient address", nil, func(m *mail.Message) { m.To.Email = "ada@example.test\r\nBcc: victim@example.test" }, mail.ErrInvalidMessage},
		{"recipient with display name", nil, func(m *mail.Message) { m.To.Email = "Ada <ada@example.test>" }, mail.ErrInvalidMessage},
		{"recipient list", nil, func(m *mail.Message) { m.To.Email = "ada@example.test, eve@example.test" }, mail.ErrInvalidMessage},
		{"extra header value", nil, func(m *mail.Message) { m.Headers = map[string]string{"X-Ref": "1\r\nBcc: victim@example.test"} }, mail.ErrInvalidMessage},
		{"extra header name", nil, func(m *mail.Message) { m.Headers = map[string]string{"X-Ref\r\nBcc": "x"} }, mail.ErrInvalidMessage},
		{"reserved header", nil, func(m *mail.Message) { m.Headers = map[string]string{"bcc": "victim@example.test"} }, mail.ErrInvalidMessage},
		{"no body", nil, func(m *mail.Message) { m.Text, m.HTML = "", "" }, mail.ErrInvalidMessage},
		{"sender name", func(c *mail.Config) { c.SenderName = "Acme\nBcc: victim@example.test" }, nil, mail.ErrInvalidConfig},
		{"sender email", func(c *mail.Config) { c.SenderEmail = "a@acme.test\r\nBcc: v@example.test" }, nil, mail.ErrInvalidConfig},
		{"security", func(c *mail.Config) { c.Security = "ssl" }, nil, mail.ErrInvalidConfig},
	}
	var s mail.Sender
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, msg := good, message("ada@example.test")
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.msg != nil {
				tc.msg(&msg)
			}
			if err := s.Send(t.Context(), cfg, msg); !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr)
}

func TestSendHonoursContext(t *testing.T) {
	addr := silentServer(t)
	for _, security := range []mail.Security{mail.SecurityNone, mail.SecuritySTARTTLS, mail.SecurityTLS} {
		t.Run(string(security), func(t *testing.T) {
			cfg := mail.Config{Host: "127.0.0.1", Port: addr.Port, SenderEmail: "no-reply@acme.test", Security: security, Timeout: time.Minute}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()

			start := time.Now()
			var s mail.Sender
			err := s.Send(ctx, cfg, message("ada@example.test"))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Send took %v", d)
			}
		})
	}

	t.Run("cancel", func(t *testing.T) {
		cfg := mail.Config{Host: "127.0.0.1", Port: addr.Port, SenderEmail: "no-reply@acme.test", Security: mail.SecurityNone, Timeout: time.Minute}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		var s mail.Sender
		start := time.Now()
		if err := s.Send(ctx, cfg, message("ada@example.test")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Send took %v", d)
		}
	})

	t.Run("config timeout", func(t *testing.T) {
		cfg := mail.Config{Host: "127.0.0.1", Port: addr.Port, SenderEmail: "no-reply@acme.test", Security: mail.SecurityNone, Timeout: 200 * time.Millisecond}
		var s mail.Sender
		if err := s.Send(t.Context(), cfg, message("ada@example.test")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestConfigNeverShowsPassword(t *testing.T) {
	cfg := mail.Config{Host: "smtp.acme.test", Username: "u", Password: "hunter2-secret", SenderEmail: "a@acme.test"}
	for _, s := range []string{cfg.String(), cfg.LogValue().String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password shown: %s", s)
		}
	}
	if !strings.Contains(cfg.String(), "smtp.acme.test:587") {
		t.Errorf("String = %s", cfg.String())
	}
}
