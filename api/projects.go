package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/project"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

type projectsHandler struct{ *Server }

func (h *projectsHandler) CreateProject(ctx context.Context, req *cairnv1.CreateProjectRequest) (*cairnv1.CreateProjectResponse, error) {
	id := req.GetProjectId()
	if id == "" || id == domain.UniqueID {
		id = strings.ToLower(h.log.NewID())
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	limits := limitsIn(req.GetLimits())
	// The stream must exist before the event that announces the project:
	// projectors start consuming it as soon as they see the event.
	meta.Prepare = func(ctx context.Context, _ []*eventsv1.Envelope) error {
		return h.store.EnsureProjectStream(ctx, id, streamLimits(limits))
	}
	res, err := h.log.Write(ctx, eventlog.ProjectAggregate(id), meta, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		return project.Decide(s, project.Create{ID: id, Name: req.GetName(), Limits: limits, Now: h.log.Now()})
	}))
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.CreateProjectResponse{Project: projectOut(project.Evolve(nil, res.Events[0]))}, nil
}

func (h *projectsHandler) GetProject(_ context.Context, req *cairnv1.GetProjectRequest) (*cairnv1.GetProjectResponse, error) {
	p, err := h.reads.Project(req.GetProjectId())
	if err != nil {
		return nil, notFound(err, "project")
	}
	return &cairnv1.GetProjectResponse{Project: projectOut(p)}, nil
}

func (h *projectsHandler) ListProjects(ctx context.Context, req *cairnv1.ListProjectsRequest) (*cairnv1.ListProjectsResponse, error) {
	list := h.reads.ListProjects
	if p := principal(ctx); p.Kind == access.Member {
		// An operator account sees the projects it holds a role on, and
		// nothing of the others.
		list = func(after string, limit int) ([]*eventsv1.Project, error) { return h.memberProjects(p, after, limit) }
	}
	ps, next, err := listPage(req.GetPageToken(), req.GetPageSize(), list)
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListProjectsResponse{NextPageToken: next}
	for _, p := range ps {
		res.Projects = append(res.Projects, projectOut(p))
	}
	return res, nil
}

// memberProjects lists the existing projects p has a role on, by id.
func (h *projectsHandler) memberProjects(p access.Principal, after string, limit int) ([]*eventsv1.Project, error) {
	ids := slices.Sorted(maps.Keys(p.Roles))
	var out []*eventsv1.Project
	for _, id := range ids {
		if id <= after || len(out) >= limit {
			continue
		}
		pr, err := h.reads.Project(id)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, pr)
	}
	return out, nil
}

func (h *projectsHandler) UpdateProject(ctx context.Context, req *cairnv1.UpdateProjectRequest) (*cairnv1.UpdateProjectResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	cmd := project.Update{Name: req.Name, Now: h.log.Now()}
	if req.GetLimits() != nil {
		cmd.Limits = limitsIn(req.GetLimits())
		meta.Prepare = func(ctx context.Context, _ []*eventsv1.Envelope) error {
			return h.store.EnsureProjectStream(ctx, req.GetProjectId(), streamLimits(cmd.Limits))
		}
	}
	agg := eventlog.ProjectAggregate(req.GetProjectId())
	var state project.State
	res, err := h.log.Write(ctx, agg, meta, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		state = s
		return project.Decide(s, cmd)
	}))
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	if len(res.Events) > 0 {
		state = project.Evolve(state, res.Events[len(res.Events)-1])
	}
	return &cairnv1.UpdateProjectResponse{Project: projectOut(state)}, nil
}

func (h *projectsHandler) DeleteProject(ctx context.Context, req *cairnv1.DeleteProjectRequest) (*cairnv1.DeleteProjectResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	res, err := h.log.Write(ctx, eventlog.ProjectAggregate(req.GetProjectId()), meta, eventlog.Decide(project.Evolve, func(s project.State) ([]*eventsv1.Envelope, error) {
		return project.Decide(s, project.Delete{Now: h.log.Now()})
	}))
	if err != nil {
		return nil, err
	}
	// Every node's system projector removes the stream, object store and
	// read models when it applies the deletion; this node already has.
	setSeq(ctx, res.Seq)
	// Roles on the deleted project go too: a project created later with
	// the same id must not open to them.
	if seq, err := h.dropRoles(ctx, meta, req.GetProjectId()); err != nil {
		return nil, fmt.Errorf("remove roles on deleted project %s: %w", req.GetProjectId(), err)
	} else if seq > 0 {
		setSeq(ctx, seq)
	}
	return &cairnv1.DeleteProjectResponse{}, nil
}

func limitsIn(l *cairnv1.ProjectLimits) *eventsv1.ProjectLimits {
	return &eventsv1.ProjectLimits{MaxStreamBytes: l.GetMaxStreamBytes(), Replicas: l.GetReplicas(), MaxStorageBytes: l.GetMaxStorageBytes(),
		RequestsPerSecond: l.GetRequestsPerSecond(), RequestBurst: l.GetRequestBurst(), MaxConcurrentRequests: l.GetMaxConcurrentRequests(),
		RealtimeDeliveriesPerSecond: l.GetRealtimeDeliveriesPerSecond(), RealtimeDeliveryBurst: l.GetRealtimeDeliveryBurst()}
}

func streamLimits(l *eventsv1.ProjectLimits) streams.Limits {
	return streams.Limits{MaxBytes: l.GetMaxStreamBytes(), Replicas: int(l.GetReplicas())}
}
