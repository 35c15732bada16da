package mailtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
)

// Message is one message the server accepted.
type Message struct {
	// From and To are the envelope (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Raw is the DATA exactly as received, CRLF line endings included.
	Raw []byte
	// Header is the parsed header; Subject is its Subject decoded from RFC
	// 2047 encoded words.
	Header  mail.Header
	Subject string
	// Text and HTML are the decoded text/plain and text/html bodies, from a
	// single-part message or the parts of a multipart one.
	Text string
	HTML string
	// ParseErr is why Raw could not be parsed, if it could not.
	ParseErr error
}

var (
	urlPattern  = regexp.MustCompile(`https?://[^\s<>"]+`)
	codePattern = regexp.MustCompile(`\b[0-9]{6}\b`)
)

// FirstURL returns the first http or https URL in the text body, or "".
func (m Message) FirstURL() string {
	return urlPattern.FindString(m.Text)
}

// Code returns the first run of exactly six digits in the text body, or "".
func (m Message) Code() string {
	return codePattern.FindString(m.Text)
}

// parse fills a Message from the envelope and the raw DATA.
func parse(from string, to []string, raw []byte) Message {
	m := Message{From: from, To: append([]string(nil), to...), Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.ParseErr = fmt.Errorf("mailtest: header: %w", err)
		return m
	}
	m.Header = msg.Header
	var dec mime.WordDecoder
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		m.ParseErr = fmt.Errorf("mailtest: subject: %w", err)
		return m
	}
	if err := m.readBody(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		m.ParseErr = fmt.Errorf("mailtest: body: %w", err)
	}
	return m
}

// readBody walks the MIME tree and keeps the first text/plain and text/html.
func (m *Message) readBody(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			// NextPart already decodes quoted-printable and drops the header.
			if err := m.readBody(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	}
	content, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	text := strings.ReplaceAll(string(content), "\r\n", "\n")
	switch {
	case mediaType == "text/plain" && m.Text == "":
		m.Text = text
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = text
	}
	return nil
}

// newlineStripper drops CR and LF so base64 lines decode as one stream.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		c, err := n.r.Read(p)
		j := 0
		for _, b := range p[:c] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
