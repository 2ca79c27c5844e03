package server

import (
	"context"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// defaultIdleCheckEvery is how often the leader records session activity
// and looks for idle and overlong sessions. Idle timeouts are set in
// seconds to days; a few seconds of lateness is within their meaning.
const defaultIdleCheckEvery = 5 * time.Second

// Reasons a session is ended by the leader rather than by its owner.
const (
	reasonIdle     = "idle-timeout"
	reasonLifetime = "session-lifetime"
)

// startIdleLoop runs the idle loop for one leadership; the returned
// function stops it and waits until it has.
func (s *Server) startIdleLoop(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.idleLoop(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// idleLoop records the activity the API saw (exec, logs, busy CPU) as one
// SessionsTouch per round, then ends the sessions past their policy's
// idle_timeout or max_session_lifetime.
func (s *Server) idleLoop(ctx context.Context) {
	every := s.cfg.IdleCheckEvery
	if every <= 0 {
		every = defaultIdleCheckEvery
	}
	// seen is the latest activity this leader saw per session: the idle
	// judgement must not hang on the touch's Raft write having succeeded.
	seen := map[string]time.Time{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flushActivity(ctx, seen)
			if err := s.endOverdue(ctx, seen); err != nil && ctx.Err() == nil {
				s.log.Warn("check idle sessions", "err", err)
			}
		}
	}
}

// flushActivity writes the activity gathered since the last round.
func (s *Server) flushActivity(ctx context.Context, seen map[string]time.Time) {
	touched := s.api.DrainSessionActivity()
	if len(touched) == 0 {
		return
	}
	for id, at := range touched {
		if at.After(seen[id]) {
			seen[id] = at
		}
	}
	if _, err := s.propose(ctx, fsm.SessionsTouch{LastActivity: touched}); err != nil && ctx.Err() == nil {
		s.log.Warn("record session activity", "sessions", len(touched), "err", err)
		s.api.NoteSessionActivity(touched) // the next round tries again
	}
}

// endOverdue terminates the sessions past a limit of their policy.
func (s *Server) endOverdue(ctx context.Context, seen map[string]time.Time) error {
	now := s.cfg.Now().UTC()
	tx := s.fsm.State().Read()
	policies := map[string]*state.ResourcePolicy{} // by access key
	live := map[string]bool{}
	var ends []fsm.SessionTerminate
	for _, status := range []string{api.SessionScheduled, api.SessionPreparing, api.SessionRunning} {
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
			if reason := overdue(ses, p, now, seen[ses.ID]); reason != "" {
				ends = append(ends, fsm.SessionTerminate{SessionID: ses.ID, At: now, Reason: reason})
			}
		}
	}
	for id := range seen {
		if !live[id] {
			delete(seen, id)
		}
	}
	for _, end := range ends {
		if _, err := s.propose(ctx, end); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("end session", "session", end.SessionID, "reason", end.Reason, "err", err)
			continue
		}
		s.log.Info("ended session", "session", end.SessionID, "reason", end.Reason)
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

// overdue says why a session must end now, or "". max_session_lifetime
// counts from started_at for any started session; idle_timeout (0 =
// never) applies to RUNNING interactive sessions — a batch runs until its
// command ends — and counts from the latest of: becoming RUNNING, the
// recorded last activity, and activity this leader saw but has not
// recorded yet.
func overdue(s *state.Session, p *state.ResourcePolicy, now, seen time.Time) string {
	if p == nil {
		return ""
	}
	if life := p.MaxSessionLifetime; life != nil && *life > 0 && s.StartedAt != nil &&
		now.Sub(*s.StartedAt) > time.Duration(*life)*time.Second {
		return reasonLifetime
	}
	if p.IdleTimeout <= 0 || s.Status != api.SessionRunning || s.Type != api.SessionInteractive {
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
