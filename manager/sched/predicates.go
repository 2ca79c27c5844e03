package sched

import (
	"fmt"

	"github.com/berth-cluster/berth/manager/state"
)

// Kind says which side a failure is on; it decides whether a waiting
// session may hold the head of the queue.
type Kind int

const (
	// KindKeypair: the keypair's own limits (concurrency, slot totals,
	// containers per session, inactive). Only that keypair's sessions could
	// make room, so such a session never blocks anyone else's.
	KindKeypair Kind = iota + 1
	// KindCapacity: no agent has room. Ending sessions of anyone make room,
	// so a big request blocks the queue for a while lest small ones starve it.
	KindCapacity
	// KindInvalid: the request or placement is malformed (an unknown slot,
	// a placement with the wrong number of agents).
	KindInvalid
)

// Failure is why a session cannot be admitted now, in words and numbers:
// "concurrency 3/3", "cpu 2 + 1 > 2", "no agent has cpu 1.5 free (largest 1)".
type Failure struct {
	Kind   Kind
	Reason string
}

func fail(k Kind, format string, args ...any) *Failure {
	return &Failure{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

// CheckKeypair applies the keypair's predicates: it exists and may start
// sessions, cluster_size within max_containers_per_session, concurrency
// within max_concurrent_sessions, and its slot totals with this session
// within the policy's.
func (c *Cluster) CheckKeypair(r Request) (*Failure, error) {
	k, err := c.keypair(r.AccessKey)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return fail(KindKeypair, "keypair %s does not exist", r.AccessKey), nil
	}
	if k.refusal != "" {
		return fail(KindKeypair, "%s", k.refusal), nil
	}
	// The policy's minimum is 1; a zero can only be an unset field.
	if maxC := max(1, k.maxContainers); r.size() > maxC {
		return fail(KindKeypair, "cluster_size %d > max_containers_per_session %d", r.size(), maxC), nil
	}
	if k.maxConcurrent != nil && k.sessions >= *k.maxConcurrent {
		return fail(KindKeypair, "concurrency %d/%d", k.sessions, *k.maxConcurrent), nil
	}
	need, bad := toVec(r.Slots)
	if bad != "" {
		return fail(KindInvalid, "unknown slot %s", bad), nil
	}
	if o := over(k.occupied, need.times(int64(r.size())), k.limit, k.limited); o != "" {
		return fail(KindKeypair, "%s", o), nil
	}
	return nil, nil
}

// CheckAgents verifies a placement: one agent per container, every agent
// alive, schedulable and approved, and on each what it holds plus this session's
// containers there within its capacity.
func (c *Cluster) CheckAgents(r Request, agents []string) (*Failure, error) {
	if len(agents) != r.size() {
		return fail(KindInvalid, "placement names %d agents for %d containers", len(agents), r.size()), nil
	}
	need, bad := toVec(r.Slots)
	if bad != "" {
		return fail(KindInvalid, "unknown slot %s", bad), nil
	}
	perAgent := map[string]int64{}
	for _, id := range agents {
		perAgent[id]++
	}
	for i, id := range agents {
		if perAgent[id] == 0 {
			continue // checked with its first container
		}
		n := perAgent[id]
		perAgent[id] = 0
		a, err := c.agent(id)
		if err != nil {
			return nil, err
		}
		switch {
		case a == nil:
			return fail(KindCapacity, "agent %s of container %d does not exist", id, i), nil
		case !a.alive:
			return fail(KindCapacity, "agent %s is lost", id), nil
		case !a.schedulable:
			return fail(KindCapacity, "agent %s is not schedulable", id), nil
		case !a.approved:
			return fail(KindCapacity, "agent %s awaits approval (berth agent approve %s)", id, id), nil
		case a.missingHost(r.FolderHosts) != "":
			return fail(KindCapacity, "agent %s has no folder host %s", id, a.missingHost(r.FolderHosts)), nil
		}
		h := a.hold(need)
		if o := over(a.occupied, h.times(n), a.capacity, allLimited()); o != "" {
			return fail(KindCapacity, "agent %s: %s", id, o), nil
		}
		if f := gpuFit(a, h, n); f != nil {
			return f, nil
		}
	}
	return nil, nil
}

// gpuFit checks that n containers holding h each find slices on the
// agent's GPUs, one after the other as Commit will allocate them.
func gpuFit(a *agentState, h vec, n int64) *Failure {
	if !wantsGPU(h) {
		return nil
	}
	defer a.dropExtra()
	for range n {
		sl, ok := a.allocate(h)
		if !ok {
			return fail(KindCapacity, "agent %s: %s", a.id, gpuShort(a, h))
		}
		a.take(sl, true)
	}
	return nil
}

// Admit verifies a placement with every predicate and, when it fits,
// commits it to the view so the next placement of the batch sees it: the
// scheduler's own check of a placement against a view (its tests hold
// Place to it). The Plan applier has its own frozen invariants.
func (c *Cluster) Admit(r Request, agents []string) (*Failure, error) {
	_, f, err := c.AdmitGPUs(r, agents)
	return f, err
}

// AdmitGPUs is Admit that also returns each container's GPU slices (nil
// for a container without GPUs), as Schedule puts them in its decisions.
func (c *Cluster) AdmitGPUs(r Request, agents []string) ([][]state.GPUSlice, *Failure, error) {
	if f, err := c.CheckKeypair(r); f != nil || err != nil {
		return nil, f, err
	}
	if f, err := c.CheckAgents(r, agents); f != nil || err != nil {
		return nil, f, err
	}
	gpus, err := c.commit(r, agents)
	return gpus, nil, err
}
