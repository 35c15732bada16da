package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/operator"
	"github.com/cairn-dev/cairn/domain/password"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// DefaultOperatorSessionTTL is how long a console sign-in lasts unless the
// operator sets another: a working day, so a forgotten tab does not keep
// access for weeks.
const DefaultOperatorSessionTTL = 12 * time.Hour

// operatorLimitKey keys the sign-in rate limits of operator accounts apart
// from every project's ("_" is in no project id).
const operatorLimitKey = "_operators"

type operatorsHandler struct{ *Server }

func operatorOut(o *eventsv1.Operator) *cairnv1.OperatorAccount {
	if o == nil {
		return nil
	}
	out := &cairnv1.OperatorAccount{Id: o.GetId(), Email: o.GetEmail(), Name: o.GetName(), Admin: o.GetAdmin(),
		Sessions: int32(len(o.GetSessions())), CreatedAt: o.GetCreatedAt(), UpdatedAt: o.GetUpdatedAt(), Mfa: o.GetMfa().GetEnabled()}
	for _, r := range o.GetRoles() {
		out.Roles = append(out.Roles, &cairnv1.OperatorRole{ProjectId: r.GetProjectId(), Role: r.GetRole()})
	}
	invitationOut(out, o.GetInvitation())
	return out
}

// rolesIn converts requested roles; each must name an existing project, so
// that no role waits for a project someone creates later.
func (h *operatorsHandler) rolesIn(field string, in []*cairnv1.OperatorRole) ([]*eventsv1.OperatorRole, error) {
	out := make([]*eventsv1.OperatorRole, 0, len(in))
	for _, r := range in {
		if _, err := h.reads.Project(r.GetProjectId()); err != nil {
			if errors.Is(err, errNotFound) {
				return nil, domain.FieldError(field, "project %q not found", r.GetProjectId())
			}
			return nil, err
		}
		out = append(out, &eventsv1.OperatorRole{ProjectId: r.GetProjectId(), Role: r.GetRole()})
	}
	return out, nil
}

// operatorPolicy is the password policy of operator accounts: they reach
// every project they hold a role on, so common passwords are refused.
var operatorPolicy = password.Policy{RejectCommon: true}

func (h *operatorsHandler) operatorPasswordHash(ctx context.Context, pw string) (string, error) {
	if err := operatorPolicy.Check(pw); err != nil {
		return "", err
	}
	return h.hasher.hash(ctx, pw)
}

// write runs cmd on account id and answers its state afterwards.
func (h *operatorsHandler) write(ctx context.Context, id string, cmd operator.Command) (*eventsv1.Operator, error) {
	return h.writeWith(ctx, id, func(s operator.State) ([]*eventsv1.Envelope, error) { return operator.Decide(s, cmd) })
}

// writeWith runs decide on account id's freshest state and answers the
// state afterwards.
func (h *operatorsHandler) writeWith(ctx context.Context, id string, decide func(operator.State) ([]*eventsv1.Envelope, error)) (*eventsv1.Operator, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var state operator.State
	res, err := h.log.Write(ctx, eventlog.OperatorAggregate(id), meta, eventlog.Decide(operator.Evolve, func(s operator.State) ([]*eventsv1.Envelope, error) {
		state = s
		return decide(s)
	}))
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	if len(res.Events) > 0 {
		state = operator.Evolve(state, res.Events[len(res.Events)-1])
	}
	return state, nil
}

func (h *operatorsHandler) CreateOperator(ctx context.Context, req *cairnv1.CreateOperatorRequest) (*cairnv1.CreateOperatorResponse, error) {
	roles, err := h.rolesIn("roles", req.GetRoles())
	if err != nil {
		return nil, err
	}
	hash, err := h.operatorPasswordHash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	o, err := h.write(ctx, operator.ID(req.GetEmail()), operator.Create{Email: req.GetEmail(), Name: req.GetName(),
		PasswordHash: hash, Admin: req.GetAdmin(), Roles: roles, Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateOperatorResponse{Operator: operatorOut(o)}, nil
}

func (h *operatorsHandler) GetOperator(_ context.Context, req *cairnv1.GetOperatorRequest) (*cairnv1.GetOperatorResponse, error) {
	o, err := h.reads.Operator(req.GetOperatorId())
	if err != nil {
		return nil, notFound(err, "operator account")
	}
	return &cairnv1.GetOperatorResponse{Operator: operatorOut(o)}, nil
}

func (h *operatorsHandler) ListOperators(_ context.Context, req *cairnv1.ListOperatorsRequest) (*cairnv1.ListOperatorsResponse, error) {
	os, next, err := listPage(req.GetPageToken(), req.GetPageSize(), h.reads.ListOperators)
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListOperatorsResponse{NextPageToken: next}
	for _, o := range os {
		res.Operators = append(res.Operators, operatorOut(o))
	}
	return res, nil
}

func (h *operatorsHandler) UpdateOperator(ctx context.Context, req *cairnv1.UpdateOperatorRequest) (*cairnv1.UpdateOperatorResponse, error) {
	cmd := operator.Update{Name: req.Name, Admin: req.Admin, Now: h.log.Now()}
	if req.GetRoles() != nil {
		roles, err := h.rolesIn("roles.roles", req.GetRoles().GetRoles())
		if err != nil {
			return nil, err
		}
		cmd.Roles = &roles
	}
	if req.Password != nil {
		hash, err := h.operatorPasswordHash(ctx, req.GetPassword())
		if err != nil {
			return nil, err
		}
		cmd.PasswordHash = &hash
	}
	o, err := h.write(ctx, req.GetOperatorId(), cmd)
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateOperatorResponse{Operator: operatorOut(o)}, nil
}

func (h *operatorsHandler) DeleteOperator(ctx context.Context, req *cairnv1.DeleteOperatorRequest) (*cairnv1.DeleteOperatorResponse, error) {
	if _, err := h.write(ctx, req.GetOperatorId(), operator.Delete{Now: h.log.Now()}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteOperatorResponse{}, nil
}

func (h *operatorsHandler) RevokeOperatorSessions(ctx context.Context, req *cairnv1.RevokeOperatorSessionsRequest) (*cairnv1.RevokeOperatorSessionsResponse, error) {
	if _, err := h.write(ctx, req.GetOperatorId(), operator.EndSessions{Now: h.log.Now()}); err != nil {
		return nil, err
	}
	return &cairnv1.RevokeOperatorSessionsResponse{}, nil
}

func (h *operatorsHandler) CreateOperatorSession(ctx context.Context, req *cairnv1.CreateOperatorSessionRequest) (*cairnv1.CreateOperatorSessionResponse, error) {
	email := operator.NormalizeEmail(req.GetEmail())
	if err := h.limit(ctx, operatorLimitKey, h.limits.signInIP, h.limits.signInID, email); err != nil {
		return nil, err
	}
	id := operator.ID(email)
	o, err := h.reads.Operator(id)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	ok, _, err := h.hasher.verify(ctx, req.GetPassword(), o.GetPasswordHash())
	if err != nil {
		h.logger.ErrorContext(ctx, "stored operator password hash unusable", "operator", id, "err", err)
		return nil, errBadSignIn
	}
	if !ok {
		return nil, errBadSignIn
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("operator session secret: %w", err)
	}
	token := operatorToken(secret)
	now := h.log.Now()
	expires := now.Add(h.operatorTTL)
	// The session is the account's own doing: it is the actor.
	caller := access.Principal{Kind: access.Member, ID: o.GetId(), Name: o.GetEmail()}
	if o.GetAdmin() {
		caller.Kind = access.Operator
	}
	info, _ := connect.CallInfoForServerContext(ctx)
	meta, err := writeMeta(caller, info.Spec.Procedure, info.RequestHeader().Get)
	if err != nil {
		return nil, err
	}
	meta.IdempotencyKey = "" // each sign-in is a new secret: never replayed
	checked := o.GetPasswordHash()
	// The second factor is asked for only once the password is right, so a
	// guesser learns nothing about the account from it.
	code := req.GetCode()
	if o.GetMfa().GetEnabled() {
		if code == "" {
			return nil, errMfaRequired
		}
		if err := h.limit(ctx, operatorLimitKey, nil, h.limits.mfaUser, id); err != nil {
			return nil, err
		}
	}
	cmd := operator.SignIn{SessionID: h.log.NewID(), SecretHash: hashToken(token), ExpiresAt: expires, Now: now}
	res, err := h.log.Write(ctx, eventlog.OperatorAggregate(id), meta, eventlog.Decide(operator.Evolve, func(st operator.State) ([]*eventsv1.Envelope, error) {
		if st.GetPasswordHash() != checked {
			// Deleted, or the password changed since it was checked.
			return nil, errBadSignIn
		}
		c := cmd
		if st.GetMfa().GetEnabled() {
			if code == "" {
				return nil, errMfaRequired
			}
			m, err := h.checkOperatorCode(st, code, true)
			if err != nil {
				return nil, err
			}
			c.Mfa = m
		}
		return operator.Decide(st, c)
	}))
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	o = operator.Evolve(o, res.Events[len(res.Events)-1])
	return &cairnv1.CreateOperatorSessionResponse{Secret: token, ExpiresAt: timestamppb.New(expires), Operator: operatorOut(o)}, nil
}

func (h *operatorsHandler) GetCurrentOperator(ctx context.Context, _ *cairnv1.GetCurrentOperatorRequest) (*cairnv1.GetCurrentOperatorResponse, error) {
	p := principal(ctx)
	res := &cairnv1.GetCurrentOperatorResponse{Admin: p.IsOperator()}
	if p.ID != "" {
		o, err := h.reads.Operator(p.ID)
		if err != nil {
			return nil, notFound(err, "operator account")
		}
		res.Operator = operatorOut(o)
	}
	return res, nil
}

func (h *operatorsHandler) DeleteCurrentOperatorSession(ctx context.Context, _ *cairnv1.DeleteCurrentOperatorSessionRequest) (*cairnv1.DeleteCurrentOperatorSessionResponse, error) {
	p := principal(ctx)
	if p.ID == "" || p.SessionID == "" {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "the admin key has no session to end")
	}
	if _, err := h.write(ctx, p.ID, operator.EndSessions{IDs: []string{p.SessionID}, Now: h.log.Now()}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteCurrentOperatorSessionResponse{}, nil
}

// dropRoles removes every account's role on a deleted project; it answers
// the sequence of the last change (0: none).
func (s *Server) dropRoles(ctx context.Context, meta eventlog.Meta, project string) (uint64, error) {
	meta.IdempotencyKey = "" // one request, many aggregates
	var last uint64
	after := ""
	for {
		page, err := s.reads.ListOperators(after, 100)
		if err != nil || len(page) == 0 {
			return last, err
		}
		for _, o := range page {
			if !slices.ContainsFunc(o.GetRoles(), func(r *eventsv1.OperatorRole) bool { return r.GetProjectId() == project }) {
				continue
			}
			res, err := s.log.Write(ctx, eventlog.OperatorAggregate(o.GetId()), meta, eventlog.Decide(operator.Evolve, func(st operator.State) ([]*eventsv1.Envelope, error) {
				roles := slices.DeleteFunc(slices.Clone(st.GetRoles()), func(r *eventsv1.OperatorRole) bool { return r.GetProjectId() == project })
				return operator.Decide(st, operator.Update{Roles: &roles, Now: s.log.Now()})
			}))
			if err != nil {
				return last, err
			}
			last = max(last, res.Seq)
		}
		after = page[len(page)-1].GetId()
	}
}
