package mail

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Security says how the connection to the SMTP server is protected.
type Security string

// The values of SmtpSettings.security.
const (
	// SecuritySTARTTLS upgrades a plain connection with STARTTLS and fails if
	// the server does not offer it. The empty Security means this.
	SecuritySTARTTLS Security = "starttls"
	// SecurityTLS speaks TLS from the first byte ("SMTPS", usually port 465).
	SecurityTLS Security = "tls"
	// SecurityNone sends everything in clear; for local development only.
	SecurityNone Security = "none"
)

// DefaultTimeout bounds one Send when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config is one project's SMTP server and sender identity.
type Config struct {
	Host string
	// Port defaults to 587 for STARTTLS, 465 for TLS and 25 for none.
	Port int
	// Username enables SMTP AUTH (PLAIN, else LOGIN) when not empty.
	Username string
	// Password is the clear password; the caller unseals it. It never appears
	// in an error, a log line or the output of String.
	Password    string
	SenderEmail string
	SenderName  string
	Security    Security
	// Timeout bounds the whole Send, in addition to the context's deadline.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// RootCAs verifies the server's certificate; nil means the system pool.
	RootCAs *x509.CertPool
}

// String describes the configuration without the password.
func (c Config) String() string {
	return fmt.Sprintf("smtp %s security=%s user=%q sender=%q", c.addr(), c.security(), c.Username, c.SenderEmail)
}

// LogValue logs the configuration without the password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.addr()),
		slog.String("security", string(c.security())),
		slog.String("user", c.Username),
		slog.String("sender", c.SenderEmail),
	)
}

func (c Config) security() Security {
	if c.Security == "" {
		return SecuritySTARTTLS
	}
	return c.Security
}

func (c Config) port() int {
	if c.Port != 0 {
		return c.Port
	}
	switch c.security() {
	case SecurityTLS:
		return 465
	case SecurityNone:
		return 25
	default:
		return 587
	}
}

func (c Config) addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.port()))
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// validate reports the first problem of c, wrapping ErrInvalidConfig.
func (c Config) validate() error {
	switch c.security() {
	case SecuritySTARTTLS, SecurityTLS, SecurityNone:
	default:
		return fmt.Errorf("%w: security %q is not starttls, tls or none", ErrInvalidConfig, c.Security)
	}
	if c.Host == "" || strings.ContainsAny(c.Host, " \t\r\n\x00/") {
		return fmt.Errorf("%w: host %q is not a host name", ErrInvalidConfig, c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("%w: port %d is out of range", ErrInvalidConfig, c.Port)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: negative timeout", ErrInvalidConfig)
	}
	if hasLineBreak(c.Username) || hasLineBreak(c.Password) {
		return fmt.Errorf("%w: username or password contains a line break", ErrInvalidConfig)
	}
	if err := checkAddress("sender", Address{Email: c.SenderEmail, Name: c.SenderName}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}
