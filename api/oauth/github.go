package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// GitHubEndpoints are GitHub's OAuth and REST endpoints.
type GitHubEndpoints struct {
	// AuthURL defaults to https://github.com/login/oauth/authorize.
	AuthURL string
	// TokenURL defaults to https://github.com/login/oauth/access_token.
	TokenURL string
	// APIURL is the REST API base; defaults to https://api.github.com.
	APIURL string
}

func (e GitHubEndpoints) withDefaults() GitHubEndpoints {
	if e.AuthURL == "" {
		e.AuthURL = "https://github.com/login/oauth/authorize"
	}
	if e.TokenURL == "" {
		e.TokenURL = "https://github.com/login/oauth/access_token"
	}
	if e.APIURL == "" {
		e.APIURL = "https://api.github.com"
	}
	e.APIURL = strings.TrimSuffix(e.APIURL, "/")
	return e
}

type githubUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// githubIdentity reads GET /user (numeric id as subject) and GET
// /user/emails (the primary email and whether GitHub verified it).
func (f *Flow) githubIdentity(ctx context.Context, tok *oauth2.Token) (Identity, error) {
	var u githubUser
	if err := f.githubGet(ctx, tok, "/user", &u); err != nil {
		return Identity{}, err
	}
	if u.ID <= 0 {
		return Identity{}, fmt.Errorf("%w: github /user has no id", ErrUserInfo)
	}
	var emails []githubEmail
	if err := f.githubGet(ctx, tok, "/user/emails", &emails); err != nil {
		return Identity{}, err
	}
	id := Identity{Subject: strconv.FormatInt(u.ID, 10), Name: u.Name}
	if id.Name == "" {
		id.Name = u.Login
	}
	for _, e := range emails {
		if e.Primary {
			id.Email, id.EmailVerified = strings.TrimSpace(e.Email), e.Verified
			break
		}
	}
	if id.Email == "" {
		// No primary email listed: the profile's public email, which Cairn
		// does not treat as verified.
		id.Email = strings.TrimSpace(u.Email)
	}
	return id, nil
}

func (f *Flow) githubGet(ctx context.Context, tok *oauth2.Token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.GitHub.APIURL+path, nil)
	if err != nil {
		return fmt.Errorf("%w: github %s: %w", ErrUserInfo, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := f.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: github %s: %w", ErrUserInfo, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: github %s: read: %w", ErrUserInfo, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: github %s: %s: %s", ErrUserInfo, path, resp.Status, sanitizeText(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: github %s: decode: %w", ErrUserInfo, path, err)
	}
	return nil
}
