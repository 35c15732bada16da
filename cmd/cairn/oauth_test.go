package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/oauth2-proxy/mockoidc"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// oauthEnv is one Cairn instance, a real OIDC provider (mockoidc) on
// loopback and an app (an httptest server whose origin is allowed) for
// OAuth sign-in tests.
type oauthEnv struct {
	t   *testing.T
	in  *instance
	idp *mockoidc.MockOIDC
	app *httptest.Server
	// browser follows redirects only while they stay on Cairn or the
	// provider: the app's success and failure pages are where it stops.
	browser *http.Client
	keys    map[string]string // project → users.read/users.write key
}

func newOAuthEnv(t *testing.T) *oauthEnv {
	t.Helper()
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "app\n") }))
	t.Cleanup(app.Close)
	e := &oauthEnv{t: t, in: startInstance(t, t.TempDir()), idp: idp, app: app, keys: map[string]string{}}
	appURL, _ := url.Parse(app.URL)
	e.browser = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == appURL.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return e
}

// project creates a project whose provider "idp" is the mockoidc issuer and
// whose allowed origin is the app.
func (e *oauthEnv) project(id string) {
	e.t.Helper()
	e.keys[id] = newProjectWithKey(e.t, e.in, id, "users.read", "users.write")
	e.settings(id, false, nil)
}

// settings sets the project's auth settings: provider "idp" (disabled or
// not) and the sign-in methods turned off.
func (e *oauthEnv) settings(project string, providerDisabled bool, disabledMethods []string) {
	e.t.Helper()
	k, _ := as(context.Background(), e.keys[project])
	_, err := e.in.users().UpdateAuthSettings(k, &cairnv1.UpdateAuthSettingsRequest{ProjectId: project, Settings: &cairnv1.AuthSettings{
		AllowedOrigins:  []string{e.app.URL},
		DisabledMethods: disabledMethods,
		OauthProviders: []*cairnv1.OAuthProvider{{Id: "idp", Kind: "oidc", IssuerUrl: e.idp.Issuer(), ClientId: e.idp.ClientID,
			ClientSecret: e.idp.ClientSecret, Disabled: providerDisabled}},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *oauthEnv) server(project string) context.Context {
	k, _ := as(context.Background(), e.keys[project])
	return k
}

// begin calls CreateOAuth2Token as a guest of project.
func (e *oauthEnv) begin(project, success, failure string) (string, error) {
	g, _ := guest(context.Background(), project, "")
	res, err := e.in.account().CreateOAuth2Token(g, &cairnv1.CreateOAuth2TokenRequest{ProviderId: "idp", SuccessUrl: success, FailureUrl: failure})
	return res.GetRedirectUrl(), err
}

// signIn runs the browser flow as the given provider user and returns
// where Cairn finally sent the browser (on the app).
func (e *oauthEnv) signIn(project string, as *mockoidc.MockUser) *url.URL {
	e.t.Helper()
	authURL, err := e.begin(project, e.app.URL+"/done?keep=1", e.app.URL+"/failed")
	if err != nil {
		e.t.Fatalf("CreateOAuth2Token: %v", err)
	}
	e.idp.QueueUser(as)
	return e.follow(authURL)
}

// follow plays the browser from u to the app.
func (e *oauthEnv) follow(u string) *url.URL {
	e.t.Helper()
	res, err := e.browser.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(res.Body)
		e.t.Fatalf("flow ended with %s: %s", res.Status, body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		e.t.Errorf("callback answer is cacheable: %q", res.Header.Get("Cache-Control"))
	}
	loc, err := res.Location()
	if err != nil {
		e.t.Fatal(err)
	}
	if loc.Scheme+"://"+loc.Host != e.app.URL {
		e.t.Fatalf("redirected off the app: %s", loc)
	}
	return loc
}

// succeeded checks the final redirect went to the success URL and returns
// the user id and secret it carries.
func (e *oauthEnv) succeeded(loc *url.URL) (string, string) {
	e.t.Helper()
	q := loc.Query()
	if loc.Path != "/done" || q.Get("keep") != "1" || q.Get("user_id") == "" || q.Get("secret") == "" {
		e.t.Fatalf("want the success URL with user_id and secret, got %s", loc)
	}
	return q.Get("user_id"), q.Get("secret")
}

func (e *oauthEnv) failed(loc *url.URL, code string) {
	e.t.Helper()
	q := loc.Query()
	if loc.Path != "/failed" || q.Get("error") != code || q.Has("secret") || q.Has("user_id") {
		e.t.Fatalf("want the failure URL with error=%s, got %s", code, loc)
	}
}

// session exchanges the success URL's secret for a session.
func (e *oauthEnv) session(project, userID, secret string) (*cairnv1.CreateSessionResponse, error) {
	g, _ := guest(context.Background(), project, "")
	return e.in.account().CreateSession(g, &cairnv1.CreateSessionRequest{UserId: userID, Secret: secret})
}

func (e *oauthEnv) account(project, session string) *cairnv1.User {
	e.t.Helper()
	me, _ := guest(context.Background(), project, session)
	got, err := e.in.account().GetAccount(me, &cairnv1.GetAccountRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	return got.GetUser()
}

func identityOf(u *cairnv1.User, provider string) *cairnv1.Identity {
	for _, i := range u.GetIdentities() {
		if i.GetProviderId() == provider {
			return i
		}
	}
	return nil
}

func TestOAuthSignIn(t *testing.T) {
	e := newOAuthEnv(t)
	e.project("shop")
	ann := &mockoidc.MockUser{Subject: "ann-1", Email: "Ann@Example.com", EmailVerified: true, PreferredUsername: "ann"}

	// A new user: created from the identity, no password, email verified
	// because the provider said so.
	userID, secret := e.succeeded(e.signIn("shop", ann))
	s, err := e.session("shop", userID, secret)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if s.GetSession().GetProvider() != "oauth2" || s.GetSession().GetProviderId() != "idp" || s.GetSession().GetUserId() != userID {
		t.Fatalf("session %v", s.GetSession())
	}
	u := e.account("shop", s.GetSecret())
	if u.GetId() != userID || u.GetEmail() != "Ann@Example.com" || !u.GetEmailVerified() || u.GetHasPassword() || u.GetName() != "ann" {
		t.Fatalf("account %v", u)
	}
	if i := identityOf(u, "idp"); i == nil || i.GetSubject() != "ann-1" || i.GetEmail() != "Ann@Example.com" {
		t.Fatalf("identities %v", u.GetIdentities())
	}
	// The secret is single-use.
	_, err = e.session("shop", userID, secret)
	wantCode(t, err, connect.CodeUnauthenticated)

	// Signing in again is the same user, whatever the provider now says
	// about the email.
	again, secret2 := e.succeeded(e.signIn("shop", &mockoidc.MockUser{Subject: "ann-1", Email: "ann.new@example.com"}))
	if again != userID {
		t.Fatalf("second sign-in made user %s, want %s", again, userID)
	}
	if _, err := e.session("shop", again, secret2); err != nil {
		t.Fatal(err)
	}

	// ListIdentities; the only way to sign in cannot be removed.
	me, _ := guest(context.Background(), "shop", s.GetSecret())
	ids, err := e.in.account().ListIdentities(me, &cairnv1.ListIdentitiesRequest{})
	if err != nil || len(ids.GetIdentities()) != 1 || ids.GetIdentities()[0].GetSubject() != "ann-1" {
		t.Fatalf("ListIdentities: %v %v", ids, err)
	}
	_, err = e.in.account().DeleteIdentity(me, &cairnv1.DeleteIdentityRequest{ProviderId: "idp"})
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = e.in.account().DeleteIdentity(me, &cairnv1.DeleteIdentityRequest{ProviderId: "other"})
	wantCode(t, err, connect.CodeNotFound)

	// With a password set, the identity can go; the provider account is free
	// again and (both emails verified) links back to the same user.
	if _, err := e.in.account().UpdatePassword(me, &cairnv1.UpdatePasswordRequest{Password: "a long new password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.in.account().DeleteIdentity(me, &cairnv1.DeleteIdentityRequest{ProviderId: "idp"}); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.in.account().ListIdentities(me, &cairnv1.ListIdentitiesRequest{}); err != nil || len(ids.GetIdentities()) != 0 {
		t.Fatalf("after DeleteIdentity: %v %v", ids, err)
	}
	relinked, _ := e.succeeded(e.signIn("shop", ann))
	if relinked != userID {
		t.Fatalf("re-link made user %s, want %s", relinked, userID)
	}

	// A blocked user is sent to the failure URL.
	srv := e.server("shop")
	blocked := true
	if _, err := e.in.users().UpdateUser(srv, &cairnv1.UpdateUserRequest{ProjectId: "shop", UserId: userID, Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}
	e.failed(e.signIn("shop", ann), "user_blocked")

	// Deleting the user releases the identity: the next sign-in creates a
	// new user.
	if _, err := e.in.users().DeleteUser(srv, &cairnv1.DeleteUserRequest{ProjectId: "shop", UserId: userID}); err != nil {
		t.Fatal(err)
	}
	fresh, _ := e.succeeded(e.signIn("shop", ann))
	if fresh == userID {
		t.Fatal("a deleted user's identity signed in again")
	}
}

func TestOAuthLinking(t *testing.T) {
	e := newOAuthEnv(t)
	e.project("shop")
	g, _ := guest(context.Background(), "shop", "")
	srv := e.server("shop")
	verified := true

	// An existing password account whose email is verified, and a provider
	// that verified the same address: linked.
	bob, err := e.in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "bob@example.com", Password: "bob's long password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.in.users().UpdateUser(srv, &cairnv1.UpdateUserRequest{ProjectId: "shop", UserId: bob.GetUser().GetId(), EmailVerified: &verified}); err != nil {
		t.Fatal(err)
	}
	userID, secret := e.succeeded(e.signIn("shop", &mockoidc.MockUser{Subject: "bob-1", Email: "BOB@example.com", EmailVerified: true}))
	if userID != bob.GetUser().GetId() {
		t.Fatalf("linked to %s, want the existing account %s", userID, bob.GetUser().GetId())
	}
	s, err := e.session("shop", userID, secret)
	if err != nil {
		t.Fatal(err)
	}
	u := e.account("shop", s.GetSecret())
	if !u.GetHasPassword() || identityOf(u, "idp").GetSubject() != "bob-1" {
		t.Fatalf("linked account %v", u)
	}

	// CVE-2024-38351: an account whose email is NOT verified (whoever
	// registered the address first) is never linked, even when the provider
	// verified the address; and the sign-in creates no second account.
	carol, err := e.in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "carol@example.com", Password: "squatter's password"})
	if err != nil {
		t.Fatal(err)
	}
	e.failed(e.signIn("shop", &mockoidc.MockUser{Subject: "carol-1", Email: "carol@example.com", EmailVerified: true}), "account_exists")
	got, err := e.in.users().GetUser(srv, &cairnv1.GetUserRequest{ProjectId: "shop", UserId: carol.GetUser().GetId()})
	if err != nil || len(got.GetUser().GetIdentities()) != 0 {
		t.Fatalf("unverified account was linked: %v %v", got, err)
	}
	// And the other way round: the account is verified, the provider does
	// not vouch for the address.
	e.failed(e.signIn("shop", &mockoidc.MockUser{Subject: "mallory", Email: "bob@example.com", EmailVerified: false}), "account_exists")
	list, err := e.in.users().ListUsers(srv, &cairnv1.ListUsersRequest{ProjectId: "shop"})
	if err != nil || len(list.GetUsers()) != 2 {
		t.Fatalf("users after refused sign-ins: %v %v", list, err)
	}
	// A provider that shares no email cannot create an account.
	e.failed(e.signIn("shop", &mockoidc.MockUser{Subject: "anon-1"}), "email_required")

	// A new user whose email the provider did not verify: created, not
	// verified.
	dave, secret := e.succeeded(e.signIn("shop", &mockoidc.MockUser{Subject: "dave-1", Email: "dave@example.com"}))
	s, err = e.session("shop", dave, secret)
	if err != nil {
		t.Fatal(err)
	}
	if u := e.account("shop", s.GetSecret()); u.GetEmailVerified() {
		t.Fatalf("unverified provider email counted as verified: %v", u)
	}
}

func TestOAuthRefusals(t *testing.T) {
	e := newOAuthEnv(t)
	e.project("shop")
	e.project("other")

	// Redirect URLs must be on an allowed origin.
	_, err := e.begin("shop", "https://evil.example/done", e.app.URL+"/failed")
	wantCode(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "success_url") {
		t.Fatalf("error does not name success_url: %v", err)
	}
	_, err = e.begin("shop", e.app.URL+"/done", "https://evil.example/failed")
	wantCode(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "failure_url") {
		t.Fatalf("error does not name failure_url: %v", err)
	}
	// An unknown provider.
	g, _ := guest(context.Background(), "shop", "")
	_, err = e.in.account().CreateOAuth2Token(g, &cairnv1.CreateOAuth2TokenRequest{ProviderId: "nope", SuccessUrl: e.app.URL, FailureUrl: e.app.URL})
	wantCode(t, err, connect.CodeNotFound)

	// Project A's state on project B's callback (same provider id there):
	// a plain 400, and A's own callback still completes.
	authURL, err := e.begin("shop", e.app.URL+"/done?keep=1", e.app.URL+"/failed")
	if err != nil {
		t.Fatal(err)
	}
	e.idp.QueueUser(&mockoidc.MockUser{Subject: "eve-1", Email: "eve@example.com", EmailVerified: true})
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	callback, err := res.Location()
	if err != nil || !strings.HasPrefix(callback.String(), e.in.url+"/v1/oauth2/shop/idp/callback?") {
		t.Fatalf("provider redirected to %v (%v)", callback, err)
	}
	replayed := *callback
	replayed.Path = "/v1/oauth2/other/idp/callback"
	res, err = noFollow.Get(replayed.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Fatalf("A's state on B's callback: %s %q", res.Status, body)
	}
	for _, bad := range []string{"/v1/oauth2/shop/idp/callback?state=forged&code=x", "/v1/oauth2/shop/nope/callback?" + callback.RawQuery,
		"/v1/oauth2/missing/idp/callback?" + callback.RawQuery} {
		if res, body := e.in.httpDo(t, "GET", bad, "", nil, nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s", bad, res.StatusCode, body)
		}
	}
	e.succeeded(e.follow(callback.String()))
	// The same callback again: the code is spent at the provider.
	e.failed(e.follow(callback.String()), "server_error")

	// Turned off during a sign-in: the callback sends the browser to the
	// failure URL without talking to the provider.
	authURL, err = e.begin("shop", e.app.URL+"/done?keep=1", e.app.URL+"/failed")
	if err != nil {
		t.Fatal(err)
	}
	e.settings("shop", true, nil)
	e.failed(e.follow(authURL), "method_disabled")

	// A disabled provider or a disabled oauth2 method refuses to start.
	_, err = e.begin("shop", e.app.URL+"/done", e.app.URL+"/failed")
	wantCode(t, err, connect.CodeFailedPrecondition)
	e.settings("shop", false, []string{"oauth2"})
	_, err = e.begin("shop", e.app.URL+"/done", e.app.URL+"/failed")
	wantCode(t, err, connect.CodeFailedPrecondition)
	e.settings("shop", false, nil)
	if _, err := e.begin("shop", e.app.URL+"/done", e.app.URL+"/failed"); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}
}

// TestOAuthConcurrentFirstSignIn completes two sign-ins of one new provider
// account at once: the identity claim lets one create the user, and the
// other signs that user in.
func TestOAuthConcurrentFirstSignIn(t *testing.T) {
	e := newOAuthEnv(t)
	e.project("shop")
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var callbacks []string
	for range 2 {
		authURL, err := e.begin("shop", e.app.URL+"/done?keep=1", e.app.URL+"/failed")
		if err != nil {
			t.Fatal(err)
		}
		e.idp.QueueUser(&mockoidc.MockUser{Subject: "zoe-1", Email: "zoe@example.com", EmailVerified: true})
		res, err := noFollow.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		callbacks = append(callbacks, res.Header.Get("Location"))
	}
	type result struct {
		loc *url.URL
		err error
	}
	results := make(chan result, len(callbacks))
	for _, cb := range callbacks {
		go func() {
			res, err := e.browser.Get(cb)
			if err != nil {
				results <- result{err: err}
				return
			}
			res.Body.Close()
			loc, err := res.Location()
			results <- result{loc, err}
		}()
	}
	var users []string
	for range callbacks {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		id, secret := e.succeeded(r.loc)
		if _, err := e.session("shop", id, secret); err != nil {
			t.Fatal(err)
		}
		users = append(users, id)
	}
	if users[0] != users[1] {
		t.Fatalf("one provider account became two users: %v", users)
	}
	list, err := e.in.users().ListUsers(e.server("shop"), &cairnv1.ListUsersRequest{ProjectId: "shop"})
	if err != nil || len(list.GetUsers()) != 1 {
		t.Fatalf("users: %v %v", list, err)
	}
}
