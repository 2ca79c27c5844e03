package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// agentView is an agent as admins see it. used and a fresher
// last_heartbeat_at come from the leader's memory: a follower answering
// ?stale=true has no reports, so it shows used empty and the replicated
// last_heartbeat_at (at most 30 s old: the leader writes it that often).
func (a *API) agentView(tx *state.Txn, ag *state.Agent) (api.Agent, error) {
	held, err := occupiedOnAgent(tx, ag.ID)
	if err != nil {
		return api.Agent{}, err
	}
	gpuHeld, err := tx.GPUUsage(ag.ID)
	if err != nil {
		return api.Agent{}, err
	}
	out := api.Agent{ID: ag.ID, Address: ag.Address, Status: ag.Status, Schedulable: ag.Schedulable, Approved: !ag.AwaitingApproval, JoinToken: ag.JoinToken,
		Capacity: ag.Capacity.Clone(), Occupied: held, GPUs: agentGPUs(ag, gpuHeld), FolderHosts: slices.Clone(nonNil(ag.FolderHosts)),
		ProjectQuotaHosts: slices.Clone(nonNil(ag.ProjectQuotaHosts)), Images: slices.Clone(nonNil(ag.Images)),
		Node: ag.Node, LastHeartbeatAt: ag.LastHeartbeatAt, Version: ag.Version, Simulated: ag.Simulated}
	if at, used, ok := a.leader.LastHeartbeat(ag.ID); ok {
		out.Used = used
		if at.After(out.LastHeartbeatAt) {
			out.LastHeartbeatAt = at
		}
	}
	if ag.Status == state.AgentDisconnected {
		out.StatusInfo = fmt.Sprintf("disconnected since %s (its last heartbeat): no new sessions are placed on it, its sessions keep running and holding their slots; LOST at %s unless it reports before (-disconnect-grace %s; a policy's max_disconnect may end its sessions sooner)",
			ag.LastHeartbeatAt.UTC().Format(time.RFC3339), ag.LastHeartbeatAt.Add(a.leader.DisconnectGrace()).UTC().Format(time.RFC3339), a.leader.DisconnectGrace())
	}
	return out, nil
}

// agentGPUs is an agent's GPUs with what the sessions' slices hold of
// each (the GPU ledger, derived from the session records).
func agentGPUs(ag *state.Agent, held map[string]int64) []api.AgentGPU {
	out := make([]api.AgentGPU, 0, len(ag.GPUs))
	for _, g := range ag.GPUs {
		out = append(out, api.AgentGPU{UUID: g.UUID, Name: g.Name, MemoryBytes: g.MemoryBytes,
			SharesTotal: sharesValue(g.Shares), SharesAllocated: sharesValue(held[g.UUID]), Fake: g.Fake})
	}
	return out
}

func (a *API) listAgents(c *Call) error {
	status := c.R.URL.Query().Get("status")
	if status != "" && !slices.Contains(state.AgentStatuses(), status) {
		return apierr.Field(apierr.Invalid, "status", "status must be one of "+strings.Join(state.AgentStatuses(), ", "))
	}
	tx := a.cluster.Read()
	agents, err := tx.Agents()
	if err != nil {
		return err
	}
	views := make([]api.Agent, 0, len(agents))
	for _, ag := range agents {
		if status != "" && ag.Status != status {
			continue
		}
		v, err := a.agentView(tx, ag)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	out, err := pageOf(c, views, func(v api.Agent) string { return v.ID })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getAgent(c *Call) error {
	tx := a.cluster.Read()
	ag, err := agentOr404(tx, c.R.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := a.agentView(tx, ag)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func agentOr404(tx *state.Txn, id string) (*state.Agent, error) {
	ag, err := tx.Agent(id)
	if err != nil {
		return nil, err
	}
	if ag == nil {
		return nil, apierr.New(apierr.NotFound, "no agent %s", id)
	}
	return ag, nil
}

func (a *API) updateAgent(c *Call) error {
	var p api.AgentPatch
	if err := c.Decode(&p); err != nil {
		return err
	}
	if p.Schedulable == nil {
		return apierr.Field(apierr.Invalid, "schedulable", "schedulable is required (true or false)")
	}
	id := c.R.PathValue("id")
	if _, err := agentOr404(a.cluster.Read(), id); err != nil {
		return err
	}
	ag, err := propose[*state.Agent](c, fsm.AgentUpdate{ID: id, Schedulable: p.Schedulable})
	if err != nil {
		return err
	}
	out, err := a.agentView(a.cluster.Read(), ag)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
