package leader

import (
	"context"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
)

// collect garbage-collects finished sessions: at least once a minute it
// proposes the removal of the sessions that ended more than the retention
// ago, in batches (fsm.SessionsCollect; Apply checks each against the cut
// the entry carries), and forgets the marks of sessions collected more than
// the retention ago, after which a GET of one is a plain 404. Their usage
// stays in the usage rows.
type collect struct{ l *Leader }

func (l *Leader) newCollect() *collect { return &collect{l: l} }

func (c *collect) run(ctx context.Context) { every(ctx, c.l.cfg.CollectEvery, c.round) }

// round proposes batches until nothing is left to collect or forget.
func (c *collect) round(ctx context.Context) {
	for ctx.Err() == nil {
		now := c.l.now()
		cut := now.Add(-c.l.cfg.SessionRetention)
		entry, err := collectable(c.l.cfg.Cluster.Read(), now, cut, c.l.cfg.CollectBatch)
		if err != nil {
			c.l.log.Warn("find sessions to collect", "err", err)
			return
		}
		if len(entry.Sessions) == 0 && len(entry.Forget) == 0 {
			return
		}
		done, err := proposeValue[*fsm.SessionsCollected](ctx, c.l.cfg.Cluster, entry)
		if err != nil {
			if ctx.Err() == nil {
				c.l.log.Warn("collect finished sessions", "sessions", len(entry.Sessions), "err", err)
			}
			return
		}
		c.l.metrics.collected.Add(float64(done.Collected))
		c.l.log.Info("collected finished sessions", "collected", done.Collected, "marks_forgotten", done.Forgotten,
			"ended_before", cut.Format(time.RFC3339))
		if len(entry.Sessions) < c.l.cfg.CollectBatch && len(entry.Forget) < c.l.cfg.CollectBatch {
			return
		}
		if done.Collected == 0 && done.Forgotten == 0 {
			return // Apply judged every one otherwise: try next round
		}
	}
}

// collectable is the next batch: ended sessions that ended at or before
// cut, oldest created first, and marks collected at or before it. Sessions
// are looked at from the oldest on and only while they were created before
// the cut (one created after it cannot have ended before it), so a round
// reads what is due and what still runs from before the cut, not the whole
// table.
func collectable(tx *state.Txn, now, cut time.Time, batch int) (fsm.SessionsCollect, error) {
	out := fsm.SessionsCollect{At: now, Before: cut, ForgetBefore: cut}
	err := tx.EachSessionOldestFirst(func(s *state.Session) (bool, error) {
		if s.CreatedAt.After(cut) || len(out.Sessions) == batch {
			return false, nil
		}
		if s.Status.Ended() && !ended(s).After(cut) {
			out.Sessions = append(out.Sessions, s.ID)
		}
		return true, nil
	})
	if err != nil {
		return out, err
	}
	err = tx.EachCollected(func(m *state.CollectedSession) error {
		if len(out.Forget) < batch && !m.CollectedAt.After(cut) {
			out.Forget = append(out.Forget, m.ID)
		}
		return nil
	})
	return out, err
}

// ended is when a session ended (as the applier judges it).
func ended(s *state.Session) time.Time {
	if s.TerminatedAt != nil {
		return *s.TerminatedAt
	}
	if n := len(s.StatusHistory); n > 0 {
		return s.StatusHistory[n-1].At
	}
	return s.CreatedAt
}
