package state

import (
	"fmt"
	"iter"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Agent statuses.
// (shared/api defines them; AgentDisconnected: silent past the heartbeat
// timeout but within the disconnect grace. Nothing new is placed on it;
// its sessions keep their status and their slots until it is back or the
// grace ends.)
const (
	AgentAlive        = api.AgentAlive
	AgentDisconnected = api.AgentDisconnected
	AgentLost         = api.AgentLost
)

// AgentStatuses are the agent statuses, in the order people read them.
func AgentStatuses() []string { return []string{AgentAlive, AgentDisconnected, AgentLost} }

// Agent is a node that runs sessions. Capacity is what it reported
// (hardware minus reserved); what it has occupied is derived from the
// session records, never stored here. What it measures (usage, the
// containers it runs) changes every heartbeat and lives only in the
// leader's memory; LastHeartbeatAt here is refreshed now and then, not on
// every beat.
type Agent struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Secret authenticates the agent's heartbeats and, the other way, the
	// managers' calls to the agent (exec, logs). It is kept as it is, like a
	// keypair secret, because the managers must present it; it leaves the
	// manager only in the registration answer.
	Secret      string       `json:"secret"`
	Status      string       `json:"status"`
	Schedulable bool         `json:"schedulable"`
	Capacity    slots.Slots  `json:"capacity"`
	Node        api.NodeInfo `json:"node"`
	Images      []api.Image  `json:"images"`
	// GPUs is the agent's GPU inventory as it last reported it, and
	// GPUShareQuantum the step its cuda.shares slices are cut in (slots
	// units). What sessions hold of each GPU is derived (usage.go).
	GPUs            []api.GPUDevice `json:"gpus,omitempty"`
	GPUShareQuantum int64           `json:"gpu_share_quantum,omitempty"`
	// FolderHosts are the storage folder hosts the agent can mount.
	FolderHosts     []string  `json:"folder_hosts,omitempty"`
	Version         string    `json:"version"`
	LastHeartbeatAt time.Time `json:"last_heartbeat_at"`

	// AwaitingApproval: the agent joined with a token that does not
	// approve it, and nothing is placed on it until a superadmin approves
	// it. It is the negative so that records written before approval
	// existed (snapshots, log entries) decode as approved: an upgrade never
	// strands the nodes that run sessions.
	AwaitingApproval bool       `json:"awaiting_approval,omitempty"`
	ApprovedBy       string     `json:"approved_by,omitempty"`
	ApprovedAt       *time.Time `json:"approved_at,omitempty"`
	// JoinToken is the id of the agent token it registered with; "" for
	// the managers' shared -agent-token.
	JoinToken string `json:"join_token,omitempty"`

	// ProjectQuotaHosts are those of FolderHosts where the agent enforces
	// folder limits with project quotas (as it reported at registration).
	ProjectQuotaHosts []string `json:"project_quota_hosts,omitempty"`

	// Simulated: the agent said it runs a simulated runtime (nothing placed
	// on it runs). Once set it stays: see fsm.AgentPut.
	Simulated bool `json:"simulated,omitempty"`
	Meta
}

func (a *Agent) id() string { return a.ID }

const tableAgents = "agents"

func agentsTable() Table {
	return Table{Name: tableAgents, ID: 9, New: func() any { return new(Agent) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "ID", true, false),
		}}}
}

// Agent returns the agent with the id or nil.
func (t *Txn) Agent(id string) (*Agent, error) { return first[Agent](t, tableAgents, "id", id) }

// Agents lists every agent by id.
func (t *Txn) Agents() ([]*Agent, error) { return list[Agent](t, tableAgents, "id") }

// AgentSeq walks the agents in id order for as long as the caller's loop
// runs: a check that stops at the first agent that will do costs that
// agent, not the whole table. Each loop over it starts from the first agent.
func (t *Txn) AgentSeq() (iter.Seq[*Agent], error) {
	if _, err := t.tx.Get(tableAgents, "id"); err != nil {
		return nil, fmt.Errorf("list %s: %w", tableAgents, err)
	}
	return func(yield func(*Agent) bool) {
		// The same lookup just succeeded on this transaction, whose
		// schema cannot change: it cannot fail here.
		it, err := t.tx.Get(tableAgents, "id")
		if err != nil {
			return
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if !yield(raw.(*Agent)) {
				return
			}
		}
	}, nil
}

// PutAgent inserts or replaces an agent at the Raft index.
func (t *Txn) PutAgent(index uint64, a *Agent) error { return t.put(tableAgents, index, a) }
