package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Functions' durable work, shared by every node of an instance:
//
//   - JobsStream (work queue) holds executions to run: one message per
//     queued execution on cairn_jobs.<project>.<function>.<execution>; any
//     node's worker takes it, and it is gone once acknowledged.
//   - SchedulesStream holds one schedule message per function with a cron
//     on cairn_sched.<project>.<function>; the server fires it into
//     cairn_fire.<project>.<function> once per period, whatever the number
//     of nodes, and a shared consumer turns each firing into one execution.
//   - Event triggers read the project's own stream through a durable
//     consumer "functions", shared by the nodes, created at the first
//     event after a function's trigger took effect.
const (
	JobsStream      = "CAIRN_JOBS"
	SchedulesStream = "CAIRN_SCHEDULES"
	jobsPrefix      = "cairn_jobs."
	schedPrefix     = "cairn_sched."
	firePrefix      = "cairn_fire."
	workersConsumer = "workers"
	firesConsumer   = "fires"
	triggerConsumer = "functions"
	// jobAckWait is how long a job may go without a sign of life before
	// another node takes it; workers signal progress well within it.
	jobAckWait = 30 * time.Second
)

// ErrRetrySoon, from a handler, puts the message back for another try
// shortly, without counting it as a failure.
var ErrRetrySoon = errors.New("streams: retry soon")

// EnsureFunctionStreams creates the jobs and schedules streams.
func (s *Store) EnsureFunctionStreams(ctx context.Context) error {
	jobs := jetstream.StreamConfig{Name: JobsStream, Subjects: []string{jobsPrefix + ">"}, Storage: jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy, Replicas: s.opts.Replicas, Duplicates: s.opts.DuplicateWindow}
	if _, err := s.js.CreateOrUpdateStream(ctx, jobs); err != nil {
		return fmt.Errorf("streams: jobs stream: %w", err)
	}
	sched := jetstream.StreamConfig{Name: SchedulesStream, Subjects: []string{schedPrefix + ">", firePrefix + ">"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Replicas: s.opts.Replicas,
		AllowMsgSchedules: true, MaxMsgsPerSubject: 100}
	if _, err := s.js.CreateOrUpdateStream(ctx, sched); err != nil {
		return fmt.Errorf("streams: schedules stream: %w", err)
	}
	return nil
}

// EnqueueJob queues an execution. Enqueuing the same one twice within the
// duplicate window stores it once.
func (s *Store) EnqueueJob(ctx context.Context, project, fn, execution string) error {
	subj := jobsPrefix + project + "." + fn + "." + execution
	if _, err := s.js.Publish(ctx, subj, nil, jetstream.WithMsgID(subj)); err != nil {
		return fmt.Errorf("streams: enqueue %s: %w", subj, err)
	}
	return nil
}

// Job is one queued execution a worker got.
type Job struct {
	Project, Function, Execution string
	// Delivered counts deliveries (1 the first time).
	Delivered uint64
	msg       jetstream.Msg
}

// Progress tells the server the job is still running.
func (j Job) Progress() { _ = j.msg.InProgress() }

// ConsumeJobs runs handle for queued executions, at most concurrency at a
// time on this node, until ctx ends. A job is acknowledged when handle
// returns nil, put back otherwise: shortly for ErrRetrySoon, after 2 s else.
func (s *Store) ConsumeJobs(ctx context.Context, concurrency int, handle func(context.Context, Job) error) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, JobsStream, jetstream.ConsumerConfig{Durable: workersConsumer,
		// Unlimited deliveries: a job goes back while its project is busy
		// (ErrRetrySoon); a run that fails is recorded as failed, not retried.
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: jobAckWait, MaxDeliver: -1, MaxAckPending: 10_000})
	if err != nil {
		return fmt.Errorf("streams: jobs consumer: %w", err)
	}
	return consume(ctx, cons, concurrency, func(ctx context.Context, m jetstream.Msg) error {
		parts := strings.Split(strings.TrimPrefix(m.Subject(), jobsPrefix), ".")
		if len(parts) != 3 {
			return m.Term()
		}
		md, _ := m.Metadata()
		j := Job{Project: parts[0], Function: parts[1], Execution: parts[2], msg: m}
		if md != nil {
			j.Delivered = md.NumDelivered
		}
		return handle(ctx, j)
	})
}

// consume runs handle for cons's messages with bounded concurrency,
// keeping each in progress while it runs.
func consume(ctx context.Context, cons jetstream.Consumer, concurrency int, handle func(context.Context, jetstream.Msg) error) error {
	slots := make(chan struct{}, max(concurrency, 1))
	for ctx.Err() == nil {
		batch, err := cons.Fetch(cap(slots), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for m := range batch.Messages() {
			slots <- struct{}{}
			go func() {
				defer func() { <-slots }()
				stop := keepInProgress(m)
				err := handle(ctx, m)
				stop()
				switch {
				case errors.Is(err, ErrRetrySoon):
					_ = m.NakWithDelay(250 * time.Millisecond)
					return
				case err != nil:
					_ = m.NakWithDelay(2 * time.Second)
					return
				}
				_ = m.Ack()
			}()
		}
	}
	return nil
}

// SetSchedule makes function fn of project fire on the cron expression
// (UTC; five fields, or six with seconds); "" removes its schedule.
func (s *Store) SetSchedule(ctx context.Context, project, fn, cron string) error {
	subj := schedPrefix + project + "." + fn
	str, err := s.js.Stream(ctx, SchedulesStream)
	if err != nil {
		return fmt.Errorf("streams: schedules stream: %w", err)
	}
	if err := str.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		return fmt.Errorf("streams: clear schedule %s: %w", subj, err)
	}
	if cron == "" {
		return nil
	}
	// JetStream's cron has seconds: a five-field one fires at second 0.
	if len(strings.Fields(cron)) == 5 {
		cron = "0 " + cron
	}
	if _, err := s.js.Publish(ctx, subj, nil, jetstream.WithScheduleCron(cron),
		jetstream.WithScheduleTarget(firePrefix+project+"."+fn)); err != nil {
		return fmt.Errorf("streams: schedule %s: %w", subj, err)
	}
	return nil
}

// Firing is one period of a function's schedule.
type Firing struct {
	Project, Function string
	// Seq is the firing's stream sequence: unique per firing.
	Seq uint64
}

// ConsumeFirings runs handle once per schedule firing (shared by every
// node), until ctx ends.
func (s *Store) ConsumeFirings(ctx context.Context, handle func(context.Context, Firing) error) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, SchedulesStream, jetstream.ConsumerConfig{Durable: firesConsumer,
		FilterSubject: firePrefix + ">", AckPolicy: jetstream.AckExplicitPolicy, AckWait: jobAckWait, MaxDeliver: 5,
		DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return fmt.Errorf("streams: firings consumer: %w", err)
	}
	return consume(ctx, cons, 4, func(ctx context.Context, m jetstream.Msg) error {
		parts := strings.Split(strings.TrimPrefix(m.Subject(), firePrefix), ".")
		md, err := m.Metadata()
		if len(parts) != 2 || err != nil {
			return m.Term()
		}
		return handle(ctx, Firing{Project: parts[0], Function: parts[1], Seq: md.Sequence.Stream})
	})
}

// ConsumeTriggers runs handle for every event of project's stream, once
// across the nodes (a durable consumer they share), until ctx ends. An event
// is acknowledged when handle returns nil. The consumer, when it does not
// exist yet, starts at sequence start (0: at new events): the first event
// after a trigger took effect, so none written before the loop began is
// missed. An existing one keeps its position (JetStream cannot move it).
func (s *Store) ConsumeTriggers(ctx context.Context, project string, start uint64, handle func(context.Context, StoredMsg) error) error {
	cfg := jetstream.ConsumerConfig{Durable: triggerConsumer,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: jobAckWait, MaxDeliver: 5, DeliverPolicy: jetstream.DeliverNewPolicy}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	stream := ProjectStream(project)
	cons, err := s.js.Consumer(ctx, stream, triggerConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = s.js.CreateConsumer(ctx, stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Another node created it first, maybe from another start.
			cons, err = s.js.Consumer(ctx, stream, triggerConsumer)
		}
	}
	if err != nil {
		return fmt.Errorf("streams: triggers consumer of %s: %w", project, err)
	}
	return consume(ctx, cons, 4, func(ctx context.Context, m jetstream.Msg) error {
		md, err := m.Metadata()
		if err != nil {
			return m.Term()
		}
		return handle(ctx, StoredMsg{Seq: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data(), Header: m.Headers(), Time: md.Timestamp})
	})
}

// keepInProgress tells JetStream every third of jobAckWait that m is still
// being worked on, until stop is called: work may outlast the ack wait.
func keepInProgress(m jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(jobAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
