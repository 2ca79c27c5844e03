package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/shared/api"
)

// sessionCollector counts sessions by status at scrape time from the
// replicated state, through the status index (no full scan). Every status
// is exported, zero included, so a dashboard never sees a series vanish.
type sessionCollector struct {
	api      *API
	byStatus *prometheus.Desc
}

func newSessionCollector(a *API) *sessionCollector {
	return &sessionCollector{api: a, byStatus: prometheus.NewDesc("berth_sessions", "Sessions by status.", []string{"status"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.byStatus }

// Collect implements prometheus.Collector.
func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	tx := c.api.cluster.Read()
	for _, st := range api.SessionStatuses() {
		ss, err := tx.SessionsInStatus(st)
		if err != nil {
			c.api.log.Error("session metrics: read sessions", "status", st, "err", err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.byStatus, prometheus.GaugeValue, float64(len(ss)), string(st))
	}
}
