package mail_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/mail"
	"github.com/cairn-dev/cairn/mail/mailtest"
)

func TestRender(t *testing.T) {
	const link = "https://app.acme.test/verify?user=u1&secret=s3cr3t"
	to := mail.Address{Email: "ada@example.test", Name: "Ada"}
	cases := []struct {
		kind       mail.Kind
		data       mail.Data
		subject    string
		textHas    []string
		htmlHas    []string
		textHasNot []string
	}{
		{
			kind:    mail.KindVerification,
			data:    mail.Data{Project: "Acme", To: to, URL: link},
			subject: "Verify your email address for Acme",
			textHas: []string{"Hello Ada,", link, "Acme"},
			htmlHas: []string{`href="https://app.acme.test/verify?user=u1&amp;secret=s3cr3t"`, "Verify email address", "Hello Ada,"},
		},
		{
			kind:    mail.KindRecovery,
			data:    mail.Data{Project: "Acme", To: to, URL: link},
			subject: "Reset your Acme password",
			textHas: []string{link, "reset the password"},
			htmlHas: []string{"Reset password"},
		},
		{
			kind:    mail.KindMagicLink,
			data:    mail.Data{Project: "Acme", To: mail.Address{Email: "x@example.test"}, URL: link},
			subject: "Sign in to Acme",
			textHas: []string{"Hello,\n", link},
			htmlHas: []string{"Sign in"},
		},
		{
			kind:       mail.KindSignInCode,
			data:       mail.Data{Project: "Acme", To: to, Code: "042917"},
			subject:    "Your Acme sign-in code",
			textHas:    []string{"042917", "expires in 10 minutes"},
			htmlHas:    []string{"042917", "expires in 10 minutes"},
			textHasNot: []string{"http"},
		},
		{
			kind:    mail.KindTeamInvite,
			data:    mail.Data{Project: "Acme", To: to, URL: link, Team: "Design", Inviter: "Grace"},
			subject: "You are invited to join Design on Acme",
			textHas: []string{"Grace has invited you to join the team Design on Acme", link},
			htmlHas: []string{"Accept invitation"},
		},
		{
			kind:    mail.KindTeamInvite,
			data:    mail.Data{Project: "Acme", To: to, URL: link, Team: "Design"},
			subject: "You are invited to join Design on Acme",
			textHas: []string{"You have invited you to join the team Design"},
		},
		{
			kind:    mail.KindVerification,
			data:    mail.Data{Project: `<b>Acme</b> & "Co"`, To: mail.Address{Email: "e@example.test", Name: "<script>alert(1)</script>"}, URL: link},
			subject: `Verify your email address for <b>Acme</b> & "Co"`,
			textHas: []string{`Hello <script>alert(1)</script>,`, `<b>Acme</b> & "Co"`},
			htmlHas: []string{"Hello &lt;script&gt;alert(1)&lt;/script&gt;,", "&lt;b&gt;Acme&lt;/b&gt; &amp; &#34;Co&#34;"},
		},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind)+"/"+tc.data.To.Name, func(t *testing.T) {
			msg, err := mail.Render(tc.kind, tc.data)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if msg.To != tc.data.To {
				t.Errorf("To = %v", msg.To)
			}
			if msg.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", msg.Subject, tc.subject)
			}
			for _, s := range tc.textHas {
				if !strings.Contains(msg.Text, s) {
					t.Errorf("text lacks %q:\n%s", s, msg.Text)
				}
			}
			for _, s := range tc.textHasNot {
				if strings.Contains(msg.Text, s) {
					t.Errorf("text has %q:\n%s", s, msg.Text)
				}
			}
			for _, s := range tc.htmlHas {
				if !strings.Contains(msg.HTML, s) {
					t.Errorf("html lacks %q:\n%s", s, msg.HTML)
				}
			}
			if strings.Contains(msg.HTML, "<script>") || strings.Contains(msg.HTML, "<b>") {
				t.Errorf("html is not escaped:\n%s", msg.HTML)
			}
		})
	}
}

func TestRenderRefusesIncompleteData(t *testing.T) {
	to := mail.Address{Email: "ada@example.test"}
	cases := []struct {
		name string
		kind mail.Kind
		data mail.Data
	}{
		{"unknown kind", "welcome", mail.Data{Project: "Acme", To: to, URL: "https://a.test/"}},
		{"no project", mail.KindVerification, mail.Data{To: to, URL: "https://a.test/"}},
		{"no url", mail.KindRecovery, mail.Data{Project: "Acme", To: to}},
		{"relative url", mail.KindMagicLink, mail.Data{Project: "Acme", To: to, URL: "/verify?x=1"}},
		{"javascript url", mail.KindMagicLink, mail.Data{Project: "Acme", To: to, URL: "javascript:alert(1)"}},
		{"short code", mail.KindSignInCode, mail.Data{Project: "Acme", To: to, Code: "12345"}},
		{"letters in code", mail.KindSignInCode, mail.Data{Project: "Acme", To: to, Code: "12a456"}},
		{"no team", mail.KindTeamInvite, mail.Data{Project: "Acme", To: to, URL: "https://a.test/"}},
		{"line break in project", mail.KindVerification, mail.Data{Project: "Acme\r\nBcc: v@example.test", To: to, URL: "https://a.test/"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mail.Render(tc.kind, tc.data); !errors.Is(err, mail.ErrInvalidMessage) {
				t.Fatalf("Render = %v, want ErrInvalidMessage", err)
			}
		})
	}
}

// TestRenderedMailsArrive sends every rendered kind through a real server and
// reads the link or the code back, as an end-to-end test of the account flows
// will.
func TestRenderedMailsArrive(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Username: testUser, Password: testPassword})
	cfg := config(srv, mail.SecuritySTARTTLS)
	cfg.Username, cfg.Password = testUser, testPassword
	const link = "https://app.acme.test/magic?user=u1&secret=Zm9v-YmFy_0123456789abcdefghijklmnopqrstuvwxyz"
	to := mail.Address{Email: "ada@example.test", Name: "Ada Lovelace"}

	var s mail.Sender
	for _, kind := range []mail.Kind{mail.KindVerification, mail.KindRecovery, mail.KindMagicLink, mail.KindTeamInvite} {
		msg, err := mail.Render(kind, mail.Data{Project: "Acme Café", To: to, URL: link, Team: "Design"})
		if err != nil {
			t.Fatalf("Render(%s): %v", kind, err)
		}
		if err := s.Send(t.Context(), cfg, msg); err != nil {
			t.Fatalf("Send(%s): %v", kind, err)
		}
		got := waitFor(t, srv, to.Email)
		if got.Subject != msg.Subject {
			t.Errorf("%s: Subject = %q, want %q", kind, got.Subject, msg.Subject)
		}
		if u := got.FirstURL(); u != link {
			t.Errorf("%s: FirstURL = %q, want %q", kind, u, link)
		}
	}

	msg, err := mail.Render(mail.KindSignInCode, mail.Data{Project: "Acme Café", To: to, Code: "004711"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), cfg, msg); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, srv, to.Email); got.Code() != "004711" {
		t.Errorf("Code = %q, want 004711", got.Code())
	}
}
