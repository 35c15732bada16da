// Package site decides the lifecycle of static sites and their deployments:
// create/update/delete a site, record a deployment's manifest, activate
// (and so roll back to) a deployment, delete an old one. Pure: ids, time
// and the manifest (already stored by the caller) come in the commands.
package site

import (
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/headers"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Limits of one site.
const (
	// MaxFiles in one deployment: its manifest travels in one event, about
	// 5.6 MB with MaxPathLen paths (streams.RequiredMaxPayload is 8 MiB).
	MaxFiles = 5000
	// MaxDeployments kept per site; delete old ones to deploy more.
	MaxDeployments = 100
	// MaxPathLen of a file path.
	MaxPathLen = 1024
	// MaxRules of each kind (headers, redirects).
	MaxRules = 100
)

// State is a site's current state; nil when it does not exist.
type State = *eventsv1.Site

// Command is one of the commands below.
type Command interface{ isCommand() }

// Create makes a site.
type Create struct {
	ID, ProjectID, Name string
	Settings            *eventsv1.SiteSettings
	// Reserved are the host names no custom domain may take.
	Reserved Reserved
	Now      time.Time
}

// Update changes what is set.
type Update struct {
	Name     *string
	Settings *eventsv1.SiteSettings
	// Reserved are the host names no custom domain may take.
	Reserved Reserved
	Now      time.Time
}

// Delete removes the site (its deployments' objects stay content-addressed
// in the object store, shared with other deployments).
type Delete struct{ Now time.Time }

// Deploy records a deployment whose files are already stored.
type Deploy struct {
	Deployment *eventsv1.Deployment
	// Activate makes it the production deployment in the same event batch.
	Activate bool
	Now      time.Time
}

// Activate makes a deployment the production one (a rollback is activating
// an older one).
type Activate struct {
	DeploymentID string
	Now          time.Time
}

// Fail records an upload that could not become a deployment, with why.
type Fail struct {
	DeploymentID string
	Reason       string
	Now          time.Time
}

// DeleteDeployment removes a deployment that is not the active one.
type DeleteDeployment struct {
	// Deployment is its last state, from the read model.
	Deployment *eventsv1.Deployment
	Now        time.Time
}

func (Create) isCommand()           {}
func (Update) isCommand()           {}
func (Delete) isCommand()           {}
func (Deploy) isCommand()           {}
func (Activate) isCommand()         {}
func (DeleteDeployment) isCommand() {}
func (Fail) isCommand()             {}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Decide returns the events that follow from cmd given state.
func Decide(state State, cmd Command) ([]*eventsv1.Envelope, error) {
	if c, ok := cmd.(Create); ok {
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "site %q already exists", c.ID)
		}
		if !domain.ValidResourceID(c.ID) {
			return nil, domain.FieldError("site_id", "malformed id")
		}
		if strings.ToLower(c.ID) != c.ID {
			// Host names ignore case: an upper-case site could not be served.
			return nil, domain.FieldError("site_id", "must be lower case: a site is served at <site>.<project>.<sites domain>")
		}
		if c.Name == "" {
			return nil, domain.FieldError("name", "must not be empty")
		}
		set := NormalizeSettings(c.Settings)
		if set == nil {
			set = &eventsv1.SiteSettings{}
		}
		if err := CheckSettings(set, c.Reserved); err != nil {
			return nil, err
		}
		ts := timestamppb.New(c.Now)
		s := &eventsv1.Site{Id: c.ID, ProjectId: c.ProjectID, Name: c.Name, Settings: set, CreatedAt: ts, UpdatedAt: ts}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_SiteCreated{SiteCreated: &eventsv1.SiteCreated{Site: s}}}}, nil
	}
	if state == nil {
		return nil, domain.Errorf(domain.KindNotFound, "site not found")
	}
	s := proto.CloneOf(state)
	switch c := cmd.(type) {
	case Update:
		if c.Name != nil {
			if *c.Name == "" {
				return nil, domain.FieldError("name", "must not be empty")
			}
			s.Name = *c.Name
		}
		if c.Settings != nil {
			set := NormalizeSettings(c.Settings)
			if err := CheckSettings(set, c.Reserved); err != nil {
				return nil, err
			}
			s.Settings = proto.CloneOf(set)
			keepVerified(s)
		}
		if proto.Equal(s, state) {
			return nil, nil
		}
		s.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_SiteUpdated{SiteUpdated: &eventsv1.SiteUpdated{Site: s}}}}, nil
	case Delete:
		s.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_SiteDeleted{SiteDeleted: &eventsv1.SiteDeleted{Site: s}}}}, nil
	case Deploy:
		d := c.Deployment
		if err := CheckDeployment(d); err != nil {
			return nil, err
		}
		if d.GetSiteId() != s.GetId() || d.GetProjectId() != s.GetProjectId() {
			return nil, domain.Errorf(domain.KindInternal, "deployment of another site")
		}
		if slices.Contains(s.DeploymentIds, d.GetId()) {
			return nil, domain.Errorf(domain.KindAlreadyExists, "deployment %q already exists", d.GetId())
		}
		if len(s.DeploymentIds) >= MaxDeployments {
			return nil, domain.Errorf(domain.KindResourceExhausted, "a site keeps at most %d deployments: delete old ones first", MaxDeployments)
		}
		s.DeploymentIds = append(s.DeploymentIds, d.GetId())
		s.UpdatedAt = timestamppb.New(c.Now)
		d = proto.CloneOf(d)
		d.CreatedAt = timestamppb.New(c.Now)
		d.Status = eventsv1.DeploymentStatus_DEPLOYMENT_STATUS_READY
		evs := []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DeploymentCreated{DeploymentCreated: &eventsv1.DeploymentCreated{Site: s, Deployment: d}}}}
		if c.Activate {
			act := proto.CloneOf(s)
			prev := act.ActiveDeploymentId
			act.ActiveDeploymentId = d.GetId()
			evs = append(evs, []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DeploymentActivated{DeploymentActivated: &eventsv1.DeploymentActivated{
				Site: act, DeploymentId: d.GetId(), PreviousDeploymentId: prev}}}}...)
		}
		return evs, nil
	case Activate:
		if !slices.Contains(s.DeploymentIds, c.DeploymentID) {
			return nil, domain.Errorf(domain.KindNotFound, "deployment %q not found", c.DeploymentID)
		}
		if s.ActiveDeploymentId == c.DeploymentID {
			return nil, nil
		}
		prev := s.ActiveDeploymentId
		s.ActiveDeploymentId = c.DeploymentID
		s.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DeploymentActivated{DeploymentActivated: &eventsv1.DeploymentActivated{
			Site: s, DeploymentId: c.DeploymentID, PreviousDeploymentId: prev}}}}, nil
	case Fail:
		if !domain.ValidResourceID(c.DeploymentID) {
			return nil, domain.FieldError("deployment_id", "malformed id")
		}
		d := &eventsv1.Deployment{Id: c.DeploymentID, ProjectId: s.GetProjectId(), SiteId: s.GetId(),
			Status: eventsv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, Failure: c.Reason, CreatedAt: timestamppb.New(c.Now)}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DeploymentFailed{DeploymentFailed: &eventsv1.DeploymentFailed{Site: s, Deployment: d}}}}, nil
	case VerifyDomain:
		return decideVerify(s, c)
	case DeleteDeployment:
		id := c.Deployment.GetId()
		if !slices.Contains(s.DeploymentIds, id) {
			return nil, domain.Errorf(domain.KindNotFound, "deployment %q not found", id)
		}
		if s.ActiveDeploymentId == id {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "deployment %q is the active one: activate another first", id)
		}
		s.DeploymentIds = slices.DeleteFunc(s.DeploymentIds, func(d string) bool { return d == id })
		s.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DeploymentDeleted{DeploymentDeleted: &eventsv1.DeploymentDeleted{Site: s, Deployment: c.Deployment}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown site command %T", cmd)
	}
}

// Evolve returns the state after e: every site event carries the site.
func Evolve(state State, e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_SiteCreated:
		return p.SiteCreated.GetSite()
	case *eventsv1.Envelope_SiteUpdated:
		return p.SiteUpdated.GetSite()
	case *eventsv1.Envelope_SiteDeleted:
		return nil
	case *eventsv1.Envelope_DeploymentCreated:
		return p.DeploymentCreated.GetSite()
	case *eventsv1.Envelope_DeploymentActivated:
		return p.DeploymentActivated.GetSite()
	case *eventsv1.Envelope_DeploymentDeleted:
		return p.DeploymentDeleted.GetSite()
	case *eventsv1.Envelope_DeploymentFailed:
		return p.DeploymentFailed.GetSite()
	case *eventsv1.Envelope_SiteDomainVerified:
		return p.SiteDomainVerified.GetSite()
	}
	return state
}

// CleanPath reports whether p is a clean, relative, slash-separated file
// path: what a manifest may hold.
func CleanPath(p string) bool {
	return p != "" && len(p) <= MaxPathLen && !strings.HasPrefix(p, "/") && path.Clean(p) == p &&
		p != "." && !strings.HasPrefix(p, "../") && p != ".." && !strings.ContainsAny(p, "\\\x00")
}

// CheckDeployment validates a manifest.
func CheckDeployment(d *eventsv1.Deployment) error {
	if !domain.ValidResourceID(d.GetId()) {
		return domain.FieldError("deployment_id", "malformed id")
	}
	if len(d.GetFiles()) == 0 {
		return domain.FieldError("files", "a deployment needs at least one file")
	}
	if len(d.GetFiles()) > MaxFiles {
		return domain.FieldError("files", "at most %d files per deployment", MaxFiles)
	}
	seen := make(map[string]bool, len(d.GetFiles()))
	var total int64
	for _, f := range d.GetFiles() {
		if !CleanPath(f.GetPath()) {
			return domain.FieldError("files", "path %q is not a clean relative path", f.GetPath())
		}
		if seen[f.GetPath()] {
			return domain.FieldError("files", "path %q appears twice", f.GetPath())
		}
		seen[f.GetPath()] = true
		if !sha256Hex.MatchString(f.GetSha256()) {
			return domain.FieldError("files", "%q: sha256 must be 64 lower-case hex characters", f.GetPath())
		}
		if f.GetSize() < 0 {
			return domain.FieldError("files", "%q: negative size", f.GetPath())
		}
		total += f.GetSize()
	}
	if total != d.GetTotalSize() {
		return domain.FieldError("total_size", "is %d, the files add up to %d", d.GetTotalSize(), total)
	}
	return nil
}

// CheckSettings validates serving settings, whose domains are normalised
// (NormalizeSettings); r are the host names no custom domain may take.
func CheckSettings(s *eventsv1.SiteSettings, r Reserved) error {
	if p := s.GetNotFoundPage(); p != "" && !CleanPath(p) {
		return domain.FieldError("settings.not_found_page", "must be a clean relative path")
	}
	if len(s.GetHeaders()) > MaxRules || len(s.GetRedirects()) > MaxRules {
		return domain.FieldError("settings", "at most %d header rules and %d redirects", MaxRules, MaxRules)
	}
	for _, h := range s.GetHeaders() {
		if _, err := path.Match(strings.TrimSuffix(h.GetPattern(), "/*"), "x"); err != nil || !strings.HasPrefix(h.GetPattern(), "/") {
			return domain.FieldError("settings.headers", "pattern %q must start with / and be a valid path pattern", h.GetPattern())
		}
		if err := headers.Check("settings.headers", h.GetName(), h.GetValue()); err != nil {
			return err
		}
	}
	if len(s.GetDomains()) > MaxDomains {
		return domain.FieldError("settings.domains", "at most %d custom domains", MaxDomains)
	}
	seen := map[string]bool{}
	for _, d := range s.GetDomains() {
		if err := CheckDomain("settings.domains", d, r); err != nil {
			return err
		}
		if seen[d] {
			return domain.FieldError("settings.domains", "%q appears twice", d)
		}
		seen[d] = true
	}
	for _, r := range s.GetRedirects() {
		if !strings.HasPrefix(r.GetFrom(), "/") || r.GetTo() == "" || strings.ContainsAny(r.GetTo(), "\r\n\x00 ") {
			return domain.FieldError("settings.redirects", "redirect %q → %q: from must start with /, to must be a URL or path", r.GetFrom(), r.GetTo())
		}
		switch r.GetStatus() {
		case 301, 302, 307, 308:
		default:
			return domain.FieldError("settings.redirects", "status %d: use 301, 302, 307 or 308", r.GetStatus())
		}
	}
	return nil
}
