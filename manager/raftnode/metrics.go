package raftnode

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg           prometheus.Registerer
	apply         prometheus.Histogram
	leaderChanges prometheus.Counter
	collectors    []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{
		reg: reg,
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "berth_raft_apply_duration_seconds",
			Help:    "Time from proposing a log entry to its application on the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_raft_leader_changes_total",
			Help: "Leader changes this manager observed.",
		}),
	}
	stateGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_raft_state",
		Help: "This manager's Raft role: 0 follower, 1 candidate, 2 leader, 3 shutdown.",
	}, func() float64 { return float64(n.raft.State()) })
	applied := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_raft_applied_index",
		Help: "Index of the last log entry applied to the state.",
	}, func() float64 { return float64(n.raft.AppliedIndex()) })
	last := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_raft_last_index",
		Help: "Index of the last log entry stored.",
	}, func() float64 { return float64(n.raft.LastIndex()) })
	insecure := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_raft_insecure",
		Help: "1 when this manager speaks Raft over plaintext TCP (-insecure-raft): whoever reaches its Raft port can rewrite the cluster state. 0 with mutual TLS or the in-memory transport of -dev.",
	}, func() float64 {
		if n.insecure {
			return 1
		}
		return 0
	})
	m.collectors = []prometheus.Collector{m.apply, m.leaderChanges, stateGauge, applied, last, insecure}
	if reg != nil {
		for _, c := range m.collectors {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// watchLeaderChanges counts leader observations for the metric and the log.
func (n *Node) watchLeaderChanges() {
	ch := make(chan raft.Observation, 8)
	n.observer = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	go func() {
		for {
			select {
			case o := <-ch:
				lo := o.Data.(raft.LeaderObservation)
				n.metrics.leaderChanges.Inc()
				n.log.Info("raft leader changed", "leader_id", string(lo.LeaderID), "leader_addr", string(lo.LeaderAddr))
			case <-n.stopObs:
				return
			}
		}
	}()
}
