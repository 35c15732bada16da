package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/api/jwt"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/user"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// CreateJWT lets server code act as the user for a few minutes. The token
// is tied to the session: signing the session out revokes it too.
func (h *accountHandler) CreateJWT(ctx context.Context, req *cairnv1.CreateJWTRequest) (*cairnv1.CreateJWTResponse, error) {
	p := principal(ctx)
	if p.SessionID == "" {
		return nil, domain.Errorf(domain.KindPermissionDenied, "a JWT cannot issue another JWT; use the session")
	}
	cfg, err := h.authConfig(p.Project)
	if err != nil {
		return nil, err
	}
	token, exp, err := h.jwt.Sign(p.Project, int(cfg.raw.GetJwtKeyGeneration()), jwt.Claims{UserID: p.ID, SessionID: p.SessionID},
		h.now(), time.Duration(req.GetTtlSeconds())*time.Second)
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateJWTResponse{Jwt: token, ExpiresAt: timestamppb.New(exp)}, nil
}

// looksLikeJWT tells a compact JWS from Cairn's own credentials.
func looksLikeJWT(token string) bool {
	return strings.HasPrefix(token, "eyJ") && strings.Count(token, ".") == 2
}

// jwtPrincipal verifies a JWT of project. The user must still exist, not be
// blocked, and still hold the session the token was issued from.
func (s *Server) jwtPrincipal(project, token string) (access.Principal, error) {
	cfg, err := s.authConfig(project)
	if err != nil {
		return access.Principal{}, err
	}
	c, err := s.jwt.Verify(project, int(cfg.raw.GetJwtKeyGeneration()), token, s.now())
	if err != nil {
		if errors.Is(err, jwt.ErrInvalidToken) {
			return access.Principal{}, errBadCredential
		}
		return access.Principal{}, err
	}
	u, err := s.reads.User(project, c.UserID)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return access.Principal{}, errBadCredential
		}
		return access.Principal{}, err
	}
	sess := user.FindSession(u, c.SessionID, s.now())
	if u.GetBlocked() || sess == nil || sess.GetMfaPending() {
		return access.Principal{}, errBadCredential
	}
	// No SessionID: a JWT cannot manage sessions as if it were the session.
	return access.Principal{Kind: access.User, Project: project, ID: u.GetId(), ExpiresAt: c.ExpiresAt}, nil
}

// serveJWKS publishes a project's JWT verification keys.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	if !domain.ValidProjectID(project) {
		http.NotFound(w, r)
		return
	}
	// Any well-formed id answers, with the keys that project has or would
	// have (they are derived from the master key): a 404 would tell anyone
	// which project ids exist. A missing project's set is a new project's
	// (generation 0), so it reveals nothing; no JWT verifies against it.
	generation := 0
	if _, err := s.reads.Project(project); err == nil {
		cfg, err := s.authConfig(project)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "jwks", "project", project, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		generation = int(cfg.raw.GetJwtKeyGeneration())
	} else if !errors.Is(err, errNotFound) {
		s.logger.ErrorContext(r.Context(), "jwks", "project", project, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	b, err := s.jwt.JWKS(project, generation)
	if err != nil {
		s.logger.ErrorContext(r.Context(), "jwks", "project", project, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
