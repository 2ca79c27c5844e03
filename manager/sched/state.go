package sched

import (
	"fmt"
	"slices"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// StateSource reads a Cluster's starting point from the replicated state
// (the leader's scheduler, from a read transaction). Occupancy is the
// state's usage rows, derived from the session records and kept with them.
func StateSource(tx *state.Txn) Source { return stateSource{tx} }

type stateSource struct{ tx *state.Txn }

func (s stateSource) Keypair(ak string) (*Keypair, error) {
	k, err := s.tx.Keypair(ak)
	if err != nil || k == nil {
		return nil, err
	}
	out := &Keypair{AccessKey: ak}
	u, err := s.tx.User(k.User)
	if err != nil {
		return nil, err
	}
	p, err := s.tx.ResourcePolicy(k.ResourcePolicy)
	if err != nil {
		return nil, err
	}
	switch {
	case !k.IsActive:
		out.Refusal = fmt.Sprintf("keypair %s is inactive", ak)
	case u == nil || u.Status != api.StatusActive:
		out.Refusal = fmt.Sprintf("user %s is inactive", k.User)
	case p == nil:
		out.Refusal = fmt.Sprintf("resource policy %s does not exist", k.ResourcePolicy)
	default:
		out = keypairOfPolicy(ak, p)
	}
	if out.Occupied, out.Sessions, err = s.tx.KeypairUsage(ak); err != nil {
		return nil, err
	}
	return out, nil
}

func (s stateSource) Agent(id string) (*Agent, error) {
	a, err := s.tx.Agent(id)
	if err != nil || a == nil {
		return nil, err
	}
	out := agentOf(a)
	if out.Occupied, err = s.tx.OccupiedOnAgent(id); err != nil {
		return nil, err
	}
	held, err := s.tx.GPUUsage(id)
	if err != nil {
		return nil, err
	}
	withGPUs(out, a, held)
	return out, nil
}

// withGPUs sets the agent's GPUs with what the ledger says is held of
// each. A GPU the agent no longer reports is gone from placement; slices
// still held on it end with their sessions.
func withGPUs(out *Agent, a *state.Agent, held map[string]int64) {
	out.GPUQuantum = a.GPUShareQuantum
	for _, g := range a.GPUs {
		out.GPUs = append(out.GPUs, GPU{UUID: g.UUID, Shares: g.Shares, Held: held[g.UUID]})
	}
}

func (s stateSource) Agents() ([]*Agent, error) {
	as, err := s.tx.Agents()
	if err != nil {
		return nil, err
	}
	held, err := s.tx.AgentUsages()
	if err != nil {
		return nil, err
	}
	gpus, err := s.tx.GPUUsages()
	if err != nil {
		return nil, err
	}
	out := make([]*Agent, len(as))
	for i, a := range as {
		out[i] = agentOf(a)
		out[i].Occupied = held[a.ID]
		withGPUs(out[i], a, gpus[a.ID])
	}
	return out, nil
}

func agentOf(a *state.Agent) *Agent {
	return &Agent{ID: a.ID, Alive: a.Status == state.AgentAlive, Schedulable: a.Schedulable, AwaitingApproval: a.AwaitingApproval, Capacity: a.Capacity,
		FolderHosts: a.FolderHosts, Images: imageNames(a.Images)}
}

func imageNames(images []api.Image) []string {
	out := make([]string, len(images))
	for i, im := range images {
		out[i] = im.Name
	}
	return out
}

// RequestOf is a PENDING session as admission sees it.
func RequestOf(s *state.Session) Request {
	r := Request{SessionID: s.ID, AccessKey: s.AccessKey, Slots: s.Requested, Containers: s.ClusterSize,
		CreateIndex: s.CreateIndex, CreatedAt: s.CreatedAt, Attempts: s.Attempts, Image: s.Image}
	for _, m := range s.Mounts {
		if m.Host != "" && !slices.Contains(r.FolderHosts, m.Host) {
			r.FolderHosts = append(r.FolderHosts, m.Host)
		}
	}
	slices.Sort(r.FolderHosts)
	return r
}
