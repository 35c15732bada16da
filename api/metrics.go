package api

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-dev/cairn/streams"
)

// StreamLag is one stream's projection progress on this node.
type StreamLag struct {
	Stream  string
	Applied uint64
	// Last is the stream's last sequence as last seen by this node.
	Last uint64
}

// MetricsSources are the node's live readings, sampled at scrape time.
type MetricsSources struct {
	// NATSConnected reports the NATS connection state.
	NATSConnected func() bool
	// NATSReconnects counts reconnections since start.
	NATSReconnects func() uint64
	// Lag lists every projector's progress.
	Lag func() []StreamLag
	// ProjectLabels labels projection metrics with each project's stream;
	// off, the projects' streams are summed into stream="projects", so a
	// scrape does not list the instance's project ids.
	ProjectLabels bool
}

// Metrics is the node's Prometheus registry: RPCs, appends, projection lag,
// NATS connection state, Go runtime and process.
type Metrics struct {
	reg     *prometheus.Registry
	rpcs    *prometheus.HistogramVec
	appends *prometheus.HistogramVec
	// rpcObservers holds rpcs' histogram per procedure and code (an
	// rpcLabels → prometheus.Observer): WithLabelValues hashes both labels
	// and looks them up on every call, ~3 µs of a get.
	rpcObservers sync.Map
}

type rpcLabels struct{ procedure, code string }

// NewMetrics registers the node's metrics.
func NewMetrics(src MetricsSources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.rpcs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cairn_rpc_duration_seconds", Help: "Connect/gRPC calls by procedure and status code.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"procedure", "code"})
	m.appends = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cairn_append_duration_seconds", Help: "JetStream appends of the write path, by result (ok, conflict, error).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"result"})
	m.reg.MustRegister(m.rpcs, m.appends, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.NATSConnected != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_nats_connected", Help: "1 while the NATS connection is up.",
		}, func() float64 {
			if src.NATSConnected() {
				return 1
			}
			return 0
		}))
	}
	if src.NATSReconnects != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cairn_nats_reconnects_total", Help: "NATS reconnections since start.",
		}, func() float64 { return float64(src.NATSReconnects()) }))
	}
	if src.Lag != nil {
		m.reg.MustRegister(lagCollector{lag: src.Lag, projectLabels: src.ProjectLabels})
	}
	return m
}

// countFastUnary exports how many calls api/unary served (the rest of the
// calls went through connecthttp). A second server on the same Metrics
// keeps the first's reading.
func (m *Metrics) countFastUnary(served func() uint64) {
	_ = m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "cairn_rpc_fast_unary_total", Help: "Connect unary calls served by the lean unary path (api/unary).",
	}, func() float64 { return float64(served()) }))
}

// ObserveAppend records one append of the write path.
func (m *Metrics) ObserveAppend(d time.Duration, result string) {
	m.appends.WithLabelValues(result).Observe(d.Seconds())
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// interceptor times every RPC.
func (m *Metrics) interceptor(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		start := time.Now()
		err := next(ctx, spec, stream)
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
		}
		m.rpcObserver(spec.Procedure, code).Observe(time.Since(start).Seconds())
		return err
	}
}

// rpcObserver is rpcs' histogram for a procedure and a code. Procedures
// and codes are finite sets, so the map is bounded.
func (m *Metrics) rpcObserver(procedure, code string) prometheus.Observer {
	k := rpcLabels{procedure, code}
	if o, ok := m.rpcObservers.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o := m.rpcs.WithLabelValues(procedure, code)
	m.rpcObservers.Store(k, o)
	return o
}

var (
	lagDesc     = prometheus.NewDesc("cairn_projection_lag_events", "Events in the stream not yet applied to this node's read models.", []string{"stream"}, nil)
	appliedDesc = prometheus.NewDesc("cairn_projection_applied_seq", "Last stream sequence applied to this node's read models.", []string{"stream"}, nil)
)

// lagCollector reports per-stream projection lag: per project with
// projectLabels, else the projects' streams summed.
type lagCollector struct {
	lag           func() []StreamLag
	projectLabels bool
}

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- appliedDesc
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	lags := c.lag()
	if !c.projectLabels {
		all := StreamLag{Stream: "projects"}
		lags = slices.DeleteFunc(lags, func(l StreamLag) bool {
			if _, ok := streams.ProjectFromStream(l.Stream); !ok {
				return false
			}
			all.Applied += l.Applied
			all.Last += max(l.Last, l.Applied)
			return true
		})
		lags = append(lags, all)
	}
	for _, l := range lags {
		lag := float64(0)
		if l.Last > l.Applied {
			lag = float64(l.Last - l.Applied)
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag, l.Stream)
		ch <- prometheus.MustNewConstMetric(appliedDesc, prometheus.GaugeValue, float64(l.Applied), l.Stream)
	}
}

// operatorOnly serves next to the instance operator only. Metrics are the
// operator's: they tell about every project on the node (how busy, how
// many), so they are behind the operator key rather than open on the API's
// port (Prometheus: authorization.credentials_file pointing at admin.key).
func (s *Server) operatorOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, err := s.auth.authenticate(r.Header.Get("Authorization")); err != nil || !p.IsOperator() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cairn metrics"`)
			http.Error(w, "metrics are for the instance operator: send Authorization: Bearer <admin key>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
