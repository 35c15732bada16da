package mail

import (
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"
)

// Errors returned by Send; test with errors.Is.
var (
	// ErrInvalidConfig: the Config cannot be used (unknown security, bad
	// host, sender address…). Nothing was sent.
	ErrInvalidConfig = errors.New("mail: invalid smtp configuration")
	// ErrInvalidMessage: the Message cannot be sent as it is (a line break in
	// a header, a malformed address, no body…). Nothing was sent.
	ErrInvalidMessage = errors.New("mail: invalid message")
)

// Address is a mailbox: an addr-spec and an optional display name.
type Address struct {
	Email string
	Name  string
}

// Message is one mail to one recipient. At least one of Text and HTML is set;
// with both, the mail is multipart/alternative.
type Message struct {
	To      Address
	Subject string
	Text    string
	HTML    string
	// Headers are extra header fields, such as List-Unsubscribe or
	// X-Entity-Ref-ID. They cannot replace a header Send writes itself.
	Headers map[string]string
}

// reservedHeaders are written by Send from Config and Message; extra headers
// cannot set them.
var reservedHeaders = map[string]bool{
	"From": true, "Sender": true, "To": true, "Cc": true, "Bcc": true,
	"Subject": true, "Date": true, "Message-Id": true, "Mime-Version": true,
	"Content-Type": true, "Content-Transfer-Encoding": true, "Content-Disposition": true,
	"Return-Path": true, "Received": true,
}

// validate reports the first problem of m, wrapping ErrInvalidMessage.
func (m Message) validate() error {
	if err := checkAddress("recipient", m.To); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if hasLineBreak(m.Subject) {
		return fmt.Errorf("%w: subject contains a line break", ErrInvalidMessage)
	}
	if m.Text == "" && m.HTML == "" {
		return fmt.Errorf("%w: no text or html body", ErrInvalidMessage)
	}
	for name, value := range m.Headers {
		if !validFieldName(name) {
			return fmt.Errorf("%w: header name %q is not a field name", ErrInvalidMessage, name)
		}
		if reservedHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
			return fmt.Errorf("%w: header %s is set by the sender and cannot be given", ErrInvalidMessage, name)
		}
		if hasLineBreak(value) {
			return fmt.Errorf("%w: header %s contains a line break", ErrInvalidMessage, name)
		}
	}
	return nil
}

// checkAddress accepts a bare addr-spec (no display name, comment or angle
// brackets) and a display name without line breaks.
func checkAddress(role string, a Address) error {
	if hasLineBreak(a.Email) || hasLineBreak(a.Name) {
		return fmt.Errorf("%s address contains a line break", role)
	}
	if a.Email == "" {
		return fmt.Errorf("%s address is empty", role)
	}
	parsed, err := mail.ParseAddress(a.Email)
	if err != nil || parsed.Name != "" || parsed.Address != a.Email {
		return fmt.Errorf("%s address %q is not a plain email address", role, a.Email)
	}
	return nil
}

// hasLineBreak reports whether s holds CR, LF or NUL, the bytes that could end
// a header field early.
func hasLineBreak(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}

// validFieldName follows RFC 5322 section 3.6.8: printable US-ASCII except colon.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// domainOf returns the part of an addr-spec after the last "@".
func domainOf(email string) string {
	return strings.ToLower(email[strings.LastIndex(email, "@")+1:])
}
