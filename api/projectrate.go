package api

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/api/inflight"
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

// DefaultProjectConcurrency bounds the calls each project's keys and
// sessions (and, apart, its guests) have running at once on a node, per
// core, and at least 64: a safety net, not a share. A tighter bound queued
// a single busy project's own calls — at 8 per core (16 here), 64 clients
// of one project lost 7–21 % of their throughput and spent more CPU per
// call (tools/pbcompare, same run) — while under another project's flood
// the CPU goes to that project's realtime fan-out, which this does not
// bound (BenchmarkFairness profiles).
const DefaultProjectConcurrency = 32

// defaultConcurrency is DefaultProjectConcurrency for this node.
func defaultConcurrency() int { return max(64, DefaultProjectConcurrency*runtime.GOMAXPROCS(0)) }

// A call over its project's concurrency waits in line at most
// projectSlotWait, with at most projectSlotQueue others.
const (
	projectSlotWait  = 10 * time.Second
	projectSlotQueue = 4096
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
//
// The same classes also have a bound on calls running at once (slots):
// Go has no goroutine priorities, so without it a project with many calls
// in flight takes most of the node's CPU and every other project's calls
// wait behind its goroutines.
type projectRates struct {
	lim         *ratelimit.Limiter
	rate, burst int
	disabled    bool
	now         func() time.Time
	slots       *inflight.Limiter
	concurrency int // <0: no bound
}

func newProjectRates(rate, burst, concurrency int, now func() time.Time) (*projectRates, error) {
	r := &projectRates{slots: inflight.New(projectSlotWait, projectSlotQueue), concurrency: cmpOrDefault(concurrency, defaultConcurrency())}
	if rate < 0 || burst < 0 {
		r.disabled = true
		return r, nil
	}
	lim, err := ratelimit.New(ratelimit.Rule{Name: "requests of this project", Every: time.Second, Burst: 1})
	if err != nil {
		return nil, err
	}
	r.lim, r.rate, r.burst, r.now = lim, cmpOrDefault(rate, DefaultProjectRate), cmpOrDefault(burst, DefaultProjectBurst), now
	return r, nil
}

// callerClass is the bucket (and slots) of p's calls to a project, and the
// name of its limits for the caller.
func callerClass(p access.Principal) (class, name string) {
	if p.Kind == access.Anonymous {
		return "\x00g", "guest requests of this project"
	}
	return "\x00k", "requests of this project"
}

// slot waits for one of the slots of p's class in project (nil: none was
// needed). A call refused after waiting gets
// resource_exhausted with a Retry-After of a second. Functions' own calls
// are exempt: their executions hold slots of their own (execSlot), and a
// function calling its project's API while its caller holds a slot must
// never wait for that slot.
func (r *projectRates) slot(ctx context.Context, project string, limits *eventsv1.ProjectLimits, p access.Principal) (*inflight.Slot, error) {
	if r == nil || p.IsOperator() || project == "" || strings.HasPrefix(p.ID, functionCaller) {
		return nil, nil
	}
	n := r.concurrency
	if v := limits.GetMaxConcurrentRequests(); v > 0 {
		n = int(v)
	}
	if n < 0 {
		return nil, nil
	}
	class, name := callerClass(p)
	slot, err := r.slots.Acquire(ctx, project+class, n)
	if errors.Is(err, inflight.ErrBusy) {
		ratelimit.SetRetryAfter(ctx, time.Second)
		return nil, ratelimit.Error(ratelimit.Rule{Name: fmt.Sprintf("%s in flight (at most %d at once)", name, n)}, time.Second)
	}
	if err != nil {
		return nil, fmt.Errorf("wait for a slot of project %s: %w", project, err)
	}
	return slot, nil
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
	class, name := callerClass(p)
	ok, retry := r.lim.AllowEvery(project+class, time.Second/time.Duration(rate), burst, r.now())
	if ok {
		return nil
	}
	ratelimit.SetRetryAfter(ctx, retry)
	return ratelimit.Error(ratelimit.Rule{Name: name}, retry)
}

// othersCalls counts the calls of projects other than project that took a
// slot on this node so far: the realtime fan-out of a busy project keeps
// to a share of the CPU when it grew during its last run
// (realtime.Limits.OthersCalls). Calls that take no slot (operators,
// functions, no bound) are not counted.
func (r *projectRates) othersCalls(project string) int64 {
	if r == nil {
		return 0
	}
	all, k := r.slots.Started(project + "\x00k")
	_, g := r.slots.Started(project + "\x00g")
	return all - k - g
}
