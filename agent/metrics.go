package agent

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

type metrics struct {
	heartbeats        prometheus.Counter
	heartbeatFailures prometheus.Counter
	reports           prometheus.Counter
	reportFailures    prometheus.Counter
	containers        *prometheus.GaugeVec
	usedCPU           prometheus.Gauge
	usedMem           prometheus.Gauge
	usedGPUMem        prometheus.Gauge
	gpuMem            *prometheus.GaugeVec
	gpuUtil           *prometheus.GaugeVec
	gpuLabels         map[string][]string // uuid → the label values of its series

	mu     sync.Mutex
	states map[string]bool // label values set so far, to zero the ones gone
}

func newMetrics(reg prometheus.Registerer, a *Agent) *metrics {
	m := &metrics{
		heartbeats:        prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_heartbeats_total", Help: "Heartbeats the managers acknowledged."}),
		heartbeatFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_heartbeat_failures_total", Help: "Heartbeats no manager acknowledged."}),
		reports:           prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_reports_total", Help: "Reports of containers that changed state, sent as they changed, that the managers acknowledged."}),
		reportFailures:    prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_report_failures_total", Help: "Reports of containers that changed state that no manager acknowledged (the next heartbeat carries their news)."}),
		containers:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_agent_containers", Help: "Containers by state, as last reported."}, []string{"state"}),
		usedCPU:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_used_cpu_seconds", Help: "CPU seconds used by running containers, as last measured."}),
		usedMem:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_used_memory_bytes", Help: "Memory working set of running containers, as last measured."}),
		usedGPUMem:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_used_gpu_memory_bytes", Help: "GPU memory of running containers' processes, as last measured (where NVML can attribute it)."}),
		gpuMem:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_agent_gpu_memory_used_bytes", Help: "Memory used on each GPU, as last measured."}, []string{"uuid", "index", "fake"}),
		gpuUtil:           prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_agent_gpu_utilization_percent", Help: "Utilisation of each GPU, as last measured."}, []string{"uuid", "index", "fake"}),
		gpuLabels:         map[string][]string{},
		states:            map[string]bool{},
	}
	gpuInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_agent_gpu_info", Help: "The node's GPUs (always 1); fake=\"true\" for -fake-gpus mocks."},
		[]string{"uuid", "index", "minor", "name", "memory_bytes", "driver", "cuda", "fake"})
	for _, d := range a.cfg.GPUs.Devices() {
		labels := []string{d.UUID, strconv.Itoa(d.Index), strconv.FormatBool(d.Fake)}
		m.gpuLabels[d.UUID] = labels
		gpuInfo.WithLabelValues(d.UUID, labels[1], strconv.Itoa(d.Minor), d.Name, strconv.FormatInt(d.MemoryBytes, 10),
			a.cfg.GPUs.DriverVersion(), a.cfg.GPUs.CUDAVersion(), labels[2]).Set(1)
	}
	capacity := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_agent_capacity", Help: "Slots this node offers (hardware minus reserved), base units: millicores, bytes, whole GPUs, hundredths of a GPU."}, []string{"slot"})
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
		reg.MustRegister(m.heartbeats, m.heartbeatFailures, m.reports, m.reportFailures, m.containers, m.usedCPU, m.usedMem, capacity, occupied, occupiedMem,
			m.usedGPUMem, m.gpuMem, m.gpuUtil, gpuInfo, orphans)
	}
	return m
}

// observe records a heartbeat's report.
func (m *metrics) observe(cs []api.ContainerReport) {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := map[string]int{}
	var cpu float64
	var mem, gpuMem int64
	for _, c := range cs {
		counts[string(c.Status)]++
		cpu += c.CPUSeconds
		mem += c.MemoryWorkingSet
		gpuMem += c.GPUMemoryBytes
	}
	m.usedGPUMem.Set(float64(gpuMem))
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

// observeGPUs records what the GPUs measured.
func (m *metrics) observeGPUs(us []api.GPUUsage) {
	for _, u := range us {
		labels, ok := m.gpuLabels[u.UUID]
		if !ok {
			continue
		}
		m.gpuMem.WithLabelValues(labels...).Set(float64(u.MemoryUsedBytes))
		m.gpuUtil.WithLabelValues(labels...).Set(float64(u.UtilizationPercent))
	}
}
