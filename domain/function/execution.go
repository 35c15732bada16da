package function

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// CreateDeployment records an uploaded deployment and its build verdict.
type CreateDeployment struct {
	Function   *eventsv1.Function
	ID, SHA256 string
	Size       int64
	Object     string
	BuildError string
	Now        time.Time
}

// DecideDeployment returns the FunctionDeploymentCreated event.
func DecideDeployment(existing *eventsv1.FunctionDeployment, c CreateDeployment) ([]*eventsv1.Envelope, error) {
	if c.Function == nil {
		return nil, ErrFunctionNotFound
	}
	if existing != nil {
		return nil, domain.Errorf(domain.KindAlreadyExists, "deployment %q already exists", c.ID)
	}
	d := &eventsv1.FunctionDeployment{Id: c.ID, ProjectId: c.Function.GetProjectId(), FunctionId: c.Function.GetId(),
		FunctionUid: c.Function.GetUid(), Size: c.Size, Sha256: c.SHA256, Object: c.Object, Status: DeploymentReady,
		CreatedAt: timestamppb.New(c.Now)}
	if c.BuildError != "" {
		d.Status, d.Error = DeploymentFailed, c.BuildError
	}
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FunctionDeploymentCreated{FunctionDeploymentCreated: &eventsv1.FunctionDeploymentCreated{Deployment: d}}}}, nil
}

// DecideDeleteDeployment deletes a deployment that is not the active one.
func DecideDeleteDeployment(f *eventsv1.Function, d *eventsv1.FunctionDeployment) ([]*eventsv1.Envelope, error) {
	if f == nil || d == nil || d.GetFunctionUid() != f.GetUid() {
		return nil, domain.Errorf(domain.KindNotFound, "deployment not found")
	}
	if f.GetActiveDeploymentId() == d.GetId() {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "deployment %q is active: activate another first", d.GetId())
	}
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_FunctionDeploymentDeleted{FunctionDeploymentDeleted: &eventsv1.FunctionDeploymentDeleted{Deployment: d}}}}, nil
}

// ExecutionState is an execution after its last event (nil: none).
func ExecutionState(last *eventsv1.Envelope) *eventsv1.Execution {
	switch p := last.GetPayload().(type) {
	case *eventsv1.Envelope_ExecutionCreated:
		return p.ExecutionCreated.GetExecution()
	case *eventsv1.Envelope_ExecutionUpdated:
		return p.ExecutionUpdated.GetExecution()
	}
	return nil
}

// StartExecution creates an execution: waiting (queued) or, run at once,
// processing.
func StartExecution(existing, e *eventsv1.Execution, now time.Time) ([]*eventsv1.Envelope, error) {
	if existing != nil {
		// An event or schedule delivered twice names the same execution.
		return nil, domain.Errorf(domain.KindAlreadyExists, "execution %q already exists", e.GetId())
	}
	if e.GetStatus() != StatusWaiting && e.GetStatus() != StatusProcessing {
		return nil, domain.Errorf(domain.KindInternal, "an execution starts waiting or processing, not %q", e.GetStatus())
	}
	e = proto.CloneOf(e)
	e.CreatedAt, e.UpdatedAt = timestamppb.New(now), timestamppb.New(now)
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ExecutionCreated{ExecutionCreated: &eventsv1.ExecutionCreated{Execution: e}}}}, nil
}

// AdvanceExecution moves an execution on: waiting → processing →
// completed or failed. A finished execution never changes again, so a
// worker that redelivers a job cannot overwrite the result.
func AdvanceExecution(cur, next *eventsv1.Execution, now time.Time) ([]*eventsv1.Envelope, error) {
	if cur == nil {
		return nil, domain.Errorf(domain.KindNotFound, "execution not found")
	}
	switch cur.GetStatus() {
	case StatusCompleted, StatusFailed:
		return nil, nil
	case StatusProcessing:
		if next.GetStatus() == StatusWaiting {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "execution %q is already processing", cur.GetId())
		}
	}
	e := proto.CloneOf(next)
	e.CreatedAt, e.UpdatedAt = cur.GetCreatedAt(), timestamppb.New(now)
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ExecutionUpdated{ExecutionUpdated: &eventsv1.ExecutionUpdated{Execution: e}}}}, nil
}
