// Package gpu is the agent's view of the node's NVIDIA GPUs: the inventory
// (through NVML, behind the NVML interface), what each container gets of
// them (environment, device nodes or CDI devices, driver files, MPS), the
// MPS control daemons of shared GPUs, GPU usage, and a ledger of which
// container holds which slice, rebuilt from container labels after a
// restart.
package gpu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Defaults of Config.
const (
	// DefaultShares is what one GPU offers of cuda.shares: 1.0 GPU.
	DefaultShares = 100
	// DefaultQuantum is the allocation quantum of cuda.shares: 0.1 GPU.
	DefaultQuantum = 10
	// DefaultMPSDir holds one pipe and log directory per shared GPU. It is
	// short on purpose: the daemon's sockets live in it (108-byte limit).
	DefaultMPSDir = "/run/berth-mps"
)

// Config says how the agent uses its GPUs.
type Config struct {
	// NVML is the management library (nil: the node has no GPUs).
	NVML NVML
	// Fake: NVML is a mock machine (-fake-gpus); nothing reaches containers
	// but their environment.
	Fake bool
	// Shares is what each GPU offers of cuda.shares (slots units;
	// default DefaultShares), a multiple of Quantum.
	Shares int64
	// Quantum is the allocation quantum of cuda.shares (default DefaultQuantum).
	Quantum int64
	// MPSDir holds the MPS daemons' pipe and log directories.
	MPSDir string
	// Runner runs the MPS control program (default ExecRunner).
	Runner Runner
	// Host is where device nodes, driver files and CDI specs are found.
	Host Host
	Log  *slog.Logger
}

// Node is the GPUs of one agent. A Node without GPUs (no library, no
// driver, none configured) still sets every container's environment.
type Node struct {
	cfg     Config
	log     *slog.Logger
	devices []api.GPUDevice
	byUUID  map[string]api.GPUDevice
	driver  string
	cuda    string

	mu     sync.Mutex
	ledger map[string][]api.GPUSlice // container id → its slices
	// memLimits: whether per-cgroup GPU memory limits work here; learnt
	// from the first attempt (nil: not tried yet).
	memLimits *bool

	// mpsMu serialises the MPS daemons' commands apart from mu, so that a
	// slow control program never holds a heartbeat reading the ledger.
	mpsMu   sync.Mutex
	daemons map[string]*mpsDaemon // GPU uuid → its MPS control daemon
}

// Open reads the inventory. No library or driver is no error: the node has
// no GPUs, says so in one log line and runs on.
func Open(cfg Config) (*Node, error) {
	if cfg.Shares == 0 {
		cfg.Shares = DefaultShares
	}
	if cfg.Quantum == 0 {
		cfg.Quantum = DefaultQuantum
	}
	if cfg.Quantum < 1 || cfg.Shares < cfg.Quantum || cfg.Shares%cfg.Quantum != 0 {
		return nil, fmt.Errorf("GPU shares: %s per GPU is not a positive multiple of the quantum %s",
			slots.Format(slots.CUDAShares, cfg.Shares), slots.Format(slots.CUDAShares, cfg.Quantum))
	}
	if cfg.MPSDir == "" {
		cfg.MPSDir = DefaultMPSDir
	}
	if cfg.Runner == nil {
		cfg.Runner = ExecRunner{}
	}
	cfg.Host.defaults()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := &Node{cfg: cfg, log: cfg.Log, byUUID: map[string]api.GPUDevice{}, ledger: map[string][]api.GPUSlice{}, daemons: map[string]*mpsDaemon{}}
	if cfg.NVML == nil {
		return n, nil
	}
	if err := cfg.NVML.Init(); err != nil {
		if errors.Is(err, ErrNoLibrary) {
			n.log.Info("no NVIDIA library or driver: this node offers no GPUs", "err", err)
		} else {
			n.log.Warn("NVML does not start: this node offers no GPUs", "err", err)
		}
		n.cfg.NVML = nil
		return n, nil
	}
	infos, err := cfg.NVML.Devices()
	if err != nil {
		n.log.Warn("cannot list the GPUs: this node offers none", "err", err)
		_ = cfg.NVML.Shutdown()
		n.cfg.NVML = nil
		return n, nil
	}
	if n.driver, err = cfg.NVML.DriverVersion(); err != nil {
		n.log.Warn("NVIDIA driver version", "err", err)
	}
	if n.cuda, err = cfg.NVML.CUDAVersion(); err != nil {
		n.log.Warn("CUDA version", "err", err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Index < infos[j].Index })
	for _, d := range infos {
		dev := api.GPUDevice{UUID: d.UUID, Index: d.Index, Minor: d.Minor, Name: d.Name, MemoryBytes: d.MemoryBytes,
			MIG: d.MIG, Shares: cfg.Shares, Fake: cfg.Fake}
		n.devices = append(n.devices, dev)
		n.byUUID[d.UUID] = dev
	}
	n.log.Info("GPUs", "count", len(n.devices), "driver", n.driver, "cuda", n.cuda, "fake", cfg.Fake)
	return n, nil
}

// Close releases the library. MPS daemons keep running: containers use them
// across an agent restart.
func (n *Node) Close() error {
	if n.cfg.NVML == nil {
		return nil
	}
	return n.cfg.NVML.Shutdown()
}

// Devices is the inventory, by index.
func (n *Node) Devices() []api.GPUDevice { return append([]api.GPUDevice(nil), n.devices...) }

// DriverVersion and CUDAVersion are the driver's ("" without GPUs).
func (n *Node) DriverVersion() string { return n.driver }

// CUDAVersion is the newest CUDA the driver supports ("" without GPUs).
func (n *Node) CUDAVersion() string { return n.cuda }

// Fake tells whether the GPUs are a mock machine.
func (n *Node) Fake() bool { return n.cfg.Fake }

// Quantum is the allocation quantum of cuda.shares (0 without GPUs).
func (n *Node) Quantum() int64 {
	if len(n.devices) == 0 {
		return 0
	}
	return n.cfg.Quantum
}

// Capacity is what the GPUs offer: cuda.device whole GPUs and cuda.shares
// (none without GPUs).
func (n *Node) Capacity() slots.Slots {
	if len(n.devices) == 0 {
		return slots.Slots{}
	}
	var shares int64
	for _, d := range n.devices {
		shares += d.Shares
	}
	return slots.Slots{slots.CUDADevice: int64(len(n.devices)), slots.CUDAShares: shares}
}

// Usage measures every GPU, and the GPU memory of each host pid using one.
func (n *Node) Usage() ([]api.GPUUsage, map[uint32]int64, error) {
	if n.cfg.NVML == nil {
		return nil, nil, nil
	}
	out := make([]api.GPUUsage, 0, len(n.devices))
	pids := map[uint32]int64{}
	var errs []error
	for _, d := range n.devices {
		u, err := n.cfg.NVML.Usage(d.UUID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, api.GPUUsage{UUID: d.UUID, MemoryUsedBytes: u.MemoryUsedBytes, UtilizationPercent: u.UtilizationPercent})
		for pid, b := range u.Processes {
			pids[pid] += b
		}
	}
	return out, pids, errors.Join(errs...)
}

// Adopt records the slices of a container found running at start (from its
// label), so the ledger and the MPS daemons match what runs.
func (n *Node) Adopt(containerID string, slices []api.GPUSlice) {
	if len(slices) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ledger[containerID] = append([]api.GPUSlice(nil), slices...)
}

// Held is the ledger: which container holds which slices.
func (n *Node) Held() map[string][]api.GPUSlice {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string][]api.GPUSlice, len(n.ledger))
	for id, s := range n.ledger {
		out[id] = append([]api.GPUSlice(nil), s...)
	}
	return out
}

// Release forgets a removed container; an MPS daemon no container needs any
// more is stopped.
func (n *Node) Release(ctx context.Context, containerID string) error {
	n.mu.Lock()
	held, ok := n.ledger[containerID]
	delete(n.ledger, containerID)
	n.mu.Unlock()
	if !ok {
		return nil
	}
	n.mpsMu.Lock()
	defer n.mpsMu.Unlock()
	var errs []error
	for _, s := range held {
		d := n.daemons[s.UUID]
		if d == nil || n.largestShared(s.UUID).Share > 0 {
			continue
		}
		delete(n.daemons, s.UUID)
		if err := d.quit(ctx, n.cfg.Runner); err != nil {
			errs = append(errs, fmt.Errorf("stop the MPS daemon of GPU %s: %w", s.UUID, err))
		}
	}
	return errors.Join(errs...)
}

// Supervise starts again the MPS daemons of shared GPUs that died, with
// their defaults; the agent runs it on every resync.
func (n *Node) Supervise(ctx context.Context) error {
	if n.cfg.Fake || n.cfg.NVML == nil {
		return nil
	}
	n.mu.Lock()
	var uuids []string
	seen := map[string]bool{}
	for _, held := range n.ledger {
		for _, s := range held {
			if !s.Whole && !seen[s.UUID] {
				seen[s.UUID] = true
				uuids = append(uuids, s.UUID)
			}
		}
	}
	n.mu.Unlock()
	sort.Strings(uuids)
	n.mpsMu.Lock()
	defer n.mpsMu.Unlock()
	var errs []error
	for _, u := range uuids {
		if _, err := n.ensureDaemon(ctx, u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// largestShared is the largest fractional slice held on a GPU (zero: none).
func (n *Node) largestShared(uuid string) api.GPUSlice {
	n.mu.Lock()
	defer n.mu.Unlock()
	var big api.GPUSlice
	for _, held := range n.ledger {
		for _, s := range held {
			if s.UUID == uuid && !s.Whole && s.Share > big.Share {
				big = s
			}
		}
	}
	return big
}

// ensureDaemon makes the GPU's MPS daemon run with defaults ≥ the largest
// slice held on it, and returns it. Callers hold n.mpsMu.
func (n *Node) ensureDaemon(ctx context.Context, uuid string) (*mpsDaemon, error) {
	dev, ok := n.byUUID[uuid]
	if !ok {
		return nil, fmt.Errorf("no GPU %s on this node", uuid)
	}
	d := n.daemons[uuid]
	if d == nil {
		d = newMPSDaemon(n.cfg.MPSDir, uuid)
		n.daemons[uuid] = d
	}
	big := n.largestShared(uuid)
	return d, d.ensure(ctx, n.cfg.Runner, memMiB(sliceMemory(dev, big)), threadPercent(dev, big))
}
