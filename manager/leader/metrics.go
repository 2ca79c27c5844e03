package leader

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the leader's series. They are made once per manager and
// keep counting across its leaderships.
type metrics struct {
	lost         prometheus.Counter
	disconnected prometheus.Counter
	stepDowns    prometheus.Counter
	beats        prometheus.Counter
	reports      prometheus.Counter
	// The scheduler's.
	plans         prometheus.Counter
	placements    prometheus.Counter
	pending       prometheus.Gauge
	planDuration  prometheus.Histogram
	admissionWait prometheus.Histogram
	// The usage check's.
	drift      prometheus.Gauge
	driftFound prometheus.Counter
	// Usage accounting's (collect.go, measure.go).
	collected prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agents_lost_total",
			Help: "Agents this manager, as leader, declared LOST for silence past the disconnect grace (their sessions became ERROR agent-lost)."}),
		disconnected: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agents_disconnected_total",
			Help: "Agents this manager, as leader, declared DISCONNECTED for silence past the heartbeat timeout (their sessions kept for the disconnect grace)."}),
		stepDowns: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_leader_step_downs_total",
			Help: "Leaderships this manager handed to another manager because it could not set them up."}),
		beats: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_heartbeats_total",
			Help: "Agent heartbeats this manager accepted (as leader)."}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_reports_total",
			Help: "Agent reports of containers that changed state, sent as they changed, that this manager accepted (as leader)."}),
		plans: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_scheduler_plans_total",
			Help: "Plans (batches of placements and waits) the scheduler committed through Raft."}),
		placements: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_scheduler_placements_total",
			Help: "Sessions the scheduler placed (PENDING to SCHEDULED)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_scheduler_pending",
			Help: "PENDING sessions at the scheduler's last pass (the queue length)."}),
		planDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_scheduler_plan_duration_seconds",
			Help: "Time to plan a batch and commit it through Raft.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		admissionWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_session_admission_wait_seconds",
			Help: "Time sessions waited PENDING before they were SCHEDULED.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 12)}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_usage_drift",
			Help: "Differences the last usage check found (occupancy against session records, records against agents' reports); 0 when all agree."}),
		driftFound: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_usage_drift_found_total",
			Help: "Differences usage checks have found, all told."}),
		collected: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_sessions_collected_total",
			Help: "Finished sessions this manager, as leader, removed after -session-retention (their usage stays in the usage rows)."}),
	}
	if reg != nil {
		reg.MustRegister(m.lost, m.disconnected, m.stepDowns, m.beats, m.reports, m.plans, m.placements, m.pending, m.planDuration, m.admissionWait,
			m.drift, m.driftFound, m.collected)
	}
	return m
}
