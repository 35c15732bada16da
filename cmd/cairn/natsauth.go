package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// How Cairn authenticates to a NATS server it does not run itself
// (--nats-url). Every NATS connection Cairn opens to such a server takes its
// options from natsOptions, so serve, replay and any later command agree.

// natsAuthFlags names the authentication methods given; at most one may be.
func (c *config) natsAuthFlags() []string {
	var given []string
	if c.NATSCreds != "" {
		given = append(given, "--nats-creds")
	}
	if c.NATSNKey != "" {
		given = append(given, "--nats-nkey")
	}
	if c.NATSUser != "" || c.NATSPassword != "" || c.NATSPasswordFile != "" {
		given = append(given, "--nats-user/--nats-password")
	}
	if c.NATSToken != "" || c.NATSTokenFile != "" {
		given = append(given, "--nats-token")
	}
	return given
}

// natsTLS reports whether any flag asks for TLS to NATS.
func (c *config) natsTLS() bool {
	return c.NATSCA != "" || c.NATSCert != "" || c.NATSKey != "" || c.NATSServerName != ""
}

// validateNATS checks the --nats-* flags without reading any file or
// touching the network, so serve can refuse a bad combination before it
// generates or prints anything. insecure is true when the connection will go
// to a remote server without credentials because --nats-insecure said so.
func (c *config) validateNATS() (insecure bool, err error) {
	auth := c.natsAuthFlags()
	if c.NATSURL == "" {
		if len(auth) > 0 || c.natsTLS() {
			return false, errors.New("NATS credentials and TLS flags (--nats-creds, --nats-nkey, --nats-user, --nats-password, --nats-token, --nats-ca, --nats-cert, --nats-key, --nats-server-name) apply only with --nats-url; the embedded server needs none")
		}
		return false, nil
	}
	hosts, urlUser, err := natsURLHosts(c.NATSURL)
	if err != nil {
		return false, err
	}
	if urlUser {
		auth = append(auth, "credentials in --nats-url")
	}
	if len(auth) > 1 {
		return false, fmt.Errorf("give one NATS authentication method, not %s", strings.Join(auth, " and "))
	}
	switch {
	case c.NATSPassword != "" && c.NATSPasswordFile != "":
		return false, errors.New("--nats-password and --nats-password-file: give one")
	case c.NATSToken != "" && c.NATSTokenFile != "":
		return false, errors.New("--nats-token and --nats-token-file: give one")
	case c.NATSUser == "" && (c.NATSPassword != "" || c.NATSPasswordFile != ""):
		return false, errors.New("--nats-password needs --nats-user")
	case c.NATSUser != "" && c.NATSPassword == "" && c.NATSPasswordFile == "":
		return false, errors.New("--nats-user needs --nats-password or --nats-password-file")
	case c.NATSCert != "" && c.NATSKey == "":
		return false, errors.New("--nats-cert needs --nats-key (the client certificate's private key)")
	case c.NATSKey != "" && c.NATSCert == "":
		return false, errors.New("--nats-key needs --nats-cert (the client certificate)")
	}
	var remote []string
	for _, h := range hosts {
		if !loopbackHost(h) {
			remote = append(remote, h)
		}
	}
	// A client certificate authenticates too when the server maps it to a
	// user (verify_and_map).
	if len(remote) == 0 || len(auth) > 0 || c.NATSCert != "" {
		return false, nil
	}
	if !c.NATSInsecure {
		return false, fmt.Errorf("--nats-url names %s, which is not loopback, and no NATS credentials are set: "+
			"give --nats-creds, --nats-nkey, --nats-user with --nats-password(-file), --nats-token(-file) or --nats-cert with --nats-key "+
			"(see deploy/README.md, NATS security), or --nats-insecure to connect without them "+
			"(anyone who reaches that server can then read and write every project's events)", strings.Join(remote, ", "))
	}
	return true, nil
}

// natsURLHosts returns the host of every server in a comma-separated
// --nats-url, and whether any of them carries user information.
func natsURLHosts(list string) (hosts []string, userInfo bool, err error) {
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		// nats.go accepts host:port without a scheme.
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, false, fmt.Errorf("--nats-url: %q: %w", s, err)
		}
		hosts = append(hosts, u.Hostname())
		userInfo = userInfo || u.User != nil
	}
	if len(hosts) == 0 {
		return nil, false, fmt.Errorf("--nats-url: no server in %q", list)
	}
	return hosts, userInfo, nil
}

// loopbackHost reports whether h is this machine by name or address; a
// name that merely resolves to loopback does not count.
func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// natsOptions validates the --nats-* flags and returns the nats.go options
// that authenticate and encrypt a connection to --nats-url. Password and
// token files are read here; the credentials file, nkey seed, CA and client
// certificate are read by nats.go (credentials, CA and certificate again on
// every reconnect, so renewed files take effect without a restart).
func (c *config) natsOptions() (opts []nats.Option, insecure bool, err error) {
	if insecure, err = c.validateNATS(); err != nil || c.NATSURL == "" {
		return nil, insecure, err
	}
	if c.natsTLS() {
		// Secure first: it replaces the TLS config that RootCAs and
		// ClientCert fill in.
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.NATSServerName}))
		if c.NATSCA != "" {
			opts = append(opts, nats.RootCAs(c.NATSCA))
		}
		if c.NATSCert != "" {
			opts = append(opts, nats.ClientCert(c.NATSCert, c.NATSKey))
		}
	}
	switch {
	case c.NATSCreds != "":
		if _, err := os.Stat(c.NATSCreds); err != nil {
			return nil, false, fmt.Errorf("--nats-creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	case c.NATSNKey != "":
		o, err := nats.NkeyOptionFromSeed(c.NATSNKey)
		if err != nil {
			return nil, false, fmt.Errorf("--nats-nkey: %w", err)
		}
		opts = append(opts, o)
	case c.NATSUser != "":
		pw, err := secretFlag(c.NATSPassword, c.NATSPasswordFile, "--nats-password-file")
		if err != nil {
			return nil, false, err
		}
		opts = append(opts, nats.UserInfo(c.NATSUser, pw))
	case c.NATSToken != "" || c.NATSTokenFile != "":
		tok, err := secretFlag(c.NATSToken, c.NATSTokenFile, "--nats-token-file")
		if err != nil {
			return nil, false, err
		}
		opts = append(opts, nats.Token(tok))
	}
	return opts, insecure, nil
}

// secretFlag returns value, or the trimmed content of file when value is
// empty.
func secretFlag(value, file, flagName string) (string, error) {
	if value != "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", flagName, file)
	}
	return s, nil
}

// redactedNATSURL is --nats-url fit for a log line: user information (a
// password, or a token in the user's place) hidden.
func redactedNATSURL(list string) string {
	parts := strings.Split(list, ",")
	for i, s := range parts {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
