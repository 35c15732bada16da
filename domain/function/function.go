// Package function decides function, deployment and execution events:
// settings (runtime, timeout, who may execute, the scopes of the key its
// code gets, event triggers, schedule, variables), deployments and their
// activation, and the life of an execution.
package function

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/permission"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Runtimes.
const (
	RuntimeJS   = "js"
	RuntimeWASM = "wasm"
)

// Execution statuses and triggers.
const (
	StatusWaiting    = "waiting"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"

	TriggerHTTP     = "http"
	TriggerEvent    = "event"
	TriggerSchedule = "schedule"
)

// Deployment statuses.
const (
	DeploymentReady  = "ready"
	DeploymentFailed = "failed"
)

// DefaultTimeout is a function's timeout unless it sets one.
const DefaultTimeout = 15 * time.Second

// ErrFunctionNotFound: no such function.
var ErrFunctionNotFound = domain.Errorf(domain.KindNotFound, "function not found")

// Variable is a variable as a command carries it: secrets already sealed.
type Variable struct {
	Key, Value string
	Secret     bool
	Sealed     []byte
}

// Settings are a function's changeable fields; nil keeps the current value.
type Settings struct {
	Name      *string
	Timeout   *time.Duration
	Execute   *[]string
	Scopes    *[]string
	Events    *[]string
	Schedule  *string
	Enabled   *bool
	Variables *[]Variable
	// MaxConcurrency bounds the function's executions at once on a node.
	MaxConcurrency *int32
}

// CreateFunction makes a function.
type CreateFunction struct {
	ProjectID, ID, Runtime, UID string
	Settings
	MaxTimeout time.Duration
	Now        time.Time
}

// UpdateFunction changes the fields set.
type UpdateFunction struct {
	Settings
	MaxTimeout time.Duration
	Now        time.Time
}

// ActivateDeployment makes Deployment (ready, of this function) serve.
type ActivateDeployment struct {
	Deployment *eventsv1.FunctionDeployment
	Now        time.Time
}

// DeleteFunction deletes the function with its deployments and executions.
type DeleteFunction struct{ Now time.Time }

// Command is one of the function commands.
type Command interface{ isCommand() }

func (CreateFunction) isCommand()     {}
func (UpdateFunction) isCommand()     {}
func (ActivateDeployment) isCommand() {}
func (DeleteFunction) isCommand()     {}

// State is a function after its last event (nil: none).
func State(last *eventsv1.Envelope) *eventsv1.Function {
	switch p := last.GetPayload().(type) {
	case *eventsv1.Envelope_FunctionCreated:
		return p.FunctionCreated.GetFunction()
	case *eventsv1.Envelope_FunctionUpdated:
		return p.FunctionUpdated.GetFunction()
	case *eventsv1.Envelope_ExecutionsExpired:
		return p.ExecutionsExpired.GetFunction()
	}
	return nil
}

// Decide returns the events that follow from cmd given state.
func Decide(state *eventsv1.Function, cmd Command) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case CreateFunction:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "function %q already exists", c.ID)
		}
		if c.Runtime != RuntimeJS && c.Runtime != RuntimeWASM {
			return nil, domain.FieldError("runtime", "must be js or wasm")
		}
		f := &eventsv1.Function{Id: c.ID, ProjectId: c.ProjectID, Runtime: c.Runtime, Uid: c.UID, Enabled: true,
			TimeoutSeconds: int32(DefaultTimeout / time.Second), CreatedAt: timestamppb.New(c.Now), UpdatedAt: timestamppb.New(c.Now)}
		if err := apply(f, c.Settings, c.MaxTimeout); err != nil {
			return nil, err
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FunctionCreated{FunctionCreated: &eventsv1.FunctionCreated{Function: f}}}}, nil
	case UpdateFunction:
		if state == nil {
			return nil, ErrFunctionNotFound
		}
		f := proto.CloneOf(state)
		f.UpdatedAt = timestamppb.New(c.Now)
		if err := apply(f, c.Settings, c.MaxTimeout); err != nil {
			return nil, err
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FunctionUpdated{FunctionUpdated: &eventsv1.FunctionUpdated{Function: f}}}}, nil
	case ActivateDeployment:
		if state == nil {
			return nil, ErrFunctionNotFound
		}
		d := c.Deployment
		if d == nil || d.GetFunctionUid() != state.GetUid() {
			return nil, domain.Errorf(domain.KindNotFound, "deployment not found in function %q", state.GetId())
		}
		if d.GetStatus() != DeploymentReady {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "deployment %q failed its build (%s) and cannot serve", d.GetId(), d.GetError())
		}
		f := proto.CloneOf(state)
		f.ActiveDeploymentId = d.GetId()
		f.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FunctionUpdated{FunctionUpdated: &eventsv1.FunctionUpdated{Function: f}}}}, nil
	case DeleteFunction:
		if state == nil {
			return nil, ErrFunctionNotFound
		}
		f := proto.CloneOf(state)
		f.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FunctionDeleted{FunctionDeleted: &eventsv1.FunctionDeleted{Function: f}}}}, nil
	}
	return nil, domain.Errorf(domain.KindInternal, "unknown function command %T", cmd)
}

func apply(f *eventsv1.Function, s Settings, maxTimeout time.Duration) error {
	if s.Name != nil {
		if *s.Name == "" || len(*s.Name) > 128 {
			return domain.FieldError("name", "must be 1 to 128 characters")
		}
		f.Name = *s.Name
	}
	if s.Timeout != nil {
		t := *s.Timeout
		if t == 0 {
			t = DefaultTimeout
		}
		if t < time.Second || (maxTimeout > 0 && t > maxTimeout) {
			return domain.FieldError("timeout_seconds", "must be between 1 and %d", int(maxTimeout/time.Second))
		}
		f.TimeoutSeconds = int32(t / time.Second)
	}
	if s.Execute != nil {
		roles := make([]string, 0, len(*s.Execute))
		for _, r := range *s.Execute {
			role, err := permission.ParseRole(r)
			if err != nil {
				return domain.FieldError("execute", "%v", err)
			}
			roles = append(roles, role.String())
		}
		slices.Sort(roles)
		f.Execute = slices.Compact(roles)
	}
	if s.Scopes != nil {
		for _, sc := range *s.Scopes {
			if !access.ValidScope(sc) {
				return domain.FieldError("scopes", "%q is not a scope", sc)
			}
		}
		f.Scopes = slices.Compact(slices.Sorted(slices.Values(*s.Scopes)))
	}
	if s.Events != nil {
		for _, e := range *s.Events {
			if err := ValidEventName(e); err != nil {
				return domain.FieldError("events", "%v", err)
			}
		}
		f.Events = slices.Compact(slices.Sorted(slices.Values(*s.Events)))
	}
	if s.Schedule != nil {
		if err := ValidCron(*s.Schedule); err != nil {
			return domain.FieldError("schedule", "%v", err)
		}
		f.Schedule = strings.Join(strings.Fields(*s.Schedule), " ")
	}
	if s.Enabled != nil {
		f.Enabled = *s.Enabled
	}
	if s.MaxConcurrency != nil {
		if *s.MaxConcurrency < 0 || *s.MaxConcurrency > 1000 {
			return domain.FieldError("max_concurrency", "must be between 0 (the project's limit) and 1000")
		}
		f.MaxConcurrency = *s.MaxConcurrency
	}
	if s.Variables != nil {
		old := map[string]*eventsv1.FunctionVariable{}
		for _, v := range f.GetVariables() {
			old[v.GetKey()] = v
		}
		f.Variables = nil
		seen := map[string]bool{}
		for _, v := range *s.Variables {
			if !variableKey.MatchString(v.Key) {
				return domain.FieldError("variables", "%q is not a variable name (letters, digits, _; not starting with a digit)", v.Key)
			}
			if seen[v.Key] {
				return domain.FieldError("variables", "%q is given twice", v.Key)
			}
			seen[v.Key] = true
			nv := &eventsv1.FunctionVariable{Key: v.Key, Secret: v.Secret}
			switch {
			case v.Secret && len(v.Sealed) > 0:
				nv.Sealed = v.Sealed
			case v.Secret:
				// A secret sent without a value keeps its current one.
				if o := old[v.Key]; o != nil && o.GetSecret() {
					nv.Sealed = o.GetSealed()
				} else {
					return domain.FieldError("variables", "secret %q needs a value", v.Key)
				}
			default:
				nv.Value = v.Value
			}
			f.Variables = append(f.Variables, nv)
		}
	}
	return nil
}

var variableKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// eventToken is one segment of an event name: an id, "*", or a word.
var eventToken = regexp.MustCompile(`^(\*|[a-zA-Z0-9][a-zA-Z0-9_-]{0,35})$`)

// ValidEventName checks an Appwrite event name such as
// databases.*.collections.*.documents.*.create or users.*.
func ValidEventName(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) < 2 || len(parts) > 10 {
		return fmt.Errorf("event %q: want a resource path like users.*.create", name)
	}
	for _, p := range parts {
		if !eventToken.MatchString(p) {
			return fmt.Errorf("event %q: %q is not an id, a word or *", name, p)
		}
	}
	switch parts[0] {
	case "databases", "buckets", "users", "teams", "functions":
		return nil
	}
	return fmt.Errorf("event %q: resources are databases, buckets, users, teams, functions", name)
}

// MatchEvent reports whether a relative subject (without cairn.<p>.)
// matches one of the function's event names: "*" matches one token, and a
// name without an action matches every action below it.
func MatchEvent(events []string, subject string) bool {
	s := strings.Split(subject, ".")
	for _, e := range events {
		p := strings.Split(e, ".")
		if len(s) < len(p) {
			continue
		}
		ok := true
		for i := range p {
			if p[i] != "*" && p[i] != s[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

var cronBounds = [6][2]int{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}}

// ValidCron checks a cron expression (UTC) with *, lists, ranges and
// steps: five fields (minute hour day-of-month month day-of-week) as
// Appwrite takes, or six with seconds first; "" means none.
func ValidCron(expr string) error {
	fields := strings.Fields(expr)
	if len(fields) == 0 {
		return nil
	}
	if len(fields) != 5 && len(fields) != 6 {
		return fmt.Errorf("%q: want 5 fields (minute hour day month weekday), or 6 with seconds first", expr)
	}
	bounds := cronBounds[:]
	if len(fields) == 5 {
		bounds = bounds[1:]
	}
	for i, f := range fields {
		for _, item := range strings.Split(f, ",") {
			rng, step, hasStep := strings.Cut(item, "/")
			if hasStep {
				if n, err := strconv.Atoi(step); err != nil || n < 1 {
					return fmt.Errorf("%q: bad step %q", expr, step)
				}
			}
			if rng == "*" {
				continue
			}
			lo, hi, isRange := strings.Cut(rng, "-")
			a, err := strconv.Atoi(lo)
			b := a
			if err == nil && isRange {
				b, err = strconv.Atoi(hi)
			}
			if err != nil || a < bounds[i][0] || b > bounds[i][1] || a > b {
				return fmt.Errorf("%q: field %d (%q) must be within %d-%d", expr, i+1, item, bounds[i][0], bounds[i][1])
			}
		}
	}
	return nil
}
