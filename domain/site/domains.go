package site

import (
	"strings"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// MaxDomains a site may serve.
const MaxDomains = 20

// ValidDomain reports whether d is a lower-case host name with at least two
// labels: what a custom domain may be.
func ValidDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// ClaimState is a domain's current claim; nil when nobody holds it.
type ClaimState = *eventsv1.DomainClaimed

// Claim asks for a domain for a site.
type Claim struct {
	Domain, ProjectID, SiteID string
	// HolderUsesIt tells whether the current holder's site still lists the
	// domain (from the read models): a claim left behind by a deleted site or
	// project, or by a write that failed half way, can be taken over.
	HolderUsesIt bool
}

// Release gives a domain up; only its holder can.
type Release struct{ Domain, ProjectID, SiteID string }

// DecideClaim returns the events that follow from a claim or release.
// Returns KindAlreadyExists when another site holds the domain.
func DecideClaim(state ClaimState, cmd any) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case Claim:
		if !ValidDomain(c.Domain) {
			return nil, domain.FieldError("settings.domains", "%q is not a lower-case host name", c.Domain)
		}
		if state != nil {
			if state.GetProjectId() == c.ProjectID && state.GetSiteId() == c.SiteID {
				return nil, nil
			}
			if c.HolderUsesIt {
				return nil, &domain.Error{Kind: domain.KindAlreadyExists, Field: "settings.domains",
					Message: "domain " + c.Domain + " is used by another site"}
			}
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DomainClaimed{DomainClaimed: &eventsv1.DomainClaimed{
			Domain: c.Domain, ProjectId: c.ProjectID, SiteId: c.SiteID}}}}, nil
	case Release:
		if state == nil || state.GetProjectId() != c.ProjectID || state.GetSiteId() != c.SiteID {
			return nil, nil // not ours (any more): nothing to release
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DomainReleased{DomainReleased: &eventsv1.DomainReleased{
			Domain: c.Domain, ProjectId: c.ProjectID, SiteId: c.SiteID}}}}, nil
	}
	return nil, domain.Errorf(domain.KindInternal, "unknown claim command %T", cmd)
}

// EvolveClaim returns the claim after e.
func EvolveClaim(state ClaimState, e *eventsv1.Envelope) ClaimState {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_DomainClaimed:
		return p.DomainClaimed
	case *eventsv1.Envelope_DomainReleased:
		return nil
	}
	return state
}
