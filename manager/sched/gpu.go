package sched

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/slots"
)

// GPU is one GPU of an agent as placement sees it.
type GPU struct {
	UUID string
	// Shares is what it offers of cuda.shares, Held what the sessions'
	// slices hold of it (slots units).
	Shares, Held int64
}

// Positions of the GPU slots in a vec (slotIndex).
const (
	vecDevice = 2
	vecShares = 3
)

type gpuState struct {
	uuid         string
	shares, held int64
	// extra is what the session being placed already took (Place and
	// CheckAgents only).
	extra int64
}

func (g *gpuState) free() int64     { return g.shares - g.held - g.extra }
func (g *gpuState) untouched() bool { return g.held == 0 && g.extra == 0 && g.shares > 0 }

// roundShares rounds x up to a multiple of the quantum q: the agent cuts
// slices in steps of q. A quantum not reported reads as the base unit.
func roundShares(x, q int64) int64 {
	if q <= 1 || x <= 0 {
		return x
	}
	return (x + q - 1) / q * q
}

// hold is what one container of need takes on this agent: cuda.shares
// rounded up to the agent's quantum.
func (a *agentState) hold(need vec) vec {
	need[vecShares] = roundShares(need[vecShares], a.quantum)
	return need
}

// allocate picks the GPU slices for one container holding h (h = hold(need))
// from what is free now, or reports that none fit. It changes nothing.
//
// cuda.device n takes n GPUs nothing holds, lowest position first.
// cuda.shares x goes whole on one GPU whenever one has x free: the one with
// the least free that fits (best fit), so partly used GPUs fill up first and
// untouched GPUs stay whole for later whole-GPU or large requests. Only
// when x is more than any one GPU offers is it split, and then into untouched
// GPUs whole (largest first) with nothing left over: a fraction of a GPU
// runs under that GPU's MPS daemon, and a container reaches one MPS daemon
// only, so it cannot hold a fraction beside other GPUs (agent/DESIGN.md).
// Ties go to the lower position, so the same view always gives the same
// slices.
func (a *agentState) allocate(h vec) ([]state.GPUSlice, bool) {
	switch {
	case h[vecDevice] > 0:
		var out []state.GPUSlice
		for i := range a.gpus {
			if int64(len(out)) == h[vecDevice] {
				break
			}
			if g := &a.gpus[i]; g.untouched() {
				out = append(out, state.GPUSlice{UUID: g.uuid, Share: g.shares, Whole: true})
			}
		}
		return out, int64(len(out)) == h[vecDevice]
	case h[vecShares] > 0:
		x := h[vecShares]
		if i := a.bestFit(x); i >= 0 {
			return []state.GPUSlice{{UUID: a.gpus[i].uuid, Share: x}}, true
		}
		most := int64(0)
		for _, g := range a.gpus {
			most = max(most, g.shares)
		}
		if x <= most {
			return nil, false // fits one GPU's size: never split
		}
		order := make([]int, 0, len(a.gpus))
		for i := range a.gpus {
			if a.gpus[i].untouched() {
				order = append(order, i)
			}
		}
		slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(a.gpus[j].shares, a.gpus[i].shares) })
		var out []state.GPUSlice
		rest := x
		for _, i := range order {
			if g := &a.gpus[i]; rest >= g.shares {
				out = append(out, state.GPUSlice{UUID: g.uuid, Share: g.shares, Whole: true})
				rest -= g.shares
			}
		}
		return out, rest == 0
	}
	return nil, true
}

// mostShares is what the largest of the agent's GPUs offers.
func (a *agentState) mostShares() int64 {
	most := int64(0)
	for _, g := range a.gpus {
		most = max(most, g.shares)
	}
	return max(most, 1)
}

// fractionBeside reports whether cuda.shares x (rounded to the quantum)
// would have to be a fraction of a GPU beside other GPUs: more than the
// agent's largest GPU and not a whole number of them. allocate never gives
// that (a container reaches one MPS daemon).
func (a *agentState) fractionBeside(x int64) bool {
	most := a.mostShares()
	return x > most && x%most != 0
}

// bestFit is the position of the GPU with the least free that still holds
// x, or -1.
func (a *agentState) bestFit(x int64) int {
	best := -1
	for i := range a.gpus {
		f := a.gpus[i].free()
		if f < x {
			continue
		}
		if best < 0 || f < a.gpus[best].free() {
			best = i
		}
	}
	return best
}

// take adds slices to the GPUs' extra (Place, CheckAgents) or held
// (Commit).
func (a *agentState) take(sl []state.GPUSlice, toExtra bool) {
	for _, s := range sl {
		for i := range a.gpus {
			if a.gpus[i].uuid != s.UUID {
				continue
			}
			if toExtra {
				a.gpus[i].extra += s.Share
			} else {
				a.gpus[i].held += s.Share
			}
		}
	}
}

func (a *agentState) dropExtra() {
	a.extra = vec{}
	for i := range a.gpus {
		a.gpus[i].extra = 0
	}
}

// gpuLargest is the most one container could get on the agent's GPUs now:
// whole GPUs nothing holds, and cuda.shares as allocate gives it (every
// untouched GPU whole, or the most free on any one GPU).
func (a *agentState) gpuLargest() (devices, shares int64) {
	one := int64(0)
	for i := range a.gpus {
		g := &a.gpus[i]
		if g.untouched() {
			devices++
			shares += g.shares
		}
		one = max(one, g.free())
	}
	return devices, max(shares, one)
}

// LargestGPUSlots is the most one container could get of cuda.device and
// cuda.shares from GPUs that hold what they hold, as allocate would give
// it: whole GPUs nothing holds, and cuda.shares either as every untouched
// GPU whole or as the most free on any one GPU — never a fraction beside
// whole GPUs. The resource indicator reads it; the scheduler's reasons and
// Admission's use the same computation.
func LargestGPUSlots(gpus []GPU) (devices, shares int64) {
	a := &agentState{gpus: make([]gpuState, len(gpus))}
	for i, g := range gpus {
		a.gpus[i] = gpuState{uuid: g.UUID, shares: g.Shares, held: g.Held}
	}
	return a.gpuLargest()
}

// gpuShort says why a container of need fits nowhere on the agent's GPUs.
func gpuShort(a *agentState, h vec) string {
	devices, shares := a.gpuLargest()
	if len(a.gpus) == 0 {
		return "it has no GPUs"
	}
	if h[vecDevice] > 0 {
		return fmt.Sprintf("cuda.device %d > %d GPUs free", h[vecDevice], devices)
	}
	if a.fractionBeside(h[vecShares]) {
		return fmt.Sprintf("cuda.shares %s is more than one GPU (%s) but not a whole number of GPUs: a fraction runs under one GPU's MPS daemon and cannot be held beside other GPUs",
			slots.Format(slots.CUDAShares, h[vecShares]), slots.Format(slots.CUDAShares, a.mostShares()))
	}
	return fmt.Sprintf("no GPU slices for cuda.shares %s (largest %s)", slots.Format(slots.CUDAShares, h[vecShares]), slots.Format(slots.CUDAShares, shares))
}

// gpuCost is what slices cost the agent's GPUs: how many untouched GPUs
// they would leave partly held (fragmenting), and how many GPUs they span.
type gpuCost struct{ broken, gpus int }

func (c gpuCost) less(o gpuCost) bool {
	return c.broken < o.broken || (c.broken == o.broken && c.gpus < o.gpus)
}

func (a *agentState) cost(sl []state.GPUSlice) gpuCost {
	c := gpuCost{gpus: len(sl)}
	for _, s := range sl {
		for i := range a.gpus {
			if g := &a.gpus[i]; g.uuid == s.UUID && g.untouched() && s.Share < g.shares {
				c.broken++
			}
		}
	}
	return c
}

func wantsGPU(need vec) bool { return need[vecDevice] > 0 || need[vecShares] > 0 }
