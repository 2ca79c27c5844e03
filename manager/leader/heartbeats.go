package leader

import (
	"context"
	"maps"
	"slices"
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
// agentMemory) and the replicated value only has to be recent enough for
// a follower's stale read and for a new leader to show something sensible
// until the agent's next beat. LOST is never judged from it.
const agentRecordEvery = 30 * time.Second

// agentMemory is the leader's view of its agents: when each last
// heartbeated and what it last reported. It is never replicated and lives
// for one leadership.
type agentMemory struct {
	mu    sync.Mutex
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

func newAgentMemory() *agentMemory { return &agentMemory{beats: map[string]*agentBeat{}} }

// beat records a heartbeat; report is nil for a registration (a sign of
// life that carries no measurements). It returns the errors the previous
// report had, so the caller can log only what changed.
func (m *agentMemory) beat(id string, at time.Time, report *api.AgentHeartbeat) (previousErrors []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.beats[id]
	if b == nil {
		b = &agentBeat{}
		m.beats[id] = b
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

// merge applies a report of the containers that changed (Leader.Report) to
// the agent's last report: each replaces the container of its id (keeping
// the usage the last heartbeat measured), one reported gone leaves it. The
// list is copied, never changed in place: readers hold the old one.
func (m *agentMemory) merge(id string, changed []api.ContainerReport) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.beats[id]
	if b == nil {
		b = &agentBeat{}
		m.beats[id] = b
	}
	byID := make(map[string]api.ContainerReport, len(changed))
	for _, r := range changed {
		byID[r.ID] = r
	}
	out := make([]api.ContainerReport, 0, len(b.containers)+len(changed))
	for _, old := range b.containers {
		r, ok := byID[old.ID]
		if !ok {
			out = append(out, old)
			continue
		}
		delete(byID, old.ID)
		if r.Status == api.ContainerGone {
			continue
		}
		r.CPUSeconds, r.MemoryWorkingSet, r.GPUMemoryBytes = old.CPUSeconds, old.MemoryWorkingSet, old.GPUMemoryBytes
		out = append(out, r)
	}
	for _, r := range changed {
		if _, new := byID[r.ID]; new && r.Status != api.ContainerGone {
			out = append(out, r)
			delete(byID, r.ID)
		}
	}
	b.containers = out
}

// last returns the time of the agent's last heartbeat and its usage; ok is
// false when this leadership has heard nothing from it yet.
func (m *agentMemory) last(id string) (at time.Time, usage api.AgentUsage, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.beats[id]
	if b == nil || b.at.IsZero() {
		return time.Time{}, api.AgentUsage{}, false
	}
	return b.at, b.usage, true
}

// reported is the containers of the agent's last heartbeat.
func (m *agentMemory) reported(id string) []api.ContainerReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.beats[id]; b != nil {
		return b.containers
	}
	return nil
}

// seen is when the agent last showed a sign of life to this leadership:
// its last beat, or the start of the leadership.
func (m *agentMemory) seen(id string, since time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.beats[id]; b != nil && b.at.After(since) {
		return b.at
	}
	return since
}

// AgentRegistered notes an agent's registration as a sign of life.
func (l *Leader) AgentRegistered(id string, at time.Time) {
	if t := l.current(); t != nil {
		t.agents.beat(id, at, nil)
	}
}

// AgentReconnected notes that a DISCONNECTED agent is back (it registered
// again) before its ALIVE is proposed: its sessions' activity (see
// activity.reconnected).
func (l *Leader) AgentReconnected(id string, at time.Time) {
	if t := l.current(); t != nil {
		if err := t.activity.reconnected(l.cfg.Cluster.Read(), id, at); err != nil {
			l.log.Error("note a reconnected agent's sessions as active", "agent", id, "err", err)
		}
	}
}

// LastHeartbeat is when the agent last heartbeated to this leader and what
// it reported using; ok is false on a manager that does not lead or has
// not heard from the agent since it began to.
func (l *Leader) LastHeartbeat(id string) (at time.Time, usage api.AgentUsage, ok bool) {
	t := l.current()
	if t == nil {
		return time.Time{}, api.AgentUsage{}, false
	}
	return t.agents.last(id)
}

// Heartbeat takes an agent's heartbeat (its record as the caller
// authenticated it; the report decoded and checked): the beat and its report
// go to the leader's memory, and Raft sees only what changed in the
// replicated record (heartbeatUpdate) and what the containers' news changes
// in their sessions (reportSessions), so a steady cluster writes nothing
// per beat. It returns the agent's record as it is now.
func (l *Leader) Heartbeat(ctx context.Context, rec *state.Agent, hb *api.AgentHeartbeat) (*state.Agent, error) {
	now := l.now()
	t := l.current()
	if t == nil {
		// Not leading (any more): the request came in as leadership moved.
		// Nothing is remembered, and the writes below are refused.
		t = newTerm(now)
	}
	before := t.agents.beat(rec.ID, now, hb)
	l.metrics.beats.Inc()
	if !slices.Equal(before, hb.Errors) && len(hb.Errors) > 0 {
		l.log.Warn("agent reports errors", "agent", rec.ID, "errors", hb.Errors)
	}
	if upd := heartbeatUpdate(rec, hb, now); upd != nil {
		if rec.Status == state.AgentDisconnected {
			// Before the ALIVE is proposed: see idle.round.
			if err := t.activity.reconnected(l.cfg.Cluster.Read(), rec.ID, now); err != nil {
				return nil, err
			}
		}
		updated, err := proposeValue[*state.Agent](ctx, l.cfg.Cluster, *upd)
		if err != nil {
			return nil, err
		}
		if rec.Status != state.AgentAlive {
			l.log.Info("agent is back", "agent", rec.ID, "was", rec.Status)
		}
		rec = updated
	}
	// What the containers do moves their sessions along (reports.go).
	if err := l.reportSessions(ctx, t, rec.ID, now, hb); err != nil {
		return nil, err
	}
	return rec, nil
}

// heartbeatUpdate is the Raft write a heartbeat needs, or nil: only a
// change of status (DISCONNECTED or LOST → ALIVE), address, capacity, images, GPU
// inventory, share quantum or folder hosts, or a replicated
// last_heartbeat_at older than agentRecordEvery, is written. The report's
// lists come sorted (images, GPUs, folder hosts) from the caller, so the
// same things in another order are no change.
func heartbeatUpdate(rec *state.Agent, hb *api.AgentHeartbeat, now time.Time) *fsm.AgentUpdate {
	u := fsm.AgentUpdate{ID: rec.ID}
	changed := false
	if rec.Status != state.AgentAlive {
		alive := state.AgentAlive
		u.Status, changed = &alive, true
	}
	if hb.Address != "" && hb.Address != rec.Address {
		u.Address, changed = &hb.Address, true
	}
	if hb.Capacity != nil && !maps.Equal(hb.Capacity, rec.Capacity) {
		u.Capacity, changed = &hb.Capacity, true
	}
	if hb.Images != nil && !slices.Equal(hb.Images, rec.Images) {
		u.Images, changed = &hb.Images, true
	}
	if hb.GPUs != nil && !slices.Equal(hb.GPUs, nonNil(rec.GPUs)) {
		u.GPUs, changed = &hb.GPUs, true
	}
	if hb.GPUShareQuantum != 0 && hb.GPUShareQuantum != rec.GPUShareQuantum {
		u.GPUShareQuantum, changed = &hb.GPUShareQuantum, true
	}
	if hb.FolderHosts != nil && !slices.Equal(hb.FolderHosts, nonNil(rec.FolderHosts)) {
		u.FolderHosts, changed = &hb.FolderHosts, true
	}
	if !changed && now.Sub(rec.LastHeartbeatAt) < agentRecordEvery {
		return nil
	}
	u.LastHeartbeatAt = &now
	return &u
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
