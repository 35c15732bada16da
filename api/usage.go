package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/projections"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/usage"
)

// maxUsageDays bounds one GetProjectUsage answer.
const maxUsageDays = 366

// usageRange resolves the request's days: to defaults to today (UTC), from
// to 29 days before to.
func usageRange(req *cairnv1.GetProjectUsageRequest, now time.Time) (string, string, error) {
	to := now.UTC().Truncate(24 * time.Hour)
	if req.GetTo() != "" {
		t, err := time.Parse(usage.DayLayout, req.GetTo())
		if err != nil {
			return "", "", domain.FieldError("to", "%q is not a day (YYYY-MM-DD)", req.GetTo())
		}
		to = t
	}
	from := to.AddDate(0, 0, -29)
	if req.GetFrom() != "" {
		f, err := time.Parse(usage.DayLayout, req.GetFrom())
		if err != nil {
			return "", "", domain.FieldError("from", "%q is not a day (YYYY-MM-DD)", req.GetFrom())
		}
		from = f
	}
	if from.After(to) {
		return "", "", domain.FieldError("from", "%s is after to (%s)", from.Format(usage.DayLayout), to.Format(usage.DayLayout))
	}
	if days := int(to.Sub(from)/(24*time.Hour)) + 1; days > maxUsageDays {
		return "", "", domain.FieldError("to", "%d days from %s: at most %d per call", days, from.Format(usage.DayLayout), maxUsageDays)
	}
	return from.Format(usage.DayLayout), to.Format(usage.DayLayout), nil
}

func (h *projectsHandler) GetProjectUsage(ctx context.Context, req *cairnv1.GetProjectUsageRequest) (*cairnv1.GetProjectUsageResponse, error) {
	id := req.GetProjectId()
	if _, err := h.reads.Project(id); err != nil {
		return nil, notFound(err, "project")
	}
	from, to, err := usageRange(req, h.now())
	if err != nil {
		return nil, err
	}
	logDays, err := h.reads.DailyUsage(id, from, to)
	if err != nil {
		return nil, fmt.Errorf("usage of %s: %w", id, err)
	}
	// This node's latest counts are published first, so a caller sees
	// what this node served up to its call; other nodes' arrive within
	// their flush interval.
	if err := h.meter.Flush(ctx); err != nil {
		h.logger.WarnContext(ctx, "usage: flush before a read", "err", err)
	}
	bucket, err := h.store.Usage(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := usage.Read(ctx, bucket, id, from, to)
	if err != nil {
		return nil, err
	}
	res := &cairnv1.GetProjectUsageResponse{ProjectId: id, Total: &cairnv1.UsageDay{}}
	var connMs int64
	for _, d := range logDays {
		n := nodes[d.Day]
		day := usageDay(d, n)
		res.Days = append(res.Days, day)
		t := res.Total
		t.Events += day.Events
		t.Documents, t.StorageBytes = day.Documents, day.StorageBytes
		t.DownloadBytes += day.DownloadBytes
		t.SiteBytes += day.SiteBytes
		t.EgressBytes += day.EgressBytes
		t.Executions += day.Executions
		t.ExecutionWallMs += day.ExecutionWallMs
		t.ExecutionCpuUs += day.ExecutionCpuUs
		t.RealtimeDeliveries += day.RealtimeDeliveries
		connMs += n.RealtimeConnectionMs
	}
	res.Total.RealtimeConnectionMinutes = float64(connMs) / 60_000
	return res, nil
}

func usageDay(d projections.DayUsage, n usage.Counts) *cairnv1.UsageDay {
	return &cairnv1.UsageDay{Date: d.Day, Events: d.Events, Documents: d.Documents, StorageBytes: d.StorageBytes,
		DownloadBytes: n.DownloadBytes, SiteBytes: n.SiteBytes, EgressBytes: n.DownloadBytes + n.SiteBytes,
		Executions: d.Executions, ExecutionWallMs: d.ExecutionWallMs, ExecutionCpuUs: d.ExecutionCPUUs,
		RealtimeConnectionMinutes: float64(n.RealtimeConnectionMs) / 60_000, RealtimeDeliveries: n.RealtimeDeliveries}
}

// countingResponse counts the body bytes a handler writes, for egress.
type countingResponse struct {
	http.ResponseWriter
	n int64
}

func (c *countingResponse) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// ReadFrom keeps the connection's sendfile path for site files sent from
// an in-memory file (sites.memFile) and counts them too.
func (c *countingResponse) ReadFrom(src io.Reader) (int64, error) {
	n, err := io.Copy(c.ResponseWriter, src)
	c.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (c *countingResponse) Unwrap() http.ResponseWriter { return c.ResponseWriter }
