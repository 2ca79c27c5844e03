package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

const a100Memory = 40960 << 20

// machine is go-nvml's mock DGX A100 with usage a test can set per GPU.
func machine(t *testing.T) *dgxa100.Server {
	t.Helper()
	m := dgxa100.New()
	for _, d := range m.Devices {
		dev := d.(*dgxa100.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.GetMPSComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
	}
	return m
}

func uuidOf(m *dgxa100.Server, i int) string { return m.Devices[i].(*dgxa100.Device).UUID }

func TestInventoryOfAnEightGPUMachine(t *testing.T) {
	m := machine(t)
	busy := m.Devices[2].(*dgxa100.Device)
	busy.MemoryInfo.Used = 3 << 30
	busy.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 42}, nvml.SUCCESS }
	busy.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 1 << 30}, {Pid: 101, UsedGpuMemory: 2 << 30}, {Pid: 102, UsedGpuMemory: ^uint64(0)}}, nvml.SUCCESS
	}
	// MPS clients: one listed above too, one only here.
	busy.GetMPSComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 101, UsedGpuMemory: 2 << 30}, {Pid: 103, UsedGpuMemory: 512 << 20}}, nvml.SUCCESS
	}
	n, err := Open(Config{NVML: NewNVML(m)})
	if err != nil {
		t.Fatal(err)
	}
	devs := n.Devices()
	if len(devs) != 8 {
		t.Fatalf("%d GPUs, want 8", len(devs))
	}
	for i, d := range devs {
		want := api.GPUDevice{UUID: uuidOf(m, i), Index: i, Minor: i, Name: "Mock NVIDIA A100-SXM4-40GB", MemoryBytes: a100Memory, Shares: 100}
		if d != want {
			t.Errorf("GPU %d = %+v, want %+v", i, d, want)
		}
	}
	if got, want := n.Capacity(), (slots.Slots{slots.CUDADevice: 8, slots.CUDAShares: 800}); !reflect.DeepEqual(got, want) {
		t.Errorf("capacity %v, want %v", got, want)
	}
	if n.Quantum() != 10 || n.DriverVersion() != "550.54.15" || n.CUDAVersion() != "12.4" {
		t.Errorf("quantum %d, driver %q, cuda %q", n.Quantum(), n.DriverVersion(), n.CUDAVersion())
	}
	usage, pids, err := n.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if len(usage) != 8 || usage[2] != (api.GPUUsage{UUID: uuidOf(m, 2), MemoryUsedBytes: 3 << 30, UtilizationPercent: 42}) || usage[0].MemoryUsedBytes != 0 {
		t.Errorf("usage %+v", usage)
	}
	if want := map[uint32]int64{100: 1 << 30, 101: 2 << 30, 102: 0, 103: 512 << 20}; !reflect.DeepEqual(pids, want) {
		t.Errorf("memory by pid %v, want %v (unknown memory as 0)", pids, want)
	}
}

func TestSharesAndQuantumAreConfigurable(t *testing.T) {
	n, err := Open(Config{NVML: NewNVML(machine(t)), Shares: 200, Quantum: 25})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Capacity()[slots.CUDAShares]; got != 1600 || n.Quantum() != 25 || n.Devices()[0].Shares != 200 {
		t.Errorf("shares %d, quantum %d, per GPU %d", got, n.Quantum(), n.Devices()[0].Shares)
	}
	_, err = Open(Config{NVML: NewNVML(machine(t)), Shares: 100, Quantum: 30})
	if err == nil || err.Error() != "GPU shares: 1 per GPU is not a positive multiple of the quantum 0.3" {
		t.Errorf("shares not a multiple of the quantum: %v", err)
	}
}

func TestNoLibraryMeansNoGPUsAndOneLogLine(t *testing.T) {
	noLib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	for name, lib := range map[string]NVML{"mock without library": NewNVML(noLib), "this machine's go-nvml": NewNVML(nvml.New())} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			n, err := Open(Config{NVML: lib, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if len(n.Devices()) != 0 || len(n.Capacity()) != 0 || n.Quantum() != 0 {
				t.Errorf("devices %v, capacity %v, quantum %d: want none", n.Devices(), n.Capacity(), n.Quantum())
			}
			if u, _, err := n.Usage(); u != nil || err != nil {
				t.Errorf("usage %v, %v", u, err)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "no NVIDIA library or driver: this node offers no GPUs") {
				t.Errorf("logs %q: want one line saying there are no GPUs", logs.String())
			}
			g, err := n.Grant(context.Background(), "c", nil)
			if err != nil || !reflect.DeepEqual(g.Env, map[string]string{EnvNVIDIAVisible: "void"}) || !g.Access.Empty() {
				t.Errorf("grant without GPUs: %+v, %v", g, err)
			}
			if _, err := n.Grant(context.Background(), "c", []api.GPUSlice{{UUID: "GPU-x", Share: 100, Whole: true}}); err == nil ||
				err.Error() != "GPUs of c: this node has no GPU GPU-x" {
				t.Errorf("grant of a GPU the node lacks: %v", err)
			}
		})
	}
}

func TestFakeGPUsGetTheEnvironmentOnly(t *testing.T) {
	m, err := FakeMachine(2)
	if err != nil {
		t.Fatal(err)
	}
	run := &recordingRunner{}
	n, err := Open(Config{NVML: NewNVML(m), Fake: true, Runner: run})
	if err != nil {
		t.Fatal(err)
	}
	devs := n.Devices()
	if len(devs) != 2 || !devs[0].Fake || devs[1].UUID != "GPU-fa4e0000-0000-0000-0000-000000000001" {
		t.Fatalf("fake inventory %+v", devs)
	}
	half := api.GPUSlice{UUID: devs[1].UUID, Index: 1, Minor: 1, Share: 50, MemoryBytes: a100Memory / 2, Fake: true}
	g, err := n.Grant(context.Background(), "c1", []api.GPUSlice{half})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{EnvNVIDIAVisible: devs[1].UUID, EnvCUDAVisible: devs[1].UUID, EnvMPSPipe: ContainerMPSPipeDir,
		EnvMPSMemLimit: "0=20480M", EnvMPSThreads: "50", EnvFake: "true"}
	if !reflect.DeepEqual(g.Env, want) {
		t.Errorf("env %v, want %v", g.Env, want)
	}
	if !g.Access.Empty() || len(run.commands()) != 0 {
		t.Errorf("fake GPUs reached the host: access %+v, commands %q", g.Access, run.commands())
	}
	if held := n.Held(); !reflect.DeepEqual(held, map[string][]api.GPUSlice{"c1": {half}}) {
		t.Errorf("ledger %v", held)
	}
	if _, err := FakeMachine(0); err == nil {
		t.Error("FakeMachine(0) made a machine")
	}
}

// recordingRunner plays nvidia-cuda-mps-control: it records every command
// and answers get_server_list only while its daemon "runs".
type recordingRunner struct {
	mu      sync.Mutex
	cmds    []string
	running map[string]bool // pipe dir → daemon up
}

func (r *recordingRunner) Run(_ context.Context, env []string, stdin string, name string, args ...string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		r.running = map[string]bool{}
	}
	var pipe, visible string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "CUDA_MPS_PIPE_DIRECTORY="); ok {
			pipe = v
		}
		if v, ok := strings.CutPrefix(e, "CUDA_VISIBLE_DEVICES="); ok {
			visible = v
		}
	}
	if name != MPSControl || filepath.Base(filepath.Dir(pipe)) != visible {
		return "", fmt.Errorf("unexpected %s %v with env %v", name, args, env)
	}
	cmd := strings.TrimSpace(strings.Join(append(args, stdin), " "))
	r.cmds = append(r.cmds, visible[len(visible)-2:]+": "+cmd)
	switch {
	case cmd == "-d":
		r.running[pipe] = true
	case !r.running[pipe]:
		return "", errors.New("Cannot find MPS control daemon process")
	case cmd == "quit":
		r.running[pipe] = false
	}
	return "", nil
}

func (r *recordingRunner) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.cmds
	r.cmds = nil
	return out
}

func (r *recordingRunner) kill(pipe string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[pipe] = false
}

// realHost is a host with NVIDIA's device nodes and driver files (plain
// files: nothing opens them).
func realHost(t *testing.T) Host {
	t.Helper()
	root := t.TempDir()
	dev, lib, bin := filepath.Join(root, "dev"), filepath.Join(root, "lib"), filepath.Join(root, "bin")
	for _, d := range []string{dev, lib, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dev/nvidiactl", "dev/nvidia0", "dev/nvidia1", "dev/nvidia-uvm", "lib/libcuda.so.550.54.15",
		"lib/libnvidia-ml.so.550.54.15", "lib/libc.so.6", "bin/nvidia-smi"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("libcuda.so.550.54.15", filepath.Join(lib, "libcuda.so.1")); err != nil {
		t.Fatal(err)
	}
	return Host{DevDir: dev, LibDirs: []string{lib, filepath.Join(root, "missing")}, BinDirs: []string{bin}, CDISpecDirs: []string{filepath.Join(root, "cdi")}}
}

func TestSharedGPUsRunOneMPSDaemonEachWithDefaultsOfTheLargestSlice(t *testing.T) {
	m := machine(t)
	var limits []string
	m.Devices[0].(*dgxa100.Device).SetMemoryLimits_v1Func = func(ns string, soft, hard uint64) nvml.Return {
		limits = append(limits, fmt.Sprintf("%s %d %d", ns, soft, hard))
		return nvml.SUCCESS
	}
	run := &recordingRunner{}
	host := realHost(t)
	mpsDir := t.TempDir()
	n, err := Open(Config{NVML: NewNVML(m), Runner: run, Host: host, MPSDir: mpsDir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u0 := uuidOf(m, 0)
	slice := func(share int64) []api.GPUSlice {
		return []api.GPUSlice{{UUID: u0, Index: 0, Minor: 0, Share: share, MemoryBytes: a100Memory * share / 100}}
	}

	g, err := n.Grant(ctx, "small", slice(30))
	if err != nil {
		t.Fatal(err)
	}
	tag := u0[len(u0)-2:] + ": "
	if got, want := run.commands(), []string{tag + "get_server_list", tag + "-d", tag + "set_default_device_pinned_mem_limit 0 12288M",
		tag + "set_default_active_thread_percentage 30"}; !slices.Equal(got, want) {
		t.Errorf("first slice: commands %q, want %q", got, want)
	}
	pipe := filepath.Join(mpsDir, u0, "pipe")
	if st, err := os.Stat(pipe); err != nil || !st.IsDir() {
		t.Errorf("pipe dir %s: %v", pipe, err)
	}
	if g.Env[EnvMPSMemLimit] != "0=12288M" || g.Env[EnvMPSThreads] != "30" || g.Env[EnvCUDAVisible] != u0 || g.Env[EnvNVIDIAVisible] != u0 {
		t.Errorf("env %v", g.Env)
	}
	wantNodes := []string{filepath.Join(host.DevDir, "nvidiactl"), filepath.Join(host.DevDir, "nvidia0"), filepath.Join(host.DevDir, "nvidia-uvm")}
	if !slices.Equal(g.Access.DeviceNodes, wantNodes) || g.Access.CDIDevices != nil {
		t.Errorf("device nodes %q, want %q; CDI %q", g.Access.DeviceNodes, wantNodes, g.Access.CDIDevices)
	}
	lib := host.LibDirs[0]
	wantMounts := []runtime.Mount{
		{Source: filepath.Join(lib, "libcuda.so.550.54.15"), Target: "/usr/local/nvidia/lib64/libcuda.so.1", ReadOnly: true},
		{Source: filepath.Join(lib, "libcuda.so.550.54.15"), Target: "/usr/local/nvidia/lib64/libcuda.so.550.54.15", ReadOnly: true},
		{Source: filepath.Join(lib, "libnvidia-ml.so.550.54.15"), Target: "/usr/local/nvidia/lib64/libnvidia-ml.so.550.54.15", ReadOnly: true},
		{Source: filepath.Join(host.BinDirs[0], "nvidia-smi"), Target: "/usr/local/nvidia/bin/nvidia-smi", ReadOnly: true},
		{Source: pipe, Target: ContainerMPSPipeDir},
		{Source: "/dev/shm", Target: "/dev/shm"},
	}
	if !reflect.DeepEqual(g.Access.Mounts, wantMounts) {
		t.Errorf("mounts\n%+v\nwant\n%+v", g.Access.Mounts, wantMounts)
	}
	// Between task create and start: the cgroup's cap on cgroup v2.
	if err := g.Access.BeforeStart(ctx, "/sys/fs/cgroup/berth/small"); err != nil {
		t.Fatal(err)
	}
	if want := []string{fmt.Sprintf("/sys/fs/cgroup/berth/small %d %d", a100Memory*30/100, a100Memory*30/100)}; !slices.Equal(limits, want) {
		t.Errorf("memory limits %q, want %q", limits, want)
	}

	// A larger slice raises the defaults of the running daemon.
	if _, err := n.Grant(ctx, "large", slice(50)); err != nil {
		t.Fatal(err)
	}
	if got, want := run.commands(), []string{tag + "get_server_list", tag + "set_default_device_pinned_mem_limit 0 20480M",
		tag + "set_default_active_thread_percentage 50"}; !slices.Equal(got, want) {
		t.Errorf("larger slice: commands %q, want %q", got, want)
	}
	// A daemon that died is started again with its defaults.
	run.kill(pipe)
	if err := n.Supervise(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := run.commands(), []string{tag + "get_server_list", tag + "-d", tag + "set_default_device_pinned_mem_limit 0 20480M",
		tag + "set_default_active_thread_percentage 50"}; !slices.Equal(got, want) {
		t.Errorf("restart: commands %q, want %q", got, want)
	}
	// The daemon stops with the last container that needs it.
	if err := n.Release(ctx, "large"); err != nil {
		t.Fatal(err)
	}
	if got := run.commands(); len(got) != 0 {
		t.Errorf("release of one of two: commands %q", got)
	}
	if err := n.Release(ctx, "small"); err != nil {
		t.Fatal(err)
	}
	if got, want := run.commands(), []string{tag + "quit"}; !slices.Equal(got, want) {
		t.Errorf("last release: commands %q, want %q", got, want)
	}
	if len(n.Held()) != 0 {
		t.Errorf("ledger after releases: %v", n.Held())
	}

	// A whole GPU needs no daemon; a fractional share cannot go with others.
	g, err = n.Grant(ctx, "whole", []api.GPUSlice{{UUID: uuidOf(m, 1), Index: 1, Minor: 1, Share: 100, Whole: true}})
	if err != nil || g.Env[EnvMPSPipe] != "" || g.Access.BeforeStart != nil || len(run.commands()) != 0 {
		t.Errorf("whole GPU: %+v, %v", g, err)
	}
	_, err = n.Grant(ctx, "mixed", append(slice(50), api.GPUSlice{UUID: uuidOf(m, 1), Index: 1, Minor: 1, Share: 100, Whole: true}))
	if err == nil || !strings.Contains(err.Error(), "cannot be combined with other GPUs") {
		t.Errorf("mixed slices: %v", err)
	}
}

func TestGrantUsesCDIWhenTheSpecsKnowTheGPU(t *testing.T) {
	m := machine(t)
	host := realHost(t)
	dir := host.CDISpecDirs[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
- name: %s
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
containerEdits:
  deviceNodes:
  - path: /dev/nvidiactl
`, uuidOf(m, 0))
	if err := os.WriteFile(filepath.Join(dir, "nvidia.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := Open(Config{NVML: NewNVML(m), Host: host, Runner: &recordingRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := n.Grant(context.Background(), "c", []api.GPUSlice{{UUID: uuidOf(m, 0), Share: 100, Whole: true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"nvidia.com/gpu=" + uuidOf(m, 0)}; !slices.Equal(g.Access.CDIDevices, want) || g.Access.DeviceNodes != nil || g.Access.Mounts != nil {
		t.Errorf("access %+v, want CDI devices %q only", g.Access, want)
	}
	// GPU 1 is not in the specs: device nodes.
	g, err = n.Grant(context.Background(), "d", []api.GPUSlice{{UUID: uuidOf(m, 1), Index: 1, Minor: 1, Share: 100, Whole: true}})
	if err != nil || g.Access.CDIDevices != nil || len(g.Access.DeviceNodes) == 0 {
		t.Errorf("GPU without CDI spec: %+v, %v", g.Access, err)
	}
}

// The product runner returns once the program has exited, even when a
// child it forked (as `nvidia-cuda-mps-control -d` forks the daemon) keeps
// the output pipe open.
func TestExecRunnerDoesNotWaitForAForkedDaemon(t *testing.T) {
	out, err := ExecRunner{}.Run(context.Background(), []string{"GREETING=hi"}, "", "sh", "-c", `echo "$GREETING"; sleep 600 & echo $!`)
	if err != nil {
		t.Fatalf("run: %q, %v", out, err)
	}
	greeting, pidText, _ := strings.Cut(strings.TrimSpace(out), "\n")
	pid, perr := strconv.Atoi(pidText)
	if greeting != "hi" || perr != nil {
		t.Fatalf("output %q", out)
	}
	// Run has returned while the forked child still runs (and holds the pipe).
	alive := syscall.Kill(pid, 0) == nil
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if !alive {
		t.Fatalf("the forked child %d had ended: Run waited for it", pid)
	}
	_, err = ExecRunner{}.Run(context.Background(), nil, "", "sh", "-c", "echo oops >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3: oops") {
		t.Fatalf("failing program: %v", err)
	}
}

func TestGrantRefusesSlicesTheInventoryCannotHonour(t *testing.T) {
	m := machine(t)
	n, err := Open(Config{NVML: NewNVML(m), Host: realHost(t), Runner: &recordingRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	u0, u1 := uuidOf(m, 0), uuidOf(m, 1)
	for _, c := range []struct {
		name   string
		slices []api.GPUSlice
		want   string
	}{
		{"unknown GPU", []api.GPUSlice{{UUID: "GPU-nope", Share: 50}}, "GPUs of c: this node has no GPU GPU-nope"},
		{"share beyond the GPU", []api.GPUSlice{{UUID: u0, Share: 150}}, "GPUs of c: a share of 150 of GPU " + u0 + ", which offers 100"},
		{"no share", []api.GPUSlice{{UUID: u0}}, "GPUs of c: a share of 0 of GPU " + u0 + ", which offers 100"},
		{"named twice", []api.GPUSlice{{UUID: u0, Share: 100, Whole: true}, {UUID: u0, Share: 100, Whole: true}}, "GPUs of c: GPU " + u0 + " is named twice"},
		{"fraction with another GPU", []api.GPUSlice{{UUID: u1, Share: 100, Whole: true}, {UUID: u0, Share: 50}},
			"GPUs of c: a fractional share of GPU " + u0 + " cannot be combined with other GPUs in one container (one MPS daemon per GPU)"},
	} {
		if _, err := n.Grant(context.Background(), "c", c.slices); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if held := n.Held(); len(held) != 0 {
		t.Errorf("refused grants left %v in the ledger", held)
	}
	// Two whole GPUs are fine, in the order given.
	g, err := n.Grant(context.Background(), "c", []api.GPUSlice{{UUID: u1, Whole: true}, {UUID: u0, Whole: true}})
	if err != nil || g.Env[EnvCUDAVisible] != u1+","+u0 || g.Env[EnvNVIDIAVisible] != u1+","+u0 {
		t.Errorf("two whole GPUs: %v, %v", g.Env, err)
	}
}
