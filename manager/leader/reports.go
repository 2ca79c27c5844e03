package leader

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// What an agent's heartbeat tells about the containers it runs, and what
// the leader writes of it.

// sessionNews compares an agent's report with the session records and
// returns what differs: a container's status, exit code or reason. When
// the report is full (the agent could list its runtime), a container the
// records place there that it no longer lists is news too: gone —
// "stopped" for a TERMINATING session (that is how TERMINATING ends), else
// vanished. Containers not yet started are not missing: they are SCHEDULED.
func sessionNews(tx *state.Txn, agent string, reported []api.ContainerReport, full bool) ([]fsm.ContainerReport, error) {
	var news []fsm.ContainerReport
	listed := map[string]bool{}
	for _, r := range reported {
		listed[r.ID] = true
		if r.SessionID == "" || r.ID != state.ContainerID(r.SessionID, r.Index) {
			continue // not a container of Berth's naming: nothing to record
		}
		s, err := tx.Session(r.SessionID)
		if err != nil {
			return nil, err
		}
		if s == nil || !s.Status.Occupying() {
			continue
		}
		ct := containerOf(s, r.Index)
		if ct == nil || ct.Agent != agent || ct.Status.Ended() {
			continue // an ended container stays ended: a later report changes nothing
		}
		// An empty reason says nothing new (the record keeps the last one).
		if ct.Status != r.Status || !sameExit(ct.ExitCode, r.ExitCode) || (r.Reason != "" && ct.Reason != r.Reason) ||
			(r.Address != "" && ct.Address != r.Address) || (r.ImageDigest != "" && ct.ImageDigest != r.ImageDigest) {
			n := fsm.ContainerReport{SessionID: s.ID, Index: r.Index, Status: r.Status,
				ExitCode: r.ExitCode, Reason: r.Reason, Address: r.Address, ImageDigest: r.ImageDigest}
			if r.Status == api.ContainerExited {
				n.ExitedAt = r.ExitedAt // its real time, however late the news
			}
			news = append(news, n)
		}
	}
	if full {
		missing, err := missingContainers(tx, agent, listed)
		if err != nil {
			return nil, err
		}
		news = append(news, missing...)
	}
	slices.SortFunc(news, func(x, y fsm.ContainerReport) int {
		return cmp.Or(cmp.Compare(x.SessionID, y.SessionID), cmp.Compare(x.Index, y.Index))
	})
	return news, nil
}

func missingContainers(tx *state.Txn, agent string, listed map[string]bool) ([]fsm.ContainerReport, error) {
	ss, err := tx.OccupyingOnAgent(agent)
	if err != nil {
		return nil, err
	}
	var out []fsm.ContainerReport
	for _, s := range ss {
		if !s.Status.Occupying() {
			continue
		}
		for _, ct := range s.Containers {
			if ct.Agent != agent || ct.Status.Ended() || listed[state.ContainerID(s.ID, ct.Index)] {
				continue
			}
			switch {
			case s.Status == api.SessionTerminating:
				out = append(out, fsm.ContainerReport{SessionID: s.ID, Index: ct.Index, Status: api.ContainerGone, Reason: "stopped"})
			case ct.Status.Present():
				// The agent reported it before and lists it no more.
				out = append(out, fsm.ContainerReport{SessionID: s.ID, Index: ct.Index, Status: api.ContainerGone,
					Reason: "container vanished from the agent"})
			}
		}
	}
	return out, nil
}

func containerOf(s *state.Session, index int) *state.SessionContainer {
	for i := range s.Containers {
		if s.Containers[i].Index == index {
			return &s.Containers[i]
		}
	}
	return nil
}

func sameNews(x, y fsm.ContainerReport) bool {
	return x.SessionID == y.SessionID && x.Index == y.Index && x.Status == y.Status && x.Reason == y.Reason &&
		sameExit(x.ExitCode, y.ExitCode) && x.ImageDigest == y.ImageDigest
}

func sameExit(x, y *int) bool {
	if x == nil || y == nil {
		return x == y
	}
	return *x == *y
}

// reportSessions turns a heartbeat's container report into at most one
// SessionsReport, and notes busy CPU as activity. A steady cluster writes
// nothing: only differences from the records are proposed, and the same
// news not again for a while (see activity.fresh).
func (l *Leader) reportSessions(ctx context.Context, t *term, agent string, now time.Time, hb *api.AgentHeartbeat) error {
	tx := l.cfg.Cluster.Read()
	if err := t.activity.noteCPU(tx, agent, now, hb.Containers); err != nil {
		return err
	}
	if err := t.measures.note(tx, agent, now, hb.Containers); err != nil {
		return err
	}
	news, err := sessionNews(tx, agent, hb.Containers, hb.Containers != nil)
	if err != nil {
		return err
	}
	news = t.activity.fresh(agent, news, now)
	if len(news) == 0 {
		return nil
	}
	_, err = l.writeNews(ctx, agent, now, news)
	return err
}

// Report takes an agent's report of the containers whose state changed
// (POST /v1/agents/{id}/report), sent as they change: it goes into the
// leader's memory of the agent's containers and its news are proposed at
// once, as a heartbeat's would be. Only containers placed on this agent
// move (sessionNews, and again the applier): a report about another
// agent's container changes nothing. A report is no heartbeat: it neither
// keeps the agent alive nor carries usage.
func (l *Leader) Report(ctx context.Context, agent string, changed []api.ContainerReport) error {
	now := l.now()
	t := l.current()
	if t == nil {
		// Not leading (any more): nothing is remembered, and the write
		// below is refused.
		t = newTerm(now)
	}
	// Before the proposal: a session the news end wakes its agent's
	// desired state, whose stop list reads this memory.
	t.agents.merge(agent, changed)
	l.metrics.reports.Inc()
	news, err := sessionNews(l.cfg.Cluster.Read(), agent, changed, false)
	if err != nil {
		return err
	}
	news = t.activity.fresh(agent, news, now)
	if len(news) == 0 {
		return nil
	}
	_, err = l.writeNews(ctx, agent, now, news)
	return err
}

// writeNews proposes container news and says whether they were applied.
// A refusal is no failure: the FSM judged the news stale (the session moved
// on meanwhile), and the agent's next report is compared with the new
// records.
func (l *Leader) writeNews(ctx context.Context, agent string, now time.Time, news []fsm.ContainerReport) (applied bool, err error) {
	resp, err := l.cfg.Cluster.Propose(ctx, fsm.SessionsReport{At: now, Agent: agent, Reports: news})
	if err != nil {
		return false, err
	}
	if resp.Err != nil {
		l.log.Info("container report not applied", "agent", agent, "reason", resp.Err)
		return false, nil
	}
	return true, nil
}
