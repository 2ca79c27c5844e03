package gpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
)

// MaxFakeGPUs bounds -fake-gpus: more is never a development need.
const MaxFakeGPUs = 64

// FakeMachine is go-nvml's mock DGX A100 with n GPUs (-fake-gpus): for
// development and tests on machines without NVIDIA hardware. Everything the
// agent reports of it is marked fake, and containers get only the
// environment of their slices: no device node, library or MPS daemon
// exists for it. Its UUIDs are fixed (GPU-fa4e0000-…-<index>) so that
// containers' labels still match after an agent restart; it is idle (no
// memory used, no process) and has no per-cgroup memory limits.
func FakeMachine(n int) (nvml.Interface, error) {
	if n < 1 || n > MaxFakeGPUs {
		return nil, fmt.Errorf("fake GPUs: %d is not between 1 and %d", n, MaxFakeGPUs)
	}
	m := dgxa100.NewWithGPUs(gpus.Multiple(n, gpus.A100_SXM4_40GB)...)
	for i, d := range m.Devices {
		dev := d.(*dgxa100.Device)
		dev.UUID = fmt.Sprintf("GPU-fa4e0000-0000-0000-0000-%012d", i)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.GetMPSComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.SetMemoryLimits_v1Func = func(string, uint64, uint64) nvml.Return { return nvml.ERROR_NOT_SUPPORTED }
	}
	return m, nil
}
