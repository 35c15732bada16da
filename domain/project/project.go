// Package project decides the lifecycle of projects (tenants): create,
// update, delete. Pure: time and ids come in the commands.
package project

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// State is a project's current state; nil when it does not exist.
type State = *eventsv1.Project

// Command is one of Create, Update, Delete.
type Command interface{ isCommand() }

// Create registers a new project.
type Create struct {
	ID     string
	Name   string
	Limits *eventsv1.ProjectLimits
	Now    time.Time
}

// Update changes the fields that are set.
type Update struct {
	Name   *string
	Limits *eventsv1.ProjectLimits
	Now    time.Time
}

// Delete removes the project.
type Delete struct{ Now time.Time }

func (Create) isCommand() {}
func (Update) isCommand() {}
func (Delete) isCommand() {}

// ReservedID is no project's id: user-content host names use it as the
// label of functions' hosts (<function>.<project>.fn.<sites domain>).
const ReservedID = "fn"

// Decide returns the events that follow from cmd given state. Returns
// KindAlreadyExists when creating an existing project, KindNotFound when
// changing a missing one.
func Decide(state State, cmd Command) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case Create:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "project %q already exists", c.ID)
		}
		if !domain.ValidProjectID(c.ID) {
			return nil, domain.FieldError("project_id", "must match [a-z0-9][a-z0-9-]{0,35}")
		}
		if c.ID == ReservedID {
			return nil, domain.FieldError("project_id", "%q is reserved (functions' host names use it)", c.ID)
		}
		if c.Name == "" {
			return nil, domain.FieldError("name", "must not be empty")
		}
		limits := c.Limits
		if limits == nil {
			limits = &eventsv1.ProjectLimits{}
		}
		if err := checkLimits(limits); err != nil {
			return nil, err
		}
		ts := timestamppb.New(c.Now)
		p := &eventsv1.Project{Id: c.ID, Name: c.Name, Limits: limits, CreatedAt: ts, UpdatedAt: ts}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ProjectCreated{ProjectCreated: &eventsv1.ProjectCreated{Project: p}}}}, nil
	case Update:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "project not found")
		}
		p := proto.CloneOf(state)
		if c.Name != nil {
			if *c.Name == "" {
				return nil, domain.FieldError("name", "must not be empty")
			}
			p.Name = *c.Name
		}
		if c.Limits != nil {
			if err := checkLimits(c.Limits); err != nil {
				return nil, err
			}
			p.Limits = proto.CloneOf(c.Limits)
		}
		if proto.Equal(p, state) {
			return nil, nil // nothing changed: no event
		}
		p.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ProjectUpdated{ProjectUpdated: &eventsv1.ProjectUpdated{Project: p}}}}, nil
	case Delete:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "project not found")
		}
		p := proto.CloneOf(state)
		p.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ProjectDeleted{ProjectDeleted: &eventsv1.ProjectDeleted{Project: p}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown project command %T", cmd)
	}
}

// MaxReplicas is the most replicas a NATS cluster keeps of a stream.
const MaxReplicas = 5

// MaxRequestRate bounds a project's requests_per_second and request_burst.
const MaxRequestRate = 1_000_000

// MaxConcurrentRequests bounds a project's max_concurrent_requests.
const MaxConcurrentRequests = 100_000

// MaxDeliveryRate bounds a project's realtime_deliveries_per_second and
// realtime_delivery_burst.
const MaxDeliveryRate = 10_000_000

func checkLimits(l *eventsv1.ProjectLimits) error {
	if l.GetMaxStreamBytes() < 0 {
		return domain.FieldError("limits.max_stream_bytes", "must not be negative")
	}
	if r := l.GetReplicas(); r < 0 || r > MaxReplicas {
		return domain.FieldError("limits.replicas", "must be between 0 (instance default) and %d", MaxReplicas)
	}
	if r := l.GetRequestsPerSecond(); r < 0 || r > MaxRequestRate {
		return domain.FieldError("limits.requests_per_second", "must be between 0 (instance default) and %d", MaxRequestRate)
	}
	if b := l.GetRequestBurst(); b < 0 || b > MaxRequestRate {
		return domain.FieldError("limits.request_burst", "must be between 0 (instance default) and %d", MaxRequestRate)
	}
	if c := l.GetMaxConcurrentRequests(); c < 0 || c > MaxConcurrentRequests {
		return domain.FieldError("limits.max_concurrent_requests", "must be between 0 (instance default) and %d", MaxConcurrentRequests)
	}
	if r := l.GetRealtimeDeliveriesPerSecond(); r < 0 || r > MaxDeliveryRate {
		return domain.FieldError("limits.realtime_deliveries_per_second", "must be between 0 (instance default) and %d", MaxDeliveryRate)
	}
	if b := l.GetRealtimeDeliveryBurst(); b < 0 || b > MaxDeliveryRate {
		return domain.FieldError("limits.realtime_delivery_burst", "must be between 0 (default) and %d", MaxDeliveryRate)
	}
	return nil
}

// Evolve returns the state after e.
func Evolve(state State, e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_ProjectCreated:
		return p.ProjectCreated.GetProject()
	case *eventsv1.Envelope_ProjectUpdated:
		return p.ProjectUpdated.GetProject()
	case *eventsv1.Envelope_ProjectDeleted:
		return nil
	}
	return state
}
