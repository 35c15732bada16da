package main

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/cairn-dev/cairn/api/passkey/passkeytest"
	"github.com/cairn-dev/cairn/domain/mfa"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// passkeyPage is a browser page of a project calling Cairn: the site
// web.<project>.localhost through its own API (/_cairn), with that Origin.
type passkeyPage struct {
	origin string
	svc    cairnv1connect.PasskeyServiceClient
	acct   cairnv1connect.AccountServiceClient
}

func sitePage(in *instance, project string) passkeyPage {
	base := in.hostURL("web." + project)
	c := connect.NewClient(connecthttp.NewTransport(h2cClient(), base+"/_cairn"))
	return passkeyPage{origin: base, svc: cairnv1connect.NewPasskeyServiceClient(c), acct: cairnv1connect.NewAccountServiceClient(c)}
}

// call is a context for the page's call: its Origin, and the session if any.
func (p passkeyPage) call(session string) context.Context {
	ctx, info := as(context.Background(), session)
	info.RequestHeader().Set("Origin", p.origin)
	return ctx
}

// register adds a passkey of authenticator a to the session's user.
func (p passkeyPage) register(t *testing.T, a *passkeytest.Authenticator, session, name string) *cairnv1.Passkey {
	t.Helper()
	b, err := p.svc.BeginPasskeyRegistration(p.call(session), &cairnv1.BeginPasskeyRegistrationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, cred, err := a.Create([]byte(b.GetOptionsJson()), p.origin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.svc.FinishPasskeyRegistration(p.call(session), &cairnv1.FinishPasskeyRegistrationRequest{CredentialJson: string(cred), Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return f.GetPasskey()
}

// assertion begins a sign-in (with email, or usernameless) and answers it
// with a at origin.
func (p passkeyPage) assertion(t *testing.T, a *passkeytest.Authenticator, email, origin string) []byte {
	t.Helper()
	b, err := p.svc.BeginPasskeySignIn(p.call(""), &cairnv1.BeginPasskeySignInRequest{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := a.Get([]byte(b.GetOptionsJson()), origin)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// secondFactor completes a limited session's MFA with authenticator a.
func (p passkeyPage) secondFactor(t *testing.T, a *passkeytest.Authenticator, limited string) (*cairnv1.FinishPasskeyMfaResponse, error) {
	t.Helper()
	b, err := p.svc.BeginPasskeyMfa(p.call(limited), &cairnv1.BeginPasskeyMfaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Get([]byte(b.GetOptionsJson()), p.origin)
	if err != nil {
		t.Fatal(err)
	}
	return p.svc.FinishPasskeyMfa(p.call(limited), &cairnv1.FinishPasskeyMfaRequest{CredentialJson: string(c)})
}

func (p passkeyPage) finish(cred []byte) (*cairnv1.FinishPasskeySignInResponse, error) {
	return p.svc.FinishPasskeySignIn(p.call(""), &cairnv1.FinishPasskeySignInRequest{CredentialJson: string(cred)})
}

// TestPasskeys drives a software authenticator through the whole life of a
// passkey: register, sign in (usernameless and with email), list, delete,
// sign-in refused; replays, wrong origins and a cloned key refused.
func TestPasskeys(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	key := newProjectWithKey(t, in, "shop", "users.read", "users.write", "events.read")
	g, _ := guest(context.Background(), "shop", "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{UserId: "ann", Email: "ann@example.com", Password: "ann's password"}); err != nil {
		t.Fatal(err)
	}
	s1 := signIn(t, in, "shop", "ann@example.com", "ann's password").GetSecret()
	page := sitePage(in, "shop")
	a := passkeytest.New()

	// The user's account channel hears of the new passkey.
	rt := in.subscribe(t, s1, &cairnv1.SubscribeRequest{ProjectId: "shop", Channels: []string{"account"}})
	rt.untilLive(t)
	pk := page.register(t, a, s1, "laptop")
	if pk.GetName() != "laptop" || pk.GetRpId() != "shop.localhost" || pk.GetCreatedAt() == nil {
		t.Fatalf("registered: %v", pk)
	}
	if ev := rt.nextEvent(t, 10*time.Second); !slices.Contains(ev.GetEvents(), "users.ann.passkeys."+pk.GetId()+".create") {
		t.Fatalf("account channel: %v", ev.GetEvents())
	}

	var cred []byte
	t.Run("sign in without an email", func(t *testing.T) {
		cred = page.assertion(t, a, "", page.origin)
		res, err := page.finish(cred)
		if err != nil {
			t.Fatal(err)
		}
		s := res.GetSession()
		if s.GetUserId() != "ann" || s.GetProvider() != "passkey" || !slices.Equal(s.GetFactors(), []string{"passkey"}) || s.GetMfaPending() {
			t.Fatalf("session: %v", s)
		}
		acc, err := page.acct.GetAccount(page.call(res.GetSecret()), &cairnv1.GetAccountRequest{})
		if err != nil || acc.GetUser().GetId() != "ann" {
			t.Fatalf("the new session: %v %v", acc, err)
		}
	})
	t.Run("a replayed answer is refused", func(t *testing.T) {
		_, err := page.finish(cred)
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("sign in with the email", func(t *testing.T) {
		b, err := page.svc.BeginPasskeySignIn(page.call(""), &cairnv1.BeginPasskeySignInRequest{Email: "Ann@Example.com"})
		if err != nil {
			t.Fatal(err)
		}
		var o struct{ AllowCredentials []struct{ ID string } }
		_ = json.Unmarshal([]byte(b.GetOptionsJson()), &o)
		if len(o.AllowCredentials) != 1 || o.AllowCredentials[0].ID != pk.GetCredentialId() {
			t.Fatalf("allowed credentials: %s", b.GetOptionsJson())
		}
		c, err := a.Get([]byte(b.GetOptionsJson()), page.origin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := page.finish(c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an unknown email looks like a known one", func(t *testing.T) {
		ask := func() string {
			b, err := page.svc.BeginPasskeySignIn(page.call(""), &cairnv1.BeginPasskeySignInRequest{Email: "nobody@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			var o struct{ AllowCredentials []struct{ ID string } }
			_ = json.Unmarshal([]byte(b.GetOptionsJson()), &o)
			if len(o.AllowCredentials) != 1 {
				t.Fatalf("allowed credentials: %s", b.GetOptionsJson())
			}
			return o.AllowCredentials[0].ID
		}
		if first := ask(); first != ask() || len(first) != len(pk.GetCredentialId()) {
			t.Fatal("the decoy changes between asks, or has another shape")
		}
	})
	t.Run("an answer from another origin is refused", func(t *testing.T) {
		evil := in.hostURL("evil")
		_, err := page.finish(page.assertion(t, a, "", evil))
		wantCode(t, err, connect.CodePermissionDenied)
		// Finished from another page than the one that began.
		c := page.assertion(t, a, "", page.origin)
		other := sitePage(in, "shop")
		other.origin = in.hostURL("blog.shop")
		other.svc = cairnv1connect.NewPasskeyServiceClient(connect.NewClient(connecthttp.NewTransport(h2cClient(), other.origin+"/_cairn")))
		_, err = other.finish(c)
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("a cloned key is refused from then on", func(t *testing.T) {
		b := passkeytest.New()
		page.register(t, b, s1, "yubikey")
		if _, err := page.finish(page.assertion(t, b, "", page.origin)); err != nil {
			t.Fatal(err)
		}
		b.Creds[0].Counter = 0 // a copy of the key, one use behind
		_, err := page.finish(page.assertion(t, b, "", page.origin))
		wantCode(t, err, connect.CodeUnauthenticated)
		b.Creds[0].Counter = 100 // even with a counter ahead again
		_, err = page.finish(page.assertion(t, b, "", page.origin))
		wantCode(t, err, connect.CodeUnauthenticated)
		ls, err := page.svc.ListPasskeys(page.call(s1), &cairnv1.ListPasskeysRequest{})
		if err != nil || len(ls.GetPasskeys()) != 2 || !ls.GetPasskeys()[1].GetCloneSuspected() || ls.GetPasskeys()[0].GetCloneSuspected() {
			t.Fatalf("list: %v %v", ls, err)
		}
		if _, err := page.svc.DeletePasskey(page.call(s1), &cairnv1.DeletePasskeyRequest{PasskeyId: ls.GetPasskeys()[1].GetId()}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a server lists and deletes a user's passkeys", func(t *testing.T) {
		k, _ := as(context.Background(), key)
		extra := page.register(t, passkeytest.New(), s1, "lost phone")
		ls, err := in.users().ListUserPasskeys(k, &cairnv1.ListUserPasskeysRequest{ProjectId: "shop", UserId: "ann"})
		if err != nil || len(ls.GetPasskeys()) != 2 || ls.GetPasskeys()[1].GetName() != "lost phone" {
			t.Fatalf("server list: %v %v", ls, err)
		}
		if _, err := in.users().DeleteUserPasskey(k, &cairnv1.DeleteUserPasskeyRequest{ProjectId: "shop", UserId: "ann", PasskeyId: extra.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = in.users().ListUserPasskeys(k, &cairnv1.ListUserPasskeysRequest{ProjectId: "shop", UserId: "nobody"})
		wantCode(t, err, connect.CodeNotFound)
	})
	t.Run("list, delete, then sign-in is refused", func(t *testing.T) {
		ls, err := page.svc.ListPasskeys(page.call(s1), &cairnv1.ListPasskeysRequest{})
		if err != nil || len(ls.GetPasskeys()) != 1 || ls.GetPasskeys()[0].GetId() != pk.GetId() || ls.GetPasskeys()[0].GetLastUsedAt() == nil {
			t.Fatalf("list: %v %v", ls, err)
		}
		if _, err := page.svc.DeletePasskey(page.call(s1), &cairnv1.DeletePasskeyRequest{PasskeyId: pk.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = page.svc.DeletePasskey(page.call(s1), &cairnv1.DeletePasskeyRequest{PasskeyId: pk.GetId()})
		wantCode(t, err, connect.CodeNotFound)
		ls, err = page.svc.ListPasskeys(page.call(s1), &cairnv1.ListPasskeysRequest{})
		if err != nil || len(ls.GetPasskeys()) != 0 {
			t.Fatalf("list after delete: %v %v", ls, err)
		}
		_, err = page.finish(page.assertion(t, a, "", page.origin))
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("bad input names the field", func(t *testing.T) {
		_, err := page.svc.FinishPasskeySignIn(page.call(""), &cairnv1.FinishPasskeySignInRequest{CredentialJson: `{"id":"x"}`})
		wantCode(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), "credential_json") {
			t.Fatalf("error does not name the field: %v", err)
		}
		_, err = page.svc.FinishPasskeySignIn(page.call(""), &cairnv1.FinishPasskeySignInRequest{})
		wantCode(t, err, connect.CodeInvalidArgument)
		_, err = page.svc.DeletePasskey(page.call(s1), &cairnv1.DeletePasskeyRequest{PasskeyId: "a.b"})
		wantCode(t, err, connect.CodeInvalidArgument)
		// The API's own host carries no project page: no relying party.
		api := cairnv1connect.NewPasskeyServiceClient(in.client)
		_, err = api.BeginPasskeySignIn(g, &cairnv1.BeginPasskeySignInRequest{})
		wantCode(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), "Origin") {
			t.Fatalf("error does not name the Origin: %v", err)
		}
		// Guests cannot register or list.
		_, err = page.svc.BeginPasskeyRegistration(page.call(""), &cairnv1.BeginPasskeyRegistrationRequest{})
		wantCode(t, err, connect.CodeUnauthenticated)
	})

	// The log tells the passkeys' story, under Appwrite-style subjects.
	k, _ := as(context.Background(), key)
	evs, err := in.events().ListEvents(k, &cairnv1.ListEventsRequest{ProjectId: "shop", Subject: "users.ann.passkeys.>", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, e := range evs.GetEvents() {
		parts := strings.Split(e.GetSubject(), ".")
		verbs = append(verbs, parts[len(parts)-1])
	}
	// laptop: create, 2 uses; yubikey: create, use, clone mark, delete;
	// lost phone: create, deleted by the server; laptop delete.
	if want := "create update update create update update delete create delete delete"; strings.Join(verbs, " ") != want {
		t.Errorf("passkey events: %q, want %q", strings.Join(verbs, " "), want)
	}
	// The read model rebuilt from the log equals the one built live.
	in.stop()
	n := openStopped(t, dir)
	defer n.close()
	checkRebuild(t, n, "shop", "passkeys")
}

// TestPasskeyAllowedOrigin: an app on an allowed origin (localhost in
// development) calls the API host; its passkeys are bound to its host.
func TestPasskeyAllowedOrigin(t *testing.T) {
	in := startInstance(t, t.TempDir())
	newProjectWithKey(t, in, "app", "users.read")
	g, _ := guest(context.Background(), "app", "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "bo@example.com", Password: "bo's password"}); err != nil {
		t.Fatal(err)
	}
	s := signIn(t, in, "app", "bo@example.com", "bo's password").GetSecret()
	page := passkeyPage{origin: "http://localhost:5173", svc: cairnv1connect.NewPasskeyServiceClient(in.client), acct: in.account()}
	a := passkeytest.New()
	ctx := func(session string) context.Context {
		c, info := guest(context.Background(), "app", session)
		info.RequestHeader().Set("Origin", page.origin)
		return c
	}
	b, err := page.svc.BeginPasskeyRegistration(ctx(s), &cairnv1.BeginPasskeyRegistrationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, cred, err := a.Create([]byte(b.GetOptionsJson()), page.origin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := page.svc.FinishPasskeyRegistration(ctx(s), &cairnv1.FinishPasskeyRegistrationRequest{CredentialJson: string(cred)})
	if err != nil || f.GetPasskey().GetRpId() != "localhost" || f.GetPasskey().GetName() != "Passkey" {
		t.Fatalf("register: %v %v", f, err)
	}
	sb, err := page.svc.BeginPasskeySignIn(ctx(""), &cairnv1.BeginPasskeySignInRequest{})
	if err != nil {
		t.Fatal(err)
	}
	as, err := a.Get([]byte(sb.GetOptionsJson()), page.origin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := page.svc.FinishPasskeySignIn(ctx(""), &cairnv1.FinishPasskeySignInRequest{CredentialJson: string(as)}); err != nil {
		t.Fatal(err)
	}
	// An origin the project does not allow is refused before any ceremony.
	c, info := guest(context.Background(), "app", "")
	info.RequestHeader().Set("Origin", "https://evil.example")
	_, err = page.svc.BeginPasskeySignIn(c, &cairnv1.BeginPasskeySignInRequest{})
	wantCode(t, err, connect.CodePermissionDenied)
}

// TestPasskeyMfa: a passkey proves the second factor of a password
// sign-in, and a passkey sign-in needs no second factor.
func TestPasskeyMfa(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "bank", "users.read", "users.write")
	g, _ := guest(context.Background(), "bank", "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "eve@example.com", Password: "two factors please"}); err != nil {
		t.Fatal(err)
	}
	s1 := signIn(t, in, "bank", "eve@example.com", "two factors please").GetSecret()
	me, _ := guest(context.Background(), "bank", s1)
	totp, err := in.account().CreateTotp(me, &cairnv1.CreateTotpRequest{})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(totp.GetSecret())
	if _, err := in.account().VerifyTotp(me, &cairnv1.VerifyTotpRequest{Code: mfa.Code(secret, mfa.Step(time.Now()))}); err != nil {
		t.Fatal(err)
	}
	page := sitePage(in, "bank")
	a := passkeytest.New()
	page.register(t, a, s1, "phone")

	limited := signIn(t, in, "bank", "eve@example.com", "two factors please")
	if !limited.GetSession().GetMfaPending() {
		t.Fatal("password sign-in is not limited")
	}
	lim := limited.GetSecret()
	// A limited session cannot add a passkey.
	_, err = page.svc.BeginPasskeyRegistration(page.call(lim), &cairnv1.BeginPasskeyRegistrationRequest{})
	wantCode(t, err, connect.CodePermissionDenied)
	done, err := page.secondFactor(t, a, lim)
	if err != nil {
		t.Fatal(err)
	}
	if done.GetSession().GetMfaPending() || !slices.Contains(done.GetSession().GetFactors(), "passkey") {
		t.Fatalf("session after the passkey: %v", done.GetSession())
	}
	// Done once: nothing more to prove.
	_, err = page.svc.BeginPasskeyMfa(page.call(lim), &cairnv1.BeginPasskeyMfaRequest{})
	wantCode(t, err, connect.CodeFailedPrecondition)
	// A passkey sign-in is both factors.
	res, err := page.finish(page.assertion(t, a, "", page.origin))
	if err != nil || res.GetSession().GetMfaPending() {
		t.Fatalf("passkey sign-in with MFA on: %v %v", res, err)
	}
	// The project can turn passkeys off.
	ks, _ := as(context.Background(), key)
	st, err := in.users().GetAuthSettings(ks, &cairnv1.GetAuthSettingsRequest{ProjectId: "bank"})
	if err != nil {
		t.Fatal(err)
	}
	set := st.GetSettings()
	set.DisabledMethods = []string{"passkey"}
	if _, err := in.users().UpdateAuthSettings(ks, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "bank", Settings: set}); err != nil {
		t.Fatal(err)
	}
	_, err = page.svc.BeginPasskeySignIn(page.call(""), &cairnv1.BeginPasskeySignInRequest{})
	wantCode(t, err, connect.CodeFailedPrecondition)
}

// TestPasskeyOnlyMfa: a user with a passkey and no authenticator switches
// MFA on; a password sign-in then asks for the passkey (or a recovery
// code), and removing the last passkey switches MFA off.
func TestPasskeyOnlyMfa(t *testing.T) {
	in := startInstance(t, t.TempDir(), "--no-auth-rate-limits")
	newProjectWithKey(t, in, "bank", "users.read")
	g, _ := guest(context.Background(), "bank", "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "pat@example.com", Password: "passkeys only please"}); err != nil {
		t.Fatal(err)
	}
	s1 := signIn(t, in, "bank", "pat@example.com", "passkeys only please").GetSecret()
	page := sitePage(in, "bank")
	// No second factor yet: refused, naming the field.
	_, err := page.acct.UpdateMfa(page.call(s1), &cairnv1.UpdateMfaRequest{Enabled: true})
	wantField(t, err, connect.CodeFailedPrecondition, "enabled")
	a := passkeytest.New()
	pk := page.register(t, a, s1, "phone")
	on, err := page.acct.UpdateMfa(page.call(s1), &cairnv1.UpdateMfaRequest{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(on.GetRecoveryCodes()) == 0 {
		t.Fatal("switching MFA on gave no recovery codes")
	}
	// Switching on again keeps the codes it gave.
	if again, err := page.acct.UpdateMfa(page.call(s1), &cairnv1.UpdateMfaRequest{Enabled: true}); err != nil || len(again.GetRecoveryCodes()) != 0 {
		t.Fatalf("second switch-on: %v %v", again, err)
	}
	limited := signIn(t, in, "bank", "pat@example.com", "passkeys only please")
	if !limited.GetSession().GetMfaPending() {
		t.Fatal("password sign-in with MFA on is not limited")
	}
	lim := limited.GetSecret()
	_, err = page.svc.ListPasskeys(page.call(lim), &cairnv1.ListPasskeysRequest{})
	wantCode(t, err, connect.CodePermissionDenied)
	if done, err := page.secondFactor(t, a, lim); err != nil || done.GetSession().GetMfaPending() {
		t.Fatalf("passkey as second factor: %v %v", done, err)
	}
	// A recovery code proves the second factor too, once.
	lim2 := signIn(t, in, "bank", "pat@example.com", "passkeys only please").GetSecret()
	if _, err := page.acct.CompleteMfa(page.call(lim2), &cairnv1.CompleteMfaRequest{Code: on.GetRecoveryCodes()[0]}); err != nil {
		t.Fatal(err)
	}
	lim3 := signIn(t, in, "bank", "pat@example.com", "passkeys only please").GetSecret()
	_, err = page.acct.CompleteMfa(page.call(lim3), &cairnv1.CompleteMfaRequest{Code: on.GetRecoveryCodes()[0]})
	wantCode(t, err, connect.CodePermissionDenied)
	// The last passkey removed: MFA is off, and the limited session is lifted.
	if _, err := page.svc.DeletePasskey(page.call(s1), &cairnv1.DeletePasskeyRequest{PasskeyId: pk.GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := page.svc.ListPasskeys(page.call(lim3), &cairnv1.ListPasskeysRequest{}); err != nil {
		t.Fatalf("limited session after MFA switched off: %v", err)
	}
	if signIn(t, in, "bank", "pat@example.com", "passkeys only please").GetSession().GetMfaPending() {
		t.Fatal("MFA still on without a second factor")
	}
	// And it cannot be switched on again without one.
	_, err = page.acct.UpdateMfa(page.call(s1), &cairnv1.UpdateMfaRequest{Enabled: true})
	wantCode(t, err, connect.CodeFailedPrecondition)
}

// TestPasskeyTwoNodes: two nodes of one instance behind one origin (as a
// load balancer puts them): a ceremony begun on one finishes on the other,
// and the answer replayed to the first is refused — the challenge is in
// the NATS KV bucket both share, taken once.
func TestPasskeyTwoNodes(t *testing.T) {
	url := startSharedNATS(t)
	a := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	b := startInstance(t, t.TempDir(), "--nats-url", url, "--master-key", clusterMasterKey)
	newProjectWithKey(t, a, "shop", "users.read")
	g, _ := guest(context.Background(), "shop", "")
	if _, err := a.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "cy@example.com", Password: "cy's password"}); err != nil {
		t.Fatal(err)
	}
	s := signIn(t, a, "shop", "cy@example.com", "cy's password").GetSecret()
	pa := sitePage(a, "shop")
	// Node b behind the same origin: same Host and Origin, b's socket.
	bAddr := strings.TrimPrefix(b.url, "http://")
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	viaB := &http.Client{Transport: &http.Transport{Protocols: p, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, bAddr)
	}}}
	cb := connect.NewClient(connecthttp.NewTransport(viaB, pa.origin+"/_cairn"))
	pb := passkeyPage{origin: pa.origin, svc: cairnv1connect.NewPasskeyServiceClient(cb), acct: cairnv1connect.NewAccountServiceClient(cb)}

	auth := passkeytest.New()
	pa.register(t, auth, s, "laptop")
	// Node b has applied the registration once it lists the passkey.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ls, err := pb.svc.ListPasskeys(pb.call(s), &cairnv1.ListPasskeysRequest{}); err == nil && len(ls.GetPasskeys()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b never saw the passkey")
		}
	}
	for _, nodes := range [][2]passkeyPage{{pa, pb}, {pb, pa}} {
		cred := nodes[0].assertion(t, auth, "", pa.origin)
		if _, err := nodes[1].finish(cred); err != nil {
			t.Fatalf("finish on the other node: %v", err)
		}
		_, err := nodes[0].finish(cred)
		wantCode(t, err, connect.CodePermissionDenied)
	}
}
