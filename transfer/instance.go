package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain/apikey"
	"github.com/cairn-dev/cairn/domain/user"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// ErrExists means the target project id is taken (registry, stream or
// object store).
var ErrExists = errors.New("project already exists")

// Instance is what transfer needs of the Cairn instance it runs on.
type Instance struct {
	Store   *streams.Store
	Secrets SecretWalker
	// Seal and Unseal use the instance's master key.
	Seal   func(project, purpose string, plain []byte) ([]byte, error)
	Unseal func(project, purpose string, sealed []byte) ([]byte, error)
	// Exists reports whether the registry lists the project.
	Exists func(id string) bool
	// Register appends the project's creation to the system stream, whose
	// projector then starts on the (already written) project stream.
	Register    func(ctx context.Context, p *eventsv1.Project) error
	WaitApplied func(ctx context.Context, stream string, seq uint64) error
	NewID       func() string
	Now         func() time.Time
	Logger      *slog.Logger
}

// Policy is what an import or a fork does with credentials. API keys and
// end-user sessions are revoked by default: a copy of a project should not
// be reachable with the source's credentials. Revoking appends KeyDeleted
// and SessionsDeleted events after the copied history, so the history
// itself stays as it was.
type Policy struct {
	KeepKeys     bool
	KeepSessions bool
}

// Result is what an import or a fork wrote.
type Result struct {
	Project         string `json:"project"`
	Events          uint64 `json:"events"`
	LastSeq         uint64 `json:"last_seq"`
	Objects         int    `json:"objects"`
	ObjectBytes     int64  `json:"object_bytes"`
	Secrets         int    `json:"secrets"`
	RevokedKeys     int    `json:"revoked_keys"`
	RevokedSessions int    `json:"revoked_sessions"`
}

// pipeline is how many appends are in flight before their acks are
// checked.
const pipeline = 512

// sink writes a new project: objects and events first, the registry entry
// last; abort removes whatever it wrote.
type sink struct {
	in       *Instance
	from, to string
	policy   Policy
	project  *eventsv1.Project
	stream   string
	created  bool
	obs      jetstream.ObjectStore
	seq      uint64 // sequence of the last append sent
	inFlight []jetstream.PubAckFuture
	keys     map[string]*eventsv1.Key
	users    map[string]*eventsv1.User
	res      Result
}

// newSink checks that the id is free and creates its stream.
func (in *Instance) newSink(ctx context.Context, from string, p *eventsv1.Project, policy Policy) (*sink, error) {
	to := p.GetId()
	if err := streams.ValidateProject(to); err != nil {
		return nil, err
	}
	if in.Exists(to) {
		return nil, fmt.Errorf("transfer: project %q: %w", to, ErrExists)
	}
	if _, err := in.Store.StreamInfo(ctx, streams.ProjectStream(to)); !errors.Is(err, streams.ErrNoStream) {
		if err == nil {
			return nil, fmt.Errorf("transfer: project %q: %w (its stream is left from an earlier project)", to, ErrExists)
		}
		return nil, fmt.Errorf("transfer: project %q: %w", to, err)
	}
	if has, err := in.Store.HasObjectStore(ctx, to); err != nil || has {
		if err == nil {
			err = fmt.Errorf("%w (its object store is left from an earlier project)", ErrExists)
		}
		return nil, fmt.Errorf("transfer: project %q: %w", to, err)
	}
	s := &sink{in: in, from: from, to: to, policy: policy, project: p, stream: streams.ProjectStream(to),
		keys: map[string]*eventsv1.Key{}, users: map[string]*eventsv1.User{}, res: Result{Project: to}}
	limits := streams.Limits{MaxBytes: p.GetLimits().GetMaxStreamBytes(), Replicas: int(p.GetLimits().GetReplicas())}
	s.created = true // from here on, abort removes what may exist
	if err := in.Store.EnsureProjectStream(ctx, to, limits); err != nil {
		return s, err
	}
	return s, nil
}

// abort deletes the stream and object store, with its own deadline: it
// runs after a failure, often a cancelled request.
func (s *sink) abort() {
	if !s.created {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range s.inFlight {
		select {
		case <-f.Ok():
		case <-f.Err():
		case <-ctx.Done():
		}
	}
	if err := s.in.Store.DeleteProject(ctx, s.to); err != nil {
		s.in.Logger.Error("transfer: removing a failed import's stream and objects", "project", s.to, "err", err)
	}
}

func (s *sink) putObject(ctx context.Context, name string, meta objectMeta, r io.Reader) error {
	if s.obs == nil {
		obs, err := s.in.Store.ObjectStore(ctx, s.to)
		if err != nil {
			return err
		}
		s.obs = obs
	}
	info, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: name, Description: meta.Description,
		Headers: nats.Header(meta.Headers), Metadata: meta.Metadata}, r)
	if err != nil {
		return fmt.Errorf("transfer: put object %s: %w", name, err)
	}
	s.res.Objects++
	s.res.ObjectBytes += int64(info.Size)
	return nil
}

// event appends rec under the new id: its envelope's project ids
// rewritten, its secrets opened with open and sealed for the new project.
func (s *sink) event(ctx context.Context, rec record, open func(project, purpose string, sealed []byte) ([]byte, error)) error {
	env, err := eventlog.Decode(rec.Data)
	if err != nil {
		return bad("event %d: %v", rec.Seq, err)
	}
	changed := false
	err = s.in.Secrets(env, func(project, purpose string, sealed []byte) ([]byte, error) {
		plain, err := open(project, purpose, sealed)
		if err != nil {
			return nil, err
		}
		changed = true
		s.res.Secrets++
		return s.in.Seal(s.to, purpose, plain)
	})
	if err != nil {
		return fmt.Errorf("transfer: event %d: %w", rec.Seq, err)
	}
	if s.from != s.to {
		rewriteProject(env.ProtoReflect(), s.from, s.to)
		changed = true
	}
	s.track(env)
	data := rec.Data
	if changed {
		if data, err = eventlog.Encode(env); err != nil {
			return fmt.Errorf("transfer: event %d: %w", rec.Seq, err)
		}
	}
	if err := s.append(ctx, streams.ProjectPrefix(s.to)+rec.Subject, rec.Header, data); err != nil {
		return fmt.Errorf("transfer: event %d: %w", rec.Seq, err)
	}
	s.res.Events++
	return nil
}

// track keeps the last state of every key and user, for the policy.
func (s *sink) track(env *eventsv1.Envelope) {
	switch p := env.GetPayload().(type) {
	case *eventsv1.Envelope_KeyDeleted:
		delete(s.keys, p.KeyDeleted.GetKey().GetId())
	case *eventsv1.Envelope_UserDeleted:
		delete(s.users, p.UserDeleted.GetUser().GetId())
	default:
		if k := apikey.Evolve(nil, env); k != nil {
			s.keys[k.GetId()] = k
		}
		if u := user.Evolve(nil, env); u != nil {
			s.users[u.GetId()] = u
		}
	}
}

// append publishes in order, each append expecting the one before it: a
// concurrent writer or a lost message fails the import instead of
// reordering it.
func (s *sink) append(ctx context.Context, subject string, h nats.Header, data []byte) error {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	for k, vs := range h {
		if keepHeader(k) {
			msg.Header[k] = vs
		}
	}
	f, err := s.in.Store.JetStream().PublishMsgAsync(msg, jetstream.WithExpectLastSequence(s.seq), jetstream.WithExpectStream(s.stream))
	if err != nil {
		return err
	}
	s.seq++
	s.inFlight = append(s.inFlight, f)
	if len(s.inFlight) >= pipeline {
		return s.flush(ctx)
	}
	return nil
}

func (s *sink) flush(ctx context.Context) error {
	first := s.seq - uint64(len(s.inFlight)) + 1
	defer func() { s.inFlight = s.inFlight[:0] }()
	for i, f := range s.inFlight {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate || ack.Sequence != first+uint64(i) {
				return fmt.Errorf("append %s: stored at %d (duplicate %v), expected %d", f.Msg().Subject, ack.Sequence, ack.Duplicate, first+uint64(i))
			}
		case err := <-f.Err():
			return fmt.Errorf("append %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// finish revokes credentials as the policy says, registers the project and
// waits until this node's projector has rebuilt its read models.
func (s *sink) finish(ctx context.Context) (Result, error) {
	if err := s.flush(ctx); err != nil {
		return s.res, err
	}
	now := s.in.Now()
	var revocations []*eventsv1.Envelope
	if !s.policy.KeepKeys {
		for _, id := range sortedKeys(s.keys) {
			evs, err := apikey.Decide(s.keys[id], apikey.Delete{Now: now})
			if err != nil {
				return s.res, fmt.Errorf("transfer: revoke key %s: %w", id, err)
			}
			revocations = append(revocations, evs...)
			s.res.RevokedKeys++
		}
	}
	if !s.policy.KeepSessions {
		for _, id := range sortedKeys(s.users) {
			u := s.users[id]
			n := len(u.GetSessions())
			if n == 0 {
				continue
			}
			evs, err := user.Decide(u, user.DeleteSessions{All: true, Now: now})
			if err != nil {
				return s.res, fmt.Errorf("transfer: revoke sessions of user %s: %w", id, err)
			}
			revocations = append(revocations, evs...)
			s.res.RevokedSessions += n
		}
	}
	for _, env := range revocations {
		env.Id = s.in.NewID()
		env.OccurredAt = timestamppb.New(now)
		env.Actor = &eventsv1.Actor{Kind: eventsv1.Actor_KIND_OPERATOR}
		env.CorrelationId = "transfer"
		subject, err := eventlog.Subject(env)
		if err != nil {
			return s.res, err
		}
		data, err := eventlog.Encode(env)
		if err != nil {
			return s.res, err
		}
		if err := s.append(ctx, subject, nats.Header{streams.HeaderMsgID: []string{env.GetId()}}, data); err != nil {
			return s.res, fmt.Errorf("transfer: revoke: %w", err)
		}
	}
	if err := s.flush(ctx); err != nil {
		return s.res, fmt.Errorf("transfer: revoke: %w", err)
	}
	s.res.LastSeq = s.seq
	s.project.CreatedAt = timestamppb.New(now)
	s.project.UpdatedAt = nil
	if err := s.in.Register(ctx, s.project); err != nil {
		return s.res, fmt.Errorf("transfer: register project %s: %w", s.to, err)
	}
	s.created = false // registered: the project is whole and stays
	if s.seq > 0 {
		if err := s.in.WaitApplied(ctx, s.stream, s.seq); err != nil {
			return s.res, fmt.Errorf("transfer: project %s is registered but its read models are still being built: %w", s.to, err)
		}
	}
	return s.res, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
