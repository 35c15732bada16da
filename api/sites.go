package api

import (
	"context"
	"slices"
	"strings"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/site"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

type sitesHandler struct{ *Server }

// Where sites are served over plain HTTP on every node.
const (
	sitesPath    = "/_sites/"    // /_sites/<project>/<site>/… : production
	previewsPath = "/_previews/" // /_previews/<project>/<site>/<deployment>/… : one deployment
)

func (h *sitesHandler) siteOut(s *eventsv1.Site) *cairnv1.Site {
	if s == nil {
		return nil
	}
	return &cairnv1.Site{Id: s.GetId(), ProjectId: s.GetProjectId(), Name: s.GetName(), Settings: s.GetSettings(),
		ActiveDeploymentId: s.GetActiveDeploymentId(), CreatedAt: s.GetCreatedAt(), UpdatedAt: s.GetUpdatedAt(),
		Url: h.hosts.SiteURL(s.GetProjectId(), s.GetId()), Domains: h.siteDomains(s)}
}

func (h *sitesHandler) deploymentOut(d *eventsv1.Deployment, active string, withFiles bool) *cairnv1.Deployment {
	out := &cairnv1.Deployment{Id: d.GetId(), SiteId: d.GetSiteId(), FileCount: int32(len(d.GetFiles())),
		TotalSize: d.GetTotalSize(), CreatedAt: d.GetCreatedAt(), Active: d.GetId() == active,
		Status: d.GetStatus(), Failure: d.GetFailure(),
		PreviewUrl: h.hosts.PreviewURL(d.GetProjectId(), d.GetSiteId(), d.GetId())}
	if withFiles {
		out.Files = d.GetFiles()
	}
	return out
}

// writeSite runs one command on a site aggregate.
func (h *sitesHandler) writeSite(ctx context.Context, project, id string, cmd func(site.State) site.Command) (site.State, eventlog.Result, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, eventlog.Result{}, err
	}
	return h.writeSiteWith(ctx, meta, project, id, cmd)
}

func (h *sitesHandler) writeSiteWith(ctx context.Context, meta eventlog.Meta, project, id string, cmd func(site.State) site.Command) (site.State, eventlog.Result, error) {
	var state site.State
	res, err := h.log.Write(ctx, eventlog.SiteAggregate(project, id), meta, eventlog.Decide(site.Evolve, func(s site.State) ([]*eventsv1.Envelope, error) {
		state = s
		return site.Decide(s, cmd(s))
	}))
	if err != nil {
		return nil, res, err
	}
	for _, e := range res.Events {
		state = site.Evolve(state, e)
	}
	setSeq(ctx, res.Seq)
	return state, res, nil
}

func (h *sitesHandler) CreateSite(ctx context.Context, req *cairnv1.CreateSiteRequest) (*cairnv1.CreateSiteResponse, error) {
	id := req.GetSiteId()
	if id == "" || id == domain.UniqueID {
		id = strings.ToLower(h.log.NewID())
	}
	// Domains are claimed as stored: normalised first.
	settings, reserved := site.NormalizeSettings(req.GetSettings()), h.reservedHosts()
	if err := site.CheckSettings(settings, reserved); err != nil {
		return nil, err
	}
	s, err := h.withDomains(ctx, req.GetProjectId(), id, nil, settings.GetDomains(), func() (site.State, error) {
		s, _, err := h.writeSite(ctx, req.GetProjectId(), id, func(site.State) site.Command {
			return site.Create{ID: id, ProjectID: req.GetProjectId(), Name: req.GetName(), Settings: settings, Reserved: reserved, Now: h.log.Now()}
		})
		return s, err
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateSiteResponse{Site: h.siteOut(s)}, nil
}

// withDomains claims the custom domains a site gains before write, and
// releases the ones it loses after it; when write fails, the new claims are
// released again. A claim left behind by a crash is harmless: a domain
// serves only while its site lists it, and another site may take over a
// claim whose holder no longer lists it.
func (h *sitesHandler) withDomains(ctx context.Context, project, id string, before, after []string, write func() (site.State, error)) (site.State, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var claimed []string
	release := func(domains []string) error {
		for _, d := range domains {
			if err := h.domainWrite(ctx, meta, d, site.Release{Domain: d, ProjectID: project, SiteID: id}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range after {
		if slices.Contains(before, d) {
			continue
		}
		if err := h.domainWrite(ctx, meta, d, site.Claim{Domain: d, ProjectID: project, SiteID: id}); err != nil {
			_ = release(claimed)
			return nil, err
		}
		claimed = append(claimed, d)
	}
	s, err := write()
	if err != nil {
		_ = release(claimed)
		return nil, err
	}
	var lost []string
	for _, d := range before {
		if !slices.Contains(after, d) {
			lost = append(lost, d)
		}
	}
	// A claim that outlives its site is harmless (see above): log, go on.
	if err := release(lost); err != nil {
		h.logger.WarnContext(ctx, "releasing custom domains failed; they can be claimed again by any site", "site", id, "err", err)
	}
	return s, nil
}

// domainWrite claims or releases one domain in the system stream.
func (h *sitesHandler) domainWrite(ctx context.Context, meta eventlog.Meta, d string, cmd any) error {
	// One idempotency id per domain: several claims share a request.
	meta.Scope += "\x00domain\x00" + d
	meta.Prepare = nil
	_, err := h.log.Write(ctx, eventlog.DomainAggregate(d), meta, eventlog.Decide(site.EvolveClaim, func(s site.ClaimState) ([]*eventsv1.Envelope, error) {
		if c, ok := cmd.(site.Claim); ok && s != nil {
			c.HolderUsesIt = h.siteUses(s.GetProjectId(), s.GetSiteId(), d)
			cmd = c
		}
		return site.DecideClaim(s, cmd)
	}))
	return err
}

// siteUses reports whether a site still lists a custom domain.
func (h *sitesHandler) siteUses(project, id, d string) bool {
	s, err := h.reads.Site(project, id)
	return err == nil && slices.Contains(s.GetSettings().GetDomains(), d)
}

func (h *sitesHandler) GetSite(ctx context.Context, req *cairnv1.GetSiteRequest) (*cairnv1.GetSiteResponse, error) {
	s, err := h.reads.Site(req.GetProjectId(), req.GetSiteId())
	if err != nil {
		return nil, notFound(err, "site")
	}
	return &cairnv1.GetSiteResponse{Site: h.siteOut(s)}, nil
}

func (h *sitesHandler) ListSites(ctx context.Context, req *cairnv1.ListSitesRequest) (*cairnv1.ListSitesResponse, error) {
	ss, next, err := listPage(req.GetPageToken(), req.GetPageSize(), func(after string, limit int) ([]*eventsv1.Site, error) {
		return h.reads.ListSites(req.GetProjectId(), after, limit)
	})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListSitesResponse{NextPageToken: next}
	for _, s := range ss {
		res.Sites = append(res.Sites, h.siteOut(s))
	}
	return res, nil
}

func (h *sitesHandler) UpdateSite(ctx context.Context, req *cairnv1.UpdateSiteRequest) (*cairnv1.UpdateSiteResponse, error) {
	cur, err := h.reads.Site(req.GetProjectId(), req.GetSiteId())
	if err != nil {
		return nil, notFound(err, "site")
	}
	after := cur.GetSettings().GetDomains()
	settings, reserved := site.NormalizeSettings(req.GetSettings()), h.reservedHosts()
	if settings != nil {
		if err := site.CheckSettings(settings, reserved); err != nil {
			return nil, err
		}
		after = settings.GetDomains()
	}
	s, err := h.withDomains(ctx, req.GetProjectId(), req.GetSiteId(), cur.GetSettings().GetDomains(), after, func() (site.State, error) {
		s, _, err := h.writeSite(ctx, req.GetProjectId(), req.GetSiteId(), func(site.State) site.Command {
			return site.Update{Name: req.Name, Settings: settings, Reserved: reserved, Now: h.log.Now()}
		})
		return s, err
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateSiteResponse{Site: h.siteOut(s)}, nil
}

func (h *sitesHandler) DeleteSite(ctx context.Context, req *cairnv1.DeleteSiteRequest) (*cairnv1.DeleteSiteResponse, error) {
	cur, err := h.reads.Site(req.GetProjectId(), req.GetSiteId())
	if err != nil {
		return nil, notFound(err, "site")
	}
	if _, err := h.withDomains(ctx, req.GetProjectId(), req.GetSiteId(), cur.GetSettings().GetDomains(), nil, func() (site.State, error) {
		s, _, err := h.writeSite(ctx, req.GetProjectId(), req.GetSiteId(), func(site.State) site.Command {
			return site.Delete{Now: h.log.Now()}
		})
		return s, err
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteSiteResponse{}, nil
}

func (h *sitesHandler) MissingFiles(ctx context.Context, req *cairnv1.MissingFilesRequest) (*cairnv1.MissingFilesResponse, error) {
	missing, err := h.blobs.Missing(ctx, req.GetProjectId(), req.GetSha256())
	if err != nil {
		return nil, err
	}
	return &cairnv1.MissingFilesResponse{Sha256: missing}, nil
}

func (h *sitesHandler) CreateDeployment(ctx context.Context, req *cairnv1.CreateDeploymentRequest) (*cairnv1.CreateDeploymentResponse, error) {
	d := &eventsv1.Deployment{Id: strings.ToLower(h.log.NewID()), ProjectId: req.GetProjectId(), SiteId: req.GetSiteId(), Files: req.GetFiles()}
	for _, f := range d.Files {
		d.TotalSize += f.GetSize()
	}
	if err := site.CheckDeployment(d); err != nil {
		return nil, err
	}
	// The manifest names blobs the client uploaded: all must be there.
	shas := make([]string, 0, len(d.GetFiles()))
	for _, f := range d.GetFiles() {
		shas = append(shas, f.GetSha256())
	}
	missing, err := h.blobs.Missing(ctx, d.GetProjectId(), shas)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "%d files are not uploaded yet (first: %s): upload them, then deploy", len(missing), missing[0])
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	res, seq, err := h.deploy(ctx, meta, d, req.GetActivate())
	setSeq(ctx, seq)
	return res, err
}

// deploy records a deployment whose blobs are all stored (checked by the
// caller, or just written by it).
func (h *sitesHandler) deploy(ctx context.Context, meta eventlog.Meta, d *eventsv1.Deployment, activate bool) (*cairnv1.CreateDeploymentResponse, uint64, error) {
	if err := site.CheckDeployment(d); err != nil {
		return nil, 0, err
	}
	s, res, err := h.writeSiteWith(ctx, meta, d.GetProjectId(), d.GetSiteId(), func(site.State) site.Command {
		return site.Deploy{Deployment: d, Activate: activate, Now: h.log.Now()}
	})
	if err != nil {
		return nil, 0, err
	}
	// An idempotent retry answers with the deployment the first request
	// made, whose id is not this request's.
	id := d.GetId()
	for _, e := range res.Events {
		if dc := e.GetDeploymentCreated(); dc != nil {
			id = dc.GetDeployment().GetId()
		}
	}
	stored, err := h.reads.Deployment(d.GetProjectId(), d.GetSiteId(), id)
	if err != nil {
		return nil, 0, err
	}
	return &cairnv1.CreateDeploymentResponse{Deployment: h.deploymentOut(stored, s.GetActiveDeploymentId(), false)}, res.Seq, nil
}

func (h *sitesHandler) GetDeployment(ctx context.Context, req *cairnv1.GetDeploymentRequest) (*cairnv1.GetDeploymentResponse, error) {
	d, err := h.reads.Deployment(req.GetProjectId(), req.GetSiteId(), req.GetDeploymentId())
	if err != nil {
		return nil, notFound(err, "deployment")
	}
	s, err := h.reads.Site(req.GetProjectId(), req.GetSiteId())
	if err != nil {
		return nil, notFound(err, "site")
	}
	return &cairnv1.GetDeploymentResponse{Deployment: h.deploymentOut(d, s.GetActiveDeploymentId(), true)}, nil
}

func (h *sitesHandler) ListDeployments(ctx context.Context, req *cairnv1.ListDeploymentsRequest) (*cairnv1.ListDeploymentsResponse, error) {
	s, err := h.reads.Site(req.GetProjectId(), req.GetSiteId())
	if err != nil {
		return nil, notFound(err, "site")
	}
	ds, next, err := listPage(req.GetPageToken(), req.GetPageSize(), func(after string, limit int) ([]*eventsv1.Deployment, error) {
		return h.reads.ListDeployments(req.GetProjectId(), req.GetSiteId(), after, limit)
	})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListDeploymentsResponse{NextPageToken: next}
	for _, d := range ds {
		res.Deployments = append(res.Deployments, h.deploymentOut(d, s.GetActiveDeploymentId(), false))
	}
	return res, nil
}

func (h *sitesHandler) ActivateDeployment(ctx context.Context, req *cairnv1.ActivateDeploymentRequest) (*cairnv1.ActivateDeploymentResponse, error) {
	if d, err := h.reads.Deployment(req.GetProjectId(), req.GetSiteId(), req.GetDeploymentId()); err == nil &&
		d.GetStatus() == eventsv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "deployment %s failed (%s): it cannot be activated", d.GetId(), d.GetFailure())
	}
	s, _, err := h.writeSite(ctx, req.GetProjectId(), req.GetSiteId(), func(site.State) site.Command {
		return site.Activate{DeploymentID: req.GetDeploymentId(), Now: h.log.Now()}
	})
	if err != nil {
		return nil, err
	}
	return &cairnv1.ActivateDeploymentResponse{Site: h.siteOut(s)}, nil
}

func (h *sitesHandler) DeleteDeployment(ctx context.Context, req *cairnv1.DeleteDeploymentRequest) (*cairnv1.DeleteDeploymentResponse, error) {
	d, err := h.reads.Deployment(req.GetProjectId(), req.GetSiteId(), req.GetDeploymentId())
	if err != nil {
		return nil, notFound(err, "deployment")
	}
	if _, _, err := h.writeSite(ctx, req.GetProjectId(), req.GetSiteId(), func(site.State) site.Command {
		return site.DeleteDeployment{Deployment: d, Now: h.log.Now()}
	}); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteDeploymentResponse{}, nil
}
