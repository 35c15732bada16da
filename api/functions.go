package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/api/jwt"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/function"
	"github.com/cairn-dev/cairn/domain/permission"
	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// FunctionRuntimes run function code (cmd wires fnrun/js and fnrun/wasm).
type FunctionRuntimes interface {
	// Check is a deployment's build step: the code compiles.
	Check(ctx context.Context, runtime string, code []byte) error
	// Run executes code (codeKey names it for compile caches).
	Run(ctx context.Context, runtime, codeKey string, code []byte, req fnrun.Request, lim fnrun.Limits) (fnrun.Response, error)
}

// functionReads is what functions need of the read models.
type functionReads interface {
	Function(project, id string) (*eventsv1.Function, error)
	ListFunctions(project, after string, limit int) ([]*eventsv1.Function, error)
	FunctionDeployment(project string, f *eventsv1.Function, id string) (*eventsv1.FunctionDeployment, error)
	ListFunctionDeployments(project string, f *eventsv1.Function, after string, limit int) ([]*eventsv1.FunctionDeployment, error)
	Execution(project string, f *eventsv1.Function, id string) (*eventsv1.Execution, error)
	ListExecutions(project string, f *eventsv1.Function, after string, limit int, keep func(*eventsv1.Execution) bool) ([]*eventsv1.Execution, error)
	ListAllFunctions(project string) ([]*eventsv1.Function, error)
	ListTriggerFunctions(project string) ([]projections.TriggerFunction, error)
	HasExecutionBefore(project string, f *eventsv1.Function, t time.Time) (bool, error)
	QueuedExecutions(project string, f *eventsv1.Function) (int64, error)
}

// FunctionLimits bound functions (Config); zero means the default.
type FunctionLimits struct {
	// MaxTimeout is the longest timeout a function may set.
	MaxTimeout time.Duration
	// MaxMemoryBytes bounds one execution's memory.
	MaxMemoryBytes int64
	// MaxCodeBytes bounds a deployment.
	MaxCodeBytes int64
	// MaxConcurrent bounds executions running at once on a node, per
	// project (so one project's flood cannot starve the others).
	MaxConcurrent int
	// Retention is how long execution records are kept (0: forever);
	// RetentionSweep the cron of the sweep that expires older ones (once
	// per period across the instance).
	Retention      time.Duration
	RetentionSweep string
}

func (l FunctionLimits) withDefaults() FunctionLimits {
	if l.MaxTimeout <= 0 {
		l.MaxTimeout = 15 * time.Minute
	}
	if l.MaxMemoryBytes <= 0 {
		l.MaxMemoryBytes = 128 << 20
	}
	if l.MaxCodeBytes <= 0 {
		l.MaxCodeBytes = 32 << 20
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 16
	}
	if l.RetentionSweep == "" {
		l.RetentionSweep = "@hourly"
	}
	return l
}

// maxStoredBody is the most of a response body an execution record keeps.
const maxStoredBody = 64 << 10

type functionsHandler struct{ *Server }

func (s *Server) loadFunction(project, id string) (*eventsv1.Function, error) {
	f, err := s.reads.Function(project, id)
	if errors.Is(err, errNotFound) {
		return nil, domain.Errorf(domain.KindNotFound, "function %q not found", id)
	}
	return f, err
}

func functionOut(f *eventsv1.Function) *cairnv1.Function {
	out := &cairnv1.Function{Id: f.GetId(), ProjectId: f.GetProjectId(), Name: f.GetName(), Runtime: f.GetRuntime(),
		TimeoutSeconds: f.GetTimeoutSeconds(), Execute: f.GetExecute(), Scopes: f.GetScopes(), Events: f.GetEvents(),
		Schedule: f.GetSchedule(), Enabled: f.GetEnabled(), ActiveDeploymentId: f.GetActiveDeploymentId(),
		MaxConcurrency: f.GetMaxConcurrency(), CreatedAt: f.GetCreatedAt(), UpdatedAt: f.GetUpdatedAt()}
	for _, v := range f.GetVariables() {
		// Secrets are never returned.
		out.Variables = append(out.Variables, &cairnv1.FunctionVariable{Key: v.GetKey(), Value: v.GetValue(), Secret: v.GetSecret()})
	}
	return out
}

func deploymentOut(f *eventsv1.Function, d *eventsv1.FunctionDeployment) *cairnv1.FunctionDeployment {
	return &cairnv1.FunctionDeployment{Id: d.GetId(), FunctionId: d.GetFunctionId(), Size: d.GetSize(), Sha256: d.GetSha256(),
		Status: d.GetStatus(), Error: d.GetError(), Active: f.GetActiveDeploymentId() == d.GetId(), CreatedAt: d.GetCreatedAt()}
}

var executionStatusOut = map[string]cairnv1.ExecutionStatus{
	function.StatusWaiting:    cairnv1.ExecutionStatus_EXECUTION_STATUS_WAITING,
	function.StatusProcessing: cairnv1.ExecutionStatus_EXECUTION_STATUS_PROCESSING,
	function.StatusCompleted:  cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED,
	function.StatusFailed:     cairnv1.ExecutionStatus_EXECUTION_STATUS_FAILED,
}

func executionOut(e *eventsv1.Execution) *cairnv1.Execution {
	return &cairnv1.Execution{Id: e.GetId(), FunctionId: e.GetFunctionId(), DeploymentId: e.GetDeploymentId(), Trigger: e.GetTrigger(),
		Status: executionStatusOut[e.GetStatus()], RequestMethod: e.GetRequestMethod(), RequestPath: e.GetRequestPath(),
		ResponseStatus: e.GetResponseStatus(), ResponseHeaders: e.GetResponseHeaders(), ResponseBody: e.GetResponseBody(),
		Logs: e.GetLogs(), Errors: e.GetErrors(), DurationMs: e.GetDurationMs(), CpuTimeUs: e.GetCpuTimeUs(), CreatedAt: e.GetCreatedAt(), UpdatedAt: e.GetUpdatedAt()}
}

// functionWithQueue is functionOut with the function's queue depth.
func (s *Server) functionWithQueue(project string, f *eventsv1.Function) (*cairnv1.Function, error) {
	out := functionOut(f)
	n, err := s.reads.QueuedExecutions(project, f)
	if err != nil {
		return nil, err
	}
	out.Queued = n
	return out, nil
}

// variablesIn seals secret variables for the log.
func (s *Server) variablesIn(project, fn string, vs []*cairnv1.FunctionVariable) ([]function.Variable, error) {
	out := make([]function.Variable, 0, len(vs))
	for _, v := range vs {
		fv := function.Variable{Key: v.GetKey(), Secret: v.GetSecret()}
		switch {
		case v.GetSecret() && v.GetValue() != "":
			sealed, err := s.seal(project, "function-variable:"+fn+":"+v.GetKey(), []byte(v.GetValue()))
			if err != nil {
				return nil, err
			}
			fv.Sealed = sealed
		case !v.GetSecret():
			fv.Value = v.GetValue()
		}
		out = append(out, fv)
	}
	return out, nil
}

func (h *functionsHandler) writeFunction(ctx context.Context, project, id string, cmd function.Command) (*eventsv1.Function, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	res, err := h.log.Write(ctx, eventlog.FunctionAggregate(project, id), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		return function.Decide(function.State(last), cmd)
	})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	f := function.State(res.Events[len(res.Events)-1])
	deleted := f == nil
	if deleted {
		f = res.Events[len(res.Events)-1].GetFunctionDeleted().GetFunction()
	}
	if _, activation := cmd.(function.ActivateDeployment); !activation {
		schedule := f.GetSchedule()
		if deleted || !f.GetEnabled() {
			schedule = ""
		}
		if err := h.setSchedule(ctx, project, id, schedule); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// setSchedule makes the instance fire function id on schedule ("" stops it).
func (s *Server) setSchedule(ctx context.Context, project, id, schedule string) error {
	if err := s.store.EnsureFunctionStreams(ctx); err != nil {
		return err
	}
	if err := s.store.SetSchedule(ctx, project, id, schedule); err != nil {
		return domain.Errorf(domain.KindUnavailable, "the function was saved but its schedule was not: %v; update it again", err)
	}
	return nil
}

func (h *functionsHandler) CreateFunction(ctx context.Context, req *cairnv1.CreateFunctionRequest) (*cairnv1.CreateFunctionResponse, error) {
	project, id := req.GetProjectId(), req.GetFunctionId()
	// A function's key acts with its scopes: whoever sets them must hold
	// them, or functions.write would mint any scope.
	if err := access.CanGrant(principal(ctx), req.GetScopes()); err != nil {
		return nil, err
	}
	if id == "" || id == domain.UniqueID {
		id = h.log.NewID()
	}
	vars, err := h.variablesIn(project, id, req.GetVariables())
	if err != nil {
		return nil, err
	}
	name, timeout := req.GetName(), time.Duration(req.GetTimeoutSeconds())*time.Second
	execute, scopes, events, schedule := req.GetExecute(), req.GetScopes(), req.GetEvents(), req.GetSchedule()
	enabled := req.Enabled == nil || *req.Enabled
	maxConcurrency := req.GetMaxConcurrency()
	f, err := h.writeFunction(ctx, project, id, function.CreateFunction{ProjectID: project, ID: id, Runtime: req.GetRuntime(),
		UID: h.log.NewID(), MaxTimeout: h.functions.MaxTimeout, Now: h.log.Now(),
		Settings: function.Settings{Name: &name, Timeout: &timeout, Execute: &execute, Scopes: &scopes, Events: &events,
			Schedule: &schedule, Enabled: &enabled, Variables: &vars, MaxConcurrency: &maxConcurrency}})
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateFunctionResponse{Function: functionOut(f)}, nil
}

func (h *functionsHandler) GetFunction(ctx context.Context, req *cairnv1.GetFunctionRequest) (*cairnv1.GetFunctionResponse, error) {
	f, err := h.loadFunction(req.GetProjectId(), req.GetFunctionId())
	if err != nil {
		return nil, err
	}
	out, err := h.functionWithQueue(req.GetProjectId(), f)
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetFunctionResponse{Function: out}, nil
}

func (h *functionsHandler) ListFunctions(ctx context.Context, req *cairnv1.ListFunctionsRequest) (*cairnv1.ListFunctionsResponse, error) {
	fs, err := h.reads.ListFunctions(req.GetProjectId(), req.GetCursorAfter(), pageSize(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListFunctionsResponse{}
	for _, f := range fs {
		out, err := h.functionWithQueue(req.GetProjectId(), f)
		if err != nil {
			return nil, err
		}
		res.Functions = append(res.Functions, out)
	}
	return res, nil
}

func (h *functionsHandler) UpdateFunction(ctx context.Context, req *cairnv1.UpdateFunctionRequest) (*cairnv1.UpdateFunctionResponse, error) {
	set := function.Settings{Name: req.Name, Schedule: req.Schedule, Enabled: req.Enabled, MaxConcurrency: req.MaxConcurrency}
	if req.TimeoutSeconds != nil {
		t := time.Duration(*req.TimeoutSeconds) * time.Second
		set.Timeout = &t
	}
	list := func(l *cairnv1.StringList) *[]string {
		if l == nil {
			return nil
		}
		v := l.GetValues()
		return &v
	}
	set.Execute, set.Scopes, set.Events = list(req.GetExecute()), list(req.GetScopes()), list(req.GetEvents())
	if set.Scopes != nil {
		if err := access.CanGrant(principal(ctx), *set.Scopes); err != nil {
			return nil, err
		}
	}
	if req.GetVariables() != nil {
		vars, err := h.variablesIn(req.GetProjectId(), req.GetFunctionId(), req.GetVariables().GetValues())
		if err != nil {
			return nil, err
		}
		set.Variables = &vars
	}
	f, err := h.writeFunction(ctx, req.GetProjectId(), req.GetFunctionId(), function.UpdateFunction{Settings: set, MaxTimeout: h.functions.MaxTimeout, Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateFunctionResponse{Function: functionOut(f)}, nil
}

func (h *functionsHandler) DeleteFunction(ctx context.Context, req *cairnv1.DeleteFunctionRequest) (*cairnv1.DeleteFunctionResponse, error) {
	project := req.GetProjectId()
	var deployments []*eventsv1.FunctionDeployment
	if f, err := h.reads.Function(project, req.GetFunctionId()); err == nil {
		deployments, _ = h.reads.ListFunctionDeployments(project, f, "", 1000)
	}
	if _, err := h.writeFunction(ctx, project, req.GetFunctionId(), function.DeleteFunction{Now: h.log.Now()}); err != nil {
		return nil, err
	}
	// The deployments' code goes with the function (best effort: the
	// records are gone either way).
	objects := make([]string, 0, len(deployments))
	for _, d := range deployments {
		objects = append(objects, d.GetObject())
	}
	h.deleteCode(ctx, project, objects)
	return &cairnv1.DeleteFunctionResponse{}, nil
}

// codeObject is where a deployment's code is in the project's object store.
func codeObject(f *eventsv1.Function, deployment string) string {
	return "functions/" + f.GetUid() + "/" + deployment
}

// createDeployment stores code, runs the build step and records the
// deployment (activated when asked and the build passed).
func (s *Server) createDeployment(ctx context.Context, meta eventlog.Meta, project, fnID string, code []byte, activate bool) (*eventsv1.Function, *eventsv1.FunctionDeployment, uint64, error) {
	f, err := s.loadFunction(project, fnID)
	if err != nil {
		return nil, nil, 0, err
	}
	if int64(len(code)) > s.functions.MaxCodeBytes {
		return nil, nil, 0, domain.Errorf(domain.KindResourceExhausted, "a deployment is at most %d bytes", s.functions.MaxCodeBytes)
	}
	if s.runtimes == nil {
		return nil, nil, 0, domain.Errorf(domain.KindUnavailable, "this node runs no functions")
	}
	id := s.log.NewID()
	sum := sha256.Sum256(code)
	buildErr := ""
	if err := s.runtimes.Check(ctx, f.GetRuntime(), code); err != nil {
		buildErr = err.Error()
		if len(buildErr) > 2000 {
			buildErr = buildErr[:2000]
		}
	}
	obs, err := s.store.ObjectStore(ctx, project)
	if err != nil {
		return nil, nil, 0, err
	}
	if _, err := obs.PutBytes(ctx, codeObject(f, id), code); err != nil {
		return nil, nil, 0, fmt.Errorf("store deployment %s: %w", id, err)
	}
	res, err := s.log.Write(ctx, eventlog.FunctionDeploymentAggregate(project, fnID, id), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		return function.DecideDeployment(last.GetFunctionDeploymentCreated().GetDeployment(), function.CreateDeployment{
			Function: f, ID: id, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(code)), Object: codeObject(f, id),
			BuildError: buildErr, Now: s.log.Now()})
	})
	if err != nil {
		return nil, nil, 0, err
	}
	d := res.Events[0].GetFunctionDeploymentCreated().GetDeployment()
	seq := res.Seq
	if activate && d.GetStatus() == function.DeploymentReady {
		r2, err := s.log.Write(ctx, eventlog.FunctionAggregate(project, fnID), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
			return function.Decide(function.State(last), function.ActivateDeployment{Deployment: d, Now: s.log.Now()})
		})
		if err != nil {
			return nil, nil, 0, err
		}
		f, seq = function.State(r2.Events[0]), r2.Seq
	}
	return f, d, seq, nil
}

func (h *functionsHandler) CreateFunctionDeployment(ctx context.Context, req *cairnv1.CreateFunctionDeploymentRequest) (*cairnv1.CreateFunctionDeploymentResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	f, d, seq, err := h.createDeployment(ctx, meta, req.GetProjectId(), req.GetFunctionId(), req.GetCode(), req.GetActivate())
	if err != nil {
		return nil, err
	}
	setSeq(ctx, seq)
	return &cairnv1.CreateFunctionDeploymentResponse{Deployment: deploymentOut(f, d)}, nil
}

func (h *functionsHandler) loadDeployment(project, fnID, id string) (*eventsv1.Function, *eventsv1.FunctionDeployment, error) {
	f, err := h.loadFunction(project, fnID)
	if err != nil {
		return nil, nil, err
	}
	d, err := h.reads.FunctionDeployment(project, f, id)
	if errors.Is(err, errNotFound) {
		return nil, nil, domain.Errorf(domain.KindNotFound, "deployment %q not found in function %q", id, fnID)
	}
	return f, d, err
}

func (h *functionsHandler) GetFunctionDeployment(ctx context.Context, req *cairnv1.GetFunctionDeploymentRequest) (*cairnv1.GetFunctionDeploymentResponse, error) {
	f, d, err := h.loadDeployment(req.GetProjectId(), req.GetFunctionId(), req.GetDeploymentId())
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetFunctionDeploymentResponse{Deployment: deploymentOut(f, d)}, nil
}

func (h *functionsHandler) ListFunctionDeployments(ctx context.Context, req *cairnv1.ListFunctionDeploymentsRequest) (*cairnv1.ListFunctionDeploymentsResponse, error) {
	f, err := h.loadFunction(req.GetProjectId(), req.GetFunctionId())
	if err != nil {
		return nil, err
	}
	ds, err := h.reads.ListFunctionDeployments(req.GetProjectId(), f, req.GetCursorAfter(), pageSize(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListFunctionDeploymentsResponse{}
	for _, d := range ds {
		res.Deployments = append(res.Deployments, deploymentOut(f, d))
	}
	return res, nil
}

func (h *functionsHandler) ActivateFunctionDeployment(ctx context.Context, req *cairnv1.ActivateFunctionDeploymentRequest) (*cairnv1.ActivateFunctionDeploymentResponse, error) {
	_, d, err := h.loadDeployment(req.GetProjectId(), req.GetFunctionId(), req.GetDeploymentId())
	if err != nil {
		return nil, err
	}
	f, err := h.writeFunction(ctx, req.GetProjectId(), req.GetFunctionId(), function.ActivateDeployment{Deployment: d, Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.ActivateFunctionDeploymentResponse{Function: functionOut(f)}, nil
}

func (h *functionsHandler) DeleteFunctionDeployment(ctx context.Context, req *cairnv1.DeleteFunctionDeploymentRequest) (*cairnv1.DeleteFunctionDeploymentResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	f, d, err := h.loadDeployment(req.GetProjectId(), req.GetFunctionId(), req.GetDeploymentId())
	if err != nil {
		return nil, err
	}
	res, err := h.log.Write(ctx, eventlog.FunctionDeploymentAggregate(req.GetProjectId(), req.GetFunctionId(), d.GetId()), meta,
		func(*eventsv1.Envelope) ([]*eventsv1.Envelope, error) { return function.DecideDeleteDeployment(f, d) })
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	h.deleteCode(ctx, req.GetProjectId(), []string{d.GetObject()})
	return &cairnv1.DeleteFunctionDeploymentResponse{}, nil
}

// mayExecute reports whether p may execute f: keys by scope (checked by
// the access rule), end users and guests by the function's execute roles.
func (s *Server) mayExecute(project string, p access.Principal, f *eventsv1.Function) error {
	if p.IsServer() {
		return nil
	}
	subj, err := s.subject(project, p)
	if err != nil {
		return err
	}
	perms := make([]string, 0, len(f.GetExecute()))
	for _, r := range f.GetExecute() {
		perms = append(perms, fmt.Sprintf("read(%q)", r))
	}
	parsed, err := permission.ParsePermissions(perms)
	if err != nil {
		return fmt.Errorf("stored execute roles of function %s: %w", f.GetId(), err)
	}
	if !permission.Check(subj, permission.Read, parsed, nil, false) {
		return functionNotFound(f.GetId()) // hidden.go: as if it did not exist
	}
	return nil
}

// execRequest is one execution to run now.
type execRequest struct {
	f       *eventsv1.Function
	p       access.Principal
	trigger string
	req     fnrun.Request
	// id is the execution's id (deterministic for event and schedule
	// triggers, so a redelivery finds the record it made).
	id         string
	triggerSeq uint64
	// noWait: a queued job does not wait for its project's slot; it goes
	// back to the queue, so one project's flood never holds the workers
	// other projects' jobs need.
	noWait bool
}

// errProjectBusy: the project runs its most executions on this node.
var errProjectBusy = fmt.Errorf("project busy: %w", streams.ErrRetrySoon)

// codeCache keeps deployments' code on the node, keyed by object name.
type codeCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *Server) code(ctx context.Context, project string, d *eventsv1.FunctionDeployment) ([]byte, error) {
	key := project + "/" + d.GetObject()
	s.codes.mu.Lock()
	code, ok := s.codes.m[key]
	s.codes.mu.Unlock()
	if ok {
		return code, nil
	}
	obs, err := s.store.ObjectStore(ctx, project)
	if err != nil {
		return nil, err
	}
	code, err = obs.GetBytes(ctx, d.GetObject())
	if err != nil {
		return nil, fmt.Errorf("load deployment %s: %w", d.GetId(), err)
	}
	s.codes.mu.Lock()
	if len(s.codes.m) > 256 {
		clear(s.codes.m)
	}
	s.codes.m[key] = code
	s.codes.mu.Unlock()
	return code, nil
}

// runExecution runs an execution and records it: processing first, then
// completed or failed. It returns the final record.
func (s *Server) runExecution(ctx context.Context, meta eventlog.Meta, x execRequest, waiting *eventsv1.Execution) (*eventsv1.Execution, uint64, error) {
	f := x.f
	project := f.GetProjectId()
	if !f.GetEnabled() {
		return nil, 0, domain.Errorf(domain.KindFailedPrecondition, "function %q is disabled", f.GetId())
	}
	if f.GetActiveDeploymentId() == "" {
		return nil, 0, domain.Errorf(domain.KindFailedPrecondition, "function %q has no active deployment", f.GetId())
	}
	d, err := s.reads.FunctionDeployment(project, f, f.GetActiveDeploymentId())
	if err != nil {
		return nil, 0, notFound(err, "active deployment")
	}
	// The code's key is bound to this incarnation of the project.
	proj, err := s.reads.Project(project)
	if err != nil {
		return nil, 0, notFound(err, fmt.Sprintf("project %q", project))
	}
	if s.runtimes == nil {
		return nil, 0, domain.Errorf(domain.KindUnavailable, "this node runs no functions")
	}
	agg := eventlog.ExecutionAggregate(project, f.GetId(), x.id)
	e := waiting
	if e == nil {
		e = &eventsv1.Execution{Id: x.id, ProjectId: project, FunctionId: f.GetId(), FunctionUid: f.GetUid(),
			Trigger: x.trigger, RequestMethod: x.req.Method, RequestPath: x.req.Path, TriggerSeq: x.triggerSeq, UserId: userIDOf(x.p)}
	}
	// Everything that can refuse the run comes before the record says
	// processing, so no record is left processing by a refusal.
	slot, err := s.execSlot(ctx, project, s.functions.MaxConcurrent, x.noWait)
	if err != nil {
		return nil, 0, err
	}
	defer slot()
	if n := int(f.GetMaxConcurrency()); n > 0 {
		fslot, err := s.execSlot(ctx, project+"/"+f.GetUid()+"/"+strconv.Itoa(n), n, x.noWait)
		if err != nil {
			return nil, 0, err
		}
		defer fslot()
	}
	code, err := s.code(ctx, project, d)
	if err != nil {
		return nil, 0, err
	}
	r := x.req
	// Also here, not only where requests come in: executions queued
	// before platform headers were dropped carry the caller's.
	r.Headers = callerHeaders(r.Headers)
	r.ProjectID, r.FunctionID, r.DeploymentID, r.ExecutionID, r.Trigger = project, f.GetId(), d.GetId(), x.id, x.trigger
	if r.Variables, err = s.unsealVariables(f); err != nil {
		return nil, 0, err
	}
	e.DeploymentId, e.Status = d.GetId(), function.StatusProcessing
	_, err = s.log.Write(ctx, agg, meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		if cur := function.ExecutionState(last); cur != nil {
			return function.AdvanceExecution(cur, e, s.log.Now())
		}
		return function.StartExecution(nil, e, s.log.Now())
	})
	if err != nil {
		return nil, 0, err
	}
	timeout := time.Duration(f.GetTimeoutSeconds()) * time.Second
	r.APIEndpoint = s.publicURL
	r.APIKey = newFunctionKey(s.auth.fnKeys, proj, f, d.GetId(), s.now().Add(timeout+30*time.Second))
	if r.UserJWT, err = s.executionJWT(x.p, timeout+30*time.Second); err != nil {
		return nil, 0, err
	}
	lim := fnrun.Limits{Timeout: timeout, MaxMemoryBytes: s.functions.MaxMemoryBytes}.WithDefaults()
	start := time.Now()
	rctx, span := s.span(ctx, "functions.execute", attribute.String("cairn.project", project), attribute.String("cairn.function", f.GetId()),
		attribute.String("cairn.execution", x.id), attribute.String("cairn.trigger", x.trigger))
	out, runErr := s.runtimes.Run(rctx, f.GetRuntime(), project+"/"+d.GetObject(), code, r, lim)
	endSpan(span, runErr)
	done := proto.CloneOf(e)
	done.DurationMs = time.Since(start).Milliseconds()
	done.Logs, done.Errors = out.Logs, out.Errors
	done.CpuTimeUs = out.CPUTime.Microseconds()
	if runErr != nil {
		done.Status = function.StatusFailed
		done.Errors = strings.TrimSpace(done.Errors + "\n" + runErr.Error())
		done.ResponseStatus = 500
	} else {
		done.Status = function.StatusCompleted
		done.ResponseStatus = int32(out.Status)
		done.ResponseHeaders = maps.Clone(out.Headers)
		done.ResponseBody = out.Body[:min(len(out.Body), maxStoredBody)]
	}
	done.RequestBody = nil
	res, err := s.log.Write(context.WithoutCancel(ctx), agg, meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		return function.AdvanceExecution(function.ExecutionState(last), done, s.log.Now())
	})
	if err != nil {
		return nil, 0, err
	}
	final := done
	if len(res.Events) > 0 {
		final = function.ExecutionState(res.Events[0])
	}
	// The caller gets the whole body; the record keeps its head.
	if runErr == nil {
		final.ResponseBody = out.Body
	}
	return final, res.Seq, nil
}

// executionJWT is a JWT of the user who called a function (from their
// session), for the code to act as them; "" for other callers.
func (s *Server) executionJWT(p access.Principal, ttl time.Duration) (string, error) {
	if p.Kind != access.User || p.SessionID == "" {
		return "", nil
	}
	cfg, err := s.authConfig(p.Project)
	if err != nil {
		return "", err
	}
	token, _, err := s.jwt.Sign(p.Project, int(cfg.raw.GetJwtKeyGeneration()), jwt.Claims{UserID: p.ID, SessionID: p.SessionID},
		s.now(), min(ttl, jwt.MaxTTL))
	return token, err
}

func userIDOf(p access.Principal) string {
	if p.Kind == access.User {
		return p.ID
	}
	return ""
}

// unsealVariables returns a function's variables with secrets in clear,
// for its code only.
func (s *Server) unsealVariables(f *eventsv1.Function) (map[string]string, error) {
	out := make(map[string]string, len(f.GetVariables()))
	for _, v := range f.GetVariables() {
		if !v.GetSecret() {
			out[v.GetKey()] = v.GetValue()
			continue
		}
		plain, err := s.unseal(f.GetProjectId(), "function-variable:"+f.GetId()+":"+v.GetKey(), v.GetSealed())
		if err != nil {
			return nil, fmt.Errorf("variable %s of function %s: %w", v.GetKey(), f.GetId(), err)
		}
		out[v.GetKey()] = string(plain)
	}
	return out, nil
}

// execSlot waits for room to run one more execution under key (a project,
// or a function with its own limit) on this node, at most size at once,
// and returns its release; with noWait a full key is errProjectBusy.
func (s *Server) execSlot(ctx context.Context, key string, size int, noWait bool) (func(), error) {
	s.execMu.Lock()
	ch, ok := s.execSlots[key]
	if !ok {
		ch = make(chan struct{}, size)
		s.execSlots[key] = ch
	}
	s.execMu.Unlock()
	if noWait {
		select {
		case ch <- struct{}{}:
			return func() { <-ch }, nil
		default:
			return nil, errProjectBusy
		}
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, domain.Errorf(domain.KindResourceExhausted, "the most executions at once (%d) already run on this node; retry", size)
	}
}

func (h *functionsHandler) CreateExecution(ctx context.Context, req *cairnv1.CreateExecutionRequest) (*cairnv1.CreateExecutionResponse, error) {
	p := principal(ctx)
	f, err := h.loadFunction(req.GetProjectId(), req.GetFunctionId())
	if err != nil {
		return nil, err
	}
	if err := h.mayExecute(req.GetProjectId(), p, f); err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	method, path := req.GetMethod(), req.GetPath()
	if method == "" {
		method = "POST"
	}
	if path == "" {
		path = "/"
	}
	x := execRequest{f: f, p: p, trigger: function.TriggerHTTP, id: h.log.NewID(),
		req: fnrun.Request{Method: method, Path: path, Headers: req.GetHeaders(), Body: req.GetBody()}}
	if req.GetAsync() {
		e, seq, err := h.queueExecution(ctx, meta, x)
		if err != nil {
			return nil, err
		}
		setSeq(ctx, seq)
		return &cairnv1.CreateExecutionResponse{Execution: executionOut(e)}, nil
	}
	e, seq, err := h.runExecution(ctx, meta, x, nil)
	if err != nil {
		return nil, err
	}
	setSeq(ctx, seq)
	return &cairnv1.CreateExecutionResponse{Execution: executionOut(e)}, nil
}

// queueExecution records a waiting execution; a worker runs it.
func (s *Server) queueExecution(ctx context.Context, meta eventlog.Meta, x execRequest) (*eventsv1.Execution, uint64, error) {
	e := &eventsv1.Execution{Id: x.id, ProjectId: x.f.GetProjectId(), FunctionId: x.f.GetId(), FunctionUid: x.f.GetUid(),
		Trigger: x.trigger, Status: function.StatusWaiting, RequestMethod: x.req.Method, RequestPath: x.req.Path,
		RequestHeaders: x.req.Headers, RequestBody: x.req.Body, TriggerSeq: x.triggerSeq, UserId: userIDOf(x.p)}
	res, err := s.log.Write(ctx, eventlog.ExecutionAggregate(e.GetProjectId(), e.GetFunctionId(), e.GetId()), meta,
		func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
			return function.StartExecution(function.ExecutionState(last), e, s.log.Now())
		})
	if err != nil {
		return nil, 0, err
	}
	if err := s.store.EnqueueJob(ctx, e.GetProjectId(), e.GetFunctionId(), e.GetId()); err != nil {
		return nil, 0, err
	}
	return function.ExecutionState(res.Events[0]), res.Seq, nil
}

func (h *functionsHandler) loadExecution(project, fnID, id string) (*eventsv1.Execution, error) {
	f, err := h.loadFunction(project, fnID)
	if err != nil {
		return nil, err
	}
	e, err := h.reads.Execution(project, f, id)
	if errors.Is(err, errNotFound) {
		return nil, domain.Errorf(domain.KindNotFound, "execution %q not found in function %q", id, fnID)
	}
	return e, err
}

func (h *functionsHandler) GetExecution(ctx context.Context, req *cairnv1.GetExecutionRequest) (*cairnv1.GetExecutionResponse, error) {
	e, err := h.loadExecution(req.GetProjectId(), req.GetFunctionId(), req.GetExecutionId())
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetExecutionResponse{Execution: executionOut(e)}, nil
}

func (h *functionsHandler) ListExecutions(ctx context.Context, req *cairnv1.ListExecutionsRequest) (*cairnv1.ListExecutionsResponse, error) {
	f, err := h.loadFunction(req.GetProjectId(), req.GetFunctionId())
	if err != nil {
		return nil, err
	}
	status, trigger := req.GetStatus(), req.GetTrigger()
	es, err := h.reads.ListExecutions(req.GetProjectId(), f, req.GetCursorAfter(), pageSize(req.GetLimit()), func(e *eventsv1.Execution) bool {
		return (status == cairnv1.ExecutionStatus_EXECUTION_STATUS_UNSPECIFIED || executionStatusOut[e.GetStatus()] == status) &&
			(trigger == "" || e.GetTrigger() == trigger)
	})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListExecutionsResponse{}
	for _, e := range es {
		res.Executions = append(res.Executions, executionOut(e))
	}
	return res, nil
}

// deleteCode deletes deleted deployments' code objects (best effort: the
// records are gone either way). While an export holds the project's
// objects, it waits in the background until the hold ends (a restart
// meanwhile leaves the objects behind).
func (s *Server) deleteCode(ctx context.Context, project string, objects []string) {
	if len(objects) == 0 {
		return
	}
	del := func(ctx context.Context) {
		obs, err := s.store.ObjectStore(ctx, project)
		if err != nil {
			return
		}
		for _, o := range objects {
			if err := obs.Delete(ctx, o); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				s.logger.WarnContext(ctx, "deleting a deleted deployment's code", "project", project, "object", o, "err", err)
			}
		}
	}
	if held, err := s.store.ObjectsHeld(ctx, project, s.now()); err != nil || !held {
		del(ctx)
		return
	}
	go func() {
		ctx := context.WithoutCancel(ctx)
		for {
			select {
			case <-s.stopping:
				return
			case <-time.After(10 * time.Second):
			}
			if held, err := s.store.ObjectsHeld(ctx, project, s.now()); err == nil && !held {
				del(ctx)
				return
			}
		}
	}()
}
