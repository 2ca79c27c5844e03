package fsm

import (
	"fmt"
	"slices"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// The invariants the plan applier holds every placement to, against the
// state as it is when the entry is applied (which includes the placements
// of the same plan admitted before it). They are frozen: what a log
// replays to depends on them, so changing one is a new plan version and a
// new applier, never an edit of these (manager/DESIGN.md, "The GPU
// ledger"). They decide, they never choose: the slices are the plan's, or,
// for an old-format plan, the frozen allocation's (plan_v1.go).
//
// In order, the first broken one refusing the placement with its code:
//
//  1. The keypair exists and is active, its user is active, its policy
//     exists.
//  2. cluster_size ≤ max_containers_per_session (0 reads as 1).
//  3. The keypair's occupying sessions < max_concurrent_sessions.
//  4. Every slot asked for is one Berth knows.
//  5. What the keypair holds + cluster_size × the request ≤ the policy's
//     totals, for every limited slot the request asks for.
//  6. One container per cluster_size.
//  7. Then each agent, in the order it first appears: it exists, is ALIVE,
//     schedulable and approved, has every folder host the session mounts,
//     and what it holds + its containers' hold (cuda.shares rounded up to
//     its quantum) ≤ its capacity, for every slot asked for.
//  8. And each of its containers, in order, holds the GPU slices its
//     request takes (gpuCheck): none without a GPU request; for
//     cuda.device n, n whole GPUs nothing holds; for cuda.shares x, x
//     rounded to the quantum, either as one slice of one GPU within what
//     that GPU has free, or as whole GPUs nothing holds. Every slice names
//     a GPU of that agent, once.
//  9. (Plans of version 2 and later.) Every container is on the agent of
//     container 0: a session's containers share one network, which is
//     one agent's.

// placementCheck is one placement being checked.
type placementCheck struct {
	tx   *state.Txn
	s    *state.Session
	size int
	// pick is the GPU step: verify the plan's slices, or allocate them.
	pick gpuStep
	// oneAgent holds invariant 9 (plans of version 2 and later).
	oneAgent bool
}

// gpuStep checks, or fills in, the slices of container i (c), which holds
// h on the agent of view g.
type gpuStep func(g *gpuView, i int, h slots.Slots, c *PlacedContainer) *state.Refusal

// check runs the invariants over the placement's containers; a nil refusal
// means it may be recorded (with the slices now in cs).
func (p *placementCheck) check(cs []PlacedContainer) (*state.Refusal, error) {
	if r, err := p.keypair(); r != nil || err != nil {
		return r, err
	}
	r, err := p.agents(cs)
	if r != nil || err != nil || !p.oneAgent {
		return r, err
	}
	for i, c := range cs {
		if c.Agent != cs[0].Agent {
			return &state.Refusal{Code: state.RefusedSplitSession, Subject: c.Agent, Detail: cs[0].Agent, Container: i}, nil
		}
	}
	return nil, nil
}

func (p *placementCheck) keypair() (*state.Refusal, error) {
	ak := p.s.AccessKey
	k, err := p.tx.Keypair(ak)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return &state.Refusal{Code: state.RefusedKeypairMissing, Subject: ak}, nil
	}
	u, err := p.tx.User(k.User)
	if err != nil {
		return nil, err
	}
	pol, err := p.tx.ResourcePolicy(k.ResourcePolicy)
	if err != nil {
		return nil, err
	}
	switch {
	case !k.IsActive:
		return &state.Refusal{Code: state.RefusedKeypairInactive, Subject: ak}, nil
	case u == nil || u.Status != api.StatusActive:
		return &state.Refusal{Code: state.RefusedUserInactive, Subject: k.User}, nil
	case pol == nil:
		return &state.Refusal{Code: state.RefusedPolicyMissing, Subject: k.ResourcePolicy}, nil
	}
	if maxC := max(1, pol.MaxContainersPerSession); p.size > maxC {
		return &state.Refusal{Code: state.RefusedClusterSize, Have: int64(p.size), Limit: int64(maxC)}, nil
	}
	held, sessions, err := p.tx.KeypairUsage(ak)
	if err != nil {
		return nil, err
	}
	if m := pol.MaxConcurrentSessions; m != nil && sessions >= *m {
		return &state.Refusal{Code: state.RefusedConcurrency, Have: int64(sessions), Limit: int64(*m)}, nil
	}
	if bad := unknownSlot(p.s.Requested); bad != "" {
		return &state.Refusal{Code: state.RefusedUnknownSlot, Detail: bad}, nil
	}
	total := slots.Slots{}
	for _, n := range slots.Known {
		total[n] = p.s.Requested[n] * int64(p.size)
	}
	limit := func(n slots.Name) (int64, bool) { v, ok := pol.TotalResourceSlots[n]; return v, ok }
	if o := over(held, total, limit); o != nil {
		return &state.Refusal{Code: state.RefusedPolicySlots, Over: o}, nil
	}
	return nil, nil
}

// unknownSlot is the smallest slot name Berth does not know, or "". No
// request parsed from the wire carries one; a hand-made entry could.
func unknownSlot(s slots.Slots) string {
	bad := ""
	for n := range s {
		if !slices.Contains(slots.Known, n) && (bad == "" || string(n) < bad) {
			bad = string(n)
		}
	}
	return bad
}

// over lists the slots where have + need > limit. A slot the request does
// not ask for is never over: a keypair or an agent already past a limit (an
// administrator lowered it under running sessions) may still take a
// session that adds nothing there.
func over(have, need slots.Slots, limit func(slots.Name) (int64, bool)) []state.SlotOver {
	var out []state.SlotOver
	for _, n := range slots.Known {
		l, limited := limit(n)
		if limited && need[n] > 0 && have[n]+need[n] > l {
			out = append(out, state.SlotOver{Slot: n, Have: have[n], Need: need[n], Limit: l})
		}
	}
	return out
}

func (p *placementCheck) agents(cs []PlacedContainer) (*state.Refusal, error) {
	if len(cs) != p.size {
		return &state.Refusal{Code: state.RefusedContainerCount, Have: int64(len(cs)), Limit: int64(p.size)}, nil
	}
	hosts := sessionHosts(p.s)
	var order []string
	mine := map[string][]int{}
	for i, c := range cs {
		if _, seen := mine[c.Agent]; !seen {
			order = append(order, c.Agent)
		}
		mine[c.Agent] = append(mine[c.Agent], i)
	}
	for _, id := range order {
		a, err := p.tx.Agent(id)
		if err != nil {
			return nil, err
		}
		first := mine[id][0]
		switch {
		case a == nil:
			return &state.Refusal{Code: state.RefusedAgentMissing, Subject: id, Container: first}, nil
		case a.Status != state.AgentAlive:
			return &state.Refusal{Code: state.RefusedAgentLost, Subject: id}, nil
		case !a.Schedulable:
			return &state.Refusal{Code: state.RefusedAgentUnschedulable, Subject: id}, nil
		case a.AwaitingApproval:
			return &state.Refusal{Code: state.RefusedAgentUnapproved, Subject: id}, nil
		}
		for _, h := range hosts {
			if !slices.Contains(a.FolderHosts, h) {
				return &state.Refusal{Code: state.RefusedFolderHost, Subject: id, Detail: h}, nil
			}
		}
		h := hold(p.s.Requested, a.GPUShareQuantum)
		n := int64(len(mine[id]))
		all := slots.Slots{}
		for _, s := range slots.Known {
			all[s] = h[s] * n
		}
		held, err := p.tx.OccupiedOnAgent(id)
		if err != nil {
			return nil, err
		}
		capacity := func(s slots.Name) (int64, bool) { return a.Capacity[s], true }
		if o := over(held, all, capacity); o != nil {
			return &state.Refusal{Code: state.RefusedAgentSlots, Subject: id, Over: o}, nil
		}
		g, err := newGPUView(p.tx, a)
		if err != nil {
			return nil, err
		}
		for _, i := range mine[id] {
			if r := p.pick(g, i, h, &cs[i]); r != nil {
				return r, nil
			}
			g.take(cs[i].GPUs)
		}
	}
	return nil, nil
}

// sessionHosts are the folder hosts the session mounts, sorted, once each.
func sessionHosts(s *state.Session) []string {
	var hosts []string
	for _, m := range s.Mounts {
		if m.Host != "" && !slices.Contains(hosts, m.Host) {
			hosts = append(hosts, m.Host)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// hold is what one container of the request holds on an agent: the known
// slots asked for, cuda.shares rounded up to the agent's quantum q (the
// agent cuts slices in steps of q; a quantum not reported is the base
// unit).
func hold(req slots.Slots, q int64) slots.Slots {
	h := slots.Slots{}
	for _, n := range slots.Known {
		h[n] = req[n]
	}
	if x := h[slots.CUDAShares]; q > 1 && x > 0 {
		h[slots.CUDAShares] = (x + q - 1) / q * q
	}
	return h
}

// gpuView is an agent's GPUs, in its order, with what is held of each:
// the ledger (which has this plan's earlier placements) plus this
// session's containers checked so far.
type gpuView struct {
	agent string
	gpus  []gpuHeld
}

type gpuHeld struct {
	uuid         string
	shares, held int64
}

func newGPUView(tx *state.Txn, a *state.Agent) (*gpuView, error) {
	held, err := tx.GPUUsage(a.ID)
	if err != nil {
		return nil, fmt.Errorf("read the GPU ledger of agent %s: %w", a.ID, err)
	}
	g := &gpuView{agent: a.ID}
	for _, d := range a.GPUs {
		g.gpus = append(g.gpus, gpuHeld{uuid: d.UUID, shares: d.Shares, held: held[d.UUID]})
	}
	return g, nil
}

func (g *gpuView) find(uuid string) *gpuHeld {
	for i := range g.gpus {
		if g.gpus[i].uuid == uuid {
			return &g.gpus[i]
		}
	}
	return nil
}

// take counts slices as held.
func (g *gpuView) take(sl []state.GPUSlice) {
	for _, s := range sl {
		if d := g.find(s.UUID); d != nil {
			d.held += s.Share
		}
	}
}

func (d *gpuHeld) untouched() bool { return d.held == 0 && d.shares > 0 }
func (d *gpuHeld) free() int64     { return d.shares - d.held }

// untouched counts the GPUs nothing holds.
func (g *gpuView) untouched() int64 {
	n := int64(0)
	for i := range g.gpus {
		if g.gpus[i].untouched() {
			n++
		}
	}
	return n
}

func wantsGPU(h slots.Slots) bool { return h[slots.CUDADevice] > 0 || h[slots.CUDAShares] > 0 }

// checkSlices is the GPU step of a Plan: the slices the plan gives
// container i must be what its hold h takes on the agent (invariant 8).
func checkSlices(g *gpuView, i int, h slots.Slots, c *PlacedContainer) *state.Refusal {
	refuse := func(code state.RefusalCode) *state.Refusal {
		return &state.Refusal{Code: code, Subject: g.agent, Container: i}
	}
	if !wantsGPU(h) {
		if len(c.GPUs) > 0 {
			return refuse(state.RefusedGPUUnasked)
		}
		return nil
	}
	if len(g.gpus) == 0 {
		return refuse(state.RefusedNoGPUs)
	}
	slot, want := slots.CUDAShares, h[slots.CUDAShares]
	if h[slots.CUDADevice] > 0 {
		slot, want = slots.CUDADevice, h[slots.CUDADevice]
	}
	shape := &state.Refusal{Code: state.RefusedGPUSlices, Subject: g.agent, Container: i, Detail: string(slot), Want: want}
	seen := map[string]bool{}
	sum := int64(0)
	for _, s := range c.GPUs {
		d := g.find(s.UUID)
		if d == nil {
			r := refuse(state.RefusedGPUUnknown)
			r.Detail = s.UUID
			return r
		}
		if seen[s.UUID] || s.Share <= 0 {
			return shape
		}
		seen[s.UUID] = true
		sum += s.Share
	}
	if len(c.GPUs) == 0 {
		return shape
	}
	if slot == slots.CUDADevice {
		// n whole GPUs: each given entire, and nothing else on it.
		if int64(len(c.GPUs)) != want {
			return shape
		}
		for _, s := range c.GPUs {
			if d := g.find(s.UUID); !s.Whole || s.Share != d.shares {
				return shape
			}
		}
		return wholeFree(g, c.GPUs)
	}
	if sum != want {
		return shape
	}
	if s := c.GPUs[0]; len(c.GPUs) == 1 && !s.Whole {
		// A fraction, on one GPU: it runs under that GPU's MPS daemon.
		if d := g.find(s.UUID); s.Share > d.free() {
			return &state.Refusal{Code: state.RefusedGPUOver, Subject: g.agent, Detail: s.UUID, Have: d.held, Want: s.Share, Limit: d.shares}
		}
		return nil
	}
	// More than one GPU: whole GPUs only, since a container reaches one
	// MPS daemon and a fraction cannot sit beside other GPUs.
	for _, s := range c.GPUs {
		if d := g.find(s.UUID); !s.Whole || s.Share != d.shares {
			return shape
		}
	}
	return wholeFree(g, c.GPUs)
}

// wholeFree refuses a GPU given whole that something already holds.
func wholeFree(g *gpuView, sl []state.GPUSlice) *state.Refusal {
	for _, s := range sl {
		if d := g.find(s.UUID); !d.untouched() {
			return &state.Refusal{Code: state.RefusedGPUOver, Subject: g.agent, Detail: s.UUID, Have: d.held, Want: s.Share, Limit: d.shares}
		}
	}
	return nil
}
