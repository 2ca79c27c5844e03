package httpapi

import (
	"sync"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// agentRecordEvery bounds how often a heartbeat that brings no news writes
// last_heartbeat_at through Raft: once per agent per 30 s. Heartbeats come
// every 3 s, so writing each would make agents the bulk of the log and of
// every follower's work; the leader keeps the exact time in memory (see
// agentLiveness) and the replicated value only has to be recent enough for
// a follower's stale read and for a new leader to show something sensible
// until the agent's next beat. LOST is never judged from it.
const agentRecordEvery = 30 * time.Second

// agentLiveness is the leader's in-memory view of its agents: when each last
// heartbeated and what it last reported. It is never replicated: a new
// leader starts every agent's clock afresh (StartAgentClocks), so an agent
// has a full heartbeat timeout to find the new leader before it is LOST.
type agentLiveness struct {
	mu sync.Mutex
	// since is when this manager started judging (it became leader); zero
	// while it is not the leader.
	since time.Time
	beats map[string]*agentBeat
}

// agentBeat is the last heartbeat of one agent.
type agentBeat struct {
	at         time.Time
	usage      api.AgentUsage
	containers []api.ContainerReport
	errors     []string
	pulls      []api.ImagePull
}

func newAgentLiveness() *agentLiveness { return &agentLiveness{beats: map[string]*agentBeat{}} }

// beat records a heartbeat; report is nil for a registration (a sign of
// life that carries no measurements). It returns the errors the previous
// report had, so the caller can log only what changed.
func (l *agentLiveness) beat(id string, at time.Time, report *api.AgentHeartbeat) (previousErrors []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.beats[id]
	if b == nil {
		b = &agentBeat{}
		l.beats[id] = b
	}
	previousErrors = b.errors
	if at.After(b.at) {
		b.at = at
	}
	if report != nil {
		b.containers = report.Containers
		b.errors = report.Errors
		b.pulls = report.Pulls
		b.usage = api.AgentUsage{Containers: len(report.Containers)}
		for _, c := range report.Containers {
			b.usage.CPUSeconds += c.CPUSeconds
			b.usage.MemoryWorkingSet += c.MemoryWorkingSet
		}
	}
	return previousErrors
}

// last returns the time of the agent's last heartbeat here and its usage;
// ok is false when this manager has heard nothing from it (a follower, or a
// leader the agent has not reached yet).
func (l *agentLiveness) last(id string) (at time.Time, usage api.AgentUsage, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.beats[id]
	if b == nil || b.at.IsZero() {
		return time.Time{}, api.AgentUsage{}, false
	}
	return b.at, b.usage, true
}

// StartAgentClocks is called when this manager becomes the leader: what it
// remembers from an earlier term is dropped, and every agent is taken to
// have been seen now (a grace period), since the agents were heartbeating
// to the old leader and the replicated last_heartbeat_at is up to 30 s old.
func (a *API) StartAgentClocks(now time.Time) {
	l := a.agents
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = now
	l.beats = map[string]*agentBeat{}
}

// StopAgentClocks is called when this manager stops leading: it forgets
// the agents' reports, which only the leader receives, so a follower shows
// no stale usage.
func (a *API) StopAgentClocks() {
	l := a.agents
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = time.Time{}
	l.beats = map[string]*agentBeat{}
}

// SilentAgents lists the ALIVE agents that have not heartbeated for longer
// than timeout, each with the last sign of life the leader judged by
// (which the FSM compares with the log, see fsm.AgentsLost). It lists
// nothing on a manager that is not judging (not the leader).
func (a *API) SilentAgents(now time.Time, timeout time.Duration) ([]fsm.LostAgent, error) {
	agents, err := a.cluster.State().Read().Agents()
	if err != nil {
		return nil, err
	}
	l := a.agents
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since.IsZero() {
		return nil, nil
	}
	var out []fsm.LostAgent
	for _, ag := range agents {
		if ag.Status != state.AgentAlive {
			continue
		}
		seen := l.since
		if b := l.beats[ag.ID]; b != nil && b.at.After(seen) {
			seen = b.at
		}
		if now.Sub(seen) > timeout {
			out = append(out, fsm.LostAgent{ID: ag.ID, LastSeen: seen})
		}
	}
	return out, nil
}
