package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Sender sends messages. The zero value is ready to use; it keeps no
// connection between sends.
type Sender struct {
	// Logger receives one debug line per sent message (host, message id; no
	// addresses, no secrets). Nil means slog.Default().
	Logger *slog.Logger
	// Now stamps the Date header. Nil means time.Now.
	Now func() time.Time
}

// Send delivers msg through the SMTP server in cfg, from cfg's sender.
//
// It returns an error wrapping ErrInvalidConfig or ErrInvalidMessage before
// connecting when either is unusable; the context's error when ctx ends first
// (it is honoured during every network step); otherwise the SMTP failure
// (refused STARTTLS, failed authentication, rejected recipient…) wrapped
// with the server address. Errors never contain the password.
func (s *Sender) Send(ctx context.Context, cfg Config, msg Message) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := msg.validate(); err != nil {
		return err
	}
	m, id, err := s.build(cfg, msg)
	if err != nil {
		return fmt.Errorf("mail: build message: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	deadline, _ := ctx.Deadline()
	timeout := time.Until(deadline)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: send via %s: %w", cfg.addr(), err)
	}
	if timeout <= 0 {
		return fmt.Errorf("mail: send via %s: %w", cfg.addr(), context.DeadlineExceeded)
	}

	d := &dialer{cfg: cfg, ctx: ctx}
	defer d.stop()
	// go-mail's own per-step timeout only backs up the context, which closes
	// the connection when it ends (see dialer).
	client, err := gomail.NewClient(cfg.Host, s.clientOptions(cfg, d, timeout+time.Second)...)
	if err != nil {
		return fmt.Errorf("mail: smtp client for %s: %w", cfg.addr(), err)
	}
	if err := client.DialAndSendWithContext(ctx, m); err != nil {
		ctxErr := ctx.Err()
		if ctxErr == nil && !time.Now().Before(deadline) {
			// An i/o timeout at the deadline, just before ctx's own timer.
			ctxErr = context.DeadlineExceeded
		}
		if ctxErr != nil {
			return fmt.Errorf("mail: send via %s: %w (%w)", cfg.addr(), ctxErr, err)
		}
		return fmt.Errorf("mail: send via %s: %w", cfg.addr(), err)
	}
	s.logger().LogAttrs(ctx, slog.LevelDebug, "mail sent",
		slog.String("smtp", cfg.addr()), slog.String("message_id", id))
	return nil
}

func (s *Sender) clientOptions(cfg Config, d *dialer, timeout time.Duration) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(cfg.port()),
		gomail.WithTimeout(timeout),
		gomail.WithDialContextFunc(d.dial),
		gomail.WithTLSConfig(cfg.tlsConfig()),
	}
	switch cfg.security() {
	case SecuritySTARTTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		// "none", and "tls" where the dialer already did the handshake.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.Username != "" {
		// PLAIN and LOGIN refuse to send credentials in clear to anything but
		// a loopback host.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password),
		)
	}
	return opts
}

func (c Config) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName: c.Host,
		RootCAs:    c.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
}

// build turns msg into a go-mail message and returns it with its Message-ID.
func (s *Sender) build(cfg Config, msg Message) (*gomail.Msg, string, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(&netmail.Address{Name: cfg.SenderName, Address: cfg.SenderEmail})
	m.ToMailAddress(&netmail.Address{Name: msg.To.Name, Address: msg.To.Email})
	m.Subject(msg.Subject)
	m.SetDateWithValue(s.now())
	id, err := messageID(cfg.SenderEmail)
	if err != nil {
		return nil, "", err
	}
	m.SetMessageIDWithValue(id)
	for name, value := range msg.Headers {
		m.SetGenHeader(gomail.Header(name), value)
	}
	switch {
	case msg.Text != "" && msg.HTML != "":
		m.SetBodyString(gomail.TypeTextPlain, msg.Text)
		m.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	case msg.Text != "":
		m.SetBodyString(gomail.TypeTextPlain, msg.Text)
	default:
		m.SetBodyString(gomail.TypeTextHTML, msg.HTML)
	}
	return m, id, nil
}

// messageID is "<128 random bits in hex>@<sender's domain>", without brackets.
func messageID(senderEmail string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	return hex.EncodeToString(b[:]) + "@" + domainOf(senderEmail), nil
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// dialer opens the connection for go-mail: TCP, then the TLS handshake for
// SecurityTLS. go-mail bounds each step by its timeout but does not watch the
// context once connected, so the dialer closes the connection as soon as the
// Send's context ends; every blocked read or write then returns at once.
type dialer struct {
	cfg Config
	ctx context.Context

	mu    sync.Mutex
	stops []func() bool
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.stops = append(d.stops, context.AfterFunc(d.ctx, func() { _ = conn.Close() }))
	d.mu.Unlock()
	if d.cfg.security() != SecurityTLS {
		return conn, nil
	}
	tc := tls.Client(conn, d.cfg.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

func (d *dialer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, stop := range d.stops {
		stop()
	}
}
