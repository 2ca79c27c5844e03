package containerd

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/berth-cluster/berth/agent/runtime"
)

// noLimit: cgroups report "no memory limit" as a huge number (v1: the max
// page-aligned int64, v2: max uint64). Anything this large is no limit.
const noLimit = uint64(1) << 62

// Usage reads the running task's cgroup through containerd's metrics.
func (r *Runtime) Usage(ctx context.Context, id string) (runtime.Usage, error) {
	ctx = r.ns(ctx)
	t, err := r.runningTask(ctx, id)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("usage of %s: %w", id, err)
	}
	m, err := t.Metrics(ctx)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("usage of %s: metrics: %w", id, err)
	}
	u, err := decodeMetrics(m.Data)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("usage of %s: %w", id, err)
	}
	return u, nil
}

// decodeMetrics turns the shim's metrics (cgroup v1 or v2 stats, told apart
// by type URL) into Usage. Working set is usage less inactive file cache, as
// the kubelet counts it: cache the kernel can drop is not pressure.
func decodeMetrics(data typeurl.Any) (runtime.Usage, error) {
	if data == nil {
		return runtime.Usage{}, fmt.Errorf("metrics carry no data")
	}
	// Match on the message's full name: 1.6 daemons send it bare, Any's
	// convention (and possibly other versions) prefix it with a host.
	url := data.GetTypeUrl()
	name := protoreflect.FullName(url[strings.LastIndex(url, "/")+1:])
	switch name {
	case (*v1.Metrics)(nil).ProtoReflect().Descriptor().FullName():
		var m v1.Metrics
		if err := proto.Unmarshal(data.GetValue(), &m); err != nil {
			return runtime.Usage{}, fmt.Errorf("decode cgroup v1 metrics: %w", err)
		}
		var u runtime.Usage
		if cpu := m.GetCPU().GetUsage(); cpu != nil {
			u.CPUSeconds = float64(cpu.Total) / 1e9
		}
		if mem := m.GetMemory(); mem != nil && mem.Usage != nil {
			u.MemoryWorkingSet = workingSet(mem.Usage.Usage, mem.TotalInactiveFile)
			u.MemoryLimit = limitOf(mem.Usage.Limit)
		}
		return u, nil
	case (*v2.Metrics)(nil).ProtoReflect().Descriptor().FullName():
		var m v2.Metrics
		if err := proto.Unmarshal(data.GetValue(), &m); err != nil {
			return runtime.Usage{}, fmt.Errorf("decode cgroup v2 metrics: %w", err)
		}
		var u runtime.Usage
		if cpu := m.GetCPU(); cpu != nil {
			u.CPUSeconds = float64(cpu.UsageUsec) / 1e6
		}
		if mem := m.GetMemory(); mem != nil {
			u.MemoryWorkingSet = workingSet(mem.Usage, mem.InactiveFile)
			u.MemoryLimit = limitOf(mem.UsageLimit)
		}
		return u, nil
	default:
		return runtime.Usage{}, fmt.Errorf("unknown metrics type %q", url)
	}
}

func workingSet(usage, inactiveFile uint64) int64 {
	if inactiveFile >= usage {
		return 0
	}
	return int64(usage - inactiveFile)
}

// limitOf reports "no limit" as 0, like Spec.MemoryBytes.
func limitOf(l uint64) int64 {
	if l >= noLimit {
		return 0
	}
	return int64(l)
}

// Pids lists the host pids of the running task's processes.
func (r *Runtime) Pids(ctx context.Context, id string) ([]uint32, error) {
	ctx = r.ns(ctx)
	t, err := r.runningTask(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("pids of %s: %w", id, err)
	}
	ps, err := t.Pids(ctx)
	if err != nil {
		return nil, fmt.Errorf("pids of %s: %w", id, err)
	}
	out := make([]uint32, len(ps))
	for i, p := range ps {
		out[i] = p.Pid
	}
	return out, nil
}
