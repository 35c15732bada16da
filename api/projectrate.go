package api

import (
	"context"
	"time"

	"github.com/cairn-dev/cairn/api/ratelimit"
	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Defaults of the per-project request rate (docs/limits.md): a safety
// net above what one small node serves, so that no app (nor any load test)
// meets it by accident; an operator who shares a node between clients sets
// each project's own limits lower.
const (
	DefaultProjectRate  = 20_000 // requests per second
	DefaultProjectBurst = 40_000
)

// projectRates limits the requests each project's callers make on this
// node: a token bucket per project and caller class, sized by the
// project's limits (read at every request, so a change applies without a
// restart) or the instance's defaults. It is per node, like the auth
// limits: a project on n nodes gets n times the rate.
//
// A request is charged only once its credential is accepted and its
// project known to exist, so bogus credentials cost a project nothing.
// Guests (no credential) have their own bucket per project: a stranger's
// flood exhausts that and never the budget of the project's keys and
// sessions. The operator key is exempt: it manages the instance and is
// nobody's app.
type projectRates struct {
	lim         *ratelimit.Limiter
	rate, burst int
	disabled    bool
	now         func() time.Time
}

func newProjectRates(rate, burst int, now func() time.Time) (*projectRates, error) {
	if rate < 0 || burst < 0 {
		return &projectRates{disabled: true}, nil
	}
	lim, err := ratelimit.New(ratelimit.Rule{Name: "requests of this project", Every: time.Second, Burst: 1})
	if err != nil {
		return nil, err
	}
	return &projectRates{lim: lim, rate: cmpOrDefault(rate, DefaultProjectRate), burst: cmpOrDefault(burst, DefaultProjectBurst), now: now}, nil
}

func cmpOrDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// charge records one request by p to project; it returns the
// resource_exhausted error (with RetryInfo, and Retry-After on a Connect
// call) when the project's callers of p's class are over their rate.
func (r *projectRates) charge(ctx context.Context, project string, limits *eventsv1.ProjectLimits, p access.Principal) error {
	if r == nil || r.disabled || p.IsOperator() || project == "" {
		return nil
	}
	rate, burst := r.rate, r.burst
	if v := limits.GetRequestsPerSecond(); v > 0 {
		rate = int(v)
		if limits.GetRequestBurst() == 0 && burst < rate {
			burst = rate // a raised rate keeps at least a second's worth of burst
		}
	}
	if v := limits.GetRequestBurst(); v > 0 {
		burst = int(v)
	}
	class, name := "\x00k", "requests of this project"
	if p.Kind == access.Anonymous {
		class, name = "\x00g", "guest requests of this project"
	}
	ok, retry := r.lim.AllowEvery(project+class, time.Second/time.Duration(rate), burst, r.now())
	if ok {
		return nil
	}
	ratelimit.SetRetryAfter(ctx, retry)
	return ratelimit.Error(ratelimit.Rule{Name: name}, retry)
}
