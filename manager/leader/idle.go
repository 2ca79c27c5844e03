package leader

import (
	"context"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// Reasons a session is ended by the leader rather than by its owner.
const (
	reasonIdle     = "idle-timeout"
	reasonLifetime = "session-lifetime"
)

// idle records the activity the leader saw (exec, logs, busy CPU) as one
// SessionsTouch per round, then ends the sessions past their policy's
// idle_timeout or max_session_lifetime.
type idle struct {
	l *Leader
	t *term
	// seen is the latest activity this leadership saw per session: the
	// idle judgement must not hang on the touch's Raft write having
	// succeeded.
	seen map[string]time.Time
}

func (l *Leader) newIdle(t *term) *idle {
	return &idle{l: l, t: t, seen: map[string]time.Time{}}
}

func (d *idle) run(ctx context.Context) { every(ctx, d.l.cfg.IdleCheckEvery, d.round) }

func (d *idle) round(ctx context.Context) {
	// The state is read before the activity is gathered: an agent's
	// return from a disconnection is noted as activity before its ALIVE is
	// proposed (Heartbeat), so a state that shows it ALIVE is judged with
	// that activity.
	tx := d.l.cfg.Cluster.Read()
	d.flushActivity(ctx)
	if err := d.endOverdue(ctx, tx); err != nil && ctx.Err() == nil {
		d.l.log.Warn("check idle sessions", "err", err)
	}
}

// flushActivity writes the activity gathered since the last round.
func (d *idle) flushActivity(ctx context.Context) {
	touched := d.t.activity.touched.drain()
	if len(touched) == 0 {
		return
	}
	for id, at := range touched {
		if at.After(d.seen[id]) {
			d.seen[id] = at
		}
	}
	if err := d.l.propose(ctx, fsm.SessionsTouch{LastActivity: touched}); err != nil && ctx.Err() == nil {
		d.l.log.Warn("record session activity", "sessions", len(touched), "err", err)
		d.t.activity.touched.putBack(touched) // the next round tries again
	}
}

// endOverdue terminates the sessions past a limit of their policy.
func (d *idle) endOverdue(ctx context.Context, tx *state.Txn) error {
	now := d.l.now()
	policies := map[string]*state.ResourcePolicy{} // by access key
	disconnected := map[string]bool{}              // by agent id
	live := map[string]bool{}
	var ends []fsm.SessionTerminate
	for _, status := range api.SessionStatuses() {
		if !status.Active() {
			continue
		}
		list, err := tx.SessionsInStatus(status)
		if err != nil {
			return err
		}
		for _, ses := range list {
			live[ses.ID] = true
			p, err := policyOf(tx, policies, ses.AccessKey)
			if err != nil {
				return err
			}
			away, err := onDisconnectedAgent(tx, disconnected, ses)
			if err != nil {
				return err
			}
			if reason := overdue(ses, p, now, d.seen[ses.ID], away); reason != "" {
				ends = append(ends, fsm.SessionTerminate{SessionID: ses.ID, At: now, Reason: reason})
			}
		}
	}
	for id := range d.seen {
		if !live[id] {
			delete(d.seen, id)
		}
	}
	for _, end := range ends {
		if err := d.l.propose(ctx, end); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.l.log.Warn("end session", "session", end.SessionID, "reason", end.Reason, "err", err)
			continue
		}
		d.l.log.Info("ended session", "session", end.SessionID, "reason", end.Reason)
	}
	return nil
}

// policyOf is the policy of a keypair, read once per round.
func policyOf(tx *state.Txn, cache map[string]*state.ResourcePolicy, accessKey string) (*state.ResourcePolicy, error) {
	if p, ok := cache[accessKey]; ok {
		return p, nil
	}
	var p *state.ResourcePolicy
	kp, err := tx.Keypair(accessKey)
	if err != nil {
		return nil, err
	}
	if kp != nil {
		if p, err = tx.ResourcePolicy(kp.ResourcePolicy); err != nil {
			return nil, err
		}
	}
	cache[accessKey] = p
	return p, nil
}

// onDisconnectedAgent says whether one of the session's agents is
// DISCONNECTED, reading each agent once per round.
func onDisconnectedAgent(tx *state.Txn, cache map[string]bool, s *state.Session) (bool, error) {
	for _, id := range s.Agents {
		away, ok := cache[id]
		if !ok {
			ag, err := tx.Agent(id)
			if err != nil {
				return false, err
			}
			away = ag != nil && ag.Status == state.AgentDisconnected
			cache[id] = away
		}
		if away {
			return true, nil
		}
	}
	return false, nil
}

// overdue says why a session must end now, or "". max_session_lifetime
// counts from started_at for any started session, disconnected or not;
// idle_timeout (0 = never) applies to RUNNING interactive sessions — a
// batch runs until its command ends — and counts from the latest of:
// becoming RUNNING, the recorded last activity, and activity this leader
// saw but has not recorded yet. A session whose agent is disconnected is
// never idle: nobody can tell what it does, and the agent coming back
// counts as activity (Heartbeat), so the disconnection is not counted as
// idleness.
func overdue(s *state.Session, p *state.ResourcePolicy, now, seen time.Time, disconnected bool) string {
	if p == nil {
		return ""
	}
	if life := p.MaxSessionLifetime; life != nil && *life > 0 && s.StartedAt != nil &&
		now.Sub(*s.StartedAt) > time.Duration(*life)*time.Second {
		return reasonLifetime
	}
	if disconnected || p.IdleTimeout <= 0 || s.Status != api.SessionRunning || s.Type != api.SessionInteractive {
		return ""
	}
	last := latest(seen, s.CreatedAt)
	if s.StartedAt != nil {
		last = latest(last, *s.StartedAt)
	}
	if s.LastActivityAt != nil {
		last = latest(last, *s.LastActivityAt)
	}
	for _, h := range s.StatusHistory {
		if h.Status == api.SessionRunning {
			last = latest(last, h.At)
		}
	}
	if now.Sub(last) > time.Duration(p.IdleTimeout)*time.Second {
		return reasonIdle
	}
	return ""
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
