package server

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// schedulerMetrics are the scheduler's series. Each leadership starts a new
// scheduler on the same registry; it takes over the series a previous one
// registered, so counters keep counting across leaderships of this manager.
type schedulerMetrics struct {
	plans         prometheus.Counter
	placements    prometheus.Counter
	pending       prometheus.Gauge
	planDuration  prometheus.Histogram
	admissionWait prometheus.Histogram
}

func newSchedulerMetrics(reg prometheus.Registerer) *schedulerMetrics {
	return &schedulerMetrics{
		plans: registered(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_scheduler_plans_total",
			Help: "Plans (batches of placements and waits) the scheduler committed through Raft.",
		})),
		placements: registered(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_scheduler_placements_total",
			Help: "Sessions the scheduler placed (PENDING to SCHEDULED).",
		})),
		pending: registered(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_scheduler_pending",
			Help: "PENDING sessions at the scheduler's last pass (the queue length).",
		})),
		planDuration: registered(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "berth_scheduler_plan_duration_seconds",
			Help:    "Time to plan a batch and commit it through Raft.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		})),
		admissionWait: registered(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "berth_session_admission_wait_seconds",
			Help:    "Time sessions waited PENDING before they were SCHEDULED.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		})),
	}
}

// registered registers c, or returns the collector already registered
// under its name by an earlier leadership.
func registered[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	// Any other error is a clash of names between series of this program,
	// which its tests would show; the series then simply goes unexported.
	return c
}
