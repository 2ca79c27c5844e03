package server

import (
	"context"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
)

// defaultHeartbeatTimeout is how long an agent may be silent before it is
// LOST when -heartbeat-timeout is not given.
const defaultHeartbeatTimeout = 30 * time.Second

// AppliedIndex implements httpapi.Cluster.
func (s *Server) AppliedIndex() uint64 { return s.fsm.AppliedIndex() }

// WaitIndex implements httpapi.Cluster.
func (s *Server) WaitIndex(ctx context.Context, after uint64) (uint64, error) {
	return s.fsm.WaitIndex(ctx, after)
}

func (s *Server) heartbeatTimeout() time.Duration {
	if s.cfg.HeartbeatTimeout > 0 {
		return s.cfg.HeartbeatTimeout
	}
	return defaultHeartbeatTimeout
}

// agentCheckEvery is how often the leader looks for silent agents: every
// second, or more often for a short timeout (tests), so an agent is LOST
// at most a tenth of the timeout late.
func (s *Server) agentCheckEvery() time.Duration {
	return min(time.Second, max(s.heartbeatTimeout()/10, 50*time.Millisecond))
}

// markLostAgents proposes LOST for the agents silent longer than the
// heartbeat timeout. The liveness clocks are the leader's memory, started
// afresh when it gained leadership (httpapi StartAgentClocks), so a
// failover gives every agent a full timeout to reach the new leader.
func (s *Server) markLostAgents(ctx context.Context) {
	now := s.cfg.Now().UTC()
	silent, err := s.api.SilentAgents(now, s.heartbeatTimeout())
	if err != nil {
		s.log.Error("look for silent agents", "err", err)
		return
	}
	if len(silent) == 0 {
		return
	}
	v, err := s.propose(ctx, fsm.AgentsLost{At: now, Agents: silent})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("mark agents lost", "agents", len(silent), "err", err)
		}
		return
	}
	for _, id := range v.([]string) {
		s.lost.Inc()
		s.log.Warn("agent lost: no heartbeat within the timeout", "agent", id, "timeout", s.heartbeatTimeout())
	}
}

// defaultUsageCheckEvery is how often the leader checks usage for drift
// when -usage-check-every is not given.
const defaultUsageCheckEvery = time.Minute

// startUsageChecks runs the periodic usage check for one leadership; the
// returned function stops it and waits until it has.
func (s *Server) startUsageChecks(ctx context.Context) (stop func()) {
	every := s.cfg.UsageCheckEvery
	if every < 0 {
		return func() {}
	}
	if every == 0 {
		every = defaultUsageCheckEvery
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.api.UsageCheckLoop(ctx, every)
	}()
	return func() {
		cancel()
		<-done
	}
}
