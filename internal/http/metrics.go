package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the service's Prometheus series.
type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	violations   *prometheus.CounterVec
	created      *prometheus.CounterVec
	ended        *prometheus.CounterVec
	reassigned   prometheus.Counter
	authFailures prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careteam_http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "careteam_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careteam_constraint_violations_total",
			Help: "Requests refused by a database constraint or its check, by constraint.",
		}, []string{"constraint"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careteam_assignments_created_total",
			Help: "Care-team assignments created, by role.",
		}, []string{"role"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careteam_assignments_ended_total",
			Help: "Care-team assignments ended, by role.",
		}, []string{"role"}),
		reassigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careteam_primary_reassignments_total",
			Help: "PRIMARY reassignments that changed the PRIMARY.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careteam_authentication_failures_total",
			Help: "Requests refused with 401: no key, or one that is malformed, unknown or revoked.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.violations, m.created, m.ended, m.reassigned,
		m.authFailures)
	return m
}

func (m *metrics) observe(method, route string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(elapsed.Seconds())
}

func (m *metrics) violation(constraint string) {
	m.violations.WithLabelValues(constraint).Inc()
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// RegisterProcessCollectors adds the Go runtime and process series to reg.
func RegisterProcessCollectors(reg *prometheus.Registry) {
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// RegisterPoolCollector adds gauges of pool's connections to reg.
func RegisterPoolCollector(reg *prometheus.Registry, pool *pgxpool.Pool) {
	gauge := func(name, help string, read func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return read(pool.Stat()) })
	}
	reg.MustRegister(
		gauge("careteam_db_pool_total_conns", "Connections in the pool.",
			func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		gauge("careteam_db_pool_acquired_conns", "Connections in use.",
			func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		gauge("careteam_db_pool_idle_conns", "Idle connections.",
			func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
		gauge("careteam_db_pool_max_conns", "The pool's limit.",
			func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "careteam_db_pool_empty_acquire_total",
			Help: "Acquires that waited for a connection.",
		}, func() float64 { return float64(pool.Stat().EmptyAcquireCount()) }),
	)
}

// importCollector reads the import totals from the database at each scrape.
type importCollector struct {
	store *store.Store
	desc  *prometheus.Desc
}

// RegisterImportCollector adds careteam_import_records_total{kind,outcome},
// read from the database when /metrics is scraped. A scrape that cannot
// read them leaves them out rather than failing.
func RegisterImportCollector(reg *prometheus.Registry, st *store.Store) {
	reg.MustRegister(importCollector{
		store: st,
		desc: prometheus.NewDesc("careteam_import_records_total",
			"Records read by careteam import, by resource kind and outcome (loaded, updated, unchanged, skipped).",
			[]string{"kind", "outcome"}, nil),
	})
}

func (c importCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c importCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	totals, err := c.store.ImportTotals(ctx)
	if err != nil {
		return
	}
	for _, t := range totals {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(t.Records), t.Kind, t.Outcome)
	}
}
