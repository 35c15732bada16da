package projections

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Functions, applied from the project's stream:
//
//	p/<project>/functions/<fn>                 eventsv1.Function
//	p/<project>/fdeploys/<fnUID>/<d>           eventsv1.FunctionDeployment
//	p/<project>/execs/<fnUID>/<e>              eventsv1.Execution
//	p/<project>/fqueued/<fnUID>                executions waiting to start (8 bytes, big-endian)
//	p/<project>/ftrigger/<fn>                  stream sequence from which the function's event trigger applies (8 bytes, big-endian)
//
// Deployments and executions live under the function's UID: a function
// deleted and made again under the same id starts empty, and the old
// ones go with the background sweep.
const (
	partFunctions  = "functions/"
	partFDeploys   = "fdeploys/"
	partExecutions = "execs/"
	partFQueued    = "fqueued/"
	partFTrigger   = "ftrigger/"
)

func functionsPrefix(project string) string { return pp(project) + partFunctions }
func functionKey(project, id string) []byte { return []byte(functionsPrefix(project) + id) }
func triggerKey(project, id string) []byte  { return []byte(pp(project) + partFTrigger + id) }
func fdeploysPrefix(project, fnUID string) string {
	return pp(project) + partFDeploys + fnUID + "/"
}
func executionsPrefix(project, fnUID string) string {
	return pp(project) + partExecutions + fnUID + "/"
}

func (p *Projections) applyFunction(txn *badger.Txn, sp keyspace, ev event, f *eventsv1.Function, deleted bool) error {
	if err := checkIn(sp, ev, "function", f.GetProjectId(), f.GetId(), f.GetUid()); err != nil {
		return err
	}
	if deleted {
		if err := p.dropPrefix(txn, sp.project, f.GetUid()+"-deployments", []byte(fdeploysPrefix(sp.project, f.GetUid()))); err != nil {
			return err
		}
		if err := p.dropPrefix(txn, sp.project, f.GetUid()+"-executions", []byte(executionsPrefix(sp.project, f.GetUid()))); err != nil {
			return err
		}
		if err := txn.Delete(queuedKey(sp.project, f.GetUid())); err != nil {
			return err
		}
		if err := txn.Delete(triggerKey(sp.project, f.GetId())); err != nil {
			return err
		}
		return txn.Delete(functionKey(sp.project, f.GetId()))
	}
	old := &eventsv1.Function{}
	found, err := getIn(txn, functionKey(sp.project, f.GetId()), old)
	if err != nil {
		return err
	}
	// The trigger takes effect with the event that creates it, enables the
	// function or changes its events: earlier events never run it, and
	// other updates (activations…) keep its start.
	same := found && old.GetUid() == f.GetUid() && old.GetEnabled() && slices.Equal(old.GetEvents(), f.GetEvents())
	if f.GetEnabled() && len(f.GetEvents()) > 0 && !same {
		if err := txn.Set(triggerKey(sp.project, f.GetId()), binary.BigEndian.AppendUint64(nil, ev.msg.Seq)); err != nil {
			return err
		}
	}
	v, err := marshal(f)
	if err != nil {
		return fatal("encode function %s: %w", f.GetId(), err)
	}
	return txn.Set(functionKey(sp.project, f.GetId()), v)
}

// liveFunction reports whether uid is the function id's now.
func liveFunction(txn *badger.Txn, project, id, uid string) (bool, error) {
	f := &eventsv1.Function{}
	found, err := getIn(txn, functionKey(project, id), f)
	return found && f.GetUid() == uid, err
}

func (p *Projections) applyFunctionDeployment(txn *badger.Txn, sp keyspace, ev event, d *eventsv1.FunctionDeployment, deleted bool) error {
	if err := checkIn(sp, ev, "deployment", d.GetProjectId(), d.GetId(), d.GetFunctionId(), d.GetFunctionUid()); err != nil {
		return err
	}
	if live, err := liveFunction(txn, sp.project, d.GetFunctionId(), d.GetFunctionUid()); err != nil || !live {
		return err
	}
	key := []byte(fdeploysPrefix(sp.project, d.GetFunctionUid()) + d.GetId())
	if deleted {
		return txn.Delete(key)
	}
	v, err := marshal(d)
	if err != nil {
		return fatal("encode deployment %s: %w", d.GetId(), err)
	}
	return txn.Set(key, v)
}

func (p *Projections) applyExecution(txn *badger.Txn, sp keyspace, ev event, e *eventsv1.Execution) error {
	if err := checkIn(sp, ev, "execution", e.GetProjectId(), e.GetId(), e.GetFunctionId(), e.GetFunctionUid()); err != nil {
		return err
	}
	if live, err := liveFunction(txn, sp.project, e.GetFunctionId(), e.GetFunctionUid()); err != nil || !live {
		return err
	}
	key := []byte(executionsPrefix(sp.project, e.GetFunctionUid()) + e.GetId())
	old := &eventsv1.Execution{}
	if _, err := getIn(txn, key, old); err != nil {
		return err
	}
	if err := addQueued(txn, sp.project, e.GetFunctionUid(), waiting(e)-waiting(old)); err != nil {
		return err
	}
	if finished(e) && !finished(old) {
		if err := addDaily(txn, sp.project, ev, dailyExecutions, 1, e.GetDurationMs(), e.GetCpuTimeUs()); err != nil {
			return err
		}
	}
	v, err := marshal(e)
	if err != nil {
		return fatal("encode execution %s: %w", e.GetId(), err)
	}
	return txn.Set(key, v)
}

// finished reports whether an execution has ended (completed or failed).
func finished(e *eventsv1.Execution) bool {
	return e.GetStatus() == "completed" || e.GetStatus() == "failed"
}

// waiting is 1 for a queued execution that has not started.
func waiting(e *eventsv1.Execution) int64 {
	if e.GetStatus() == "waiting" {
		return 1
	}
	return 0
}

func queuedKey(project, fnUID string) []byte { return []byte(pp(project) + partFQueued + fnUID) }

// addQueued moves a function's count of queued executions.
func addQueued(txn *badger.Txn, project, fnUID string, delta int64) error {
	return addCounters(txn, queuedKey(project, fnUID), delta)
}

// QueuedExecutions is how many of f's executions wait to start.
func (p *Projections) QueuedExecutions(project string, f *eventsv1.Function) (int64, error) {
	c, err := p.counters(queuedKey(project, f.GetUid()), 1)
	if err != nil {
		return 0, fmt.Errorf("projections: queue of function %s: %w", f.GetId(), err)
	}
	return c[0], nil
}

// Function returns a project's function; ErrNotFound if none.
func (p *Projections) Function(project, id string) (*eventsv1.Function, error) {
	f := &eventsv1.Function{}
	if err := p.getProto(project, id, functionKey(project, id), f); err != nil {
		return nil, fmt.Errorf("function %s of project %s: %w", id, project, err)
	}
	return f, nil
}

// ListFunctions returns up to limit functions with ids after `after`.
func (p *Projections) ListFunctions(project, after string, limit int) ([]*eventsv1.Function, error) {
	return listProto(p, functionsPrefix(project), after, limit, func() *eventsv1.Function { return &eventsv1.Function{} })
}

// FunctionDeployment returns a deployment of f; ErrNotFound if none.
func (p *Projections) FunctionDeployment(project string, f *eventsv1.Function, id string) (*eventsv1.FunctionDeployment, error) {
	d := &eventsv1.FunctionDeployment{}
	if badToken(f.GetUid()) {
		return nil, ErrNotFound
	}
	if err := p.getProto(project, id, []byte(fdeploysPrefix(project, f.GetUid())+id), d); err != nil {
		return nil, fmt.Errorf("deployment %s of function %s: %w", id, f.GetId(), err)
	}
	return d, nil
}

// ListFunctionDeployments returns up to limit deployments of f.
func (p *Projections) ListFunctionDeployments(project string, f *eventsv1.Function, after string, limit int) ([]*eventsv1.FunctionDeployment, error) {
	if badToken(f.GetUid()) {
		return nil, nil
	}
	return listProto(p, fdeploysPrefix(project, f.GetUid()), after, limit, func() *eventsv1.FunctionDeployment { return &eventsv1.FunctionDeployment{} })
}

// Execution returns an execution of f; ErrNotFound if none.
func (p *Projections) Execution(project string, f *eventsv1.Function, id string) (*eventsv1.Execution, error) {
	e := &eventsv1.Execution{}
	if badToken(f.GetUid()) {
		return nil, ErrNotFound
	}
	if err := p.getProto(project, id, []byte(executionsPrefix(project, f.GetUid())+id), e); err != nil {
		return nil, fmt.Errorf("execution %s of function %s: %w", id, f.GetId(), err)
	}
	return e, nil
}

// ListExecutions returns up to limit executions of f after `after` (ids
// are ULIDs: oldest first) that match keep.
func (p *Projections) ListExecutions(project string, f *eventsv1.Function, after string, limit int, keep func(*eventsv1.Execution) bool) ([]*eventsv1.Execution, error) {
	if badToken(f.GetUid()) {
		return nil, nil
	}
	var out []*eventsv1.Execution
	prefix := executionsPrefix(project, f.GetUid())
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		start := []byte(prefix)
		if after != "" {
			start = append([]byte(prefix+after), 0)
		}
		for it.Seek(start); it.Valid() && len(out) < clampLimit(limit); it.Next() {
			e := &eventsv1.Execution{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, e) }); err != nil {
				return err
			}
			if keep == nil || keep(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// ListAllFunctions returns every function of a project (event triggers
// and schedules are matched against all of them).
func (p *Projections) ListAllFunctions(project string) ([]*eventsv1.Function, error) {
	var out []*eventsv1.Function
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(functionsPrefix(project)), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			f := &eventsv1.Function{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, f) }); err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

// TriggerFunction is a function and the stream sequence of the event from
// which its event trigger applies (Since; 0 when the read model predates
// this record: no bound).
type TriggerFunction struct {
	Function *eventsv1.Function
	Since    uint64
}

// ListTriggerFunctions returns every function of a project with the start
// of its trigger, read together.
func (p *Projections) ListTriggerFunctions(project string) ([]TriggerFunction, error) {
	var out []TriggerFunction
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(functionsPrefix(project)), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			f := &eventsv1.Function{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, f) }); err != nil {
				return err
			}
			// The start is stored as a one-value counter (counters.go).
			since, err := readCounters(txn, triggerKey(project, f.GetId()), 1)
			if err != nil {
				return err
			}
			tf := TriggerFunction{Function: f, Since: uint64(since[0])}
			out = append(out, tf)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections: functions of %s: %w", project, err)
	}
	return out, nil
}

// maxExpiredPerEvent bounds the records one ExecutionsExpired deletes (one
// Badger transaction); older ones left go with the next.
const maxExpiredPerEvent = 10_000

func (p *Projections) applyExecutionsExpired(txn *badger.Txn, sp keyspace, ev event, x *eventsv1.ExecutionsExpired) error {
	f := x.GetFunction()
	if err := checkIn(sp, ev, "function", f.GetProjectId(), f.GetId(), f.GetUid()); err != nil {
		return err
	}
	before := x.GetBefore().AsTime()
	var old [][]byte
	var gone int64
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(executionsPrefix(sp.project, f.GetUid())), PrefetchValues: true})
	for it.Rewind(); it.Valid() && len(old) < maxExpiredPerEvent; it.Next() {
		e := &eventsv1.Execution{}
		if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, e) }); err != nil {
			it.Close()
			return fatal("decode %s: %w", it.Item().Key(), err)
		}
		if e.GetCreatedAt().AsTime().Before(before) {
			old = append(old, it.Item().KeyCopy(nil))
			gone += waiting(e)
		}
	}
	it.Close()
	for _, k := range old {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return addQueued(txn, sp.project, f.GetUid(), -gone)
}

// HasExecutionBefore reports whether f has an execution record created
// before t (the retention sweep appends an expiry only then).
func (p *Projections) HasExecutionBefore(project string, f *eventsv1.Function, t time.Time) (bool, error) {
	found := false
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(executionsPrefix(project, f.GetUid())), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid() && !found; it.Next() {
			e := &eventsv1.Execution{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, e) }); err != nil {
				return err
			}
			found = e.GetCreatedAt().AsTime().Before(t)
		}
		return nil
	})
	return found, err
}
