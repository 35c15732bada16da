package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/team"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// TeamInvite is one invitation to deliver: the invitee follows URL with
// team_id, membership_id and secret appended, signs in (or up), and the
// client calls AcceptMembership with them and the user's own id.
type TeamInvite struct {
	ProjectID  string
	Team       *eventsv1.Team
	Membership *eventsv1.Membership
	// Secret is the invitation secret in clear: only its hash is stored.
	Secret string
	// URL is the request's redirect URL; Name the invitee's name.
	URL, Name string
}

// inviteMailer delivers team invitations (Config.InviteMailer). Without
// one, invitations are stored and only servers see their secret (in the
// CreateMembership response) to deliver it themselves.
type inviteMailer interface {
	SendTeamInvite(ctx context.Context, inv TeamInvite) error
}

type teamsHandler struct{ *Server }

// teamCaller is who the caller is to team rules. Operators and API keys
// (whose teams.* scope the access interceptor already checked) are servers;
// session principals map to team.Caller{UserID: …} here once they exist.
func teamCaller(p access.Principal) team.Caller {
	switch p.Kind {
	case access.Operator, access.Member, access.APIKey:
		return team.Caller{Server: true}
	case access.User:
		return team.Caller{UserID: p.ID}
	}
	return team.Caller{}
}

// authorizeTeam is the one authorization step of every team call: it
// completes r with the team's memberships when the caller is an end user
// (servers need none) and applies the domain's owner rules.
func (h *teamsHandler) authorizeTeam(ctx context.Context, project string, r team.Request) error {
	c := teamCaller(principal(ctx))
	if !c.Server && r.Team != nil && r.Members == nil {
		ms, err := h.allMemberships(project, r.Team.GetId())
		if err != nil {
			return err
		}
		r.Members = ms
	}
	return team.Authorize(c, r)
}

// allMemberships reads every membership of a team, page by page.
func (h *teamsHandler) allMemberships(project, teamID string) ([]*eventsv1.Membership, error) {
	var out []*eventsv1.Membership
	for after := ""; ; {
		page, err := h.reads.ListMemberships(project, teamID, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("memberships of team %s: %w", teamID, err)
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].GetId()
	}
}

// loadTeam returns the team from the read model, or KindNotFound.
func (h *teamsHandler) loadTeam(project, id string) (*eventsv1.Team, error) {
	t, err := h.reads.Team(project, id)
	if err != nil {
		return nil, notFound(err, "team")
	}
	return t, nil
}

func teamPrefsJSON(s *structpb.Struct) (string, error) {
	if s == nil {
		return "", nil
	}
	b, err := json.Marshal(s.AsMap())
	if err != nil {
		return "", domain.FieldError("prefs", "not representable as JSON: %v", err)
	}
	return string(b), nil
}

func teamOut(t *eventsv1.Team) (*cairnv1.Team, error) {
	if t == nil {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(cmp.Or(t.GetPrefsJson(), "{}")), &m); err != nil {
		return nil, fmt.Errorf("stored prefs of team %s: %w", t.GetId(), err)
	}
	prefs, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("stored prefs of team %s: %w", t.GetId(), err)
	}
	return &cairnv1.Team{Id: t.GetId(), ProjectId: t.GetProjectId(), Name: t.GetName(), Prefs: prefs,
		CreatedAt: t.GetCreatedAt(), UpdatedAt: t.GetUpdatedAt()}, nil
}

func membershipOut(m *eventsv1.Membership) *cairnv1.Membership {
	if m == nil {
		return nil
	}
	// Never the invitation secret's hash.
	return &cairnv1.Membership{Id: m.GetId(), ProjectId: m.GetProjectId(), TeamId: m.GetTeamId(), UserId: m.GetUserId(),
		Email: m.GetEmail(), Roles: m.GetRoles(), Confirmed: m.GetConfirmed(), InvitedAt: m.GetInvitedAt(),
		JoinedAt: m.GetJoinedAt(), UpdatedAt: m.GetUpdatedAt()}
}

// writeTeam runs one command on a team aggregate; check, when set, sees the
// fresh state first (authorization).
func (h *teamsHandler) writeTeam(ctx context.Context, project, id string, check func(team.State) error, cmd team.Command) (team.State, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var state team.State
	res, err := h.log.Write(ctx, eventlog.TeamAggregate(project, id), meta, eventlog.Decide(team.Evolve, func(s team.State) ([]*eventsv1.Envelope, error) {
		if check != nil {
			if err := check(s); err != nil {
				return nil, err
			}
		}
		state = s
		return team.Decide(s, cmd)
	}))
	if err != nil {
		return nil, err
	}
	for _, e := range res.Events {
		state = team.Evolve(state, e)
	}
	setSeq(ctx, res.Seq)
	return state, nil
}

// writeMembership runs one command on a membership of t.
func (h *teamsHandler) writeMembership(ctx context.Context, meta eventlog.Meta, t *eventsv1.Team, id string, check func(team.MembershipState) error, cmd team.MembershipCommand) (team.MembershipState, eventlog.Result, error) {
	var state team.MembershipState
	res, err := h.log.Write(ctx, eventlog.MembershipAggregate(t.GetProjectId(), t.GetId(), id), meta, eventlog.Decide(team.EvolveMembership, func(s team.MembershipState) ([]*eventsv1.Envelope, error) {
		if !team.Live(t, s) {
			s = nil
		}
		if check != nil {
			if err := check(s); err != nil {
				return nil, err
			}
		}
		state = s
		return team.DecideMembership(t, s, cmd)
	}))
	if err != nil {
		return nil, res, err
	}
	for _, e := range res.Events {
		state = team.EvolveMembership(state, e)
	}
	setSeq(ctx, res.Seq)
	return state, res, nil
}

func (h *teamsHandler) CreateTeam(ctx context.Context, req *cairnv1.CreateTeamRequest) (*cairnv1.CreateTeamResponse, error) {
	project := req.GetProjectId()
	c := teamCaller(principal(ctx))
	if err := team.Authorize(c, team.Request{Action: team.ActionCreateTeam}); err != nil {
		return nil, err
	}
	id := req.GetTeamId()
	if id == "" || id == domain.UniqueID {
		id = h.log.NewID()
	}
	prefs, err := teamPrefsJSON(req.GetPrefs())
	if err != nil {
		return nil, err
	}
	cmd := team.Create{ID: id, ProjectID: project, Name: req.GetName(), PrefsJSON: prefs, Now: h.log.Now()}
	if !c.Server {
		cmd.Owner = &team.Owner{UserID: c.UserID, Roles: req.GetRoles()}
	}
	t, err := h.writeTeam(ctx, project, id, nil, cmd)
	if err != nil {
		return nil, err
	}
	out, err := teamOut(t)
	return &cairnv1.CreateTeamResponse{Team: out}, err
}

func (h *teamsHandler) GetTeam(ctx context.Context, req *cairnv1.GetTeamRequest) (*cairnv1.GetTeamResponse, error) {
	t, err := h.loadTeam(req.GetProjectId(), req.GetTeamId())
	if err != nil {
		return nil, err
	}
	if err := h.authorizeTeam(ctx, req.GetProjectId(), team.Request{Action: team.ActionReadTeam, Team: t}); err != nil {
		return nil, err
	}
	out, err := teamOut(t)
	return &cairnv1.GetTeamResponse{Team: out}, err
}

func (h *teamsHandler) ListTeams(ctx context.Context, req *cairnv1.ListTeamsRequest) (*cairnv1.ListTeamsResponse, error) {
	project := req.GetProjectId()
	c := teamCaller(principal(ctx))
	list := func(after string, limit int) ([]*eventsv1.Team, error) {
		return h.reads.ListTeams(project, req.GetSearch(), after, limit)
	}
	if !c.Server {
		if err := team.Authorize(c, team.Request{Action: team.ActionCreateTeam}); err != nil {
			return nil, err // an anonymous caller
		}
		// An end user lists the teams they belong to.
		list = func(after string, limit int) ([]*eventsv1.Team, error) {
			return h.userTeams(project, c.UserID, req.GetSearch(), after, limit)
		}
	}
	ts, next, err := listPage(req.GetPageToken(), req.GetPageSize(), list)
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListTeamsResponse{NextPageToken: next}
	for _, t := range ts {
		out, err := teamOut(t)
		if err != nil {
			return nil, err
		}
		res.Teams = append(res.Teams, out)
	}
	return res, nil
}

// userTeams lists the teams user is a confirmed member of, by id.
func (h *teamsHandler) userTeams(project, user, search, after string, limit int) ([]*eventsv1.Team, error) {
	ms, err := h.reads.ListUserMemberships(project, user)
	if err != nil {
		return nil, err
	}
	search = strings.ToLower(search)
	var out []*eventsv1.Team
	for _, m := range ms {
		if len(out) >= limit {
			break
		}
		if m.GetTeamId() <= after {
			continue
		}
		t, err := h.reads.Team(project, m.GetTeamId())
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if search == "" || strings.Contains(strings.ToLower(t.GetName()), search) || strings.Contains(strings.ToLower(t.GetId()), search) {
			out = append(out, t)
		}
	}
	return out, nil
}

// manageTeam is the check of the owner-only team writes.
func (h *teamsHandler) manageTeam(ctx context.Context, project string, a team.Action) func(team.State) error {
	return func(s team.State) error {
		if s == nil {
			return domain.Errorf(domain.KindNotFound, "team not found")
		}
		return h.authorizeTeam(ctx, project, team.Request{Action: a, Team: s})
	}
}

func (h *teamsHandler) UpdateTeam(ctx context.Context, req *cairnv1.UpdateTeamRequest) (*cairnv1.UpdateTeamResponse, error) {
	name := req.GetName()
	t, err := h.writeTeam(ctx, req.GetProjectId(), req.GetTeamId(), h.manageTeam(ctx, req.GetProjectId(), team.ActionUpdateTeam),
		team.Update{Name: &name, Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	out, err := teamOut(t)
	return &cairnv1.UpdateTeamResponse{Team: out}, err
}

func (h *teamsHandler) UpdateTeamPrefs(ctx context.Context, req *cairnv1.UpdateTeamPrefsRequest) (*cairnv1.UpdateTeamPrefsResponse, error) {
	prefs, err := teamPrefsJSON(req.GetPrefs())
	if err != nil {
		return nil, err
	}
	t, err := h.writeTeam(ctx, req.GetProjectId(), req.GetTeamId(), h.manageTeam(ctx, req.GetProjectId(), team.ActionUpdateTeam),
		team.Update{PrefsJSON: &prefs, Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	out, err := teamOut(t)
	return &cairnv1.UpdateTeamPrefsResponse{Team: out}, err
}

func (h *teamsHandler) DeleteTeam(ctx context.Context, req *cairnv1.DeleteTeamRequest) (*cairnv1.DeleteTeamResponse, error) {
	_, err := h.writeTeam(ctx, req.GetProjectId(), req.GetTeamId(), h.manageTeam(ctx, req.GetProjectId(), team.ActionDeleteTeam),
		team.Delete{Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.DeleteTeamResponse{}, nil
}

// userMembership returns user's confirmed membership of teamID, or nil.
func (h *teamsHandler) userMembership(project, user, teamID string) (*eventsv1.Membership, error) {
	ms, err := h.reads.ListUserMemberships(project, user)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(ms, func(m *eventsv1.Membership) bool { return m.GetTeamId() == teamID })
	if i < 0 {
		return nil, nil
	}
	return ms[i], nil
}

// CreateMembership adds a user (membership id team.MemberID) or invites an
// address (team.InviteID). Derived ids make the aggregate's expected
// sequence refuse a second membership of the same user, or invitation of
// the same address, exactly. A user who joined through an invitation holds
// a membership under the address's id: that case is checked against the
// read model (usermemberships), so two requests racing within the
// projection lag could both win; the read model then keeps the later one
// per (user, team) and the other stays listed under the team. A claim
// (ClaimTaken, namespace "membership") appended in the same batch will
// close this once the claim write path lands.
func (h *teamsHandler) CreateMembership(ctx context.Context, req *cairnv1.CreateMembershipRequest) (*cairnv1.CreateMembershipResponse, error) {
	project := req.GetProjectId()
	c := teamCaller(principal(ctx))
	t, err := h.loadTeam(project, req.GetTeamId())
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	now := h.log.Now()
	if user := req.GetUserId(); user != "" {
		if err := h.authorizeTeam(ctx, project, team.Request{Action: team.ActionAddMember, Team: t}); err != nil {
			return nil, err
		}
		// A user who joined through an invitation holds that membership
		// (another id): one membership per user and team.
		if m, err := h.userMembership(project, user, t.GetId()); err != nil {
			return nil, err
		} else if m != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "user %q is already a member of team %q", user, t.GetId())
		}
		m, _, err := h.writeMembership(ctx, meta, t, team.MemberID(t.GetId(), user), nil,
			team.AddMember{ID: team.MemberID(t.GetId(), user), ProjectID: project, UserID: user, Roles: req.GetRoles(), Now: now})
		if err != nil {
			return nil, err
		}
		return &cairnv1.CreateMembershipResponse{Membership: membershipOut(m)}, nil
	}
	if err := h.authorizeTeam(ctx, project, team.Request{Action: team.ActionInvite, Team: t}); err != nil {
		return nil, err
	}
	if req.GetUrl() != "" {
		cfg, err := h.authConfig(project)
		if err != nil {
			return nil, err
		}
		if err := checkLink(cfg, "url", req.GetUrl()); err != nil {
			return nil, err
		}
	}
	id := team.InviteID(t.GetId(), req.GetEmail())
	msgID := ""
	secret := make([]byte, 32)
	if meta.IdempotencyKey != "" {
		// A retry must answer with the secret whose hash the first stored.
		msgID = eventlog.IdempotencyMsgID(meta.Scope, meta.IdempotencyKey)
		secret = deriveInviteSecret(h.masterKey, project, id, msgID)
	} else if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(secret)
	m, res, err := h.writeMembership(ctx, meta, t, id, nil, team.Invite{ID: id, ProjectID: project, Email: req.GetEmail(),
		Roles: req.GetRoles(), SecretHash: hashToken(token), Now: now})
	if err != nil {
		return nil, err
	}
	if res.Duplicate && !bytes.Equal(hashToken(token), m.GetInviteSecretHash()) {
		return nil, errors.New("idempotent CreateMembership: derived secret does not match the stored invitation")
	}
	if h.mailer != nil && !res.Duplicate {
		inv := TeamInvite{ProjectID: project, Team: t, Membership: m, Secret: token, URL: req.GetUrl(), Name: req.GetName()}
		if err := h.mailer.SendTeamInvite(ctx, inv); err != nil {
			h.logger.ErrorContext(ctx, "team invitation mail failed", "project", project, "team", t.GetId(), "membership", id, "err", err)
			return nil, domain.Errorf(domain.KindUnavailable, "invitation %s is stored but its mail could not be sent; withdraw it (DeleteMembership) and invite again", id)
		}
	}
	out := &cairnv1.CreateMembershipResponse{Membership: membershipOut(m)}
	if c.Server {
		out.Secret = token
	}
	return out, nil
}

// deriveInviteSecret makes an invitation secret reproducible for one
// idempotent request (as deriveSecret does for keys).
func deriveInviteSecret(masterKey []byte, project, membershipID, msgID string) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("cairn invite secret\x00" + project + "\x00" + membershipID + "\x00" + msgID))
	return m.Sum(nil)
}

func (h *teamsHandler) GetMembership(ctx context.Context, req *cairnv1.GetMembershipRequest) (*cairnv1.GetMembershipResponse, error) {
	project := req.GetProjectId()
	t, err := h.loadTeam(project, req.GetTeamId())
	if err != nil {
		return nil, err
	}
	if err := h.authorizeTeam(ctx, project, team.Request{Action: team.ActionReadTeam, Team: t}); err != nil {
		return nil, err
	}
	m, err := h.reads.Membership(project, t.GetId(), req.GetMembershipId())
	if err != nil {
		return nil, notFound(err, "membership")
	}
	return &cairnv1.GetMembershipResponse{Membership: membershipOut(m)}, nil
}

func (h *teamsHandler) ListMemberships(ctx context.Context, req *cairnv1.ListMembershipsRequest) (*cairnv1.ListMembershipsResponse, error) {
	project := req.GetProjectId()
	t, err := h.loadTeam(project, req.GetTeamId())
	if err != nil {
		return nil, err
	}
	if err := h.authorizeTeam(ctx, project, team.Request{Action: team.ActionReadTeam, Team: t}); err != nil {
		return nil, err
	}
	ms, next, err := listPage(req.GetPageToken(), req.GetPageSize(), func(after string, limit int) ([]*eventsv1.Membership, error) {
		return h.reads.ListMemberships(project, t.GetId(), after, limit)
	})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListMembershipsResponse{NextPageToken: next}
	for _, m := range ms {
		res.Memberships = append(res.Memberships, membershipOut(m))
	}
	return res, nil
}

func (h *teamsHandler) UpdateMembership(ctx context.Context, req *cairnv1.UpdateMembershipRequest) (*cairnv1.UpdateMembershipResponse, error) {
	project := req.GetProjectId()
	t, err := h.loadTeam(project, req.GetTeamId())
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	m, _, err := h.writeMembership(ctx, meta, t, req.GetMembershipId(), func(s team.MembershipState) error {
		return h.authorizeTeam(ctx, project, team.Request{Action: team.ActionUpdateMembership, Team: t, Target: s, Roles: req.GetRoles()})
	}, team.UpdateRoles{Roles: req.GetRoles(), Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateMembershipResponse{Membership: membershipOut(m)}, nil
}

func (h *teamsHandler) AcceptMembership(ctx context.Context, req *cairnv1.AcceptMembershipRequest) (*cairnv1.AcceptMembershipResponse, error) {
	project := req.GetProjectId()
	t, err := h.loadTeam(project, req.GetTeamId())
	if err != nil {
		return nil, err
	}
	if m, err := h.userMembership(project, req.GetUserId(), t.GetId()); err != nil {
		return nil, err
	} else if m != nil && m.GetId() != req.GetMembershipId() {
		return nil, domain.Errorf(domain.KindAlreadyExists, "user %q is already a member of team %q", req.GetUserId(), t.GetId())
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	m, _, err := h.writeMembership(ctx, meta, t, req.GetMembershipId(), func(s team.MembershipState) error {
		return h.authorizeTeam(ctx, project, team.Request{Action: team.ActionAcceptMembership, Team: t, Target: s, UserID: req.GetUserId()})
	}, team.Accept{UserID: req.GetUserId(), SecretHash: hashToken(req.GetSecret()), Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.AcceptMembershipResponse{Membership: membershipOut(m)}, nil
}

func (h *teamsHandler) DeleteMembership(ctx context.Context, req *cairnv1.DeleteMembershipRequest) (*cairnv1.DeleteMembershipResponse, error) {
	project := req.GetProjectId()
	t, err := h.loadTeam(project, req.GetTeamId())
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	_, _, err = h.writeMembership(ctx, meta, t, req.GetMembershipId(), func(s team.MembershipState) error {
		return h.authorizeTeam(ctx, project, team.Request{Action: team.ActionDeleteMembership, Team: t, Target: s})
	}, team.Remove{Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.DeleteMembershipResponse{}, nil
}

func (h *teamsHandler) ListUserMemberships(ctx context.Context, req *cairnv1.ListUserMembershipsRequest) (*cairnv1.ListUserMembershipsResponse, error) {
	if err := team.AuthorizeUserMemberships(teamCaller(principal(ctx)), req.GetUserId()); err != nil {
		return nil, err
	}
	ms, err := h.reads.ListUserMemberships(req.GetProjectId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListUserMembershipsResponse{}
	for _, m := range ms {
		res.Memberships = append(res.Memberships, membershipOut(m))
	}
	return res, nil
}
