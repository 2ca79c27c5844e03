package fsm

import (
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// WrongAgentToken is the answer to a registration whose token is neither
// the managers' shared -agent-token nor an agent token they issued. It
// says nothing about which tokens exist.
const WrongAgentToken = "wrong or missing agent token: send the managers' -agent-token or a token from " +
	"'berth agent token create' in the X-Berth-Agent-Token header"

// AgentTokenCreate stores a new agent token: id, hash, times and expiry are
// made by the handler (the token itself never enters the log).
type AgentTokenCreate struct {
	Token state.AgentToken `json:"token"`
}

// MsgType implements Command.
func (AgentTokenCreate) MsgType() MsgType { return MsgAgentTokenCreate }

func applyAgentTokenCreate(tx *state.Txn, index uint64, c *AgentTokenCreate) (any, error) {
	k := c.Token
	if old, err := tx.AgentToken(k.ID); err != nil || old != nil {
		if err != nil {
			return nil, err
		}
		return nil, apierr.New(apierr.Conflict, "agent token %s already exists", k.ID)
	}
	if old, err := tx.AgentTokenByHash(k.Hash); err != nil || old != nil {
		if err != nil {
			return nil, err
		}
		// Tokens are random: a clash is a proposer's bug, never a reason
		// to let one token stand for two records.
		return nil, apierr.New(apierr.Conflict, "an agent token with this hash already exists")
	}
	k.Used = 0
	k.RevokedAt = nil
	if err := tx.PutAgentToken(index, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// AgentTokenRevoke ends an agent token at At: no agent registers with it
// afterwards. Agents that joined with it keep their own secrets (remove
// them from scheduling with PATCH /v1/agents/{id}). Revoking a revoked
// token changes nothing.
type AgentTokenRevoke struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// MsgType implements Command.
func (AgentTokenRevoke) MsgType() MsgType { return MsgAgentTokenRevoke }

func applyAgentTokenRevoke(tx *state.Txn, index uint64, c *AgentTokenRevoke) (any, error) {
	old, err := tx.AgentToken(c.ID)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no agent token %s", c.ID)
	}
	if old.RevokedAt != nil {
		return old, nil
	}
	k := *old
	at := c.At
	k.RevokedAt = &at
	if err := tx.PutAgentToken(index, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// useAgentToken admits one agent with the token whose hash is given, at
// the proposer's clock: it must exist, not be revoked or expired, and have
// a use left, which it takes.
func useAgentToken(tx *state.Txn, index uint64, hash string, at time.Time) (*state.AgentToken, error) {
	old, err := tx.AgentTokenByHash(hash)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.Unauthorized, WrongAgentToken)
	}
	if why := old.Refusal(at); why != "" {
		return nil, apierr.New(apierr.Unauthorized, "%s; ask a superadmin for a new one (berth agent token create)", why)
	}
	k := *old
	k.Used++
	if err := tx.PutAgentToken(index, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// AgentApprove lets the scheduler place sessions on an agent that joined
// with a token that did not approve it. Approving an approved agent
// changes nothing. There is no way back but PATCH schedulable=false:
// approval says the node is the cluster's, schedulable whether it takes
// work now.
type AgentApprove struct {
	ID string    `json:"id"`
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// MsgType implements Command.
func (AgentApprove) MsgType() MsgType { return MsgAgentApprove }

func applyAgentApprove(tx *state.Txn, index uint64, c *AgentApprove) (any, error) {
	old, err := tx.Agent(c.ID)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no agent %s", c.ID)
	}
	if !old.AwaitingApproval {
		return old, nil
	}
	a := *old
	at := c.At
	a.AwaitingApproval, a.ApprovedBy, a.ApprovedAt = false, c.By, &at
	if err := tx.PutAgent(index, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
