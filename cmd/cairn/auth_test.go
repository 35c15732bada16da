package main

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain/mfa"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// newProjectWithKey creates a project and a key with the given scopes.
func newProjectWithKey(t testing.TB, in *instance, project string, scopes ...string) string {
	t.Helper()
	op, _ := as(context.Background(), testAdminKey)
	if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: project, Name: project}); err != nil {
		t.Fatal(err)
	}
	k, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: project, Name: "server", Scopes: &cairnv1.Scopes{Scopes: scopes}})
	if err != nil {
		t.Fatal(err)
	}
	return k.GetSecret()
}

func signIn(t *testing.T, in *instance, project, email, password string) *cairnv1.CreateEmailPasswordSessionResponse {
	t.Helper()
	g, _ := guest(context.Background(), project, "")
	s, err := in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	return s
}

func TestAccountLifecycle(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	newProjectWithKey(t, in, "shop", "users.read", "users.write")
	g, _ := guest(ctx, "shop", "")

	// Sign up; the password policy names the field.
	_, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "ann@example.com", Password: "short"})
	wantCode(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "password") {
		t.Fatalf("policy error does not name the field: %v", err)
	}
	acc, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "ann@example.com", Password: "correct horse battery", Name: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	if acc.GetUser().GetEmail() != "ann@example.com" || !acc.GetUser().GetHasPassword() || acc.GetUser().GetEmailVerified() {
		t.Fatalf("bad account %v", acc)
	}
	// Signing up again with a taken address answers like a new account: no
	// enumeration. The owner still signs in with their own password.
	again, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "ANN@example.com", Password: "another password 1"})
	if err != nil || again.GetUser().GetId() == acc.GetUser().GetId() {
		t.Fatalf("taken address: %v %v", again, err)
	}

	// Sign in: a wrong password and an unknown email answer alike.
	_, err = in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: "ann@example.com", Password: "wrong password"})
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err2 := in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: "nobody@example.com", Password: "wrong password"})
	wantCode(t, err2, connect.CodeUnauthenticated)
	if err.Error() != err2.Error() {
		t.Fatalf("sign-in errors differ: %q vs %q", err, err2)
	}
	s1 := signIn(t, in, "shop", "Ann@Example.com", "correct horse battery")
	if !strings.HasPrefix(s1.GetSecret(), "cs_shop_") || s1.GetSession().GetProvider() != "email" || !s1.GetSession().GetCurrent() {
		t.Fatalf("bad session %v", s1)
	}

	// The session works as a bearer credential, and as the project's cookie.
	me, _ := guest(ctx, "shop", s1.GetSecret())
	got, err := in.account().GetAccount(me, &cairnv1.GetAccountRequest{})
	if err != nil || got.GetUser().GetId() != acc.GetUser().GetId() {
		t.Fatalf("get account: %v %v", got, err)
	}
	ck, info := guest(ctx, "shop", "")
	info.RequestHeader().Set("Cookie", "cairn_session_shop="+s1.GetSecret())
	if _, err := in.account().GetAccount(ck, &cairnv1.GetAccountRequest{}); err != nil {
		t.Fatalf("cookie session: %v", err)
	}
	_, err = in.account().GetAccount(g, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)

	// Updates: name, prefs, password (needs the old one), email (needs the password).
	if u, err := in.account().UpdateName(me, &cairnv1.UpdateNameRequest{Name: "Ann B."}); err != nil || u.GetUser().GetName() != "Ann B." {
		t.Fatalf("update name: %v %v", u, err)
	}
	prefs, _ := structpb.NewStruct(map[string]any{"theme": "dark", "n": 3})
	if u, err := in.account().UpdatePrefs(me, &cairnv1.UpdatePrefsRequest{Prefs: prefs}); err != nil || u.GetUser().GetPrefs().GetFields()["theme"].GetStringValue() != "dark" {
		t.Fatalf("update prefs: %v %v", u, err)
	}
	_, err = in.account().UpdatePassword(me, &cairnv1.UpdatePasswordRequest{Password: "new password 123", OldPassword: "nope"})
	wantCode(t, err, connect.CodePermissionDenied)
	if _, err := in.account().UpdatePassword(me, &cairnv1.UpdatePasswordRequest{Password: "new password 123", OldPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	_, err = in.account().UpdateEmail(me, &cairnv1.UpdateEmailRequest{Email: "ann@new.example", Password: "correct horse battery"})
	wantCode(t, err, connect.CodePermissionDenied)
	if u, err := in.account().UpdateEmail(me, &cairnv1.UpdateEmailRequest{Email: "ann@new.example", Password: "new password 123"}); err != nil || u.GetUser().GetEmail() != "ann@new.example" {
		t.Fatalf("update email: %v %v", u, err)
	}
	// The old address is free again, the new one taken.
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "ann@example.com", Password: "bob's password"}); err != nil {
		t.Fatal(err)
	}
	bob := signIn(t, in, "shop", "ann@example.com", "bob's password")
	bobCtx, _ := guest(ctx, "shop", bob.GetSecret())
	_, err = in.account().UpdateEmail(bobCtx, &cairnv1.UpdateEmailRequest{Email: "Ann@New.example", Password: "bob's password"})
	wantCode(t, err, connect.CodeAlreadyExists)

	// Sessions: list, sign out one, sign out everywhere else.
	s2 := signIn(t, in, "shop", "ann@new.example", "new password 123")
	s3 := signIn(t, in, "shop", "ann@new.example", "new password 123")
	ls, err := in.account().ListSessions(me, &cairnv1.ListSessionsRequest{})
	if err != nil || len(ls.GetSessions()) != 3 {
		t.Fatalf("list sessions: %v %v", ls, err)
	}
	ctx2, _ := guest(ctx, "shop", s2.GetSecret())
	if _, err := in.account().DeleteSession(ctx2, &cairnv1.DeleteSessionRequest{SessionId: "current"}); err != nil {
		t.Fatal(err)
	}
	_, err = in.account().GetAccount(ctx2, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	del, err := in.account().DeleteSessions(me, &cairnv1.DeleteSessionsRequest{KeepCurrent: true})
	if err != nil || del.GetDeleted() != 1 {
		t.Fatalf("delete others: %v %v", del, err)
	}
	ctx3, _ := guest(ctx, "shop", s3.GetSecret())
	_, err = in.account().GetAccount(ctx3, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	if _, err := in.account().GetAccount(me, &cairnv1.GetAccountRequest{}); err != nil {
		t.Fatalf("kept session refused: %v", err)
	}

	// Anonymous: a guest user, converted to a full account later.
	anon, err := in.account().CreateAnonymousSession(g, &cairnv1.CreateAnonymousSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	actx, _ := guest(ctx, "shop", anon.GetSecret())
	a, err := in.account().GetAccount(actx, &cairnv1.GetAccountRequest{})
	if err != nil || !a.GetUser().GetAnonymous() || a.GetUser().GetEmail() != "" {
		t.Fatalf("anonymous account: %v %v", a, err)
	}
	conv, err := in.account().UpdateEmail(actx, &cairnv1.UpdateEmailRequest{Email: "anon@example.com", Password: "anon password 1"})
	if err != nil || conv.GetUser().GetAnonymous() || !conv.GetUser().GetHasPassword() {
		t.Fatalf("convert: %v %v", conv, err)
	}
	signIn(t, in, "shop", "anon@example.com", "anon password 1")

	// Delete the account: its sessions stop working at once.
	if _, err := in.account().DeleteAccount(actx, &cairnv1.DeleteAccountRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = in.account().GetAccount(actx, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: "anon@example.com", Password: "anon password 1"})
	wantCode(t, err, connect.CodeUnauthenticated)

	// No project named and no session: a clear error.
	_, err = in.account().CreateAnonymousSession(ctx, &cairnv1.CreateAnonymousSessionRequest{})
	wantCode(t, err, connect.CodeInvalidArgument)

	in.stop()
	n := openStopped(t, dir)
	defer n.close()
	checkRebuild(t, n, "shop", "accounts")
}

func TestUsersServerSide(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir)
	ctx := context.Background()
	key := newProjectWithKey(t, in, "crm", "users.read", "users.write")
	k, _ := as(ctx, key)

	// Import a bcrypt hash from another system: sign-in works and upgrades it.
	legacy, err := bcrypt.GenerateFromPassword([]byte("legacy pass 42"), 10)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := in.users().CreateUser(k, &cairnv1.CreateUserRequest{ProjectId: "crm", UserId: "legacy-1", Email: "old@example.com",
		PasswordHash: string(legacy), Labels: []string{"vip"}, EmailVerified: true})
	if err != nil || imp.GetUser().GetId() != "legacy-1" || !imp.GetUser().GetEmailVerified() {
		t.Fatalf("import: %v %v", imp, err)
	}
	_, err = in.users().CreateUser(k, &cairnv1.CreateUserRequest{ProjectId: "crm", Email: "x@example.com", PasswordHash: "$md5$nope"})
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = in.users().CreateUser(k, &cairnv1.CreateUserRequest{ProjectId: "crm", Email: "OLD@example.com"})
	wantCode(t, err, connect.CodeAlreadyExists)
	s := signIn(t, in, "crm", "old@example.com", "legacy pass 42")

	// Create, list and search.
	for _, e := range []string{"alice@corp.example", "bob@corp.example", "carol@home.example"} {
		if _, err := in.users().CreateUser(k, &cairnv1.CreateUserRequest{ProjectId: "crm", Email: e, Password: "password for " + e}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := in.users().ListUsers(k, &cairnv1.ListUsersRequest{ProjectId: "crm", PageSize: 2})
	if err != nil || len(all.GetUsers()) != 2 || all.GetNextPageToken() == "" {
		t.Fatalf("list: %v %v", all, err)
	}
	found, err := in.users().ListUsers(k, &cairnv1.ListUsersRequest{ProjectId: "crm", Search: "CORP"})
	if err != nil || len(found.GetUsers()) != 2 {
		t.Fatalf("search: %v %v", found, err)
	}

	// Sessions from the server side; blocking signs the user out at once.
	cs, err := in.users().CreateUserSession(k, &cairnv1.CreateUserSessionRequest{ProjectId: "crm", UserId: "legacy-1"})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := in.users().ListUserSessions(k, &cairnv1.ListUserSessionsRequest{ProjectId: "crm", UserId: "legacy-1"})
	if err != nil || len(ss.GetSessions()) != 2 {
		t.Fatalf("list user sessions: %v %v", ss, err)
	}
	blocked := true
	if _, err := in.users().UpdateUser(k, &cairnv1.UpdateUserRequest{ProjectId: "crm", UserId: "legacy-1", Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{s.GetSecret(), cs.GetSecret()} {
		c, _ := guest(ctx, "crm", tok)
		_, err = in.account().GetAccount(c, &cairnv1.GetAccountRequest{})
		wantCode(t, err, connect.CodeUnauthenticated)
	}
	g, _ := guest(ctx, "crm", "")
	_, err = in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: "old@example.com", Password: "legacy pass 42"})
	wantCode(t, err, connect.CodePermissionDenied)

	// Labels and verification flag.
	labels := &cairnv1.Labels{Labels: []string{"admin", "vip"}}
	up, err := in.users().UpdateUser(k, &cairnv1.UpdateUserRequest{ProjectId: "crm", UserId: "legacy-1", Labels: labels})
	if err != nil || len(up.GetUser().GetLabels()) != 2 {
		t.Fatalf("labels: %v %v", up, err)
	}
	_, err = in.users().UpdateUser(k, &cairnv1.UpdateUserRequest{ProjectId: "crm", UserId: "legacy-1", Labels: &cairnv1.Labels{Labels: []string{"no spaces"}}})
	wantCode(t, err, connect.CodeInvalidArgument)

	// Max sessions: the oldest is evicted.
	maxS := &cairnv1.AuthSettings{MaxSessions: 2, AllowedOrigins: []string{"https://app.example"}}
	if _, err := in.users().UpdateAuthSettings(k, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "crm", Settings: maxS}); err != nil {
		t.Fatal(err)
	}
	first := signIn(t, in, "crm", "alice@corp.example", "password for alice@corp.example")
	signIn(t, in, "crm", "alice@corp.example", "password for alice@corp.example")
	signIn(t, in, "crm", "alice@corp.example", "password for alice@corp.example")
	fc, _ := guest(ctx, "crm", first.GetSecret())
	_, err = in.account().GetAccount(fc, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)

	// Settings: secrets go in, never come out.
	st := &cairnv1.AuthSettings{Smtp: &cairnv1.SmtpSettings{Host: "smtp.example", Port: 587, Username: "u", Password: "hunter2", SenderEmail: "no-reply@example.com"}}
	res, err := in.users().UpdateAuthSettings(k, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "crm", Settings: st})
	if err != nil || !res.GetSettings().GetSmtp().GetPasswordSet() || res.GetSettings().GetSmtp().GetPassword() != "" {
		t.Fatalf("settings: %v %v", res, err)
	}
	_, err = in.users().UpdateAuthSettings(k, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "crm", Settings: &cairnv1.AuthSettings{AllowedOrigins: []string{"https://app.example/path"}}})
	wantCode(t, err, connect.CodeInvalidArgument)

	// Delete: the user and their sessions go; the address is free again.
	alice := found.GetUsers()[0]
	if _, err := in.users().DeleteUser(k, &cairnv1.DeleteUserRequest{ProjectId: "crm", UserId: alice.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = in.users().GetUser(k, &cairnv1.GetUserRequest{ProjectId: "crm", UserId: alice.GetId()})
	wantCode(t, err, connect.CodeNotFound)
	if _, err := in.users().CreateUser(k, &cairnv1.CreateUserRequest{ProjectId: "crm", Email: alice.GetEmail()}); err != nil {
		t.Fatalf("address of a deleted user not free: %v", err)
	}

	in.stop()
	n := openStopped(t, dir)
	defer n.close()
	u, err := n.reads.User("crm", "legacy-1")
	if err != nil || !strings.HasPrefix(u.GetPasswordHash(), "$argon2id$") {
		t.Fatalf("hash not upgraded on sign-in: %q %v", u.GetPasswordHash(), err)
	}
	set, err := n.reads.AuthSettings("crm")
	if err != nil || len(set.GetSmtp().GetPasswordSealed()) == 0 || strings.Contains(string(set.GetSmtp().GetPasswordSealed()), "hunter2") {
		t.Fatalf("stored smtp password not sealed: %v", err)
	}
	checkRebuild(t, n, "crm", "users")
}

func TestMFAAndJWT(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	newProjectWithKey(t, in, "bank", "users.read")
	newProjectWithKey(t, in, "other", "users.read")
	g, _ := guest(ctx, "bank", "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "eve@example.com", Password: "two factors please"}); err != nil {
		t.Fatal(err)
	}
	s1 := signIn(t, in, "bank", "eve@example.com", "two factors please")
	me, _ := guest(ctx, "bank", s1.GetSecret())

	// Enrol an authenticator: the code proves it, recovery codes come back once.
	totp, err := in.account().CreateTotp(me, &cairnv1.CreateTotpRequest{})
	if err != nil || !strings.HasPrefix(totp.GetUri(), "otpauth://totp/") {
		t.Fatalf("create totp: %v %v", totp, err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(totp.GetSecret())
	if err != nil {
		t.Fatal(err)
	}
	step := mfa.Step(time.Now())
	_, err = in.account().VerifyTotp(me, &cairnv1.VerifyTotpRequest{Code: "000000"})
	if mfa.Code(secret, step) != "000000" {
		wantCode(t, err, connect.CodePermissionDenied)
	}
	rc, err := in.account().VerifyTotp(me, &cairnv1.VerifyTotpRequest{Code: mfa.Code(secret, step)})
	if err != nil || len(rc.GetRecoveryCodes()) != 10 {
		t.Fatalf("verify totp: %v %v", rc, err)
	}
	acc, err := in.account().GetAccount(me, &cairnv1.GetAccountRequest{})
	if err != nil || !acc.GetUser().GetMfaEnabled() {
		t.Fatalf("mfa not enabled: %v %v", acc, err)
	}

	// A new sign-in is limited until the second factor.
	s2 := signIn(t, in, "bank", "eve@example.com", "two factors please")
	if !s2.GetSession().GetMfaPending() {
		t.Fatalf("session not limited: %v", s2.GetSession())
	}
	lim, _ := guest(ctx, "bank", s2.GetSecret())
	if _, err := in.account().GetAccount(lim, &cairnv1.GetAccountRequest{}); err != nil {
		t.Fatalf("a limited session may read the account: %v", err)
	}
	_, err = in.account().UpdateName(lim, &cairnv1.UpdateNameRequest{Name: "x"})
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = in.account().CreateJWT(lim, &cairnv1.CreateJWTRequest{})
	wantCode(t, err, connect.CodePermissionDenied)
	// The code already used to enrol is not accepted again.
	_, err = in.account().CompleteMfa(lim, &cairnv1.CompleteMfaRequest{Code: mfa.Code(secret, step)})
	wantCode(t, err, connect.CodePermissionDenied)
	done, err := in.account().CompleteMfa(lim, &cairnv1.CompleteMfaRequest{Code: rc.GetRecoveryCodes()[0]})
	if err != nil || done.GetSession().GetMfaPending() || !slices.Contains(done.GetSession().GetFactors(), "recovery-code") {
		t.Fatalf("complete mfa: %v %v", done, err)
	}
	if _, err := in.account().UpdateName(lim, &cairnv1.UpdateNameRequest{Name: "Eve"}); err != nil {
		t.Fatalf("completed session still limited: %v", err)
	}
	// A recovery code works once.
	s3 := signIn(t, in, "bank", "eve@example.com", "two factors please")
	lim3, _ := guest(ctx, "bank", s3.GetSecret())
	_, err = in.account().CompleteMfa(lim3, &cairnv1.CompleteMfaRequest{Code: rc.GetRecoveryCodes()[0]})
	wantCode(t, err, connect.CodePermissionDenied)

	// JWTs: server code acts as the user, in this project only, while the
	// session lives; the JWKS verifies them.
	j, err := in.account().CreateJWT(me, &cairnv1.CreateJWTRequest{TtlSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	jctx, _ := guest(ctx, "bank", j.GetJwt())
	if a, err := in.account().GetAccount(jctx, &cairnv1.GetAccountRequest{}); err != nil || a.GetUser().GetEmail() != "eve@example.com" {
		t.Fatalf("jwt: %v %v", a, err)
	}
	_, err = in.account().CreateJWT(jctx, &cairnv1.CreateJWTRequest{})
	wantCode(t, err, connect.CodePermissionDenied)
	octx, _ := guest(ctx, "other", j.GetJwt())
	_, err = in.account().GetAccount(octx, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	res, err := http.Get(in.url + "/v1/projects/bank/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct{ Kid, Kty, Crv string } `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&jwks); err != nil || len(jwks.Keys) == 0 || jwks.Keys[0].Crv != "Ed25519" {
		t.Fatalf("jwks: %v %v", jwks, err)
	}
	res.Body.Close()
	header, _, _ := strings.Cut(j.GetJwt(), ".")
	hb, _ := base64.RawURLEncoding.DecodeString(header)
	if !strings.Contains(string(hb), jwks.Keys[0].Kid) {
		t.Fatalf("token kid not in the JWKS: %s vs %v", hb, jwks)
	}
	if _, err := in.account().DeleteSession(me, &cairnv1.DeleteSessionRequest{SessionId: "current"}); err != nil {
		t.Fatal(err)
	}
	_, err = in.account().GetAccount(jctx, &cairnv1.GetAccountRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)

	// Turning MFA off needs a code.
	dctx, _ := guest(ctx, "bank", s2.GetSecret())
	_, err = in.account().DeleteTotp(dctx, &cairnv1.DeleteTotpRequest{Code: "abcde-fghij"})
	wantCode(t, err, connect.CodePermissionDenied)
	if _, err := in.account().DeleteTotp(dctx, &cairnv1.DeleteTotpRequest{Code: rc.GetRecoveryCodes()[1]}); err != nil {
		t.Fatal(err)
	}
}

func TestSignInRateLimit(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	newProjectWithKey(t, in, "web", "users.read")
	g, info := guest(ctx, "web", "")
	var err error
	for i := 0; i < 20; i++ {
		_, err = in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: "target@example.com", Password: "guess number " + strconv.Itoa(i)})
		if connect.CodeOf(err) == connect.CodeResourceExhausted {
			break
		}
		wantCode(t, err, connect.CodeUnauthenticated)
	}
	wantCode(t, err, connect.CodeResourceExhausted)
	if info.ResponseHeader().Get("Retry-After") == "" {
		t.Fatalf("no Retry-After on a refused sign-in: %v", info.ResponseHeader())
	}
	if !strings.Contains(err.Error(), "this email") {
		t.Fatalf("limit not named: %v", err)
	}
	// Another address is not held back by this one's limit.
	_, err = in.account().CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: "other@example.com", Password: "whatever 123"})
	wantCode(t, err, connect.CodeUnauthenticated)
}

// TestTeamsWithSessions: end users manage teams through their sessions (and
// JWTs) under the owner rules; deleting a user removes their memberships.
func TestTeamsWithSessions(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	key := newProjectWithKey(t, in, "club", "teams.read", "teams.write", "users.read", "users.write")
	k, _ := as(ctx, key)
	g, _ := guest(ctx, "club", "")
	for _, e := range []string{"owner@example.com", "member@example.com"} {
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: e, Password: "password of " + e}); err != nil {
			t.Fatal(err)
		}
	}
	own := signIn(t, in, "club", "owner@example.com", "password of owner@example.com")
	mem := signIn(t, in, "club", "member@example.com", "password of member@example.com")
	oc, _ := guest(ctx, "club", own.GetSecret())
	mc, _ := guest(ctx, "club", mem.GetSecret())

	if _, err := in.teams().CreateTeam(oc, &cairnv1.CreateTeamRequest{ProjectId: "club", TeamId: "chess", Name: "Chess"}); err != nil {
		t.Fatal(err)
	}
	_, err := in.teams().GetTeam(mc, &cairnv1.GetTeamRequest{ProjectId: "club", TeamId: "chess"})
	wantCode(t, err, connect.CodeNotFound)
	// A server adds the member directly; the member now sees the team.
	if _, err := in.teams().CreateMembership(k, &cairnv1.CreateMembershipRequest{ProjectId: "club", TeamId: "chess",
		UserId: mem.GetSession().GetUserId(), Roles: []string{"player"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := in.teams().ListTeams(mc, &cairnv1.ListTeamsRequest{ProjectId: "club"})
	if err != nil || len(lt.GetTeams()) != 1 {
		t.Fatalf("member's teams: %v %v", lt, err)
	}
	// A member is not an owner.
	newName := "Mine"
	_, err = in.teams().UpdateTeam(mc, &cairnv1.UpdateTeamRequest{ProjectId: "club", TeamId: "chess", Name: newName})
	wantCode(t, err, connect.CodePermissionDenied)
	// The owner acts through a JWT as well.
	j, err := in.account().CreateJWT(oc, &cairnv1.CreateJWTRequest{})
	if err != nil {
		t.Fatal(err)
	}
	jc, _ := guest(ctx, "club", j.GetJwt())
	if _, err := in.teams().UpdateTeam(jc, &cairnv1.UpdateTeamRequest{ProjectId: "club", TeamId: "chess", Name: "Chess club"}); err != nil {
		t.Fatalf("owner by JWT: %v", err)
	}
	// A session cannot name another project in the request.
	_, err = in.teams().ListTeams(oc, &cairnv1.ListTeamsRequest{ProjectId: "other"})
	wantCode(t, err, connect.CodePermissionDenied)
	// Deleting the member removes their membership.
	if _, err := in.users().DeleteUser(k, &cairnv1.DeleteUserRequest{ProjectId: "club", UserId: mem.GetSession().GetUserId()}); err != nil {
		t.Fatal(err)
	}
	ms, err := in.teams().ListMemberships(k, &cairnv1.ListMembershipsRequest{ProjectId: "club", TeamId: "chess"})
	if err != nil || len(ms.GetMemberships()) != 1 {
		t.Fatalf("memberships after deleting a member: %v %v", ms, err)
	}
}

// TestAuthEventsRedacted: the audit log shows user events without password
// hashes, session or token hashes, or sealed secrets.
func TestAuthEventsRedacted(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	key := newProjectWithKey(t, in, "audit", "events.read", "users.write")
	k, _ := as(ctx, key)
	g, _ := guest(ctx, "audit", "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "a@example.com", Password: "audited password"}); err != nil {
		t.Fatal(err)
	}
	s := signIn(t, in, "audit", "a@example.com", "audited password")
	me, _ := guest(ctx, "audit", s.GetSecret())
	if _, err := in.account().CreateTotp(me, &cairnv1.CreateTotpRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.users().UpdateAuthSettings(k, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "audit", Settings: &cairnv1.AuthSettings{
		Smtp: &cairnv1.SmtpSettings{Host: "smtp.example", Port: 25, Password: "smtp secret", SenderEmail: "x@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	evs, err := in.events().ListEvents(k, &cairnv1.ListEventsRequest{ProjectId: "audit"})
	if err != nil || len(evs.GetEvents()) < 5 {
		t.Fatalf("events: %v %v", evs, err)
	}
	for _, e := range evs.GetEvents() {
		b, err := protojson.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{"argon2id", "passwordHash", "secretHash", "totpSecretSealed", "passwordSealed", "smtp secret"} {
			if strings.Contains(string(b), leak) {
				t.Fatalf("event %s shows %q: %s", e.GetSubject(), leak, b)
			}
		}
	}
}
