package api

import "slices"

// SessionStatus is where a session is in its life (docs/SESSIONS.md):
// PENDING → SCHEDULED → PREPARING → RUNNING → TERMINATING → TERMINATED,
// plus ERROR and CANCELLED.
//
// Whatever asks "has this session ended, does it hold slots, should its
// containers run" — the managers' log appliers, scheduler, leader and
// handlers, the CLI — asks these methods rather than list statuses of its
// own. The appliers decide with them, so a change to a set changes what an
// old log replays to: it needs a new entry version (manager/DESIGN.md,
// "Deciding and applying"). The console reads the same sets from
// manager/console/web/assets/status.js, which a test holds to these.
type SessionStatus string

// Session statuses.
const (
	SessionPending     SessionStatus = "PENDING"
	SessionScheduled   SessionStatus = "SCHEDULED"
	SessionPreparing   SessionStatus = "PREPARING"
	SessionRunning     SessionStatus = "RUNNING"
	SessionTerminating SessionStatus = "TERMINATING"
	SessionTerminated  SessionStatus = "TERMINATED"
	SessionError       SessionStatus = "ERROR"
	SessionCancelled   SessionStatus = "CANCELLED"
)

// SessionStatuses are all the session statuses, in the order of a
// session's life.
func SessionStatuses() []SessionStatus {
	return []SessionStatus{SessionPending, SessionScheduled, SessionPreparing, SessionRunning,
		SessionTerminating, SessionTerminated, SessionError, SessionCancelled}
}

// Known reports whether s is one of SessionStatuses.
func (s SessionStatus) Known() bool { return slices.Contains(SessionStatuses(), s) }

// Ended: TERMINATED, ERROR or CANCELLED. Final: nothing happens to the
// session any more, it holds nothing and mounts nothing.
func (s SessionStatus) Ended() bool {
	return s == SessionTerminated || s == SessionError || s == SessionCancelled
}

// EndingOrEnded: TERMINATING or ended. Its end was decided; asking to
// terminate it again changes nothing, and its status_info says why it ends.
func (s SessionStatus) EndingOrEnded() bool { return s == SessionTerminating || s.Ended() }

// Occupying: SCHEDULED, PREPARING, RUNNING or TERMINATING. The session's
// containers hold their slots (and GPU slices) on their agents, and it
// counts against max_concurrent_sessions.
func (s SessionStatus) Occupying() bool {
	return s == SessionScheduled || s == SessionPreparing || s == SessionRunning || s == SessionTerminating
}

// Active: SCHEDULED, PREPARING or RUNNING. The session was placed and not
// asked to end: its agents are to run its containers, and its policy's
// idle timeout and lifetime apply.
func (s SessionStatus) Active() bool {
	return s == SessionScheduled || s == SessionPreparing || s == SessionRunning
}

// ContainerStatus is where one container of a session is. The managers
// record ContainerScheduled when they place it; from then on it is what
// its agent last reported (ContainerReport), and an ended container never
// changes again. The console reads the same sets from status.js.
type ContainerStatus string

// Container statuses.
const (
	// ContainerScheduled: placed; its agent has not reported it yet.
	ContainerScheduled ContainerStatus = "scheduled"
	// ContainerPulling: its agent is pulling its image (Reason says how
	// far); the session is PREPARING meanwhile.
	ContainerPulling ContainerStatus = "pulling"
	// ContainerCreated: the agent made it; its task has not started.
	ContainerCreated ContainerStatus = "created"
	ContainerRunning ContainerStatus = "running"
	// ContainerExited: its task ended (ContainerReport.ExitCode says how).
	ContainerExited ContainerStatus = "exited"
	// ContainerFailed: the agent could not start it (Reason says why).
	ContainerFailed ContainerStatus = "failed"
	// ContainerGone: it was started and has vanished from its agent, or
	// was stopped because its session ended.
	ContainerGone ContainerStatus = "gone"
)

// ContainerStatuses are all the container statuses.
func ContainerStatuses() []ContainerStatus {
	return []ContainerStatus{ContainerScheduled, ContainerPulling, ContainerCreated, ContainerRunning,
		ContainerExited, ContainerFailed, ContainerGone}
}

// Reported reports whether an agent may report s: every status but
// ContainerScheduled, which only the managers write.
func (s ContainerStatus) Reported() bool {
	return s != ContainerScheduled && slices.Contains(ContainerStatuses(), s)
}

// Ended: exited, failed or gone. Final: a later report cannot revive it.
func (s ContainerStatus) Ended() bool {
	return s == ContainerExited || s == ContainerFailed || s == ContainerGone
}

// Waiting: scheduled or pulling. Its agent has not made it yet; once made,
// it never waits again.
func (s ContainerStatus) Waiting() bool { return s == ContainerScheduled || s == ContainerPulling }

// Present: created or running. Its agent has it and it has not ended, so
// an agent that no longer lists it lost it.
func (s ContainerStatus) Present() bool { return s == ContainerCreated || s == ContainerRunning }
