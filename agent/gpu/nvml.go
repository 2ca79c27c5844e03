package gpu

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// ErrNoLibrary: NVIDIA's management library (libnvidia-ml.so.1) is not on
// this host, or its driver is not loaded. The node then has no GPUs.
var ErrNoLibrary = errors.New("no NVIDIA management library or driver")

// ErrUnsupported: the driver lacks what was asked (e.g. per-cgroup GPU
// memory limits before r615).
var ErrUnsupported = errors.New("not supported by this NVIDIA driver")

// DeviceInfo is what the inventory knows of one GPU.
type DeviceInfo struct {
	UUID        string
	Name        string
	Index       int
	Minor       int
	MemoryBytes int64
	MIG         bool
}

// DeviceUsage is what one GPU measures now.
type DeviceUsage struct {
	MemoryUsedBytes    int64
	UtilizationPercent int
	// Processes maps host pids using the GPU to the GPU memory each holds.
	Processes map[uint32]int64
}

// NVML is the part of NVIDIA's management library the agent uses. The
// product implementation wraps go-nvml (NewNVML(nvml.New())); the same
// wrapper over go-nvml's mock machines serves -fake-gpus and tests.
type NVML interface {
	// Init loads the library; ErrNoLibrary when there is none.
	Init() error
	Shutdown() error
	DriverVersion() (string, error)
	// CUDAVersion is the newest CUDA the driver supports, e.g. "12.4".
	CUDAVersion() (string, error)
	Devices() ([]DeviceInfo, error)
	Usage(uuid string) (DeviceUsage, error)
	// SetMemoryLimit caps the GPU memory the processes of a cgroup (its
	// directory under /sys/fs/cgroup) may allocate on one GPU:
	// nvmlDeviceSetMemoryLimits_v1 (r615+, cgroup v2), ErrUnsupported
	// where the driver has no such call.
	SetMemoryLimit(uuid, cgroupDir string, bytes int64) error
}

// NewNVML wraps a go-nvml library (real or mock).
func NewNVML(lib nvml.Interface) NVML { return &goNVML{lib: lib} }

type goNVML struct{ lib nvml.Interface }

func nvmlErr(what string, ret nvml.Return) error {
	return fmt.Errorf("%s: %s", what, nvml.ErrorString(ret))
}

func (g *goNVML) Init() error {
	ret := g.lib.Init()
	switch ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return fmt.Errorf("%w (%s)", ErrNoLibrary, nvml.ErrorString(ret))
	default:
		return nvmlErr("initialise NVML", ret)
	}
}

func (g *goNVML) Shutdown() error {
	if ret := g.lib.Shutdown(); ret != nvml.SUCCESS {
		return nvmlErr("shut NVML down", ret)
	}
	return nil
}

func (g *goNVML) DriverVersion() (string, error) {
	v, ret := g.lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return "", nvmlErr("driver version", ret)
	}
	return v, nil
}

func (g *goNVML) CUDAVersion() (string, error) {
	v, ret := g.lib.SystemGetCudaDriverVersion()
	if ret != nvml.SUCCESS {
		return "", nvmlErr("CUDA version", ret)
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10), nil
}

func (g *goNVML) Devices() ([]DeviceInfo, error) {
	n, ret := g.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("count GPUs", ret)
	}
	out := make([]DeviceInfo, 0, n)
	for i := 0; i < n; i++ {
		d, ret := g.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, nvmlErr(fmt.Sprintf("GPU %d", i), ret)
		}
		info, err := deviceInfo(d)
		if err != nil {
			return nil, fmt.Errorf("GPU %d: %w", i, err)
		}
		out = append(out, info)
	}
	return out, nil
}

func deviceInfo(d nvml.Device) (DeviceInfo, error) {
	var info DeviceInfo
	var ret nvml.Return
	if info.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return info, nvmlErr("uuid", ret)
	}
	if info.Name, ret = d.GetName(); ret != nvml.SUCCESS {
		return info, nvmlErr("name", ret)
	}
	if info.Index, ret = d.GetIndex(); ret != nvml.SUCCESS {
		return info, nvmlErr("index", ret)
	}
	if info.Minor, ret = d.GetMinorNumber(); ret != nvml.SUCCESS {
		return info, nvmlErr("minor number", ret)
	}
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return info, nvmlErr("memory", ret)
	}
	info.MemoryBytes = int64(mem.Total)
	// GPUs without MIG answer NOT_SUPPORTED: that is "no MIG".
	current, _, ret := d.GetMigMode()
	switch ret {
	case nvml.SUCCESS:
		info.MIG = current == nvml.DEVICE_MIG_ENABLE
	case nvml.ERROR_NOT_SUPPORTED:
	default:
		return info, nvmlErr("MIG mode", ret)
	}
	return info, nil
}

func (g *goNVML) device(uuid string) (nvml.Device, error) {
	d, ret := g.lib.DeviceGetHandleByUUID(uuid)
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("GPU "+uuid, ret)
	}
	return d, nil
}

func (g *goNVML) Usage(uuid string) (DeviceUsage, error) {
	d, err := g.device(uuid)
	if err != nil {
		return DeviceUsage{}, err
	}
	u := DeviceUsage{Processes: map[uint32]int64{}}
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return u, nvmlErr("memory of "+uuid, ret)
	}
	u.MemoryUsedBytes = int64(mem.Used)
	rates, ret := d.GetUtilizationRates()
	switch ret {
	case nvml.SUCCESS:
		u.UtilizationPercent = int(rates.Gpu)
	case nvml.ERROR_NOT_SUPPORTED: // MIG mode: no whole-GPU utilisation
	default:
		return u, nvmlErr("utilization of "+uuid, ret)
	}
	procs, ret := d.GetComputeRunningProcesses()
	switch ret {
	case nvml.SUCCESS:
		addProcesses(u.Processes, procs)
	case nvml.ERROR_NOT_SUPPORTED:
	default:
		return u, nvmlErr("processes on "+uuid, ret)
	}
	// MPS clients may be listed apart from other processes; drivers too old
	// to know MPS lack the call, and calling a missing symbol would end the
	// process.
	if g.lib.Extensions().LookupSymbol(mpsProcessesSymbol) == nil {
		procs, ret := d.GetMPSComputeRunningProcesses()
		switch ret {
		case nvml.SUCCESS:
			addProcesses(u.Processes, procs)
		case nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND:
		default:
			return u, nvmlErr("MPS processes on "+uuid, ret)
		}
	}
	return u, nil
}

const mpsProcessesSymbol = "nvmlDeviceGetMPSComputeRunningProcesses"

// addProcesses records each process's GPU memory; a pid listed twice (as a
// process and as an MPS client) counts once, with the larger figure.
func addProcesses(into map[uint32]int64, procs []nvml.ProcessInfo) {
	for _, p := range procs {
		var b int64
		if p.UsedGpuMemory != nvmlValueNotAvailable {
			b = int64(p.UsedGpuMemory)
		}
		if have, seen := into[p.Pid]; !seen || b > have {
			into[p.Pid] = b
		}
	}
}

// nvmlValueNotAvailable is NVML's "unknown" in unsigned long long fields
// (NVML_VALUE_NOT_AVAILABLE, -1): what a process's memory reads without the
// rights to see it.
const nvmlValueNotAvailable = ^uint64(0)

const setMemoryLimitsSymbol = "nvmlDeviceSetMemoryLimits_v1"

func (g *goNVML) SetMemoryLimit(uuid, cgroupDir string, bytes int64) error {
	// go-nvml binds the call whatever the driver has; calling a symbol an
	// older libnvidia-ml lacks would end the process, so look first.
	if err := g.lib.Extensions().LookupSymbol(setMemoryLimitsSymbol); err != nil {
		return fmt.Errorf("%s: %w", setMemoryLimitsSymbol, ErrUnsupported)
	}
	d, err := g.device(uuid)
	if err != nil {
		return err
	}
	switch ret := d.SetMemoryLimits_v1(cgroupDir, uint64(bytes), uint64(bytes)); ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND:
		return fmt.Errorf("%s on %s: %w", setMemoryLimitsSymbol, uuid, ErrUnsupported)
	default:
		return nvmlErr(fmt.Sprintf("cap GPU memory of %s on %s", cgroupDir, uuid), ret)
	}
}
