package fsm

import (
	"cmp"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/slots"
)

// PlanV1 (entry 41) is the plan as managers before issue 17 wrote it: the
// agent of every container, not its GPU slices, which the applier picked.
// No manager writes it any more; it is still applied, with its old
// meaning, because a manager upgraded in place replays the log its old
// release wrote, and because during a rolling upgrade the old leader
// still writes it. The slices are picked by allocateV1, a frozen copy of
// the allocation those managers ran: the same entry gives the same slices
// on an old and a new manager. Never change it.
type PlanV1 struct {
	At         time.Time     `json:"at"`
	Placements []PlacementV1 `json:"placements"`
	Waits      []Wait        `json:"waits"`
}

// PlacementV1 puts container i on Agents[i].
type PlacementV1 struct {
	SessionID string   `json:"session_id"`
	Agents    []string `json:"agents"`
}

// MsgType implements Command.
func (PlanV1) MsgType() MsgType { return MsgPlanV1 }

func applyPlanV1(tx *state.Txn, index uint64, c *PlanV1) (any, error) {
	res := &PlanResult{}
	for _, p := range c.Placements {
		cs := make([]PlacedContainer, len(p.Agents))
		for i, a := range p.Agents {
			cs[i] = PlacedContainer{Agent: a}
		}
		if err := admit(tx, index, p.SessionID, cs, allocateV1, false, c.At, res); err != nil {
			return nil, err
		}
	}
	if err := applyWaits(tx, index, c.Waits); err != nil {
		return nil, err
	}
	return res, nil
}

// allocateV1 is the GPU step of an old-format plan: it picks container
// i's slices from what is free now, as managers before issue 17 did, or
// refuses with what they said.
//
// cuda.device n takes n GPUs nothing holds, lowest position first.
// cuda.shares x goes on the GPU with the least free that holds x (ties to
// the lower position); when x is more than any one GPU offers it is split
// into untouched GPUs whole, largest first, with nothing left over.
func allocateV1(g *gpuView, i int, h slots.Slots, c *PlacedContainer) *state.Refusal {
	if !wantsGPU(h) {
		return nil
	}
	if sl, ok := g.allocateV1(h); ok {
		c.GPUs = sl
		return nil
	}
	return g.shortV1(h)
}

func (g *gpuView) allocateV1(h slots.Slots) ([]state.GPUSlice, bool) {
	switch {
	case h[slots.CUDADevice] > 0:
		var out []state.GPUSlice
		for i := range g.gpus {
			if int64(len(out)) == h[slots.CUDADevice] {
				break
			}
			if d := &g.gpus[i]; d.untouched() {
				out = append(out, state.GPUSlice{UUID: d.uuid, Share: d.shares, Whole: true})
			}
		}
		return out, int64(len(out)) == h[slots.CUDADevice]
	case h[slots.CUDAShares] > 0:
		x := h[slots.CUDAShares]
		best := -1
		for i := range g.gpus {
			if f := g.gpus[i].free(); f >= x && (best < 0 || f < g.gpus[best].free()) {
				best = i
			}
		}
		if best >= 0 {
			return []state.GPUSlice{{UUID: g.gpus[best].uuid, Share: x}}, true
		}
		most := int64(0)
		for _, d := range g.gpus {
			most = max(most, d.shares)
		}
		if x <= most {
			return nil, false // fits one GPU's size: never split
		}
		order := make([]int, 0, len(g.gpus))
		for i := range g.gpus {
			if g.gpus[i].untouched() {
				order = append(order, i)
			}
		}
		slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(g.gpus[j].shares, g.gpus[i].shares) })
		var out []state.GPUSlice
		rest := x
		for _, i := range order {
			if d := &g.gpus[i]; rest >= d.shares {
				out = append(out, state.GPUSlice{UUID: d.uuid, Share: d.shares, Whole: true})
				rest -= d.shares
			}
		}
		return out, rest == 0
	}
	return nil, true
}

// shortV1 says why no slices were found, as managers before issue 17 said.
func (g *gpuView) shortV1(h slots.Slots) *state.Refusal {
	if len(g.gpus) == 0 {
		return &state.Refusal{Code: state.RefusedNoGPUs, Subject: g.agent}
	}
	if n := h[slots.CUDADevice]; n > 0 {
		return &state.Refusal{Code: state.RefusedGPUDevices, Subject: g.agent, Want: n, Have: g.untouched()}
	}
	x := h[slots.CUDAShares]
	most, whole, one := int64(1), int64(0), int64(0)
	for i := range g.gpus {
		d := &g.gpus[i]
		most = max(most, d.shares)
		if d.untouched() {
			whole += d.shares
		}
		one = max(one, d.free())
	}
	if x > most && x%most != 0 {
		return &state.Refusal{Code: state.RefusedGPUSplit, Subject: g.agent, Want: x, Limit: most}
	}
	return &state.Refusal{Code: state.RefusedGPUShares, Subject: g.agent, Want: x, Have: max(whole, one)}
}
