package leader

import (
	"context"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
)

// liveness judges silent agents in two steps. An ALIVE agent silent longer
// than the heartbeat timeout, by this leadership's own clock, is proposed
// DISCONNECTED: it gets no new work, its sessions keep running and holding
// their slots. A DISCONNECTED agent silent longer than the disconnect grace,
// counted from the last heartbeat in the replicated state, is proposed
// LOST (its sessions end ERROR agent-lost); a session whose policy's
// max_disconnect is shorter ends on its own before. The clocks are the
// leadership's memory, started at its beginning, and nothing is expired
// before a leadership is one heartbeat timeout old, so a failover gives
// every agent a full timeout to reach the new leader: it can delay a
// DISCONNECTED or a LOST, never cause one.
type liveness struct {
	l       *Leader
	t       *term
	timeout time.Duration
	grace   time.Duration
}

func (l *Leader) newLiveness(t *term) *liveness {
	return &liveness{l: l, t: t, timeout: l.cfg.HeartbeatTimeout, grace: l.cfg.DisconnectGrace}
}

// checkEvery is how often silent agents are looked for: every second, or
// more often for a short timeout (tests), so an agent is judged at most a
// tenth of the timeout late.
func (v *liveness) checkEvery() time.Duration {
	return min(time.Second, max(v.timeout/10, 50*time.Millisecond))
}

func (v *liveness) run(ctx context.Context) {
	every(ctx, v.checkEvery(), func(ctx context.Context) {
		v.markDisconnected(ctx)
		v.expire(ctx)
	})
}

// silent lists the ALIVE agents not heard from for longer than the
// timeout at now, each with the last sign of life it was judged by (which
// the FSM compares with the log, see fsm.AgentsDisconnected).
func (v *liveness) silent(now time.Time) ([]fsm.LostAgent, error) {
	agents, err := v.l.cfg.Cluster.Read().Agents()
	if err != nil {
		return nil, err
	}
	var out []fsm.LostAgent
	for _, ag := range agents {
		if ag.Status != state.AgentAlive {
			continue
		}
		seen := v.t.agents.seen(ag.ID, v.t.since)
		if now.Sub(seen) > v.timeout {
			// The replicated heartbeat may be newer than this leadership's
			// memory (a registration, or a beat to the previous leader).
			if ag.LastHeartbeatAt.After(seen) {
				seen = ag.LastHeartbeatAt
			}
			out = append(out, fsm.LostAgent{ID: ag.ID, LastSeen: seen})
		}
	}
	return out, nil
}

// markDisconnected proposes DISCONNECTED for the agents silent past the
// timeout.
func (v *liveness) markDisconnected(ctx context.Context) {
	now := v.l.now()
	silent, err := v.silent(now)
	if err != nil {
		v.l.log.Error("look for silent agents", "err", err)
		return
	}
	if len(silent) == 0 {
		return
	}
	marked, err := proposeValue[[]string](ctx, v.l.cfg.Cluster, fsm.AgentsDisconnected{At: now, Agents: silent})
	if err != nil {
		if ctx.Err() == nil {
			v.l.log.Warn("mark agents disconnected", "agents", len(silent), "err", err)
		}
		return
	}
	for _, id := range marked {
		v.l.metrics.disconnected.Inc()
		v.l.log.Warn("agent disconnected: no heartbeat within the timeout; its sessions are kept for the grace",
			"agent", id, "timeout", v.timeout, "grace", v.grace)
	}
}

// overdue lists the DISCONNECTED agents on which applying
// fsm.AgentsDisconnectExpire now would end something (fsm.DisconnectExpired
// decides, here and in Apply). None before this leadership is one timeout
// old, and none this leadership heard from within the timeout (its
// heartbeat's ALIVE is on its way through the log).
func (v *liveness) overdue(now time.Time) ([]fsm.LostAgent, error) {
	if now.Sub(v.t.since) <= v.timeout {
		return nil, nil
	}
	tx := v.l.cfg.Cluster.Read()
	agents, err := tx.Agents()
	if err != nil {
		return nil, err
	}
	var out []fsm.LostAgent
	for _, ag := range agents {
		if ag.Status != state.AgentDisconnected || now.Sub(v.t.agents.seen(ag.ID, v.t.since)) <= v.timeout {
			continue
		}
		lost, sessions, err := fsm.DisconnectExpired(tx, ag, now, v.grace)
		if err != nil {
			return nil, err
		}
		if lost || len(sessions) > 0 {
			out = append(out, fsm.LostAgent{ID: ag.ID, LastSeen: ag.LastHeartbeatAt})
		}
	}
	return out, nil
}

// expire proposes the end of the graces that have passed.
func (v *liveness) expire(ctx context.Context) {
	now := v.l.now()
	overdue, err := v.overdue(now)
	if err != nil {
		v.l.log.Error("look for agents past their disconnect grace", "err", err)
		return
	}
	if len(overdue) == 0 {
		return
	}
	res, err := proposeValue[*fsm.DisconnectExpiry](ctx, v.l.cfg.Cluster,
		fsm.AgentsDisconnectExpire{At: now, Grace: v.grace, Agents: overdue})
	if err != nil {
		if ctx.Err() == nil {
			v.l.log.Warn("end disconnect graces", "agents", len(overdue), "err", err)
		}
		return
	}
	for _, id := range res.Sessions {
		v.l.log.Warn("session ended: its agent stayed disconnected past the grace", "session", id)
	}
	for _, id := range res.Lost {
		v.l.metrics.lost.Inc()
		v.l.log.Warn("agent lost: disconnected past the grace", "agent", id, "grace", v.grace)
	}
}
