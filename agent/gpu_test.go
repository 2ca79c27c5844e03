package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

func startGPUAgent(t *testing.T, dir string, rt runtime.Runtime, mgr *fakeManager, gpus *gpu.Node) *Agent {
	t.Helper()
	reg := prometheus.NewRegistry()
	a, err := New(Config{StateDir: dir, HTTPAddr: "127.0.0.1:0", ReservedMilliCPU: 1000, ReservedMemBytes: 1 << 30,
		HeartbeatEvery: 20 * time.Millisecond, DesiredWait: 200 * time.Millisecond, Runtime: rt, Host: fakeHost{}, Manager: mgr,
		GPUs: gpus, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg, Gatherer: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { cancel(); <-done }) })
	return a
}

func fakeGPUs(t *testing.T, n int) *gpu.Node {
	t.Helper()
	m, err := gpu.FakeMachine(n)
	if err != nil {
		t.Fatal(err)
	}
	node, err := gpu.Open(gpu.Config{NVML: gpu.NewNVML(m), Fake: true})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// An agent with -fake-gpus 2 offers them at registration and in every
// heartbeat, marked fake; a container with half of one gets the slice in
// its environment and label, and a container without GPUs gets void.
func TestAgentReportsFakeGPUsAndGivesAContainerItsSlice(t *testing.T) {
	rt := newFakeRuntime("berth/base:latest")
	mgr := newFakeManager()
	a := startGPUAgent(t, t.TempDir(), rt, mgr, fakeGPUs(t, 2))
	eventually(t, 5*time.Second, func() error {
		if _, n := mgr.lastHeartbeat(); n == 0 {
			return fmt.Errorf("no heartbeat")
		}
		return nil
	})
	regs, _ := mgr.registrations()
	reg := regs[0]
	if len(reg.GPUs) != 2 || reg.GPUShareQuantum != 10 {
		t.Fatalf("registration GPUs %+v, quantum %d", reg.GPUs, reg.GPUShareQuantum)
	}
	g1 := reg.GPUs[1]
	if want := (api.GPUDevice{UUID: "GPU-fa4e0000-0000-0000-0000-000000000001", Index: 1, Minor: 1, Name: "Mock NVIDIA A100-SXM4-40GB",
		MemoryBytes: 40960 << 20, Shares: 100, Fake: true}); g1 != want {
		t.Errorf("GPU 1 = %+v, want %+v", g1, want)
	}
	if reg.Capacity[slots.CUDADevice] != 2 || reg.Capacity[slots.CUDAShares] != 200 || reg.Capacity[slots.CPU] != 3000 {
		t.Errorf("capacity %v", reg.Capacity)
	}
	hb, _ := mgr.lastHeartbeat()
	if !reflect.DeepEqual(hb.GPUs, reg.GPUs) || hb.GPUShareQuantum != 10 || hb.Capacity[slots.CUDAShares] != 200 {
		t.Errorf("heartbeat GPUs %+v, quantum %d, capacity %v", hb.GPUs, hb.GPUShareQuantum, hb.Capacity)
	}
	if want := []api.GPUUsage{{UUID: reg.GPUs[0].UUID}, {UUID: g1.UUID}}; !reflect.DeepEqual(hb.GPUUsage, want) {
		t.Errorf("GPU usage %+v, want %+v", hb.GPUUsage, want)
	}

	half := api.GPUSlice{UUID: g1.UUID, Index: 1, Minor: 1, Share: 50, MemoryBytes: 20480 << 20, Fake: true}
	withGPU := desired("c1", "berth/base:latest")
	withGPU.GPUs = []api.GPUSlice{half}
	// What a session says of the variables the agent owns does not count.
	withGPU.Env = map[string]string{"NVIDIA_VISIBLE_DEVICES": "all", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "100", "MINE": "1"}
	plain := desired("c2", "berth/base:latest")
	plain.Env = map[string]string{"NVIDIA_VISIBLE_DEVICES": "all"}
	mgr.setDesired(withGPU, plain)
	eventually(t, 5*time.Second, func() error {
		if n := rt.runCount(); n != 2 {
			return fmt.Errorf("%d containers started", n)
		}
		return nil
	})
	rt.mu.Lock()
	runs := map[string]runtime.Spec{}
	for _, s := range rt.runs {
		runs[s.ID] = s
	}
	rt.mu.Unlock()
	wantEnv := map[string]string{"MINE": "1", "NVIDIA_VISIBLE_DEVICES": g1.UUID, "CUDA_VISIBLE_DEVICES": g1.UUID,
		"CUDA_MPS_PIPE_DIRECTORY": "/run/nvidia-mps", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=20480M",
		"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "50", "BERTH_FAKE_GPUS": "true", "USER": "work"}
	if got := runs["c1"].Env; !reflect.DeepEqual(got, wantEnv) {
		t.Errorf("env of c1 %v, want %v", got, wantEnv)
	}
	if !runs["c1"].GPU.Empty() {
		t.Errorf("a fake GPU reached the host: %+v", runs["c1"].GPU)
	}
	var label []api.GPUSlice
	if err := json.Unmarshal([]byte(runs["c1"].Labels[runtime.LabelGPUs]), &label); err != nil || !reflect.DeepEqual(label, []api.GPUSlice{half}) {
		t.Errorf("GPU label %q: %v", runs["c1"].Labels[runtime.LabelGPUs], err)
	}
	if got := runs["c2"].Env; !reflect.DeepEqual(got, map[string]string{"NVIDIA_VISIBLE_DEVICES": "void", "USER": "work"}) {
		t.Errorf("env of a container without GPUs %v, want NVIDIA_VISIBLE_DEVICES=void", got)
	}
	if _, ok := runs["c2"].Labels[runtime.LabelGPUs]; ok {
		t.Error("a container without GPUs has a GPU label")
	}
	if held := a.cfg.GPUs.Held(); !reflect.DeepEqual(held, map[string][]api.GPUSlice{"c1": {half}}) {
		t.Errorf("ledger %v", held)
	}
	body := scrape(t, a)
	for _, want := range []string{`berth_agent_capacity{slot="cuda.shares"} 200`,
		`berth_agent_gpu_utilization_percent{fake="true",index="1",uuid="` + g1.UUID + `"} 0`,
		`berth_agent_gpu_info{cuda="12.4",driver="550.54.15",fake="true",index="1",memory_bytes="42949672960",minor="1",name="Mock NVIDIA A100-SXM4-40GB",uuid="` + g1.UUID + `"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t *testing.T, a *Agent) string {
	t.Helper()
	resp, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A restarted agent rebuilds its GPU ledger from the containers' labels,
// and reports each container's GPU memory from the pids NVML names.
func TestRestartedAgentRebuildsTheGPULedgerAndAttributesGPUMemory(t *testing.T) {
	m := dgxa100.New()
	for _, d := range m.Devices {
		dev := d.(*dgxa100.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 7}, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.GetMPSComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
	}
	g0 := m.Devices[0].(*dgxa100.Device)
	g0.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 3 << 30}, {Pid: 4243, UsedGpuMemory: 1 << 30}, {Pid: 999, UsedGpuMemory: 5 << 30}}, nvml.SUCCESS
	}
	dev := t.TempDir()
	for _, f := range []string{"nvidiactl", "nvidia0"} {
		if err := os.WriteFile(filepath.Join(dev, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lib := t.TempDir()
	if err := os.WriteFile(filepath.Join(lib, "libcuda.so.1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *gpu.Node {
		n, err := gpu.Open(gpu.Config{NVML: gpu.NewNVML(m), Host: gpu.Host{DevDir: dev, LibDirs: []string{lib}, BinDirs: []string{lib},
			CDISpecDirs: []string{t.TempDir()}}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	whole := api.GPUSlice{UUID: g0.UUID, Share: 100, Whole: true, MemoryBytes: 40960 << 20}
	d := desired("c1", "berth/base:latest")
	d.GPUs = []api.GPUSlice{whole}
	rt := newFakeRuntime("berth/base:latest")
	rt.pids = map[string][]uint32{"c1": {4242, 4243}}
	mgr := newFakeManager()
	mgr.setDesired(d)

	ctx, cancel := context.WithCancel(context.Background())
	first, err := New(Config{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HeartbeatEvery: 20 * time.Millisecond, DesiredWait: 200 * time.Millisecond,
		Runtime: rt, Host: fakeHost{}, Manager: mgr, GPUs: open(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	eventually(t, 5*time.Second, func() error {
		if r, _ := reported(mgr, "c1"); r.Status != "running" || r.GPUMemoryBytes != 4<<30 {
			return fmt.Errorf("c1 reported as %+v, want running with 4 GiB of GPU memory", r)
		}
		return nil
	})
	rt.mu.Lock()
	access := rt.runs[0].GPU
	rt.mu.Unlock()
	if want := []string{filepath.Join(dev, "nvidiactl"), filepath.Join(dev, "nvidia0")}; !reflect.DeepEqual(access.DeviceNodes, want) {
		t.Errorf("device nodes %q, want %q", access.DeviceNodes, want)
	}
	cancel()
	<-done

	second := open()
	startGPUAgent(t, t.TempDir(), rt, mgr, second)
	eventually(t, 5*time.Second, func() error {
		if held := second.Held(); !reflect.DeepEqual(held, map[string][]api.GPUSlice{"c1": {whole}}) {
			return fmt.Errorf("ledger after restart %v", held)
		}
		hb, _ := mgr.lastHeartbeat()
		if len(hb.GPUUsage) != 8 || hb.GPUUsage[0].UtilizationPercent != 7 {
			return fmt.Errorf("GPU usage %+v", hb.GPUUsage)
		}
		return nil
	})
	if n := rt.runCount(); n != 1 {
		t.Fatalf("started %d times", n)
	}
}
