package gpu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// Paths inside a container.
const (
	// ContainerMPSPipeDir is where a container finds its GPU's MPS pipes.
	ContainerMPSPipeDir = "/run/nvidia-mps"
	// ContainerLibDir and ContainerBinDir follow NVIDIA's CUDA images,
	// whose LD_LIBRARY_PATH and PATH already name them.
	ContainerLibDir = "/usr/local/nvidia/lib64"
	ContainerBinDir = "/usr/local/nvidia/bin"
)

// Environment variables the agent owns in every container: what a session
// sets of them is overwritten.
const (
	EnvNVIDIAVisible = "NVIDIA_VISIBLE_DEVICES"
	EnvCUDAVisible   = "CUDA_VISIBLE_DEVICES"
	EnvMPSPipe       = "CUDA_MPS_PIPE_DIRECTORY"
	EnvMPSMemLimit   = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"
	EnvMPSThreads    = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"
	// EnvFake tells a process its GPUs are a mock (-fake-gpus).
	EnvFake = "BERTH_FAKE_GPUS"
)

// cdiKind is the CDI kind of NVIDIA's GPUs (nvidia-ctk cdi generate).
const cdiKind = "nvidia.com/gpu"

// driverLibraries are the driver's user-space libraries a CUDA program
// loads (the prefixes of their file names).
var driverLibraries = []string{"libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so",
	"libnvidia-gpucomp.so", "libcudadebugger.so"}

// driverBinaries are the driver's programs a container may use.
var driverBinaries = []string{"nvidia-smi"}

// Host is where the host's GPU files are.
type Host struct {
	DevDir      string   // device nodes (default /dev)
	LibDirs     []string // driver libraries (default: the usual multiarch and lib64 dirs)
	BinDirs     []string // driver programs (default /usr/bin, /usr/local/bin)
	CDISpecDirs []string // CDI specs (default /etc/cdi, /var/run/cdi)
}

func (h *Host) defaults() {
	if h.DevDir == "" {
		h.DevDir = "/dev"
	}
	if len(h.LibDirs) == 0 {
		h.LibDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64", "/lib/x86_64-linux-gnu"}
	}
	if len(h.BinDirs) == 0 {
		h.BinDirs = []string{"/usr/bin", "/usr/local/bin"}
	}
	if len(h.CDISpecDirs) == 0 {
		h.CDISpecDirs = cdi.DefaultSpecDirs
	}
}

// Grant is what a container gets of its GPU slices: its environment (to
// lay over the session's own) and its access to the host.
type Grant struct {
	Env    map[string]string
	Access runtime.GPUAccess
}

// Grant prepares a container's slices: it checks them against the
// inventory, starts the MPS daemon of a shared GPU, and records them in the
// ledger (Release forgets them). Without slices the container gets
// NVIDIA_VISIBLE_DEVICES=void, so that no NVIDIA runtime hook gives it GPUs.
func (n *Node) Grant(ctx context.Context, containerID string, slices []api.GPUSlice) (Grant, error) {
	if len(slices) == 0 {
		return Grant{Env: map[string]string{EnvNVIDIAVisible: "void"}}, nil
	}
	devs, err := n.check(slices)
	if err != nil {
		return Grant{}, fmt.Errorf("GPUs of %s: %w", containerID, err)
	}
	uuids := make([]string, len(slices))
	for i, s := range slices {
		uuids[i] = s.UUID
	}
	g := Grant{Env: map[string]string{EnvNVIDIAVisible: strings.Join(uuids, ","), EnvCUDAVisible: strings.Join(uuids, ",")}}
	shared := !slices[0].Whole
	if shared {
		// The client's device 0 is the GPU: CUDA_VISIBLE_DEVICES names it
		// alone, and so does its MPS daemon's.
		g.Env[EnvMPSPipe] = ContainerMPSPipeDir
		g.Env[EnvMPSMemLimit] = fmt.Sprintf("0=%dM", memMiB(sliceMemory(devs[0], slices[0])))
		g.Env[EnvMPSThreads] = strconv.Itoa(threadPercent(devs[0], slices[0]))
	}
	if n.cfg.Fake {
		g.Env[EnvFake] = "true"
		n.record(containerID, slices)
		return g, nil
	}

	if g.Access, err = n.hostAccess(devs); err != nil {
		return Grant{}, fmt.Errorf("GPUs of %s: %w", containerID, err)
	}
	if shared {
		n.record(containerID, slices)
		n.mpsMu.Lock()
		d, err := n.ensureDaemon(ctx, slices[0].UUID)
		n.mpsMu.Unlock()
		if err != nil {
			n.mu.Lock()
			delete(n.ledger, containerID)
			n.mu.Unlock()
			return Grant{}, fmt.Errorf("GPUs of %s: %w", containerID, err)
		}
		g.Access.Mounts = append(g.Access.Mounts,
			runtime.Mount{Source: d.pipeDir, Target: ContainerMPSPipeDir},
			// MPS clients and their server share memory through /dev/shm.
			runtime.Mount{Source: "/dev/shm", Target: "/dev/shm"})
		slice, dev := slices[0], devs[0]
		g.Access.BeforeStart = func(ctx context.Context, cgroupDir string) error {
			n.capMemory(dev, slice, cgroupDir)
			return nil
		}
		return g, nil
	}
	n.record(containerID, slices)
	return g, nil
}

func (n *Node) record(containerID string, slices []api.GPUSlice) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ledger[containerID] = append([]api.GPUSlice(nil), slices...)
}

// check validates slices against the inventory and returns their GPUs. The
// inventory is the truth about each GPU (minor number, memory, fake): a
// slice only names it and says how much of it.
func (n *Node) check(slices []api.GPUSlice) ([]api.GPUDevice, error) {
	devs := make([]api.GPUDevice, len(slices))
	seen := map[string]bool{}
	for i, s := range slices {
		d, ok := n.byUUID[s.UUID]
		switch {
		case !ok:
			return nil, fmt.Errorf("this node has no GPU %s", s.UUID)
		case seen[s.UUID]:
			return nil, fmt.Errorf("GPU %s is named twice", s.UUID)
		case !s.Whole && (s.Share <= 0 || s.Share > d.Shares):
			return nil, fmt.Errorf("a share of %d of GPU %s, which offers %d", s.Share, s.UUID, d.Shares)
		case !s.Whole && len(slices) > 1:
			// One MPS daemon per GPU: a client reaches one daemon, and
			// through it sees that daemon's GPU alone.
			return nil, fmt.Errorf("a fractional share of GPU %s cannot be combined with other GPUs in one container (one MPS daemon per GPU)", s.UUID)
		}
		seen[s.UUID] = true
		devs[i] = d
	}
	return devs, nil
}

// hostAccess is how a container reaches real GPUs: the CDI devices when the
// host's CDI specs know every one of them, else device nodes and driver
// files found on the host.
func (n *Node) hostAccess(devs []api.GPUDevice) (runtime.GPUAccess, error) {
	if names, ok := n.cdiNames(devs); ok {
		return runtime.GPUAccess{CDIDevices: names}, nil
	}
	h := n.cfg.Host
	var a runtime.GPUAccess
	nodes := []string{"nvidiactl"}
	for _, d := range devs {
		nodes = append(nodes, "nvidia"+strconv.Itoa(d.Minor))
	}
	for _, name := range nodes {
		p := filepath.Join(h.DevDir, name)
		if _, err := os.Stat(p); err != nil {
			return a, fmt.Errorf("GPU device node: %w", err)
		}
		a.DeviceNodes = append(a.DeviceNodes, p)
	}
	// Unified memory; absent until nvidia-uvm is loaded, and CUDA loads it.
	for _, name := range []string{"nvidia-uvm", "nvidia-uvm-tools"} {
		p := filepath.Join(h.DevDir, name)
		if _, err := os.Stat(p); err == nil {
			a.DeviceNodes = append(a.DeviceNodes, p)
		}
	}
	libs, err := driverFiles(h.LibDirs, driverLibraries, ContainerLibDir, true)
	if err != nil {
		return a, err
	}
	if len(libs) == 0 {
		return a, fmt.Errorf("no NVIDIA driver library (libcuda.so*) in %s", strings.Join(h.LibDirs, ", "))
	}
	bins, err := driverFiles(h.BinDirs, driverBinaries, ContainerBinDir, false)
	if err != nil {
		return a, err
	}
	a.Mounts = append(libs, bins...)
	return a, nil
}

// cdiNames resolves every GPU through the CDI specs, by UUID or by index.
func (n *Node) cdiNames(devs []api.GPUDevice) ([]string, bool) {
	cache, err := cdi.NewCache(cdi.WithSpecDirs(n.cfg.Host.CDISpecDirs...), cdi.WithAutoRefresh(false))
	if cache == nil {
		n.log.Debug("no CDI specs", "err", err)
		return nil, false
	}
	names := make([]string, 0, len(devs))
	for _, d := range devs {
		found := ""
		for _, name := range []string{cdiKind + "=" + d.UUID, cdiKind + "=" + strconv.Itoa(d.Index)} {
			if cache.GetDevice(name) != nil {
				found = name
				break
			}
		}
		if found == "" {
			return nil, false
		}
		names = append(names, found)
	}
	return names, true
}

// driverFiles finds the files whose names start with one of prefixes
// (exact names unless prefix) in dirs, the first dir holding a name winning,
// as read-only mounts of their resolved targets under target.
func driverFiles(dirs, names []string, target string, prefix bool) ([]runtime.Mount, error) {
	found := map[string]string{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look for NVIDIA driver files: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if _, dup := found[name]; dup || !matches(name, names, prefix) {
				continue
			}
			src, err := filepath.EvalSymlinks(filepath.Join(dir, name))
			if err != nil {
				continue // a dangling link of an old driver
			}
			found[name] = src
		}
	}
	out := make([]runtime.Mount, 0, len(found))
	for name, src := range found {
		out = append(out, runtime.Mount{Source: src, Target: filepath.Join(target, name), ReadOnly: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, nil
}

func matches(name string, names []string, prefix bool) bool {
	for _, p := range names {
		if name == p || (prefix && strings.HasPrefix(name, p+".")) {
			return true
		}
	}
	return false
}

// capMemory sets the per-cgroup GPU memory cap of a shared slice where the
// driver can (r615+, cgroup v2). Where it cannot, MPS's limit is what holds;
// a failure is logged, and the container starts under MPS's limit alone.
func (n *Node) capMemory(dev api.GPUDevice, s api.GPUSlice, cgroupDir string) {
	if cgroupDir == "" {
		n.log.Debug("no GPU memory cap: not cgroup v2", "gpu", dev.UUID)
		return
	}
	n.mu.Lock()
	known := n.memLimits
	n.mu.Unlock()
	if known != nil && !*known {
		return
	}
	err := n.cfg.NVML.SetMemoryLimit(dev.UUID, cgroupDir, sliceMemory(dev, s))
	ok := err == nil
	if errors.Is(err, ErrUnsupported) {
		n.mu.Lock()
		n.memLimits = &ok
		n.mu.Unlock()
		n.log.Info("per-cgroup GPU memory limits are not available; MPS limits alone apply", "err", err)
		return
	}
	if err != nil {
		n.log.Warn("could not cap a container's GPU memory; its MPS limit alone applies", "gpu", dev.UUID, "cgroup", cgroupDir, "err", err)
		return
	}
	n.mu.Lock()
	n.memLimits = &ok
	n.mu.Unlock()
}

// sliceMemory is a slice's GPU memory: as the manager sent it, else its
// share of the GPU's.
func sliceMemory(d api.GPUDevice, s api.GPUSlice) int64 {
	if s.MemoryBytes > 0 {
		return s.MemoryBytes
	}
	if d.Shares <= 0 {
		return 0
	}
	return d.MemoryBytes / d.Shares * s.Share
}

// memMiB is MPS's unit for memory limits, rounded down, at least 1.
func memMiB(b int64) int64 { return max(1, b>>20) }

// threadPercent is a slice's share of the GPU's SMs, rounded up, 1–100.
func threadPercent(d api.GPUDevice, s api.GPUSlice) int {
	if d.Shares <= 0 || s.Share <= 0 {
		return 100
	}
	return int(min(100, max(1, (s.Share*100+d.Shares-1)/d.Shares)))
}
