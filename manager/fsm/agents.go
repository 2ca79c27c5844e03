package fsm

import (
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// AgentPut records an agent whole: a new registration (id, secret and
// times made by the handler). Occupancy is not in it: that is derived from
// session records.
type AgentPut struct {
	Agent state.Agent `json:"agent"`
	// TokenHash, when set, is the SHA-256 of the agent token the agent
	// presented. Apply admits the agent only if that token admits one more
	// at At (not revoked, not expired, a use left), counts the use, and
	// approves the agent or not as the token says: two agents racing for a
	// token's last use reach the same serial log, and only one gets it.
	// Without it the handler checked the managers' shared -agent-token and
	// Agent.AwaitingApproval is what -agent-auto-approve says.
	TokenHash string    `json:"token_hash,omitempty"`
	At        time.Time `json:"at,omitzero"`
}

// MsgType implements Command.
func (AgentPut) MsgType() MsgType { return MsgAgentPut }

func applyAgentPut(tx *state.Txn, index uint64, c *AgentPut) (any, error) {
	a := c.Agent
	old, err := tx.Agent(a.ID)
	if err != nil {
		return nil, err
	}
	if old != nil {
		// Ids are random; a clash with an agent that has its own secret
		// means the proposer reused an id, which must not take over that
		// agent's identity.
		if old.Secret != "" && old.Secret != a.Secret {
			return nil, apierr.New(apierr.Conflict, "agent %s already exists", a.ID)
		}
		a.Meta = old.Meta
		// An agent that once said it is simulated stays so: sessions
		// placed on it then must never look as if they had run.
		a.Simulated = a.Simulated || old.Simulated
	}
	if c.TokenHash != "" {
		tok, err := useAgentToken(tx, index, c.TokenHash, c.At)
		if err != nil {
			return nil, err
		}
		a.JoinToken = tok.ID
		a.AwaitingApproval = !tok.AutoApprove
	}
	if err := tx.PutAgent(index, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AgentUpdate changes the fields that are set on an existing agent. Every
// writer (re-registration, a heartbeat that brings news, an admin's PATCH)
// sends only what it knows, so none of them overwrites another's field.
type AgentUpdate struct {
	ID          string        `json:"id"`
	Address     *string       `json:"address,omitempty"`
	Capacity    *slots.Slots  `json:"capacity,omitempty"`
	Node        *api.NodeInfo `json:"node,omitempty"`
	Images      *[]api.Image  `json:"images,omitempty"`
	Version     *string       `json:"version,omitempty"`
	Status      *string       `json:"status,omitempty"`
	Schedulable *bool         `json:"schedulable,omitempty"`
	// GPUs replaces the GPU inventory (an empty list: the agent has none
	// now); GPUShareQuantum its cuda.shares quantum.
	GPUs            *[]api.GPUDevice `json:"gpus,omitempty"`
	GPUShareQuantum *int64           `json:"gpu_share_quantum,omitempty"`
	FolderHosts     *[]string        `json:"folder_hosts,omitempty"`
	// LastHeartbeatAt only moves forward: an entry proposed before a later
	// one but applied after it must not turn the clock back.
	LastHeartbeatAt *time.Time `json:"last_heartbeat_at,omitempty"`

	// ProjectQuotaHosts: see state.Agent (registration only).
	ProjectQuotaHosts *[]string `json:"project_quota_hosts,omitempty"`
	// Simulated marks the agent simulated (a registration saying so);
	// false changes nothing: no update makes a simulated agent real.
	Simulated bool `json:"simulated,omitempty"`
}

// MsgType implements Command.
func (AgentUpdate) MsgType() MsgType { return MsgAgentUpdate }

func applyAgentUpdate(tx *state.Txn, index uint64, c *AgentUpdate) (any, error) {
	old, err := tx.Agent(c.ID)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no agent %s", c.ID)
	}
	if c.Status != nil && *c.Status != state.AgentAlive && *c.Status != state.AgentLost {
		return nil, apierr.Field(apierr.Invalid, "status", "status must be ALIVE or LOST")
	}
	a := *old
	setIf(&a.Address, c.Address)
	setIf(&a.Node, c.Node)
	setIf(&a.Version, c.Version)
	setIf(&a.Status, c.Status)
	setIf(&a.Schedulable, c.Schedulable)
	if c.Capacity != nil {
		a.Capacity = c.Capacity.Clone()
	}
	if c.Images != nil {
		a.Images = slices.Clone(*c.Images)
	}
	if c.GPUs != nil {
		a.GPUs = slices.Clone(*c.GPUs)
	}
	setIf(&a.GPUShareQuantum, c.GPUShareQuantum)
	if c.FolderHosts != nil {
		a.FolderHosts = slices.Clone(*c.FolderHosts)
	}
	if c.ProjectQuotaHosts != nil {
		a.ProjectQuotaHosts = slices.Clone(*c.ProjectQuotaHosts)
	}
	a.Simulated = a.Simulated || c.Simulated
	if c.LastHeartbeatAt != nil && c.LastHeartbeatAt.After(a.LastHeartbeatAt) {
		a.LastHeartbeatAt = *c.LastHeartbeatAt
	}
	if err := tx.PutAgent(index, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AgentsLost marks agents LOST: the leader found them silent for longer
// than the heartbeat timeout.
type AgentsLost struct {
	// At is the leader's clock when it decided.
	At     time.Time   `json:"at"`
	Agents []LostAgent `json:"agents"`
}

// LostAgent is one agent the leader found silent, with the last sign of
// life it knew of.
type LostAgent struct {
	ID       string    `json:"id"`
	LastSeen time.Time `json:"last_seen"`
}

// MsgType implements Command.
func (AgentsLost) MsgType() MsgType { return MsgAgentsLost }

// judged is the agent the leader judged silent, if it is still as judged:
// present, in status, and not heard from after l.LastSeen (it came back
// while the entry was on its way). nil: skip it.
func judged(tx *state.Txn, l LostAgent, status string) (*state.Agent, error) {
	a, err := tx.Agent(l.ID)
	if err != nil || a == nil || a.Status != status || a.LastHeartbeatAt.After(l.LastSeen) {
		return nil, err
	}
	return a, nil
}

// applyAgentsLost returns the ids it marked. An agent is skipped when it is
// gone, already LOST, or when the log shows a heartbeat later than the one
// the leader judged by (it came back while the entry was on its way).
func applyAgentsLost(tx *state.Txn, index uint64, c *AgentsLost) (any, error) {
	var marked []string
	for _, l := range c.Agents {
		old, err := judged(tx, l, state.AgentAlive)
		if err != nil {
			return nil, err
		}
		if old == nil {
			continue
		}
		a := *old
		a.Status = state.AgentLost
		if err := agentLost(tx, index, &a, c.At); err != nil {
			return nil, err
		}
		if err := tx.PutAgent(index, &a); err != nil {
			return nil, err
		}
		marked = append(marked, a.ID)
	}
	return marked, nil
}

// agentLost is where the loss of an agent reaches what ran on it: every
// session holding slots on the agent becomes ERROR with reason agent-lost
// in the same entry, so they stop occupying slots at the same index the
// agent is lost.
func agentLost(tx *state.Txn, index uint64, a *state.Agent, at time.Time) error {
	return sessionsLost(tx, index, a.ID, at)
}
