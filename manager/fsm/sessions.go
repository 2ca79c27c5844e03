package fsm

import (
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// The log entries of compute sessions. Their appliers live in
// sessions_apply.go and plan.go. Where a session runs is the leader's
// scheduler's decision (manager/sched), carried whole in the Plan; the
// applier holds it to a frozen set of invariants (plan_check.go) and never
// decides anything itself, so no change to the scheduler can change what
// replaying a log produces.

// SessionCreate records a new PENDING session. The handler has checked what
// does not depend on state (the request can fit the policy and the largest
// agent at all); Apply checks the keypair is still active.
type SessionCreate struct {
	Session state.Session `json:"session"`
}

// MsgType implements Command.
func (SessionCreate) MsgType() MsgType { return MsgSessionCreate }

// PlanVersion is the shape of the Plan body this manager writes and reads.
// A body of a later version stops the applier (fsm.go): a shape it does
// not know could mean something it cannot check. Version 2 (issue 20)
// adds invariant 9: a session's containers are all on one agent (they
// share one network, which is one agent's); version 1 plans are still
// applied without it, as they were.
const PlanVersion = 2

// Plan (entry 46) is one batch of the leader's decisions, complete: for
// every container of every placed session, the agent and the exact GPU
// slices. Apply verifies each placement against the state as it is then
// plus this plan's earlier placements, records it as it is or refuses it
// with a code (the session stays PENDING); one Raft round trip admits many
// sessions. Old managers wrote PlanV1 (plan_v1.go).
type Plan struct {
	// Version is PlanVersion; absent (0) reads as 1.
	Version    int         `json:"version,omitempty"`
	At         time.Time   `json:"at"`
	Placements []Placement `json:"placements"`
	// Waits are sessions the scheduler could not place this round, with why.
	Waits []Wait `json:"waits"`
}

// Placement puts a PENDING session's containers: Containers[i] is where
// container i runs and what it holds of the agent's GPUs.
type Placement struct {
	SessionID  string            `json:"session_id"`
	Containers []PlacedContainer `json:"containers"`
}

// PlacedContainer is one container's agent and GPU slices (none for a
// container that asks for no GPU).
type PlacedContainer struct {
	Agent string           `json:"agent"`
	GPUs  []state.GPUSlice `json:"gpus,omitempty"`
}

// Wait says why a session stays PENDING, in the scheduler's words
// ("concurrency 3/3", "no agent has cpu 1.5 free (largest 1)"). The words
// are the leader's and travel in the entry, so replaying it writes the
// same text whatever this manager's scheduler would say.
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
	// Status as the agent reports it (api.ContainerStatus.Reported).
	Status   api.ContainerStatus `json:"status"`
	ExitCode *int                `json:"exit_code,omitempty"`
	Reason   string              `json:"reason,omitempty"`
	// ImageDigest is the digest of the image the container was made from.
	ImageDigest string `json:"image_digest,omitempty"`
	// Address is the container's address on its session's network.
	Address string `json:"address,omitempty"`
	// ExitedAt is when an exited container's task ended, by its agent's
	// clock: an exit the agent could not report at once (it was
	// disconnected) ends its session at its real time (endTime).
	ExitedAt *time.Time `json:"exited_at,omitempty"`
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
