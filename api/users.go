package api

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/api/origins"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/password"
	"github.com/cairn-dev/cairn/domain/user"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// usersHandler is the server side of a project's users (API keys).
type usersHandler struct{ *Server }

func (h *usersHandler) CreateUser(ctx context.Context, req *cairnv1.CreateUserRequest) (*cairnv1.CreateUserResponse, error) {
	project := req.GetProjectId()
	hash := req.GetPasswordHash()
	switch {
	case req.GetPassword() != "":
		var err error
		if hash, err = h.newPasswordHash(ctx, project, req.GetPassword()); err != nil {
			return nil, err
		}
	case hash != "":
		// An imported hash must be one Verify understands, within its cost
		// bounds; checking it against an empty password parses it.
		if _, _, err := password.Verify("", hash); err != nil {
			var de *domain.Error
			if errors.As(err, &de) {
				return nil, &domain.Error{Kind: domain.KindInvalid, Field: "password_hash", Message: de.Message}
			}
			return nil, domain.FieldError("password_hash", "not a supported hash: %v", err)
		}
	}
	id := req.GetUserId()
	if id == "" || id == domain.UniqueID {
		id = h.log.NewID()
	}
	cmd := user.Create{ID: id, ProjectID: project, Email: req.GetEmail(), Name: req.GetName(), PasswordHash: hash,
		Labels: req.GetLabels(), EmailVerified: req.GetEmailVerified(), Now: h.log.Now()}
	u, _, err := h.writeUser(ctx, project, id, func(st user.State) ([]*eventsv1.Envelope, error) { return user.Decide(st, cmd) })
	if err != nil {
		return nil, emailTaken(err)
	}
	return &cairnv1.CreateUserResponse{User: userOut(u)}, nil
}

// emailTaken words a claim conflict for servers (which may know).
func emailTaken(err error) error {
	var de *domain.Error
	if errors.As(err, &de) && de.Kind == domain.KindAlreadyExists && de.Field == user.ClaimEmail {
		return &domain.Error{Kind: domain.KindAlreadyExists, Field: "email", Message: "another user of the project has this email"}
	}
	return err
}

func (h *usersHandler) GetUser(_ context.Context, req *cairnv1.GetUserRequest) (*cairnv1.GetUserResponse, error) {
	u, err := h.reads.User(req.GetProjectId(), req.GetUserId())
	if err != nil {
		return nil, notFound(err, "user")
	}
	return &cairnv1.GetUserResponse{User: userOut(u)}, nil
}

func (h *usersHandler) ListUsers(_ context.Context, req *cairnv1.ListUsersRequest) (*cairnv1.ListUsersResponse, error) {
	project := req.GetProjectId()
	var (
		us   []*eventsv1.User
		next string
		err  error
	)
	if q := strings.ToLower(req.GetSearch()); q != "" {
		after, err := decodeToken(req.GetPageToken())
		if err != nil {
			return nil, err
		}
		us, next, err = h.reads.SearchUsers(project, after, pageSize(req.GetPageSize()), func(u *eventsv1.User) bool {
			return strings.Contains(strings.ToLower(u.GetId()), q) || strings.Contains(strings.ToLower(u.GetEmail()), q) ||
				strings.Contains(strings.ToLower(u.GetName()), q)
		})
		if err != nil {
			return nil, err
		}
		if next != "" {
			next = encodeToken(next)
		}
	} else {
		us, next, err = listPage(req.GetPageToken(), req.GetPageSize(), func(after string, limit int) ([]*eventsv1.User, error) {
			return h.reads.ListUsers(project, after, limit)
		})
		if err != nil {
			return nil, err
		}
	}
	res := &cairnv1.ListUsersResponse{NextPageToken: next}
	for _, u := range us {
		res.Users = append(res.Users, userOut(u))
	}
	return res, nil
}

func (h *usersHandler) UpdateUser(ctx context.Context, req *cairnv1.UpdateUserRequest) (*cairnv1.UpdateUserResponse, error) {
	project := req.GetProjectId()
	upd := user.Update{Email: req.Email, Name: req.Name, Blocked: req.Blocked, EmailVerified: req.EmailVerified}
	if req.Password != nil {
		hash, err := h.newPasswordHash(ctx, project, req.GetPassword())
		if err != nil {
			return nil, err
		}
		upd.PasswordHash = &hash
	}
	if req.GetLabels() != nil {
		l := req.GetLabels().GetLabels()
		upd.Labels = &l
	}
	if req.GetPrefs() != nil {
		p, err := prefsJSON(req.GetPrefs())
		if err != nil {
			return nil, err
		}
		upd.PrefsJSON = &p
	}
	upd.Now = h.log.Now()
	u, _, err := h.writeUser(ctx, project, req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		if st != nil && st.GetAnonymous() && upd.Email != nil && upd.PasswordHash != nil {
			upd.Convert = true
		}
		return user.Decide(st, upd)
	})
	if err != nil {
		return nil, emailTaken(err)
	}
	return &cairnv1.UpdateUserResponse{User: userOut(u)}, nil
}

func (h *usersHandler) DeleteUser(ctx context.Context, req *cairnv1.DeleteUserRequest) (*cairnv1.DeleteUserResponse, error) {
	if _, _, err := h.writeUser(ctx, req.GetProjectId(), req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.Delete{Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteUserResponse{}, nil
}

func (h *usersHandler) ListUserSessions(_ context.Context, req *cairnv1.ListUserSessionsRequest) (*cairnv1.ListUserSessionsResponse, error) {
	u, err := h.reads.User(req.GetProjectId(), req.GetUserId())
	if err != nil {
		return nil, notFound(err, "user")
	}
	return &cairnv1.ListUserSessionsResponse{Sessions: sessionsOut(u, "", h.now())}, nil
}

func (h *usersHandler) CreateUserSession(ctx context.Context, req *cairnv1.CreateUserSessionRequest) (*cairnv1.CreateUserSessionResponse, error) {
	project := req.GetProjectId()
	cfg, err := h.authConfig(project)
	if err != nil {
		return nil, err
	}
	sess, token, err := h.newSession(ctx, project, "server", "server")
	if err != nil {
		return nil, err
	}
	sess.Ip, sess.UserAgent = "", ""
	now := h.log.Now()
	u, res, err := h.writeUser(ctx, project, req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.CreateSession{Session: sess, Settings: cfg.sessions, Now: now})
	})
	if err != nil {
		return nil, err
	}
	s := user.FindSession(u, sessionCreated(res), h.now())
	if s == nil {
		return nil, errors.New("created session missing from the user's state")
	}
	return &cairnv1.CreateUserSessionResponse{Session: sessionOut(u.GetId(), s, ""), Secret: token}, nil
}

func (h *usersHandler) DeleteUserSession(ctx context.Context, req *cairnv1.DeleteUserSessionRequest) (*cairnv1.DeleteUserSessionResponse, error) {
	if _, _, err := h.writeUser(ctx, req.GetProjectId(), req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.DeleteSessions{IDs: []string{req.GetSessionId()}, Now: h.log.Now()})
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteUserSessionResponse{}, nil
}

func (h *usersHandler) DeleteUserSessions(ctx context.Context, req *cairnv1.DeleteUserSessionsRequest) (*cairnv1.DeleteUserSessionsResponse, error) {
	_, res, err := h.writeUser(ctx, req.GetProjectId(), req.GetUserId(), func(st user.State) ([]*eventsv1.Envelope, error) {
		return user.Decide(st, user.DeleteSessions{All: true, Now: h.log.Now()})
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.DeleteUserSessionsResponse{Deleted: int32(deletedSessions(res))}, nil
}

func (h *usersHandler) GetAuthSettings(_ context.Context, req *cairnv1.GetAuthSettingsRequest) (*cairnv1.GetAuthSettingsResponse, error) {
	s, err := h.reads.AuthSettings(req.GetProjectId())
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetAuthSettingsResponse{Settings: authSettingsOut(s)}, nil
}

// Seal purposes of project secrets.
const (
	sealSMTPPassword = "smtp-password"
	sealOAuthSecret  = "oauth-client-secret:"
)

func (h *usersHandler) UpdateAuthSettings(ctx context.Context, req *cairnv1.UpdateAuthSettingsRequest) (*cairnv1.UpdateAuthSettingsResponse, error) {
	project := req.GetProjectId()
	in := req.GetSettings()
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	if p := (password.Policy{MinLen: int(in.GetPasswordMinLength())}); p.Validate() != nil {
		return nil, p.Validate()
	}
	if err := origins.Validate(in.GetAllowedOrigins(), h.sitesDomain); err != nil {
		return nil, domain.FieldError("settings.allowed_origins", "%v", err)
	}
	var out *eventsv1.AuthSettings
	res, err := h.log.Write(ctx, eventlog.AuthSettingsAggregate(project), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		old := last.GetAuthSettingsUpdated().GetSettings()
		next := &eventsv1.AuthSettings{ProjectId: project, MaxSessions: in.GetMaxSessions(), PasswordMinLength: in.GetPasswordMinLength(),
			PasswordCheckCommon: in.GetPasswordCheckCommon(), AllowedOrigins: in.GetAllowedOrigins(), DisabledMethods: in.GetDisabledMethods(),
			JwtKeyGeneration: in.GetJwtKeyGeneration(), DisableLocalhostOrigins: in.GetDisableLocalhostOrigins()}
		if d := in.GetSessionDuration(); d != nil {
			next.SessionDurationSeconds = int64(d.AsDuration() / time.Second)
		}
		if in.GetJwtKeyGeneration() < old.GetJwtKeyGeneration() {
			return nil, domain.FieldError("settings.jwt_key_generation", "can only go up (it is %d)", old.GetJwtKeyGeneration())
		}
		if sm := in.GetSmtp(); sm != nil {
			next.Smtp = &eventsv1.SmtpSettings{Host: sm.GetHost(), Port: sm.GetPort(), Username: sm.GetUsername(),
				SenderEmail: sm.GetSenderEmail(), SenderName: sm.GetSenderName(), Security: sm.GetSecurity()}
			if sm.GetPassword() != "" {
				sealed, err := h.seal(project, sealSMTPPassword, []byte(sm.GetPassword()))
				if err != nil {
					return nil, err
				}
				next.Smtp.PasswordSealed = sealed
			} else {
				next.Smtp.PasswordSealed = old.GetSmtp().GetPasswordSealed()
			}
		}
		seen := map[string]bool{}
		for _, o := range in.GetOauthProviders() {
			if seen[o.GetId()] {
				return nil, domain.FieldError("settings.oauth_providers", "provider id %q appears twice", o.GetId())
			}
			seen[o.GetId()] = true
			if o.GetKind() == "oidc" && !strings.HasPrefix(o.GetIssuerUrl(), "https://") && !strings.HasPrefix(o.GetIssuerUrl(), "http://") {
				return nil, domain.FieldError("settings.oauth_providers", "provider %q: an oidc provider needs its issuer_url", o.GetId())
			}
			p := &eventsv1.OAuthProvider{Id: o.GetId(), Kind: o.GetKind(), ClientId: o.GetClientId(), IssuerUrl: o.GetIssuerUrl(),
				Scopes: o.GetScopes(), Disabled: o.GetDisabled()}
			if o.GetClientSecret() != "" {
				sealed, err := h.seal(project, sealOAuthSecret+o.GetId(), []byte(o.GetClientSecret()))
				if err != nil {
					return nil, err
				}
				p.ClientSecretSealed = sealed
			} else if i := slices.IndexFunc(old.GetOauthProviders(), func(x *eventsv1.OAuthProvider) bool { return x.GetId() == o.GetId() }); i >= 0 {
				p.ClientSecretSealed = old.GetOauthProviders()[i].GetClientSecretSealed()
			} else {
				return nil, domain.FieldError("settings.oauth_providers", "provider %q: client_secret is required", o.GetId())
			}
			next.OauthProviders = append(next.OauthProviders, p)
		}
		cmp := proto.CloneOf(old)
		if cmp != nil {
			cmp.UpdatedAt = nil
		}
		if proto.Equal(cmp, next) {
			out = old
			return nil, nil
		}
		next.UpdatedAt = timestamppb.New(h.log.Now())
		out = next
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_AuthSettingsUpdated{AuthSettingsUpdated: &eventsv1.AuthSettingsUpdated{Settings: next}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = &eventsv1.AuthSettings{ProjectId: project}
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.UpdateAuthSettingsResponse{Settings: authSettingsOut(out)}, nil
}

func authSettingsOut(s *eventsv1.AuthSettings) *cairnv1.AuthSettings {
	out := &cairnv1.AuthSettings{MaxSessions: s.GetMaxSessions(), PasswordMinLength: s.GetPasswordMinLength(),
		PasswordCheckCommon: s.GetPasswordCheckCommon(), AllowedOrigins: s.GetAllowedOrigins(),
		DisabledMethods: s.GetDisabledMethods(), JwtKeyGeneration: s.GetJwtKeyGeneration(),
		DisableLocalhostOrigins: s.GetDisableLocalhostOrigins()}
	if s.GetSessionDurationSeconds() > 0 {
		out.SessionDuration = durationpb.New(time.Duration(s.GetSessionDurationSeconds()) * time.Second)
	}
	if sm := s.GetSmtp(); sm != nil {
		out.Smtp = &cairnv1.SmtpSettings{Host: sm.GetHost(), Port: sm.GetPort(), Username: sm.GetUsername(),
			PasswordSet: len(sm.GetPasswordSealed()) > 0, SenderEmail: sm.GetSenderEmail(), SenderName: sm.GetSenderName(), Security: sm.GetSecurity()}
	}
	for _, o := range s.GetOauthProviders() {
		out.OauthProviders = append(out.OauthProviders, &cairnv1.OAuthProvider{Id: o.GetId(), Kind: o.GetKind(), ClientId: o.GetClientId(),
			ClientSecretSet: len(o.GetClientSecretSealed()) > 0, IssuerUrl: o.GetIssuerUrl(), Scopes: o.GetScopes(), Disabled: o.GetDisabled()})
	}
	return out
}
