package site

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// MaxDomains a site may serve.
const MaxDomains = 20

// MaxDomainLen is the longest host name DNS carries (RFC 1035, without the
// trailing dot).
const MaxDomainLen = 253

// ChallengePrefix is the label before a custom domain where its owner puts
// the TXT record that proves control: _cairn-challenge.<domain>.
const ChallengePrefix = "_cairn-challenge."

// Reserved are the instance's own host names, which no custom domain may
// take: the API's host (its cookies and OAuth callbacks live there) and the
// sites domain (its hosts already name sites). The caller passes them from
// its configuration.
type Reserved struct {
	// APIHost is the host of the public URL, lower-case, without port.
	APIHost string
	// SitesDomain is the domain sites are served under, lower-case.
	SitesDomain string
}

// NormalizeDomain is how a custom domain is stored and compared: lower
// case, without the root's trailing dot.
func NormalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(d), ".")
}

// NormalizeSettings returns s with its domains normalised (a copy; nil
// stays nil).
func NormalizeSettings(s *eventsv1.SiteSettings) *eventsv1.SiteSettings {
	if s == nil || len(s.GetDomains()) == 0 {
		return s
	}
	out := proto.CloneOf(s)
	for i, d := range out.Domains {
		out.Domains[i] = NormalizeDomain(d)
	}
	return out
}

// CheckDomain tells why d (normalised) cannot be a custom domain, as an
// invalid-argument error on field; nil when it can.
func CheckDomain(field, d string, r Reserved) error {
	bad := func(why string) error { return domain.FieldError(field, "%q %s", d, why) }
	bare := strings.TrimSuffix(strings.TrimPrefix(d, "["), "]")
	if _, err := netip.ParseAddr(bare); err == nil {
		return bad("is an IP address: a custom domain is a host name")
	}
	switch {
	case d == "":
		return bad("is empty")
	case len(d) > MaxDomainLen:
		return domain.FieldError(field, "%q… is %d characters long: a host name has at most %d", d[:32], len(d), MaxDomainLen)
	case d == "localhost" || strings.HasSuffix(d, ".localhost"):
		return bad("is a loopback name (localhost)")
	case !strings.Contains(d, "."):
		return bad("is a single label: a custom domain has at least two (www.example.com)")
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return bad("has the label " + quoteLabel(l) + ": labels are 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen (write international names in their xn-- form)")
		}
	}
	// Browsers read a host whose last label is a number as an IPv4
	// address (WHATWG URL), e.g. 0x7f.1.
	if numericLabel(labels[len(labels)-1]) {
		return bad("ends in a numeric label: browsers read it as an IP address")
	}
	if r.APIHost != "" && d == r.APIHost {
		return bad("is the API's own host name")
	}
	if sd := r.SitesDomain; sd != "" && (d == sd || strings.HasSuffix(d, "."+sd)) {
		return bad("is under the sites domain " + sd + ", whose hosts already name sites")
	}
	return nil
}

func quoteLabel(l string) string {
	if len(l) > 70 {
		l = l[:63] + "…"
	}
	return `"` + l + `"`
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func numericLabel(l string) bool {
	digits := "0123456789"
	if h, ok := strings.CutPrefix(l, "0x"); ok {
		l, digits = h, "0123456789abcdef"
	}
	return strings.Trim(l, digits) == ""
}

// Verified reports whether s proved control of custom domain d.
func Verified(s *eventsv1.Site, d string) (*eventsv1.VerifiedDomain, bool) {
	i := slices.IndexFunc(s.GetVerifiedDomains(), func(v *eventsv1.VerifiedDomain) bool { return v.GetDomain() == d })
	if i < 0 {
		return nil, false
	}
	return s.GetVerifiedDomains()[i], true
}

// Serves reports whether custom domain d serves site s: listed in its
// settings and proven.
func Serves(s *eventsv1.Site, d string) bool {
	_, ok := Verified(s, d)
	return ok && slices.Contains(s.GetSettings().GetDomains(), d)
}

// VerifyDomain records that the owner of custom domain Domain proved
// control of it: Records are the TXT values found at RecordName (the
// caller looked them up), Want is the value that proves it.
type VerifyDomain struct {
	Domain, RecordName, Want string
	Records                  []string
	Now                      time.Time
}

func (VerifyDomain) isCommand() {}

func decideVerify(s *eventsv1.Site, c VerifyDomain) ([]*eventsv1.Envelope, error) {
	if !slices.Contains(s.GetSettings().GetDomains(), c.Domain) {
		return nil, &domain.Error{Kind: domain.KindFailedPrecondition, Field: "domain",
			Message: c.Domain + " is not one of the site's settings.domains: add it there first"}
	}
	if _, ok := Verified(s, c.Domain); ok {
		return nil, nil
	}
	if c.Want == "" || !slices.Contains(c.Records, c.Want) {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "DNS TXT record %s: want the value %s, found %s",
			c.RecordName, c.Want, describeRecords(c.Records))
	}
	at := timestamppb.New(c.Now)
	s.VerifiedDomains = append(s.VerifiedDomains, &eventsv1.VerifiedDomain{Domain: c.Domain, VerifiedAt: at})
	s.UpdatedAt = at
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_SiteDomainVerified{SiteDomainVerified: &eventsv1.SiteDomainVerified{
		Site: s, Domain: c.Domain, VerifiedAt: at}}}}, nil
}

// describeRecords says what a TXT lookup found, bounded: the values are
// whatever the domain's DNS holds.
func describeRecords(rs []string) string {
	if len(rs) == 0 {
		return "no TXT record"
	}
	const most = 5
	var b strings.Builder
	for i, r := range rs {
		if i == most {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if len(r) > 80 {
			r = r[:80] + "…"
		}
		b.WriteString(strconv.Quote(r))
	}
	if len(rs) == 1 {
		return "the value " + b.String()
	}
	return "the values " + b.String()
}

// keepVerified drops the verifications of domains s no longer lists:
// re-adding one needs a new proof.
func keepVerified(s *eventsv1.Site) {
	s.VerifiedDomains = slices.DeleteFunc(s.VerifiedDomains, func(v *eventsv1.VerifiedDomain) bool {
		return !slices.Contains(s.GetSettings().GetDomains(), v.GetDomain())
	})
	if len(s.VerifiedDomains) == 0 {
		s.VerifiedDomains = nil
	}
}

// ValidDomain reports whether d is a lower-case host name with at least two
// labels: the shape of a custom domain (CheckDomain says what else it must
// not be).
func ValidDomain(d string) bool {
	if len(d) > MaxDomainLen || !strings.Contains(d, ".") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if !validLabel(l) {
			return false
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
