package main

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	healthv1 "github.com/cairn-dev/cairn/proto/grpc/health/v1"
	"github.com/cairn-dev/cairn/proto/grpc/health/v1/healthv1connect"
)

// TestGRPCClient talks to Cairn with grpc-go, an implementation independent
// of connect-go, over h2c on the same port: services, health, reflection.
func TestGRPCClient(t *testing.T) {
	in := startInstance(t, t.TempDir())
	conn, err := grpc.NewClient(strings.TrimPrefix(in.url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testAdminKey)

	res := &cairnv1.CreateProjectResponse{}
	if err := conn.Invoke(ctx, cairnv1connect.ProjectsServiceCreateProjectProcedure, &cairnv1.CreateProjectRequest{ProjectId: "grpc", Name: "gRPC"}, res); err != nil {
		t.Fatal(err)
	}
	if res.GetProject().GetId() != "grpc" {
		t.Fatalf("bad response %v", res)
	}
	// Validation errors arrive as gRPC InvalidArgument naming the field.
	err = conn.Invoke(ctx, cairnv1connect.ProjectsServiceCreateProjectProcedure, &cairnv1.CreateProjectRequest{ProjectId: "Bad Id", Name: "x"}, res)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "project_id") {
		t.Fatalf("want InvalidArgument naming project_id, got %v", err)
	}
	err = conn.Invoke(context.Background(), cairnv1connect.ProjectsServiceGetProjectProcedure, &cairnv1.GetProjectRequest{ProjectId: "grpc"}, &cairnv1.GetProjectResponse{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("want Unauthenticated, got %v", err)
	}

	hres := &healthv1.HealthCheckResponse{}
	if err := conn.Invoke(context.Background(), healthv1connect.HealthCheckProcedure, &healthv1.HealthCheckRequest{}, hres); err != nil {
		t.Fatal(err)
	}
	if hres.GetStatus() != healthv1.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v", hres)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rres, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rres.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{cairnv1connect.ProjectsServiceName, cairnv1connect.KeysServiceName, cairnv1connect.EventsServiceName, "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection does not list %s: %v", want, names)
		}
	}
}
