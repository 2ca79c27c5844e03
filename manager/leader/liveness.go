package leader

import (
	"context"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
)

// liveness judges agents LOST: an ALIVE agent silent longer than the
// heartbeat timeout, by this leadership's own clock, is proposed LOST (its
// sessions end ERROR agent-lost). The clocks are the leadership's memory,
// started at its beginning, so a failover gives every agent a full timeout
// to reach the new leader: it can delay a LOST, never cause one.
type liveness struct {
	l       *Leader
	t       *term
	timeout time.Duration
}

func (l *Leader) newLiveness(t *term) *liveness {
	return &liveness{l: l, t: t, timeout: l.cfg.HeartbeatTimeout}
}

// checkEvery is how often silent agents are looked for: every second, or
// more often for a short timeout (tests), so an agent is LOST at most a
// tenth of the timeout late.
func (v *liveness) checkEvery() time.Duration {
	return min(time.Second, max(v.timeout/10, 50*time.Millisecond))
}

func (v *liveness) run(ctx context.Context) { every(ctx, v.checkEvery(), v.markLost) }

// silent lists the ALIVE agents not heard from for longer than the
// timeout at now, each with the last sign of life it was judged by (which
// the FSM compares with the log, see fsm.AgentsLost).
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
			out = append(out, fsm.LostAgent{ID: ag.ID, LastSeen: seen})
		}
	}
	return out, nil
}

// markLost proposes LOST for the agents silent past the timeout.
func (v *liveness) markLost(ctx context.Context) {
	now := v.l.now()
	silent, err := v.silent(now)
	if err != nil {
		v.l.log.Error("look for silent agents", "err", err)
		return
	}
	if len(silent) == 0 {
		return
	}
	lost, err := proposeValue[[]string](ctx, v.l.cfg.Cluster, fsm.AgentsLost{At: now, Agents: silent})
	if err != nil {
		if ctx.Err() == nil {
			v.l.log.Warn("mark agents lost", "agents", len(silent), "err", err)
		}
		return
	}
	for _, id := range lost {
		v.l.metrics.lost.Inc()
		v.l.log.Warn("agent lost: no heartbeat within the timeout", "agent", id, "timeout", v.timeout)
	}
}
