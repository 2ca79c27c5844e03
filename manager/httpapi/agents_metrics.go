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
// the state by hand. Every series of an agent, and the counts, carry
// simulated="true" or "false" (berth-agent -runtime sim), so a dashboard
// never adds simulated capacity to real capacity unawares.
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
		byStatus: prometheus.NewDesc("berth_agents", "Agents by status, and whether they are simulated (nothing placed on those runs).", []string{"status", "simulated"}, nil),
		capacity: prometheus.NewDesc("berth_agent_capacity", "What an agent offers, per slot (cpu in cores, mem in bytes, GPUs and shares in units).",
			[]string{"agent", "slot", "simulated"}, nil),
		usedCPU: prometheus.NewDesc("berth_agent_used_cpu_seconds", "CPU time of the containers an agent last reported (leader only).",
			[]string{"agent", "simulated"}, nil),
		usedMem: prometheus.NewDesc("berth_agent_used_memory_bytes", "Memory working set of the containers an agent last reported (leader only).",
			[]string{"agent", "simulated"}, nil),
		gpuHeld: prometheus.NewDesc("berth_gpu_shares_allocated", "What sessions hold of each GPU of an agent, in GPUs (1 = one whole GPU).",
			[]string{"agent", "gpu", "simulated"}, nil),
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
	type kind struct {
		status    string
		simulated bool
	}
	// Every status is exported, at 0 when no agent has it, so an alert on
	// DISCONNECTED agents sees the series before the first one.
	count := map[kind]int{}
	for _, st := range state.AgentStatuses() {
		count[kind{st, false}], count[kind{st, true}] = 0, 0
	}
	for _, ag := range agents {
		count[kind{ag.Status, ag.Simulated}]++
		sim := strconv.FormatBool(ag.Simulated)
		for _, n := range slots.Known {
			ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, slotValue(n, ag.Capacity[n]), ag.ID, string(n), sim)
		}
		for _, g := range ag.GPUs {
			ch <- prometheus.MustNewConstMetric(c.gpuHeld, prometheus.GaugeValue, slotValue(slots.CUDAShares, gpuHeld[ag.ID][g.UUID]), ag.ID, g.UUID, sim)
		}
		if _, used, ok := c.api.leader.LastHeartbeat(ag.ID); ok {
			ch <- prometheus.MustNewConstMetric(c.usedCPU, prometheus.GaugeValue, used.CPUSeconds, ag.ID, sim)
			ch <- prometheus.MustNewConstMetric(c.usedMem, prometheus.GaugeValue, float64(used.MemoryWorkingSet), ag.ID, sim)
		}
	}
	for k, n := range count {
		ch <- prometheus.MustNewConstMetric(c.byStatus, prometheus.GaugeValue, float64(n), k.status, strconv.FormatBool(k.simulated))
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
