// Package quota is the arithmetic of what a keypair may still start: its
// policy's limits against what it occupies, and what the alive agents have
// free. It is pure; what one container could get of an agent's GPUs is the
// scheduler's computation (sched.LargestGPUSlots), not a copy of it.
package quota

import (
	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/shared/slots"
)

// Agent is one agent's part in the figures.
type Agent struct {
	Capacity slots.Slots
	// Occupied is what sessions of every keypair hold on the agent.
	Occupied    slots.Slots
	Alive       bool
	Schedulable bool
	// GPUs, when the agent reported an inventory, decide its GPU slots:
	// free cuda.device is the GPUs nothing holds, free cuda.shares what
	// no slice holds, and the most one container can get is what the
	// placement would give it (every free GPU whole, or the most free on
	// any one GPU), not capacity minus occupied.
	GPUs []GPU
}

// GPU is one GPU's cuda.shares: what it offers and what slices hold.
type GPU struct {
	Shares, Held int64
}

// gpuFree is an agent's free GPU slots (sums) and the most one container
// could get of each: the scheduler's own figure (sched.LargestGPUSlots), so
// the indicator never offers what placement cannot give.
func gpuFree(gpus []GPU) (free, largest slots.Slots) {
	free = slots.Slots{}
	held := make([]sched.GPU, len(gpus))
	for i, g := range gpus {
		free[slots.CUDAShares] += max(0, g.Shares-g.Held)
		if g.Held == 0 {
			free[slots.CUDADevice]++
		}
		held[i] = sched.GPU{Shares: g.Shares, Held: g.Held}
	}
	devices, shares := sched.LargestGPUSlots(held)
	return free, slots.Slots{slots.CUDADevice: devices, slots.CUDAShares: shares}
}

// Figures are the indicator's computed parts. In Remaining an absent slot
// is unlimited; in the Slots an absent slot is zero.
type Figures struct {
	Remaining slots.Limits
	// Total is the summed capacity of alive agents, Free what of it no
	// session holds.
	Total, Free slots.Slots
	// LargestAgentFree is, per slot, the most free on any one alive,
	// schedulable agent (slots may come from different agents: it bounds
	// each slot of a single-container request separately).
	LargestAgentFree slots.Slots
	// Allocatable is min(Remaining, LargestAgentFree) per slot: the most one
	// new single-container session could get now.
	Allocatable slots.Slots
}

// Compute derives the figures from a policy's limits, what the keypair
// occupies and the agents. Nothing is ever negative: an agent or keypair
// over its capacity or limit (an admin lowered a policy under running
// sessions) simply has nothing left.
func Compute(limits slots.Limits, occupied slots.Slots, agents []Agent) Figures {
	f := Figures{Remaining: slots.Limits{}, Total: slots.Slots{}, Free: slots.Slots{},
		LargestAgentFree: slots.Slots{}, Allocatable: slots.Slots{}}
	for n, lim := range limits {
		f.Remaining[n] = max(0, lim-occupied[n])
	}
	for _, a := range agents {
		if !a.Alive {
			continue
		}
		gFree, gLargest := gpuFree(a.GPUs)
		for n, capacity := range a.Capacity {
			free, most := max(0, capacity-a.Occupied[n]), int64(0)
			if len(a.GPUs) > 0 && (n == slots.CUDADevice || n == slots.CUDAShares) {
				free, most = gFree[n], gLargest[n]
			} else {
				most = free
			}
			addNonZero(f.Total, n, capacity)
			addNonZero(f.Free, n, free)
			if a.Schedulable && most > f.LargestAgentFree[n] {
				f.LargestAgentFree[n] = most
			}
		}
	}
	// A slot no agent has free is zero whatever the limit, so the largest
	// free amounts name every slot that can be non-zero.
	for n, v := range f.LargestAgentFree {
		if rem, limited := f.Remaining[n]; limited {
			v = min(v, rem)
		}
		addNonZero(f.Allocatable, n, v)
	}
	return f
}

func addNonZero(s slots.Slots, n slots.Name, v int64) {
	if v != 0 {
		s[n] += v
	}
}
