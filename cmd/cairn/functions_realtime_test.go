package main

import (
	"context"
	"testing"
	"time"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// Executions are visible on the realtime executions and functions.<fn>
// channels.
func TestFunctionsRealtime(t *testing.T) {
	in := startInstance(t, t.TempDir())
	key := newProjectWithKey(t, in, "fnrt", "functions.read", "functions.write", "executions.read", "executions.write", "events.read")
	deployWasm(t, in, key, "fnrt", &cairnv1.CreateFunctionRequest{FunctionId: "echo", Name: "Echo"})
	sub := in.subscribe(t, key, &cairnv1.SubscribeRequest{ProjectId: "fnrt", Channels: []string{"functions.echo"}})
	sub.untilLive(t)
	ctx, _ := as(context.Background(), key)
	res, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "fnrt", FunctionId: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for len(statuses) < 2 {
		e := sub.nextEvent(t, 10*time.Second)
		if e.GetPayload().GetFields()["id"].GetStringValue() != res.GetExecution().GetId() {
			t.Fatalf("event of another execution: %v", e)
		}
		statuses = append(statuses, e.GetPayload().GetFields()["status"].GetStringValue())
	}
	if statuses[0] != "EXECUTION_STATUS_PROCESSING" || statuses[1] != "EXECUTION_STATUS_COMPLETED" {
		t.Fatalf("statuses %v", statuses)
	}
}
