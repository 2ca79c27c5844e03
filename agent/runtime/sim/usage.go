package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

// What a container without limits is measured against: one core, 256 MiB.
const (
	unlimitedMilliCPU = 1000
	unlimitedMemory   = 256 << 20
	// idleMemory is what a process that only sleeps holds (sleep, sh).
	idleMemory = 512 << 10
	// idleLoad is the CPU a sleeping process uses: nothing, nearly.
	idleLoad = 0.001
)

// shares picks, from the container id, the share of its CPU quota a busy
// process uses (5–60 %) and the share of its memory limit it holds
// (10–50 %): plausible, different between containers, and the same every
// time a container is measured.
func shares(id string) (load, mem float64) {
	h := fnv.New64a()
	h.Write([]byte(id))
	v := h.Sum64()
	load = 0.05 + 0.55*float64(v&0xffff)/0xffff
	mem = 0.10 + 0.40*float64((v>>16)&0xffff)/0xffff
	return load, mem
}

// Usage implements runtime.Runtime: CPU time grows with the time the
// process has run at its load, within its quota; memory is a fixed share
// of its limit. Neither ever passes the container's limits.
func (r *Runtime) Usage(_ context.Context, id string) (runtime.Usage, error) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.running(id, now)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("usage of %s: %w", id, err)
	}
	return c.usage(now), nil
}

func (c *container) usage(now time.Time) runtime.Usage {
	milli, limit := c.spec.MilliCPU, c.spec.MemoryBytes
	if milli <= 0 {
		milli = unlimitedMilliCPU
	}
	size := limit
	if size <= 0 {
		size = unlimitedMemory
	}
	load, mem := c.load, int64(c.mem*float64(size))
	if c.intent.idle {
		load, mem = idleLoad, min(idleMemory, size)
	}
	ran := max(0, now.Sub(c.started)).Seconds()
	return runtime.Usage{CPUSeconds: ran * load * float64(milli) / 1000, MemoryWorkingSet: mem, MemoryLimit: limit}
}

// Pids implements runtime.Runtime: a simulated container has no host
// process, so nothing on the host (NVML included) is ever attributed to it.
func (r *Runtime) Pids(_ context.Context, id string) ([]uint32, error) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.running(id, now); err != nil {
		return nil, fmt.Errorf("pids of %s: %w", id, err)
	}
	return []uint32{}, nil
}
