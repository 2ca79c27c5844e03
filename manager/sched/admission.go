package sched

import (
	"iter"
	"slices"
	"strings"

	"github.com/berth-cluster/berth/manager/state"
)

// Admission says why a session could never run, every reason at once; none
// means that it could, once room is free (POST /v1/sessions answers 422
// with the reasons). It asks the scheduler's own predicates of an empty
// cluster: the keypair's, as CheckKeypair applies them, against its policy
// with nothing held; and Place's, for one container, against each agent
// with nothing on it. So a session the handler accepts is one the
// scheduler places on an idle cluster, and one it refuses is one the
// scheduler would leave PENDING for ever.
//
// Three things are asked otherwise than in a scheduling pass, on purpose. An
// agent awaiting approval counts as approved: approval is an operator's
// step, so a session only it could run waits PENDING for it. A
// DISCONNECTED agent counts as ALIVE: it keeps its sessions because it is
// expected back within its grace, so a session only it could run waits for
// it too. And one
// container must fit one agent: how many agents are there for the others
// is the moment's question, like what is free.
//
// The agents are walked until one takes the container, so with many agents
// the answer usually comes from the first few.
func Admission(p *state.ResourcePolicy, agents iter.Seq[*state.Agent], r Request) []*Failure {
	need, bad := toVec(r.Slots)
	if bad != "" {
		return []*Failure{fail(KindInvalid, "unknown slot %s", bad)}
	}
	k := newKeypairState(keypairOfPolicy(r.AccessKey, p))
	var out []*Failure
	for _, f := range []*Failure{k.containers(r), k.concurrency(), k.totals(r, need)} {
		if f != nil {
			out = append(out, f)
		}
	}
	if need == (vec{}) {
		return out // asks for nothing (its shape was refused): no agent to judge
	}
	var all []*agentState
	for a := range agents {
		ag := agentOf(a)
		withGPUs(ag, a, nil)
		ag.AwaitingApproval = false
		ag.Alive = ag.Alive || a.Status == state.AgentDisconnected
		s := newAgentState(ag)
		if _, _, ok := s.trySession(need, 1, r.FolderHosts); ok {
			return out
		}
		all = append(all, s)
	}
	slices.SortFunc(all, func(x, y *agentState) int { return strings.Compare(x.id, y.id) })
	// Which agents could hold it if they had room: those with every folder
	// host it mounts or, when none has, every agent (then the host is one
	// reason, the room another).
	hostless := noHost(all, r.FolderHosts)
	if hostless == nil && len(r.FolderHosts) > 0 {
		if !slices.ContainsFunc(all, (*agentState).usable) {
			hostless = fail(KindCapacity, "no agent has the folder host %s (-folder-host)", r.FolderHosts[0])
			hostless.Rule, hostless.Host = RuleFolderHost, r.FolderHosts[0]
		} else {
			all = slices.DeleteFunc(all, func(a *agentState) bool { return a.missingHost(r.FolderHosts) != "" })
		}
	}
	one := Request{SessionID: r.SessionID, AccessKey: r.AccessKey, Slots: r.Slots, Containers: 1, Image: r.Image}
	if _, f := placeAgents(all, one, need, Concentrated); f != nil {
		out = append(out, f)
	}
	if hostless != nil {
		out = append(out, hostless)
	}
	return out
}

// keypairOfPolicy is what the keypair predicates read of a policy.
func keypairOfPolicy(accessKey string, p *state.ResourcePolicy) *Keypair {
	return &Keypair{AccessKey: accessKey, Limits: p.TotalResourceSlots, MaxConcurrent: p.MaxConcurrentSessions,
		MaxContainers: p.MaxContainersPerSession}
}
