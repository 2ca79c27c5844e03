package agent

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

type metrics struct {
	heartbeats        prometheus.Counter
	heartbeatFailures prometheus.Counter
	containers        *prometheus.GaugeVec
	usedCPU           prometheus.Gauge
	usedMem           prometheus.Gauge

	mu     sync.Mutex
	states map[string]bool // label values set so far, to zero the ones gone
}

func newMetrics(reg prometheus.Registerer, a *Agent) *metrics {
	m := &metrics{
		heartbeats:        prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_heartbeats_total", Help: "Heartbeats the managers acknowledged."}),
		heartbeatFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_heartbeat_failures_total", Help: "Heartbeats no manager acknowledged."}),
		containers:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_agent_containers", Help: "Containers by state, as last reported."}, []string{"state"}),
		usedCPU:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_used_cpu_seconds", Help: "CPU seconds used by running containers, as last measured."}),
		usedMem:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_used_memory_bytes", Help: "Memory working set of running containers, as last measured."}),
		states:            map[string]bool{},
	}
	capacity := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_agent_capacity", Help: "Slots this node offers (hardware minus reserved), base units: millicores, bytes."}, []string{"slot"})
	for n, v := range a.capacity {
		capacity.WithLabelValues(string(n)).Set(float64(v))
	}
	occupied := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_agent_occupied_millicpu", Help: "CPU held by the containers the managers placed here, millicores."},
		func() float64 { return float64(a.conv.occupied()[slots.CPU]) })
	occupiedMem := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_agent_occupied_memory_bytes", Help: "Memory held by the containers the managers placed here."},
		func() float64 { return float64(a.conv.occupied()[slots.Mem]) })
	orphans := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "berth_agent_orphans_removed_total", Help: "Containers removed because the managers did not want them once the orphan grace had passed."},
		func() float64 { return float64(a.conv.orphansRemoved.Load()) })
	if reg != nil {
		reg.MustRegister(m.heartbeats, m.heartbeatFailures, m.containers, m.usedCPU, m.usedMem, capacity, occupied, occupiedMem, orphans)
	}
	return m
}

// observe records a heartbeat's report.
func (m *metrics) observe(cs []api.ContainerReport) {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := map[string]int{}
	var cpu float64
	var mem int64
	for _, c := range cs {
		counts[c.Status]++
		cpu += c.CPUSeconds
		mem += c.MemoryWorkingSet
	}
	for s := range m.states {
		m.containers.WithLabelValues(s).Set(0)
	}
	for s, n := range counts {
		m.states[s] = true
		m.containers.WithLabelValues(s).Set(float64(n))
	}
	m.usedCPU.Set(cpu)
	m.usedMem.Set(float64(mem))
}
