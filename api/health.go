package api

import (
	"context"
	"time"

	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	healthv1 "github.com/cairn-dev/cairn/proto/grpc/health/v1"
	"github.com/cairn-dev/cairn/proto/grpc/health/v1/healthv1connect"
)

// healthHandler serves grpc.health.v1: SERVING once NATS is reachable and
// every projection has caught up, for "" and each Cairn service.
type healthHandler struct{ *Server }

var healthServices = []string{"", cairnv1connect.ProjectsServiceName, cairnv1connect.KeysServiceName, cairnv1connect.EventsServiceName, cairnv1connect.SitesServiceName}

func (h *healthHandler) status() healthv1.HealthCheckResponse_ServingStatus {
	if h.ready() {
		return healthv1.HealthCheckResponse_SERVING
	}
	return healthv1.HealthCheckResponse_NOT_SERVING
}

func known(service string) bool {
	for _, s := range healthServices {
		if s == service {
			return true
		}
	}
	return false
}

func (h *healthHandler) Check(_ context.Context, req *healthv1.HealthCheckRequest) (*healthv1.HealthCheckResponse, error) {
	if !known(req.GetService()) {
		return &healthv1.HealthCheckResponse{Status: healthv1.HealthCheckResponse_SERVICE_UNKNOWN}, nil
	}
	return &healthv1.HealthCheckResponse{Status: h.status()}, nil
}

func (h *healthHandler) List(context.Context, *healthv1.HealthListRequest) (*healthv1.HealthListResponse, error) {
	res := &healthv1.HealthListResponse{Statuses: map[string]*healthv1.HealthCheckResponse{}}
	st := h.status()
	for _, s := range healthServices {
		res.Statuses[s] = &healthv1.HealthCheckResponse{Status: st}
	}
	return res, nil
}

// Watch sends the status now and whenever it changes.
func (h *healthHandler) Watch(ctx context.Context, req *healthv1.HealthCheckRequest, stream healthv1connect.HealthWatchServerStream) error {
	ctx, cancel := h.streamContext(ctx)
	defer cancel()
	last := healthv1.HealthCheckResponse_ServingStatus(-1)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		st := healthv1.HealthCheckResponse_SERVICE_UNKNOWN
		if known(req.GetService()) {
			st = h.status()
		}
		if st != last {
			if err := stream.Send(&healthv1.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
