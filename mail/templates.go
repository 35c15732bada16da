package mail

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"regexp"
	"strings"
	texttemplate "text/template"
)

// Kind names one of the account mails Render builds.
type Kind string

// The account mails.
const (
	KindVerification Kind = "verification" // confirm an email address (needs URL)
	KindRecovery     Kind = "recovery"     // reset a password (needs URL)
	KindMagicLink    Kind = "magic-link"   // sign in with a link (needs URL)
	KindSignInCode   Kind = "sign-in-code" // sign in with a six-digit code (needs Code)
	KindTeamInvite   Kind = "team-invite"  // join a team (needs URL and Team)
	// KindOperatorInvite invites to an instance's console (needs URL, the
	// one-time link; Project names the instance).
	KindOperatorInvite Kind = "operator-invite"
	// KindOperatorAccess tells an operator account it was given roles
	// (needs URL, the console).
	KindOperatorAccess Kind = "operator-access"
)

// CodeValidFor is how long a one-time sign-in code is good for, as the
// KindSignInCode mail tells its reader.
const CodeValidFor = "10 minutes"

// Data fills an account mail.
type Data struct {
	// Project is the project's display name; required.
	Project string
	// To is the recipient; To.Name, when set, is used in the greeting.
	To Address
	// URL is the absolute http(s) link of every kind but KindSignInCode.
	URL string
	// Code is the six-digit code of KindSignInCode.
	Code string
	// Team is the team's name, and Inviter optionally who invited, for
	// KindTeamInvite.
	Team    string
	Inviter string
}

// Render builds the account mail of kind for data: subject, plain text and
// an HTML alternative in which every value is escaped. The message is
// addressed to data.To. It returns an error wrapping ErrInvalidMessage when
// data lacks what kind needs.
func Render(kind Kind, data Data) (Message, error) {
	if err := data.check(kind); err != nil {
		return Message{}, fmt.Errorf("%w: %s mail: %w", ErrInvalidMessage, kind, err)
	}
	c, err := content(kind, data)
	if err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	var text, html bytes.Buffer
	if err := textTemplate.Execute(&text, c); err != nil {
		return Message{}, fmt.Errorf("mail: render %s text: %w", kind, err)
	}
	if err := htmlTemplate.Execute(&html, c); err != nil {
		return Message{}, fmt.Errorf("mail: render %s html: %w", kind, err)
	}
	return Message{To: data.To, Subject: c.Subject, Text: text.String(), HTML: html.String()}, nil
}

// mailContent is what the two layouts show. All fields are plain text.
type mailContent struct {
	Subject  string
	Greeting string
	Lead     string
	Action   string // link label
	URL      string
	Code     string
	Expiry   string
	Note     string
	Project  string
}

func content(kind Kind, d Data) (mailContent, error) {
	c := mailContent{Greeting: "Hello,", Project: d.Project, URL: d.URL}
	if d.To.Name != "" {
		c.Greeting = "Hello " + d.To.Name + ","
	}
	switch kind {
	case KindVerification:
		c.Subject = "Verify your email address for " + d.Project
		c.Lead = "Please confirm your email address for your " + d.Project + " account by opening this link:"
		c.Action = "Verify email address"
		c.Note = "If you did not create an account, you can ignore this email."
	case KindRecovery:
		c.Subject = "Reset your " + d.Project + " password"
		c.Lead = "We received a request to reset the password of your " + d.Project + " account. Open this link to choose a new one:"
		c.Action = "Reset password"
		c.Note = "If you did not ask for this, you can ignore this email; your password stays as it is."
	case KindMagicLink:
		c.Subject = "Sign in to " + d.Project
		c.Lead = "Open this link to sign in to " + d.Project + ":"
		c.Action = "Sign in"
		c.Note = "If you did not try to sign in, you can ignore this email."
	case KindSignInCode:
		c.Subject = "Your " + d.Project + " sign-in code"
		c.Lead = "Enter this code to sign in to " + d.Project + ":"
		c.Code = d.Code
		c.Expiry = "The code expires in " + CodeValidFor + "."
		c.Note = "If you did not try to sign in, you can ignore this email."
	case KindTeamInvite:
		c.Subject = "You are invited to join " + d.Team + " on " + d.Project
		who := "You have"
		if d.Inviter != "" {
			who = d.Inviter + " has"
		}
		c.Lead = who + " invited you to join the team " + d.Team + " on " + d.Project + ". Open this link to accept:"
		c.Action = "Accept invitation"
		c.Note = "If you were not expecting this invitation, you can ignore this email."
	case KindOperatorInvite:
		c.Subject = "You are invited to " + d.Project
		who := "You have"
		if d.Inviter != "" {
			who = d.Inviter + " has"
		}
		c.Lead = who + " invited you to " + d.Project + ". Open this link to choose your password; it works once and expires in 7 days:"
		c.Action = "Accept invitation"
		c.Note = "If you were not expecting this invitation, you can ignore this email."
	case KindOperatorAccess:
		c.Subject = "Your access to " + d.Project + " changed"
		who := "An administrator"
		if d.Inviter != "" {
			who = d.Inviter
		}
		c.Lead = who + " gave your account new roles on " + d.Project + ". Sign in to see them:"
		c.Action = "Open the console"
		c.Note = "If you did not expect this, tell the instance's administrator."
	default:
		return mailContent{}, fmt.Errorf("unknown mail kind %q", kind)
	}
	return c, nil
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

func (d Data) check(kind Kind) error {
	if strings.TrimSpace(d.Project) == "" {
		return fmt.Errorf("no project name")
	}
	for name, v := range map[string]string{"project": d.Project, "recipient name": d.To.Name, "team": d.Team, "inviter": d.Inviter} {
		if hasLineBreak(v) {
			return fmt.Errorf("%s contains a line break", name)
		}
	}
	switch kind {
	case KindSignInCode:
		if !sixDigits.MatchString(d.Code) {
			return fmt.Errorf("code is not six digits")
		}
		return nil
	case KindTeamInvite:
		if strings.TrimSpace(d.Team) == "" {
			return fmt.Errorf("no team name")
		}
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(d.URL, " \t\r\n\"<>") {
		return fmt.Errorf("link %q is not an absolute http(s) URL", d.URL)
	}
	return nil
}

const textLayout = `{{.Greeting}}

{{.Lead}}

{{if .Code}}    {{.Code}}

{{.Expiry}}{{else}}{{.URL}}{{end}}

{{.Note}}

— {{.Project}}
`

const htmlLayout = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222; line-height: 1.5;">
<p>{{.Greeting}}</p>
<p>{{.Lead}}</p>
{{if .Code}}<p style="font-size: 28px; font-weight: bold; letter-spacing: 6px;">{{.Code}}</p>
<p>{{.Expiry}}</p>
{{else}}<p><a href="{{.URL}}" style="display: inline-block; padding: 10px 18px; background: #2563eb; color: #fff; text-decoration: none; border-radius: 4px;">{{.Action}}</a></p>
<p style="font-size: 13px; color: #555;">Or copy this link into your browser:<br>{{.URL}}</p>
{{end}}<p style="font-size: 13px; color: #555;">{{.Note}}</p>
<p>— {{.Project}}</p>
</body>
</html>
`

var (
	textTemplate = texttemplate.Must(texttemplate.New("text").Parse(textLayout))
	htmlTemplate = htmltemplate.Must(htmltemplate.New("html").Parse(htmlLayout))
)
