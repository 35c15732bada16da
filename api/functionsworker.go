package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/function"
	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// systemMeta is what writes by the server itself (workers, triggers,
// schedules) record as their actor.
func systemMeta() eventlog.Meta {
	return eventlog.Meta{Actor: &eventsv1.Actor{Kind: eventsv1.Actor_KIND_SYSTEM}}
}

// runFunctionWorkers runs this node's share of functions' durable work
// until ctx ends: queued executions, schedule firings, and event triggers
// of every project that has functions listening to events.
func (s *Server) runFunctionWorkers(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.store.EnsureFunctionStreams(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			s.logger.Warn("functions: streams not ready", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	if s.functions.Retention > 0 {
		if err := s.store.SetSchedule(ctx, systemSchedules, retentionSchedule, s.functions.RetentionSweep); err != nil {
			s.logger.Warn("functions: execution retention not scheduled", "err", err)
		}
	}
	go s.retry(ctx, "jobs", func() error { return s.store.ConsumeJobs(ctx, 2*s.functions.MaxConcurrent, s.runJob) })
	go s.retry(ctx, "schedules", func() error { return s.store.ConsumeFirings(ctx, s.fire) })
	triggers := map[string]context.CancelFunc{}
	var mu sync.Mutex
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		s.reconcileTriggers(ctx, &mu, triggers)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) retry(ctx context.Context, what string, run func() error) {
	for ctx.Err() == nil {
		if err := run(); err != nil && ctx.Err() == nil {
			s.logger.Warn("functions: "+what, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// reconcileTriggers keeps one trigger consumer loop per project that has a
// function listening to events.
func (s *Server) reconcileTriggers(ctx context.Context, mu *sync.Mutex, running map[string]context.CancelFunc) {
	wanted := map[string]bool{}
	defer func() {
		// A project deleted, or whose functions stopped listening, stops
		// its loop (the durable consumer stays for when they listen again).
		mu.Lock()
		for id, cancel := range running {
			if !wanted[id] {
				cancel()
				delete(running, id)
			}
		}
		mu.Unlock()
	}()
	after := ""
	for {
		ps, err := s.reads.ListProjects(after, 500)
		if err != nil {
			// Without the whole list, stop nothing.
			for id := range running {
				wanted[id] = true
			}
			return
		}
		if len(ps) == 0 {
			return
		}
		for _, p := range ps {
			id := p.GetId()
			fs, err := s.reads.ListTriggerFunctions(id)
			if err != nil {
				mu.Lock()
				_, wanted[id] = running[id] // keep what runs; retry next round
				mu.Unlock()
				continue
			}
			wants, start := false, triggerStart(fs)
			for _, f := range fs {
				wants = wants || len(f.Function.GetEvents()) > 0
			}
			wanted[id] = wants
			mu.Lock()
			_, on := running[id]
			if wants && !on {
				pctx, cancel := context.WithCancel(ctx)
				running[id] = cancel
				go s.retry(pctx, "triggers of "+id, func() error {
					return s.store.ConsumeTriggers(pctx, id, start, func(ctx context.Context, m streams.StoredMsg) error { return s.trigger(ctx, id, m) })
				})
			}
			mu.Unlock()
		}
		after = ps[len(ps)-1].GetId()
	}
}

// triggerStart is where a project's trigger consumer starts when it does
// not exist yet: the first event after the earliest enabled trigger took
// effect, so events written before the reconcile loop noticed the function
// still run it. 0 (new events only) when a trigger's start is unknown (a
// read model from before it was recorded) or none is enabled.
func triggerStart(fs []projections.TriggerFunction) uint64 {
	var start uint64
	for _, f := range fs {
		if !f.Function.GetEnabled() || len(f.Function.GetEvents()) == 0 {
			continue
		}
		if f.Since == 0 {
			return 0
		}
		if start == 0 || f.Since+1 < start {
			start = f.Since + 1
		}
	}
	return start
}

// runJob runs one queued execution; a redelivered job finds its record
// finished and does nothing.
func (s *Server) runJob(ctx context.Context, j streams.Job) error {
	last, _, err := s.log.Last(ctx, eventlog.ExecutionAggregate(j.Project, j.Function, j.Execution))
	if err != nil {
		return err
	}
	e := function.ExecutionState(last)
	if e == nil || e.GetStatus() == function.StatusCompleted || e.GetStatus() == function.StatusFailed {
		return nil
	}
	f, err := s.loadFunction(j.Project, j.Function)
	if err != nil || f.GetUid() != e.GetFunctionUid() {
		return nil // the function is gone: nothing to run
	}
	x := execRequest{f: f, trigger: e.GetTrigger(), id: e.GetId(), triggerSeq: e.GetTriggerSeq(), noWait: true, req: fnrun.Request{
		Method: e.GetRequestMethod(), Path: e.GetRequestPath(), Headers: e.GetRequestHeaders(), Body: e.GetRequestBody()}}
	if e.GetTrigger() == function.TriggerEvent {
		x.req.Event = e.GetRequestBody()
		x.req.Body = nil
	}
	_, _, err = s.runExecution(ctx, systemMeta(), x, e)
	if errors.Is(err, errProjectBusy) {
		return err
	}
	var de *domain.Error
	if errors.As(err, &de) && de.Kind != domain.KindUnavailable && de.Kind != domain.KindInternal {
		// Disabled, no deployment, …: record why, do not retry.
		s.failExecution(ctx, e, err)
		return nil
	}
	return err
}

// failExecution records an execution that could not run.
func (s *Server) failExecution(ctx context.Context, e *eventsv1.Execution, why error) {
	failed := proto.CloneOf(e)
	failed.Status, failed.Errors, failed.RequestBody = function.StatusFailed, why.Error(), nil
	_, err := s.log.Write(ctx, eventlog.ExecutionAggregate(e.GetProjectId(), e.GetFunctionId(), e.GetId()), systemMeta(),
		func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
			return function.AdvanceExecution(function.ExecutionState(last), failed, s.log.Now())
		})
	if err != nil {
		s.logger.Warn("functions: recording a failed execution", "execution", e.GetId(), "err", err)
	}
}

// trigger turns one event of project into an execution of every function
// listening to it. Execution ids derive from the event's sequence, so a
// redelivered event finds the record it made and makes no second one.
func (s *Server) trigger(ctx context.Context, project string, m streams.StoredMsg) (err error) {
	rel := strings.TrimPrefix(m.Subject, "cairn."+project+".")
	// Executions never trigger functions: no loops.
	if strings.HasPrefix(rel, "functions.") {
		return nil
	}
	// A child of the write that appended m; the executions it queues carry
	// this trace on.
	ctx, span := s.span(streams.TraceParent(ctx, m), "functions.trigger", attribute.String("cairn.project", project), attribute.Int64("cairn.seq", int64(m.Seq)))
	defer func() { endSpan(span, err) }()
	if err := s.reads.WaitApplied(ctx, streams.ProjectStream(project), m.Seq); err != nil {
		return err
	}
	fs, err := s.reads.ListTriggerFunctions(project)
	if err != nil {
		return err
	}
	var payload []byte
	for _, tf := range fs {
		f := tf.Function
		// An event from before the trigger took effect (written while
		// the function was disabled, or listened to other events) never
		// runs it, however late it is delivered.
		if !f.GetEnabled() || m.Seq <= tf.Since || !function.MatchEvent(f.GetEvents(), rel) {
			continue
		}
		if payload == nil {
			env, err := eventlog.Decode(m.Data)
			if err != nil {
				return nil // undecodable: nothing to hand over
			}
			redact(env.ProtoReflect())
			if payload, err = protojson.Marshal(env); err != nil {
				return err
			}
		}
		x := execRequest{f: f, trigger: function.TriggerEvent, id: "evt" + strconv.FormatUint(m.Seq, 10), triggerSeq: m.Seq,
			req: fnrun.Request{Method: "POST", Path: "/", Body: payload, EventNames: []string{rel}}}
		if err := s.queueOnce(ctx, x); err != nil {
			return err
		}
	}
	return nil
}

// The instance's own schedules, among functions' in the schedules stream
// (no project id starts with "_").
const (
	systemSchedules   = "_sys"
	retentionSchedule = "retention"
)

// expireExecutions appends, for every function with execution records
// older than the retention, the event that drops them.
func (s *Server) expireExecutions(ctx context.Context) error {
	if s.functions.Retention <= 0 {
		return nil
	}
	cutoff := s.log.Now().Add(-s.functions.Retention)
	after := ""
	for {
		ps, err := s.reads.ListProjects(after, 500)
		if err != nil || len(ps) == 0 {
			return err
		}
		for _, p := range ps {
			fs, err := s.reads.ListAllFunctions(p.GetId())
			if err != nil {
				return err
			}
			for _, f := range fs {
				if old, err := s.reads.HasExecutionBefore(p.GetId(), f, cutoff); err != nil || !old {
					continue
				}
				_, err := s.log.Write(ctx, eventlog.FunctionAggregate(p.GetId(), f.GetId()), systemMeta(), func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
					cur := function.State(last)
					if cur == nil || cur.GetUid() != f.GetUid() {
						return nil, nil
					}
					return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_ExecutionsExpired{ExecutionsExpired: &eventsv1.ExecutionsExpired{
						Function: cur, Before: timestamppb.New(cutoff)}}}}, nil
				})
				if err != nil {
					return fmt.Errorf("expire executions of %s/%s: %w", p.GetId(), f.GetId(), err)
				}
			}
		}
		after = ps[len(ps)-1].GetId()
	}
}

// fire turns one schedule firing into an execution.
func (s *Server) fire(ctx context.Context, fr streams.Firing) error {
	if fr.Project == systemSchedules && fr.Function == retentionSchedule {
		return s.expireExecutions(ctx)
	}
	f, err := s.loadFunction(fr.Project, fr.Function)
	if err != nil || !f.GetEnabled() || f.GetSchedule() == "" {
		return nil
	}
	x := execRequest{f: f, trigger: function.TriggerSchedule, id: "sch" + strconv.FormatUint(fr.Seq, 10), triggerSeq: fr.Seq,
		req: fnrun.Request{Method: "POST", Path: "/"}}
	return s.queueOnce(ctx, x)
}

// queueOnce queues an execution whose id is deterministic; if its record
// exists (a redelivery), the job is enqueued again, which the jobs
// stream's duplicate window absorbs.
func (s *Server) queueOnce(ctx context.Context, x execRequest) error {
	_, _, err := s.queueExecution(ctx, systemMeta(), x)
	var de *domain.Error
	if errors.As(err, &de) && de.Kind == domain.KindAlreadyExists {
		return s.store.EnqueueJob(ctx, x.f.GetProjectId(), x.f.GetId(), x.id)
	}
	if err != nil {
		return fmt.Errorf("queue %s of function %s: %w", x.id, x.f.GetId(), err)
	}
	return nil
}
