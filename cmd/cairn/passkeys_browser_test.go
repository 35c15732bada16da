package main

// Passkeys in a real browser: headless Chromium with its virtual
// authenticator (DevTools' WebAuthn domain: CTAP2, resident keys, user
// verification), on a page served from a Cairn site host that calls the
// API through the TypeScript client's helpers.

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	esbuild "github.com/evanw/esbuild/pkg/api"
)

// clientBundle is the TypeScript client as one script defining the global
// CairnClient.
func clientBundle(t *testing.T) string {
	t.Helper()
	entry, err := filepath.Abs("../../clients/ts/src/index.ts")
	if err != nil {
		t.Fatal(err)
	}
	res := esbuild.Build(esbuild.BuildOptions{EntryPoints: []string{entry}, Bundle: true, Format: esbuild.FormatIIFE,
		GlobalName: "CairnClient", Platform: esbuild.PlatformBrowser, Target: esbuild.ES2022, Write: false, LogLevel: esbuild.LogLevelSilent})
	if len(res.Errors) > 0 || len(res.OutputFiles) != 1 {
		t.Fatalf("bundle the client: %v", res.Errors)
	}
	return string(res.OutputFiles[0].Contents)
}

// passkeyFlowJS signs up and in with a password, registers a passkey,
// signs out, signs in with the passkey alone, lists and deletes it, and
// tries again: the browser still holds the key, Cairn no longer does.
const passkeyFlowJS = `(async () => {
  const out = {};
  const c = CairnClient.createCairn();
  await c.signUp({ email: "pat@example.com", password: "a long password" });
  await c.signIn({ email: "pat@example.com", password: "a long password" });
  const pk = await c.passkeys.register({ name: "chromium" });
  out.registered = pk.rpId + "/" + pk.name;
  await c.signOut();
  out.signedOut = (await c.getAccount()) === null;
  const s = await c.signInWithPasskey();
  out.provider = s.provider + "/" + s.mfaPending;
  out.me = (await c.getAccount())?.email ?? "";
  const again = await c.signInWithPasskey({ email: "pat@example.com" });
  out.withEmail = again.provider;
  const list = await c.passkeys.list();
  out.list = list.map((p) => p.name + (p.lastUsedAt ? "+used" : "")).join(",");
  await c.passkeys.delete(pk.id);
  await c.signOut();
  try { await c.signInWithPasskey(); out.afterDelete = "signed in"; } catch (e) { out.afterDelete = e.code ?? String(e); }
  return JSON.stringify(out);
})()`

func TestPasskeyBrowser(t *testing.T) {
	requireChromium(t)
	in, port := edgeInstance(t)
	key := newProjectWithKey(t, in, "pk", "sites.write", "users.read")
	deploySite(t, in, key, "pk", "web", map[string]string{
		"index.html": `<!doctype html><meta charset="utf-8"><title>passkeys</title><script src="client.js"></script><p>passkeys</p>`,
		"client.js":  clientBundle(t),
	})
	browser := edgeBrowser(t, 120*time.Second)
	c, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate("http://web.pk.localhost:"+port+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(c, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(c, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}}); err != nil {
		t.Fatal(err)
	}
	raw, err := chromedp.Run(c, chromedp.Evaluate[string](passkeyFlowJS, chromedp.EvalAwaitPromise))
	if err != nil {
		edgeShot(t, c, "passkeys")
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"registered": "pk.localhost/chromium", "signedOut": true, "provider": "passkey/false", "me": "pat@example.com",
		"withEmail": "passkey", "list": "chromium+used", "afterDelete": "permission_denied"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	t.Logf("flow: %s", raw)
}
