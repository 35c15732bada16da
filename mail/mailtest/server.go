// Package mailtest runs a real SMTP server in the test process, for tests of
// code that sends mail.
//
// [Start] listens on 127.0.0.1:0 with github.com/emersion/go-smtp, optionally
// requires AUTH PLAIN, offers STARTTLS or speaks implicit TLS with a
// self-signed certificate made at start, and records every message it
// accepts. [Server.Wait] blocks until a message for an address arrives;
// [Message.FirstURL] and [Message.Code] pull a link or a one-time code out of
// its text body. It is for tests only: nothing outside _test.go files may
// import it.
package mailtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options choose what the server offers. The zero value is a plain server
// without authentication.
type Options struct {
	// Username and Password, when Username is set, are the only credentials
	// AUTH PLAIN accepts, and MAIL FROM is refused until a client has
	// authenticated.
	Username string
	Password string
	// STARTTLS offers STARTTLS with a self-signed certificate; AUTH is then
	// offered only after the upgrade, as on a real submission server.
	STARTTLS bool
	// ImplicitTLS speaks TLS from the first byte (like port 465).
	ImplicitTLS bool
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	// Host and Port are where it listens: "127.0.0.1" and a free port.
	Host string
	Port int

	opts    Options
	srv     *smtp.Server
	rootCAs *x509.CertPool

	mu       sync.Mutex
	messages []Message
	taken    []bool
	arrived  chan struct{} // closed and replaced on every new message
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, arrived: make(chan struct{})}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 10 << 20
	s.srv.EnableSMTPUTF8 = true
	s.srv.ErrorLog = testLogger{t}

	var tlsConfig *tls.Config
	if opts.STARTTLS || opts.ImplicitTLS {
		cert, pool, err := selfSigned()
		if err != nil {
			t.Fatalf("mailtest: certificate: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.rootCAs = pool
	}
	if opts.STARTTLS {
		s.srv.TLSConfig = tlsConfig
	} else {
		// No upgrade is offered, so allow AUTH on the plain (or implicit TLS)
		// connection.
		s.srv.AllowInsecureAuth = true
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	if opts.ImplicitTLS {
		l = tls.NewListener(l, tlsConfig)
	}
	addr := l.Addr().(*net.TCPAddr)
	s.Host, s.Port = addr.IP.String(), addr.Port

	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(l) }()
	t.Cleanup(func() {
		// Close the listener too: Serve may not have registered it yet.
		_ = s.srv.Close()
		_ = l.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("mailtest: serve: %v", err)
		}
	})
	return s
}

// Addr is "host:port".
func (s *Server) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// RootCAs trusts the server's certificate; nil when the server has no TLS.
func (s *Server) RootCAs() *x509.CertPool {
	return s.rootCAs
}

// Messages returns every message received so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	copy(out, s.messages)
	return out
}

// Wait returns the oldest message for the envelope recipient to that no
// earlier Wait returned, blocking until one arrives or ctx ends. The address
// is compared without regard to case. The error is ctx's, or the message's
// ParseErr when the server could not parse what it received.
func (s *Server) Wait(ctx context.Context, to string) (Message, error) {
	for {
		s.mu.Lock()
		for i, m := range s.messages {
			if !s.taken[i] && m.hasRecipient(to) {
				s.taken[i] = true
				s.mu.Unlock()
				return m, m.ParseErr
			}
		}
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("mailtest: waiting for mail to %s: %w", to, ctx.Err())
		}
	}
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	s.taken = append(s.taken, false)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s}, nil
}

// session is one SMTP connection.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.record(parse(ss.from, ss.to, raw))
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost and a pool that
// trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// testLogger sends go-smtp's error log to the test log.
type testLogger struct{ t testing.TB }

func (l testLogger) Printf(format string, v ...any) {
	l.t.Logf("mailtest: "+format, v...)
}

func (l testLogger) Println(v ...any) {
	l.t.Log(append([]any{"mailtest:"}, v...)...)
}

func (m Message) hasRecipient(to string) bool {
	for _, r := range m.To {
		if strings.EqualFold(r, to) {
			return true
		}
	}
	return false
}
