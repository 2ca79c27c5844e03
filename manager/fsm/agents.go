package fsm

import (
	"github.com/berth-cluster/berth/manager/state"
)

// AgentPut records an agent as it registered or heartbeated: its address,
// capacity and liveness. Occupancy is not in it: that is derived from
// session records.
type AgentPut struct {
	Agent state.Agent `json:"agent"`
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
		a.Meta = old.Meta
	}
	if err := tx.PutAgent(index, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
