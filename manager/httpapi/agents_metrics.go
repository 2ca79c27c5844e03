package httpapi

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/slots"
)

// agentCollector reports the agents at scrape time from the replicated
// state (every manager) and the leader's last heartbeat reports (the leader
// only: followers receive none), so no gauge has to be kept in step with
// the state by hand.
type agentCollector struct {
	api      *API
	byStatus *prometheus.Desc
	capacity *prometheus.Desc
	usedCPU  *prometheus.Desc
	usedMem  *prometheus.Desc
	gpuHeld  *prometheus.Desc
}

func newAgentCollector(a *API) *agentCollector {
	return &agentCollector{
		api:      a,
		byStatus: prometheus.NewDesc("berth_agents", "Agents by status.", []string{"status"}, nil),
		capacity: prometheus.NewDesc("berth_agent_capacity", "What an agent offers, per slot (cpu in cores, mem in bytes, GPUs and shares in units).",
			[]string{"agent", "slot"}, nil),
		usedCPU: prometheus.NewDesc("berth_agent_used_cpu_seconds", "CPU time of the containers an agent last reported (leader only).",
			[]string{"agent"}, nil),
		usedMem: prometheus.NewDesc("berth_agent_used_memory_bytes", "Memory working set of the containers an agent last reported (leader only).",
			[]string{"agent"}, nil),
		gpuHeld: prometheus.NewDesc("berth_gpu_shares_allocated", "What sessions hold of each GPU of an agent, in GPUs (1 = one whole GPU).",
			[]string{"agent", "gpu"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.byStatus
	ch <- c.capacity
	ch <- c.usedCPU
	ch <- c.usedMem
	ch <- c.gpuHeld
}

// Collect implements prometheus.Collector.
func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	tx := c.api.cluster.Read()
	agents, err := tx.Agents()
	if err != nil {
		c.api.log.Error("agent metrics: read agents", "err", err)
		return
	}
	gpuHeld, err := tx.GPUUsages()
	if err != nil {
		c.api.log.Error("agent metrics: read GPU usage", "err", err)
		return
	}
	count := map[string]int{state.AgentAlive: 0, state.AgentLost: 0}
	for _, ag := range agents {
		count[ag.Status]++
		for _, n := range slots.Known {
			ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, slotValue(n, ag.Capacity[n]), ag.ID, string(n))
		}
		for _, g := range ag.GPUs {
			ch <- prometheus.MustNewConstMetric(c.gpuHeld, prometheus.GaugeValue, slotValue(slots.CUDAShares, gpuHeld[ag.ID][g.UUID]), ag.ID, g.UUID)
		}
		if _, used, ok := c.api.leader.LastHeartbeat(ag.ID); ok {
			ch <- prometheus.MustNewConstMetric(c.usedCPU, prometheus.GaugeValue, used.CPUSeconds, ag.ID)
			ch <- prometheus.MustNewConstMetric(c.usedMem, prometheus.GaugeValue, float64(used.MemoryWorkingSet), ag.ID)
		}
	}
	for status, n := range count {
		ch <- prometheus.MustNewConstMetric(c.byStatus, prometheus.GaugeValue, float64(n), status)
	}
}

// slotValue is a slot quantity in its wire unit (cores, not millicores).
func slotValue(n slots.Name, v int64) float64 {
	f, err := strconv.ParseFloat(slots.Format(n, v).String(), 64)
	if err != nil {
		return float64(v) // Format writes decimals; unreachable
	}
	return f
}
