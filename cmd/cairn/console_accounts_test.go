package main

// The console's account screens: the administrator invites an email (no
// instance SMTP: the link is shown), the invitee opens the link and sets a
// password, signs in, changes it, enrols an authenticator (recovery codes
// shown once, then new ones), is asked for a code at the next sign-in (an old
// recovery code refused, a new one accepted), and the
// administrator resets the lost authenticator in the Operators screen.

import (
	"bytes"
	"context"
	"encoding/base32"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/cairn-dev/cairn/domain/mfa"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

func TestConsoleAccounts(t *testing.T) {
	requireChromium(t)
	in, _ := edgeInstance(t)
	admin := op(t)
	if _, err := in.projects().CreateProject(admin, &cairnv1.CreateProjectRequest{ProjectId: "alpha", Name: "alpha"}); err != nil {
		t.Fatal(err)
	}
	browser := edgeBrowser(t, 150*time.Second)
	p := openConsoleTab(t, browser)
	c := p.c
	text := consoleText

	// The administrator invites ivy@example.com as a developer of alpha.
	p.signIn(in.url, "/")
	p.step("operators", chromedp.Click(chromedp.CSS("#nav-operators")))
	p.wait("operators screen", `document.querySelector("#invite-operator select[name=role-alpha]") ? "yes" : ""`)
	p.step("invite", chromedp.SendKeys(chromedp.CSS(`#invite-operator input[name=invite-email]`), "ivy@example.com"),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#invite-operator select[name=role-alpha]");
			s.value = "developer"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`),
		chromedp.Click(chromedp.CSS(`#invite-operator button[type=submit]`)))
	link := p.wait("invitation link", `document.querySelector("#invite-link")?.value ?? ""`)
	if !strings.HasPrefix(link, in.url+"/console/invite?token=ci_") {
		t.Fatalf("invitation link %q", link)
	}
	if row := p.wait("pending listed", text(`tr[data-operator="ivy@example.com"]`)); !strings.Contains(row, "invited") || !strings.Contains(row, "alpha: developer") {
		t.Errorf("the pending invitation's row: %q", row)
	}
	edgeShot(t, c, "1-invited")
	p.step("sign out", chromedp.Click(chromedp.CSS("#signout")))

	// The invitee opens the link and chooses a password.
	p.step("open link", chromedp.Navigate(link))
	p.wait("accept page", `document.querySelector("#invite-password") ? "yes" : ""`)
	p.step("weak password", chromedp.SendKeys(chromedp.CSS("#invite-password"), "password1"), chromedp.Click(chromedp.CSS(`#accept-invitation button[type=submit]`)))
	if msg := p.wait("refused", text("#accept-invitation .error")); !strings.Contains(msg, "common") {
		t.Errorf("a common password: %q", msg)
	}
	edgeShot(t, c, "2-accept-refused")
	p.step("good password", chromedp.Evaluate[chromedp.Void](`document.querySelector("#invite-password").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#invite-password"), "ivy's first password"), chromedp.Click(chromedp.CSS(`#accept-invitation button[type=submit]`)))
	p.wait("sign-in form", `document.querySelector("#operator-email")?.value === "ivy@example.com" ? "yes" : ""`)
	edgeShot(t, c, "3-accepted")
	p.step("sign in", chromedp.SendKeys(chromedp.CSS("#operator-password"), "ivy's first password"), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	if who := p.wait("signed in", text("#whoami")); who != "ivy@example.com" {
		t.Errorf("signed in as %q", who)
	}

	// The account screen: a wrong current password is refused, then the change.
	p.step("account", chromedp.Click(chromedp.CSS("#nav-account")))
	p.wait("account screen", `document.querySelector("#change-password") ? "yes" : ""`)
	p.step("wrong current", chromedp.SendKeys(chromedp.CSS(`input[name=current-password]`), "not my password"),
		chromedp.SendKeys(chromedp.CSS(`input[name=new-password]`), "ivy's second password"), chromedp.Click(chromedp.CSS(`#change-password button[type=submit]`)))
	if msg := p.wait("refused", text("#change-password .error")); !strings.Contains(msg, "current_password") {
		t.Errorf("a wrong current password: %q", msg)
	}
	p.step("right current", chromedp.Evaluate[chromedp.Void](`(() => { const i = document.querySelector("input[name=current-password]"); i.value = ""; })()`),
		chromedp.SendKeys(chromedp.CSS(`input[name=current-password]`), "ivy's first password"), chromedp.Click(chromedp.CSS(`#change-password button[type=submit]`)))
	p.wait("changed", `document.querySelector("#password-changed") ? "yes" : ""`)
	edgeShot(t, c, "4-password-changed")

	// Enrol an authenticator: the URI and key are shown, a code verifies it.
	p.step("enrol", chromedp.Click(chromedp.CSS("#mfa-enrol")))
	key := p.wait("totp key", text("#totp-secret"))
	uri := p.wait("otpauth", text("#otpauth-uri"))
	if !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Errorf("otpauth URI %q", uri)
	}
	// The drawn QR code, read back from the browser's pixels, is the URI.
	if got := readQRCode(t, c, "#totp-qr"); got != uri {
		t.Errorf("the QR code reads %q, want the otpauth URI %q", got, uri)
	}
	edgeShot(t, c, "5-mfa-enrol")
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	step := mfa.Step(time.Now())
	p.step("verify", chromedp.SendKeys(chromedp.CSS(`input[name=mfa-code]`), mfa.Code(secret, step)), chromedp.Click(chromedp.CSS(`#mfa-verify button[type=submit]`)))
	first := strings.Fields(p.wait("recovery codes", text("#recovery-codes pre")))
	if len(first) != 10 {
		t.Errorf("recovery codes %q", first)
	}
	edgeShot(t, c, "6-recovery-codes")

	// New recovery codes for a code from the app; the old ones stop working.
	p.step("saved them", chromedp.Click(chromedp.CSS(`#recovery-codes button`)))
	p.wait("mfa on", text("#mfa-state"))
	p.step("regenerate", chromedp.SendKeys(chromedp.CSS(`input[name=mfa-regenerate-code]`), mfa.Code(secret, step+1)),
		chromedp.Click(chromedp.CSS(`#mfa-regenerate button[type=submit]`)))
	recovery := strings.Fields(p.wait("new recovery codes", text("#recovery-codes pre")))
	if len(recovery) != 10 || recovery[0] == first[0] {
		t.Fatalf("regenerated recovery codes %q (first %q)", recovery, first)
	}
	edgeShot(t, c, "6b-new-recovery-codes")

	// The next sign-in asks for the code.
	p.step("sign out again", chromedp.Click(chromedp.CSS("#signout")))
	p.wait("sign-in form again", `document.querySelector("#operator-email") ? "yes" : ""`)
	// The form remembers the invitee's email; typed afresh all the same.
	p.step("password only", chromedp.Evaluate[chromedp.Void](`document.querySelector("#operator-email").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#operator-email"), "ivy@example.com"),
		chromedp.SendKeys(chromedp.CSS("#operator-password"), "ivy's second password"), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	p.wait("code asked", `document.querySelector("#operator-code") ? "yes" : ""`)
	edgeShot(t, c, "7-code-asked")
	p.step("old recovery code", chromedp.SendKeys(chromedp.CSS("#operator-code"), first[0]), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	if msg := p.wait("old code refused", text("#signin .error")); !strings.Contains(msg, "permission_denied") {
		t.Errorf("an old recovery code: %q", msg)
	}
	p.step("new recovery code", chromedp.Evaluate[chromedp.Void](`document.querySelector("#operator-code").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#operator-code"), recovery[0]), chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	if who := p.wait("signed in with a new recovery code", text("#whoami")); who != "ivy@example.com" {
		t.Errorf("signed in as %q", who)
	}
	p.step("sign out once more", chromedp.Click(chromedp.CSS("#signout")))

	// The administrator resets the lost authenticator.
	p.signIn(in.url, "/operators")
	p.wait("2FA shown", `document.querySelector('tr[data-operator="ivy@example.com"] .reset-mfa') ? "yes" : ""`)
	p.step("reset", chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`tr[data-operator="ivy@example.com"] .reset-mfa`)))
	p.wait("reset done", `document.querySelector('tr[data-operator="ivy@example.com"]') && !document.querySelector('tr[data-operator="ivy@example.com"] .reset-mfa') ? "yes" : ""`)
	edgeShot(t, c, "8-mfa-reset")
	if s, err := in.operators().CreateOperatorSession(t.Context(), &cairnv1.CreateOperatorSessionRequest{Email: "ivy@example.com", Password: "ivy's second password"}); err != nil || s.GetOperator().GetMfa() {
		t.Fatalf("sign-in after the reset: %v %v", s, err)
	}
}

// readQRCode screenshots the element sel and decodes the QR code in it.
func readQRCode(t *testing.T, c context.Context, sel string) string {
	t.Helper()
	b, err := chromedp.Run(c, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", sel, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", sel, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("no QR code readable in %s: %v", sel, err)
	}
	return res.GetText()
}
