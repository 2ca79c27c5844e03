package fsm

import (
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// A silent agent is first DISCONNECTED and only LOST once its grace has
// passed: a network blip or a hung agent process must not end sessions
// whose containers run on (issue 23). Both steps are entries of their own,
// and every rule they follow is decided here, against the state as it is
// when the entry is applied: the leader only says when it looked.

// AgentsDisconnected marks ALIVE agents DISCONNECTED: the leader found them
// silent for longer than the heartbeat timeout. Their sessions keep their
// status and their slots; nothing new is placed on them (the plan's
// invariants want ALIVE agents).
type AgentsDisconnected struct {
	// At is the leader's clock when it decided.
	At     time.Time   `json:"at"`
	Agents []LostAgent `json:"agents"`
}

// MsgType implements Command.
func (AgentsDisconnected) MsgType() MsgType { return MsgAgentsDisconnected }

// applyAgentsDisconnected returns the ids it marked. An agent is skipped
// when it is gone, not ALIVE, or when the log shows a heartbeat later than
// the one the leader judged by. The last heartbeat the leader knew of is
// recorded: the grace is measured from it, so a new leader (whose memory
// starts empty) measures from the same instant.
func applyAgentsDisconnected(tx *state.Txn, index uint64, c *AgentsDisconnected) (any, error) {
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
		a.Status = state.AgentDisconnected
		a.LastHeartbeatAt = l.LastSeen
		if err := tx.PutAgent(index, &a); err != nil {
			return nil, err
		}
		marked = append(marked, a.ID)
	}
	return marked, nil
}

// AgentsDisconnectExpire ends what outlived its grace on DISCONNECTED
// agents: an agent silent for longer than Grace (the leader's
// -disconnect-grace) becomes LOST and every session on it ERROR
// agent-lost; before that, a session whose policy's max_disconnect is
// shorter ends alone.
type AgentsDisconnectExpire struct {
	At time.Time `json:"at"`
	// Grace is the proposing manager's -disconnect-grace (nanoseconds).
	Grace  time.Duration `json:"grace"`
	Agents []LostAgent   `json:"agents"`
}

// MsgType implements Command.
func (AgentsDisconnectExpire) MsgType() MsgType { return MsgAgentsDisconnectExpire }

// DisconnectExpired is what applying AgentsDisconnectExpire at at with
// grace ends on the agent: whether the agent itself is past its grace
// (then every session it holds ends with it), else the sessions past their
// policy's shorter one. The grace counts from the last heartbeat recorded
// in the replicated state. The leader asks the same question before it
// proposes, so a disconnection that ends nothing writes nothing.
func DisconnectExpired(tx *state.Txn, a *state.Agent, at time.Time, grace time.Duration) (agentLost bool, sessions []*state.Session, err error) {
	if a == nil || a.Status != state.AgentDisconnected {
		return false, nil, nil
	}
	silent := at.Sub(a.LastHeartbeatAt)
	ss, err := tx.OccupyingOnAgent(a.ID)
	if err != nil {
		return false, nil, err
	}
	if silent > grace {
		return true, ss, nil
	}
	policies := map[string]*state.ResourcePolicy{}
	for _, s := range ss {
		p, seen := policies[s.AccessKey]
		if !seen {
			if p, err = sessionPolicy(tx, s); err != nil {
				return false, nil, err
			}
			policies[s.AccessKey] = p
		}
		if silent > p.DisconnectGrace(grace) {
			sessions = append(sessions, s)
		}
	}
	return false, sessions, nil
}

// sessionPolicy is the policy of the session's keypair as it is now, or
// nil when the keypair or its policy is gone.
func sessionPolicy(tx *state.Txn, s *state.Session) (*state.ResourcePolicy, error) {
	kp, err := tx.Keypair(s.AccessKey)
	if err != nil || kp == nil {
		return nil, err
	}
	return tx.ResourcePolicy(kp.ResourcePolicy)
}

// DisconnectExpiry is the answer of AgentsDisconnectExpire: the agents it
// marked LOST and the sessions it ended, each list in entry order.
type DisconnectExpiry struct {
	Lost     []string `json:"lost,omitempty"`
	Sessions []string `json:"sessions,omitempty"`
}

// applyAgentsDisconnectExpire skips an agent that is gone, no longer
// DISCONNECTED, or heard from after the heartbeat the leader judged by.
func applyAgentsDisconnectExpire(tx *state.Txn, index uint64, c *AgentsDisconnectExpire) (any, error) {
	out := &DisconnectExpiry{}
	for _, l := range c.Agents {
		old, err := judged(tx, l, state.AgentDisconnected)
		if err != nil {
			return nil, err
		}
		if old == nil {
			continue
		}
		lost, ended, err := DisconnectExpired(tx, old, c.At, c.Grace)
		if err != nil {
			return nil, err
		}
		reason := AgentLostReason(old.LastHeartbeatAt)
		for _, s := range ended {
			n := s.Copy()
			transition(n, api.SessionError, c.At, reason)
			if err := tx.PutSession(index, n); err != nil {
				return nil, err
			}
			out.Sessions = append(out.Sessions, n.ID)
		}
		if lost {
			a := *old
			a.Status = state.AgentLost
			if err := tx.PutAgent(index, &a); err != nil {
				return nil, err
			}
			out.Lost = append(out.Lost, a.ID)
		}
	}
	return out, nil
}

// AgentLostReason is the status_info of a session ended with its agent:
// agent-lost and the time of the agent's last heartbeat.
func AgentLostReason(lastHeartbeat time.Time) string {
	return "agent-lost: last heartbeat " + lastHeartbeat.UTC().Format(time.RFC3339)
}
