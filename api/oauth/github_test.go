package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// githubServer implements the parts of GitHub's documented OAuth web flow
// and REST API that Cairn uses, on loopback.
type githubServer struct {
	*httptest.Server
	clientID, secret string
	emails           []githubEmail

	mu    sync.Mutex
	codes map[string]string // code → code_challenge
}

func startGitHub(t *testing.T, emails []githubEmail) *githubServer {
	g := &githubServer{clientID: "gh-client", secret: "gh-secret", emails: emails, codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != g.clientID || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" {
			http.Error(w, "bad authorize request", http.StatusBadRequest)
			return
		}
		code := "code-" + q.Get("state")[:8]
		g.mu.Lock()
		g.codes[code] = q.Get("code_challenge")
		g.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		g.mu.Lock()
		challenge, ok := g.codes[r.Form.Get("code")]
		delete(g.codes, r.Form.Get("code"))
		g.mu.Unlock()
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		switch {
		case r.Form.Get("client_id") != g.clientID || r.Form.Get("client_secret") != g.secret:
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "incorrect_client_credentials"})
		case !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge:
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "bad_verification_code"})
		default:
			_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "gho_test", "token_type": "bearer", "scope": "read:user,user:email"})
		}
	})
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer gho_test" {
				http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /user", auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 583231, "login": "octocat", "name": "The Octocat", "email": "public@octo.example"})
	}))
	mux.HandleFunc("GET /user/emails", auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(g.emails)
	}))
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func (g *githubServer) flow(t *testing.T) *Flow {
	return newFlow(t, Config{HTTPClient: g.Client(), GitHub: GitHubEndpoints{
		AuthURL:  g.URL + "/login/oauth/authorize",
		TokenURL: g.URL + "/login/oauth/access_token",
		APIURL:   g.URL + "/",
	}})
}

func TestGitHubFlow(t *testing.T) {
	cases := []struct {
		name         string
		emails       []githubEmail
		wantEmail    string
		wantVerified bool
	}{
		{"verified primary", []githubEmail{{"old@octo.example", false, true}, {"octo@octo.example", true, true}}, "octo@octo.example", true},
		{"unverified primary", []githubEmail{{"octo@octo.example", true, false}, {"other@octo.example", false, true}}, "octo@octo.example", false},
		{"no emails listed", nil, "public@octo.example", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGitHub(t, tc.emails)
			f := g.flow(t)
			p := GitHub("github", g.clientID, g.secret)
			start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
			if err != nil {
				t.Fatal(err)
			}
			if u, _ := url.Parse(start.URL); u.Query().Get("nonce") != "" || u.Query().Get("scope") != "read:user user:email" {
				t.Errorf("authorization URL %s", start.URL)
			}
			q := authorize(t, start.URL)
			res, err := f.Complete(context.Background(), p, "proj-a", q)
			if err != nil {
				t.Fatal(err)
			}
			want := Identity{ProviderID: "github", Subject: "583231", Email: tc.wantEmail, EmailVerified: tc.wantVerified, Name: "The Octocat"}
			if res.Identity != want {
				t.Errorf("identity = %+v, want %+v", res.Identity, want)
			}
			// The code is single-use.
			if _, err := f.Complete(context.Background(), p, "proj-a", q); !errors.Is(err, ErrExchange) {
				t.Errorf("replay: err = %v, want ErrExchange", err)
			}
		})
	}
}

func TestGitHubErrors(t *testing.T) {
	g := startGitHub(t, nil)
	f := g.flow(t)
	p := GitHub("github", g.clientID, g.secret)
	start, err := f.Begin(context.Background(), p, beginParams("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Complete(context.Background(), p, "proj-a", url.Values{"state": {start.State}, "error": {"access_denied"}})
	if ce, ok := errors.AsType[*CallbackError](err); !ok || ce.Code != "access_denied" || ce.FailureURL != testFailure {
		t.Errorf("err = %v, want access_denied with the failure URL", err)
	}

	bad := p
	bad.ClientSecret = "wrong"
	q := authorize(t, start.URL)
	if _, err := f.Complete(context.Background(), bad, "proj-a", q); !errors.Is(err, ErrExchange) {
		t.Errorf("wrong secret: err = %v, want ErrExchange", err)
	}
}
