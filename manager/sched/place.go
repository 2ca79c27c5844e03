package sched

import (
	"fmt"
	"strings"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/imageref"
	"github.com/berth-cluster/berth/shared/slots"
)

// Strategy is how agents are chosen among those that fit.
type Strategy int

const (
	// Concentrated bin-packs: the fullest agent that fits, leaving whole
	// agents free for big requests.
	Concentrated Strategy = iota + 1
	// Dispersed spreads: the emptiest agent, so sessions interfere least.
	Dispersed
)

// ParseStrategy reads the -placement flag.
func ParseStrategy(s string) (Strategy, error) {
	switch s {
	case "", "concentrated":
		return Concentrated, nil
	case "dispersed":
		return Dispersed, nil
	}
	return 0, fmt.Errorf("placement %q must be concentrated or dispersed", s)
}

func (s Strategy) String() string {
	if s == Dispersed {
		return "dispersed"
	}
	return "concentrated"
}

// fits reports whether need fits on an agent holding have (this session's
// earlier containers included): the arithmetic of CheckAgents, one
// container at a time, so what Place picks CheckAgents (and the Plan
// applier) accepts.
func fits(have, need, capacity vec) bool {
	for i := range need {
		if need[i] > 0 && have[i]+need[i] > capacity[i] {
			return false
		}
	}
	return true
}

// fullness is the mean share of its capacity an agent would hold, over the
// slots it has.
func fullness(used, capacity vec) float64 {
	sum, n := 0.0, 0
	for i := range used {
		if capacity[i] > 0 {
			sum += float64(used[i]) / float64(capacity[i])
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// Place picks an agent for every container of r by the strategy, after the
// keypair's predicates. Each container needs its own fit; several may land
// on one agent. Ties go to the smallest agent id, so the same view gives
// the same answer. Nothing is committed: the caller commits what it keeps.
func (c *Cluster) Place(r Request, s Strategy) ([]string, *Failure, error) {
	if f, err := c.CheckKeypair(r); f != nil || err != nil {
		return nil, f, err
	}
	need, _ := toVec(r.Slots) // CheckKeypair refused unknown slots
	all, err := c.allAgents()
	if err != nil {
		return nil, nil, err
	}
	out, f := placeAgents(all, r, need, s)
	return out, f, nil
}

// placeAgents is Place after the keypair's predicates.
func placeAgents(all []*agentState, r Request, need vec, s Strategy) ([]string, *Failure) {
	n := r.size()
	normal := imageref.Normal(r.Image)
	// A session's containers share one network, which is one agent's
	// (agent/network): all of them go to the one agent that holds them
	// all best, judged as if they were one container of n times the
	// request.
	var best *agentState
	bestScore, bestCost, bestHas := 0.0, gpuCost{}, false
	for _, a := range all {
		score, cost, ok := a.trySession(need, n, r.FolderHosts)
		if !ok {
			continue
		}
		// An agent that has the image first: the others would pull it
		// first. Then, whatever the strategy, slices go where they break
		// no whole GPU and span the fewest GPUs, if any agent allows.
		has := a.hasImage(r.Image, normal)
		better := best == nil || (has && !bestHas) || (has == bestHas && (cost.less(bestCost) ||
			(cost == bestCost && ((s == Dispersed && score < bestScore) || (s != Dispersed && score > bestScore)))))
		if better {
			best, bestScore, bestCost, bestHas = a, score, cost, has
		}
	}
	if best == nil {
		if f := noHost(all, r.FolderHosts); f != nil {
			return nil, f
		}
		if n > 1 && oneFits(all, need, r.FolderHosts) {
			return nil, fail(KindCapacity, "no agent has room for all %d containers together (%s each): a session's containers run on one agent", n, describe(need))
		}
		return nil, noRoom(all, need, 0, n)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = best.id
	}
	return out, nil
}

// trySession places n containers of need on the agent, one after the
// other as the Plan applier checks them, and tells how full it would be
// and what their slices would cost; it leaves nothing placed.
func (a *agentState) trySession(need vec, n int, hosts []string) (float64, gpuCost, bool) {
	defer a.dropExtra()
	if !a.usable() || a.missingHost(hosts) != "" {
		return 0, gpuCost{}, false
	}
	var total gpuCost
	for range n {
		have, h := a.occupied.add(a.extra), a.hold(need)
		if !fits(have, h, a.capacity) {
			return 0, gpuCost{}, false
		}
		if wantsGPU(h) {
			sl, ok := a.allocate(h)
			if !ok {
				return 0, gpuCost{}, false
			}
			c := a.cost(sl)
			total.broken += c.broken
			total.gpus += c.gpus
			a.take(sl, true)
		}
		a.extra = a.extra.add(h)
	}
	return fullness(a.occupied.add(a.extra), a.capacity), total, true
}

// describe names what one container asks for, e.g. "cpu 1 and mem 1 GiB".
func describe(need vec) string {
	var parts []string
	for j := range need {
		if need[j] > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", slotAt(j), amount(j, need[j])))
		}
	}
	return strings.Join(parts, " and ")
}

// oneFits tells whether one container of need fits some usable agent.
func oneFits(all []*agentState, need vec, hosts []string) bool {
	for _, a := range all {
		if _, _, ok := a.trySession(need, 1, hosts); ok {
			return true
		}
	}
	return false
}

// noHost says so when no usable agent has every folder host the session
// mounts (nil when one has).
func noHost(all []*agentState, hosts []string) *Failure {
	if len(hosts) == 0 {
		return nil
	}
	missing := ""
	for _, a := range all {
		if !a.usable() {
			continue
		}
		if m := a.missingHost(hosts); m == "" {
			return nil
		} else if missing == "" {
			missing = m
		}
	}
	if missing == "" {
		return nil // no usable agent at all: noRoom says so
	}
	f := fail(KindCapacity, "no agent has the folder host %s (-folder-host)", missing)
	f.Rule, f.Host = RuleFolderHost, missing
	return f
}

// noRoom says why container i of n fits on no agent: the first slot no
// agent has enough of, with the most any agent has; or, when each slot fits
// somewhere but never together, every slot asked for. The Failure's Over
// lists every slot short, not only the first.
func noRoom(all []*agentState, need vec, i, n int) *Failure {
	var largest vec
	usable := false
	var awaiting []string
	for _, a := range all {
		if a.alive && a.schedulable && !a.approved {
			awaiting = append(awaiting, a.id)
		}
		if !a.usable() {
			continue
		}
		usable = true
		free := a.free().sub(a.extra)
		// What the GPUs can give one container, not the sums.
		free[vecDevice], free[vecShares] = a.gpuLargest()
		for j := range largest {
			largest[j] = max(largest[j], free[j])
		}
	}
	var short []state.SlotOver
	for j := range need {
		if need[j] > largest[j] {
			short = append(short, state.SlotOver{Slot: slotAt(j), Need: need[j], Limit: largest[j]})
		}
	}
	var f *Failure
	which := ""
	if n > 1 {
		which = fmt.Sprintf(" for container %d of %d", i+1, n)
	}
	switch {
	case !usable && len(awaiting) > 0:
		f = fail(KindCapacity, "no agent is alive, schedulable and approved; %s awaiting approval (berth agent approve %s)",
			strings.Join(awaiting, ", "), awaiting[0])
	case !usable:
		f = fail(KindCapacity, "no agent is alive and schedulable")
	case len(short) > 0:
		j, _ := slotIndex(short[0].Slot)
		f = fail(KindCapacity, "no agent has %s %s free%s (largest %s)", slotAt(j), amount(j, need[j]), which, amount(j, largest[j]))
	case fractionEverywhere(all, need):
		f = fail(KindCapacity, "cuda.shares %s is more than one GPU but not a whole number of GPUs on every agent with GPUs: a fraction runs under one GPU's MPS daemon and cannot be held beside other GPUs",
			slots.Format(slots.CUDAShares, need[vecShares]))
		f.Rule, f.Need = RuleFraction, need[vecShares]
		return f
	default:
		f = fail(KindCapacity, "no agent has %s free at once%s", describe(need), which)
		f.Rule = RuleTogether
		return f
	}
	f.Rule, f.Over = RuleAgentSlots, short
	return f
}

// fractionEverywhere reports whether need's cuda.shares is a fraction of
// a GPU beside other GPUs on every usable agent that has GPUs (and there is
// one): no allocation can ever give it, however free they are.
func fractionEverywhere(all []*agentState, need vec) bool {
	if need[vecShares] == 0 {
		return false
	}
	seen := false
	for _, a := range all {
		if !a.usable() || len(a.gpus) == 0 {
			continue
		}
		seen = true
		if !a.fractionBeside(a.hold(need)[vecShares]) {
			return false
		}
	}
	return seen
}
