package function

import (
	"errors"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func kindOf(err error) domain.Kind {
	var e *domain.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return -1
}

func ptr[T any](v T) *T { return &v }

func TestFunctionSettings(t *testing.T) {
	evs, err := Decide(nil, CreateFunction{ProjectID: "p", ID: "f", Runtime: RuntimeJS, UID: "u1", MaxTimeout: time.Minute, Now: now,
		Settings: Settings{Name: ptr("F"), Execute: &[]string{"users", "any"}, Scopes: &[]string{"documents.read"},
			Events: &[]string{"databases.*.collections.*.documents.*.create"}, Schedule: ptr("*/5  * * * *"),
			Variables: &[]Variable{{Key: "A", Value: "1"}, {Key: "S", Secret: true, Sealed: []byte{9}}}}})
	if err != nil {
		t.Fatal(err)
	}
	f := evs[0].GetFunctionCreated().GetFunction()
	if f.GetTimeoutSeconds() != 15 || f.GetSchedule() != "*/5 * * * *" || len(f.GetExecute()) != 2 || f.GetVariables()[1].GetValue() != "" {
		t.Errorf("function %v", f)
	}
	// A secret sent without a value keeps its sealed value.
	evs, err = Decide(f, UpdateFunction{Now: now, Settings: Settings{Variables: &[]Variable{{Key: "S", Secret: true}}}})
	if err != nil || string(evs[0].GetFunctionUpdated().GetFunction().GetVariables()[0].GetSealed()) != "\x09" {
		t.Fatalf("keep secret: %v %v", evs, err)
	}
	bad := []Settings{
		{Timeout: ptr(2 * time.Minute)},
		{Execute: &[]string{"nobody"}},
		{Scopes: &[]string{"root"}},
		{Events: &[]string{"documents.create"}},
		{Events: &[]string{"users.a b.create"}},
		{Schedule: ptr("61 * * * *")},
		{Schedule: ptr("* * *")},
		{Schedule: ptr("60 * * * * *")},
		{Variables: &[]Variable{{Key: "1A"}}},
		{Variables: &[]Variable{{Key: "A"}, {Key: "A"}}},
		{Variables: &[]Variable{{Key: "NEW", Secret: true}}},
	}
	for _, s := range bad {
		if _, err := Decide(f, UpdateFunction{Settings: s, MaxTimeout: time.Minute, Now: now}); kindOf(err) != domain.KindInvalid {
			t.Errorf("%+v: %v", s, err)
		}
	}
	if _, err := Decide(nil, CreateFunction{ID: "x", Runtime: "python", Now: now}); kindOf(err) != domain.KindInvalid {
		t.Errorf("runtime: %v", err)
	}
}

func TestMatchEvent(t *testing.T) {
	events := []string{"databases.*.collections.*.documents.*.create", "users.*"}
	for subject, want := range map[string]bool{
		"databases.db.collections.c.documents.d.create": true,
		"databases.db.collections.c.documents.d.update": false,
		"users.u1.create":                   true,
		"users.u1.update.email":             true,
		"buckets.b.files.f.create":          false,
		"databases.db.collections.c.update": false,
	} {
		if got := MatchEvent(events, subject); got != want {
			t.Errorf("%s: %v", subject, got)
		}
	}
}

func TestDeploymentsAndExecutions(t *testing.T) {
	f := &eventsv1.Function{Id: "f", Uid: "u1"}
	evs, err := DecideDeployment(nil, CreateDeployment{Function: f, ID: "d1", BuildError: "syntax error", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	d := evs[0].GetFunctionDeploymentCreated().GetDeployment()
	if _, err := Decide(f, ActivateDeployment{Deployment: d, Now: now}); kindOf(err) != domain.KindFailedPrecondition {
		t.Errorf("activate failed build: %v", err)
	}
	d.Status = DeploymentReady
	evs, err = Decide(f, ActivateDeployment{Deployment: d, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	active := evs[0].GetFunctionUpdated().GetFunction()
	if _, err := DecideDeleteDeployment(active, d); kindOf(err) != domain.KindFailedPrecondition {
		t.Errorf("delete active: %v", err)
	}
	e := &eventsv1.Execution{Id: "e", Status: StatusWaiting}
	evs, err = StartExecution(nil, e, now)
	if err != nil {
		t.Fatal(err)
	}
	cur := ExecutionState(evs[0])
	if _, err := StartExecution(cur, e, now); kindOf(err) != domain.KindAlreadyExists {
		t.Errorf("start twice: %v", err)
	}
	done := &eventsv1.Execution{Id: "e", Status: StatusCompleted, ResponseStatus: 200}
	evs, err = AdvanceExecution(cur, done, now)
	if err != nil || ExecutionState(evs[0]).GetStatus() != StatusCompleted {
		t.Fatal(err)
	}
	// Finished is final: a redelivered job changes nothing.
	if evs, err := AdvanceExecution(ExecutionState(evs[0]), &eventsv1.Execution{Id: "e", Status: StatusFailed}, now); err != nil || len(evs) != 0 {
		t.Errorf("after completion: %v %v", evs, err)
	}
}
