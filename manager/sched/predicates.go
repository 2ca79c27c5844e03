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

// Rule is which predicate a Failure broke, for callers that say it in
// words of their own (the create handler's 422, from Admission).
type Rule int

const (
	// RuleOther: a predicate Admission never reports (the keypair's
	// state, a placement of named agents, a malformed request).
	RuleOther Rule = iota
	// RuleContainers: cluster_size (Have) > max_containers_per_session
	// (Limit, where 0 reads as 1).
	RuleContainers
	// RuleConcurrency: the keypair's occupying sessions (Have) have
	// reached max_concurrent_sessions (Limit).
	RuleConcurrency
	// RulePolicySlots: what the keypair holds + cluster_size × the request
	// is over the policy's totals, for each slot in Over.
	RulePolicySlots
	// RuleAgentSlots: one container needs more of each slot in Over (Need)
	// than any usable agent has free (Limit); with no usable agent at all,
	// every slot it asks for, Limit 0.
	RuleAgentSlots
	// RuleFraction: the cuda.shares (Need) is more than one GPU but not
	// whole GPUs on every agent that has GPUs; a fraction cannot be held
	// beside other GPUs (allocate).
	RuleFraction
	// RuleTogether: each slot fits some agent, but none has them all.
	RuleTogether
	// RuleFolderHost: no usable agent has every folder host the session
	// mounts; Host is one it lacks.
	RuleFolderHost
)

// Failure is why a session cannot be admitted now, in words and numbers:
// "concurrency 3/3", "cpu 2 + 1 > 2", "no agent has cpu 1.5 free (largest 1)".
// Rule and the fields after it are the same facts for those who word them
// otherwise.
type Failure struct {
	Kind   Kind
	Reason string

	Rule        Rule
	Have, Limit int64
	Need        int64            // RuleFraction: the cuda.shares asked for
	Over        []state.SlotOver // RulePolicySlots, RuleAgentSlots
	Host        string           // RuleFolderHost
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
	if f := k.containers(r); f != nil {
		return f, nil
	}
	if f := k.concurrency(); f != nil {
		return f, nil
	}
	need, bad := toVec(r.Slots)
	if bad != "" {
		return fail(KindInvalid, "unknown slot %s", bad), nil
	}
	return k.totals(r, need), nil
}

// containers: cluster_size within max_containers_per_session. The
// policy's minimum is 1; a zero can only be an unset field, and reads as 1.
func (k *keypairState) containers(r Request) *Failure {
	maxC := max(1, k.maxContainers)
	if r.size() <= maxC {
		return nil
	}
	f := fail(KindKeypair, "cluster_size %d > max_containers_per_session %d", r.size(), maxC)
	f.Rule, f.Have, f.Limit = RuleContainers, int64(r.size()), int64(maxC)
	return f
}

// concurrency: fewer occupying sessions than max_concurrent_sessions.
func (k *keypairState) concurrency() *Failure {
	if k.maxConcurrent == nil || k.sessions < *k.maxConcurrent {
		return nil
	}
	f := fail(KindKeypair, "concurrency %d/%d", k.sessions, *k.maxConcurrent)
	f.Rule, f.Have, f.Limit = RuleConcurrency, int64(k.sessions), int64(*k.maxConcurrent)
	return f
}

// totals: what the keypair holds + cluster_size × the request within the
// policy's totals, for every slot the request asks for.
func (k *keypairState) totals(r Request, need vec) *Failure {
	o := overSlots(k.occupied, need.times(int64(r.size())), k.limit, k.limited)
	if len(o) == 0 {
		return nil
	}
	f := fail(KindKeypair, "%s", overText(o))
	f.Rule, f.Over = RulePolicySlots, o
	return f
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
		if o := overSlots(a.occupied, h.times(n), a.capacity, allLimited()); len(o) > 0 {
			return fail(KindCapacity, "agent %s: %s", id, overText(o)), nil
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
