// Package mail sends a project's transactional mail over SMTP.
//
// [Sender.Send] delivers one [Message] through the project's own SMTP server
// described by a [Config]; [Render] builds the account mails (email
// verification, password recovery, magic sign-in link, one-time sign-in code,
// team invitation) as plain text with an HTML alternative.
//
// Messages are built with github.com/wneessen/go-mail: RFC 5322 headers
// (Date, Message-ID, MIME-Version), RFC 2047 encoded words for non-ASCII
// subjects and names, quoted-printable bodies and CRLF line endings. Every
// header value and address is checked for CR, LF and NUL first, so a caller's
// data can never add a header.
//
// Security "starttls" (the default) fails when the server does not offer
// STARTTLS, "tls" speaks TLS from the first byte, "none" is for local
// development. Credentials are sent with AUTH PLAIN or LOGIN only over TLS or to
// a loopback host.
//
// This package never reads the environment, never logs or returns a password,
// and keeps no state between sends: the caller unseals the password and passes
// the whole configuration with each call.
package mail
