package fsm

import (
	"time"

	"github.com/berth-cluster/berth/manager/state"
)

// The log entries of compute sessions. Their appliers live in
// sessions_apply.go; the rules they share with the scheduler (does a
// placement fit?) live in manager/sched, so planning and verification
// cannot disagree.

// SessionCreate records a new PENDING session. The handler has checked what
// does not depend on state (the request can fit the policy and the largest
// agent at all); Apply checks the keypair is still active.
type SessionCreate struct {
	Session state.Session `json:"session"`
}

// MsgType implements Command.
func (SessionCreate) MsgType() MsgType { return MsgSessionCreate }

// Plan is one batch of the scheduler's decisions. Apply re-verifies every
// placement against the state as it is then and refuses those that no
// longer fit (the session stays PENDING with the reason); one Raft round
// trip admits many sessions.
type Plan struct {
	At         time.Time   `json:"at"`
	Placements []Placement `json:"placements"`
	// Waits are sessions the scheduler could not place this round, with why.
	Waits []Wait `json:"waits"`
}

// Placement puts a PENDING session's containers on agents (Agents[i] runs
// container i).
type Placement struct {
	SessionID string   `json:"session_id"`
	Agents    []string `json:"agents"`
}

// Wait says why a session stays PENDING ("concurrency 3/3",
// "cpu 2 + 1 > 2").
type Wait struct {
	SessionID string `json:"session_id"`
	Info      string `json:"info"`
}

// MsgType implements Command.
func (Plan) MsgType() MsgType { return MsgPlan }

// SessionsReport carries what agents reported about sessions' containers,
// as the leader found it differs from the records: container states, exits,
// failures. Apply moves each session along its lifecycle accordingly.
type SessionsReport struct {
	At      time.Time         `json:"at"`
	Agent   string            `json:"agent"`
	Reports []ContainerReport `json:"reports"`
}

// ContainerReport is one container's news.
type ContainerReport struct {
	SessionID string `json:"session_id"`
	Index     int    `json:"index"`
	// Status as the agent reports it: created, running, exited, failed, gone.
	Status   string `json:"status"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// MsgType implements Command.
func (SessionsReport) MsgType() MsgType { return MsgSessionsReport }

// SessionTerminate ends a session: a PENDING one is CANCELLED at once, an
// occupying one goes TERMINATING (its agents stop its containers) and
// TERMINATED when they are gone. Reason: user-request, idle-timeout,
// session-lifetime, ...
type SessionTerminate struct {
	SessionID string    `json:"session_id"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason"`
}

// MsgType implements Command.
func (SessionTerminate) MsgType() MsgType { return MsgSessionTerminate }

// SessionsTouch records sessions' last activity (API use, busy CPU),
// gathered by the leader and written in batches.
type SessionsTouch struct {
	LastActivity map[string]time.Time `json:"last_activity"`
}

// MsgType implements Command.
func (SessionsTouch) MsgType() MsgType { return MsgSessionsTouch }
